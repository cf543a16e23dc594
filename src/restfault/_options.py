"""The adapters' keyword options as types: what a user's editor and ``mypy --strict`` check.

Every adapter takes ``**options: Unpack[Options]``, so ``RestFault(app, stlye="bkend")``
is a type error where it is written, and still a ``ConfigurationError`` at run time
(``Settings.from_options``). The defaults are stated once, on ``Settings``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, TypeAlias, TypedDict

from ._render import Style

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

__all__ = [
    "LimitResult",
    "LimitValue",
    "Options",
    "Strategy",
    "Unpack",
]

Strategy: TypeAlias = Literal["fixed-window", "moving-window", "sliding-window-counter"]
OnStorageError: TypeAlias = Literal["memory", "allow", "deny"]

# What a limit callable returns: limit string(s) for this request, or None for no limit.
LimitResult: TypeAlias = str | Iterable[str] | None
# A limit as the user writes it: "100/minute;1000/hour", a list of such strings, or a
# callable of the request returning them (async allowed in the ASGI adapters).
LimitValue: TypeAlias = (
    str | Iterable[str] | Callable[[Any], LimitResult] | Callable[[Any], Awaitable[LimitResult]]
)


class Options(TypedDict, total=False):
    """Every keyword option of API.md §4 (and restfault's own extras)."""

    style: Style
    debug: bool
    default_limits: LimitValue | None
    path_limits: Mapping[str, LimitValue] | None
    storage_uri: str
    storage_options: Mapping[str, Any]
    strategy: Strategy
    key_func: Callable[[Any], Any] | None
    headers_enabled: bool
    ietf_headers: bool
    trusted_proxies: str | Iterable[str] | None
    ipv6_subnet: int | None
    on_storage_error: OnStorageError
    storage_timeout: float
    storage_retry_interval: float
    key_prefix: str
    exempt_paths: str | Iterable[str] | None
    enforce: bool
    problem_type: str
    convert_error_responses: bool
    request_id_header: str | None
    maintenance: Callable[[Any], Any] | None
    metrics: bool
