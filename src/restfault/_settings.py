"""One frozen settings object, validated once when an adapter is created.

The defaults are the fields' defaults, stated once; each option's validator lives in
``_validate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ._backends import check_storage
from ._errors import ConfigurationError
from ._options import OnStorageError, Strategy
from ._render import Style
from ._validate import VALIDATORS, LimitSpec, Network

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every adapter option, checked once; see ``Settings.from_options``."""

    style: Style = "dreamfactory"
    debug: bool = False
    default_limits: LimitSpec = ()
    path_limits: tuple[tuple[str, LimitSpec], ...] = ()
    storage_uri: str = "memory://"
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    strategy: Strategy = "fixed-window"
    key_func: Callable[[Any], Any] | None = None
    headers_enabled: bool = True
    ietf_headers: bool = False
    trusted_proxies: tuple[Network, ...] = ()
    ipv6_subnet: int | None = 56
    on_storage_error: OnStorageError = "memory"
    storage_timeout: float = 0.25
    storage_retry_interval: float = 1.0
    key_prefix: str = "restfault"
    exempt_paths: tuple[str, ...] = ()
    enforce: bool = True
    problem_type: str = "about:blank"
    convert_error_responses: bool = True
    request_id_header: str | None = None
    maintenance: Callable[[Any], Any] | None = None
    metrics: bool = False

    @property
    def storage_scheme(self) -> str:
        """The storage URI's scheme, lower case: ``memory``, ``redis+cluster``..."""
        return self.storage_uri.split("://", 1)[0].lower()

    @property
    def in_process(self) -> bool:
        """Limits are counted in this process (``memory://``), not in a shared storage."""
        return self.storage_uri[:9].lower() == "memory://"

    @classmethod
    def from_options(cls, *, asynchronous: bool, **options: Any) -> Settings:
        """Validate keyword options; a bad one raises ConfigurationError naming it.

        ``asynchronous`` says whether the adapter can await (ASGI): a WSGI adapter
        refuses ``async`` callables instead of never awaiting them.
        """
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(known)}"
            )
        values = {
            name: VALIDATORS[name](name, value, asynchronous) for name, value in options.items()
        }
        settings = cls(**values)
        check_storage(settings.storage_uri, settings.strategy, asynchronous)
        return settings
