"""Response headers as ``restfault.client`` reads them: how long the server asks to wait.

Pure functions of a header mapping (httpx's, httpx2's, requests' or a plain dict looked up
case-insensitively); no HTTP library is imported here.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import timezone
from typing import Any

__all__ = ["Headers", "ratelimit_wait", "retry_after_seconds", "server_wait"]

_DIGITS = re.compile(r"[0-9]+")


class Headers(dict[str, str]):
    """A response's headers on a rebuilt exception: names in lower case, looked up in any case.

    Servers differ in the case they send (uvicorn lower-cases, gunicorn keeps Flask's), so
    ``exc.headers["Retry-After"]`` must work whichever answered.

    >>> Headers({"Retry-After": "3"})["retry-after"]
    '3'
    """

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        super().__init__((name.lower(), value) for name, value in pairs)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __setitem__(self, name: str, value: str) -> None:
        super().__setitem__(name.lower(), value)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def pop(self, name: str, *default: Any) -> Any:
        return super().pop(name.lower(), *default)

    def setdefault(self, name: str, default: str) -> str:
        return super().setdefault(name.lower(), default)

    def update(self, *others: Any, **more: str) -> None:
        for other in (*others, more):
            for name, value in Headers(other).items():
                super().__setitem__(name, value)

    def copy(self) -> Headers:
        return Headers(self.items())


def _http_date(value: str | None) -> float | None:
    """An HTTP date (RFC 9110 §5.6.7, any of its three forms) as a Unix time, or None."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):  # pragma: no cover - platform limits
        return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from ``Retry-After``: delay-seconds, or an HTTP date measured from ``Date``.

    An HTTP date is measured from the response's own ``Date`` header when it has a valid
    one (the server's clock, not ours), else from ``now`` (default: the current time); a
    date in the past is 0. A malformed value is None, never an error.

    >>> retry_after_seconds({"Retry-After": "120"})
    120.0
    >>> retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:07 GMT",
    ...                      "Date": "Wed, 21 Oct 2015 07:28:00 GMT"})
    7.0
    """
    value = (headers.get("Retry-After") or "").strip()
    if _DIGITS.fullmatch(value):
        return float(int(value))
    when = _http_date(value)
    if when is None:
        return None
    reference = _http_date(headers.get("Date"))
    if reference is None:
        reference = time.time() if now is None else now
    return max(0.0, when - reference)


def _split(text: str, separator: str) -> Iterator[str]:
    """``text`` cut at each ``separator`` outside a Structured Field String."""
    start, quoted, escaped = 0, False, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            yield text[start:index]
            start = index + 1
    yield text[start:]


def ratelimit_wait(headers: Mapping[str, str]) -> float | None:
    """The largest ``t`` among the ``RateLimit`` field's items whose ``r`` is 0, or None.

    The field is draft-ietf-httpapi-ratelimit-headers' List of Items with parameters
    (``"name";r=0;t=12, "other";r=5;t=30``); members that do not parse are skipped.

    >>> ratelimit_wait({"RateLimit": '"daily";r=0;t=12, "burst";r=5;t=30'})
    12.0
    """
    waits: list[int] = []
    for member in _split(headers.get("RateLimit") or "", ","):
        parameters: dict[str, str] = {}
        for parameter in list(_split(member, ";"))[1:]:
            key, _, value = parameter.partition("=")
            parameters[key.strip()] = value.strip()
        remaining, reset = parameters.get("r", ""), parameters.get("t", "")
        if _DIGITS.fullmatch(remaining) and int(remaining) == 0 and _DIGITS.fullmatch(reset):
            waits.append(int(reset))
    return float(max(waits)) if waits else None


def server_wait(headers: Mapping[str, str]) -> tuple[float, str] | None:
    """How long the server asks to wait, and which header said so: ``Retry-After`` first,
    then ``RateLimit``; None when neither says anything usable."""
    seconds = retry_after_seconds(headers)
    if seconds is not None:
        return seconds, "Retry-After"
    seconds = ratelimit_wait(headers)
    if seconds is not None:
        return seconds, "RateLimit"
    return None
