"""The rate-limit header fields of a verdict: the one place their values are decided.

``rate_header_values`` gives them as text (WSGI, Flask); ``raw_rate_header_values``
writes the same numbers and strings as ASGI bytes. ``X-RateLimit-*`` describe the
reported limit; with ``ietf``, ``RateLimit-Policy`` and ``RateLimit`` list every limit
evaluated (draft-ietf-httpapi-ratelimit-headers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ._limiting import RateLimitDecision, Verdict

__all__ = ["encode_rate_headers", "raw_rate_header_values", "rate_header_values", "sf_string"]

T = TypeVar("T")


def sf_string(value: str) -> str:
    """``value`` as a Structured Field String (RFC 9651): printable ASCII, quoted."""
    cleaned = "".join(ch for ch in value if 0x20 <= ord(ch) < 0x7F)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rate_header_values(
    verdict: Verdict, now: float | None = None, legacy: bool = True, ietf: bool = False
) -> list[tuple[str, str]]:
    """The rate-limit header fields of a verdict: the one place their values are decided.

    ``X-RateLimit-*`` describe the reported limit; with ``ietf``, ``RateLimit-Policy``
    lists every limit evaluated and ``RateLimit`` gives each one's remaining and reset
    (draft-ietf-httpapi-ratelimit-headers). ``Retry-After`` belongs to the 429 alone.
    """
    reported = verdict.reported
    if legacy and reported is not None:
        limit, remaining, reset = _legacy_numbers(reported)
        result = [
            ("X-RateLimit-Limit", _TEXT[limit]),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", _TEXT[reset]),
        ]
        if ietf and verdict.decisions:
            result += _ietf_values(verdict, now)
        return result
    return _ietf_values(verdict, now) if ietf and verdict.decisions else []


def raw_rate_header_values(
    verdict: Verdict, now: float | None = None, legacy: bool = True, ietf: bool = False
) -> list[tuple[bytes, bytes]]:
    """``rate_header_values`` as ASGI header pairs: the same numbers and strings, written
    as bytes (the legacy fields without a detour through ``str``)."""
    reported = verdict.reported
    if legacy and reported is not None:
        limit, remaining, reset = _legacy_numbers(reported)
        raw = [
            (b"x-ratelimit-limit", _DIGITS[limit]),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-reset", _DIGITS[reset]),
        ]
        if ietf and verdict.decisions:
            raw += encode_rate_headers(_ietf_values(verdict, now))
        return raw
    if ietf and verdict.decisions:
        return encode_rate_headers(_ietf_values(verdict, now))
    return []


class _Written(dict[int, T]):
    """Numbers as header values, kept once written: a limit's size and a window's end
    (epoch seconds) repeat from one request to the next (a remaining count does not).
    Forgotten all at once when 4096 are kept."""

    def __init__(self, write: Callable[[int], T]) -> None:
        super().__init__()
        self._write = write

    def __missing__(self, number: int) -> T:
        if len(self) >= 4096:
            self.clear()
        value = self[number] = self._write(number)
        return value


_TEXT: _Written[str] = _Written(str)
_DIGITS: _Written[bytes] = _Written(lambda number: b"%d" % number)


def _legacy_numbers(reported: RateLimitDecision) -> tuple[int, int, int]:
    """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (epoch seconds, rounded up)."""
    remaining = reported.remaining  # never negative; not max(): ~1,200 instructions vs ~40
    return reported.limit, remaining if remaining > 0 else 0, math.ceil(reported.reset)


def _ietf_values(verdict: Verdict, now: float | None) -> list[tuple[str, str]]:
    """``RateLimit-Policy`` and ``RateLimit``: the only fields that need the time (``now``,
    or the clock read here when the caller has none)."""
    if now is None:
        now = time.time()
    policies, states = [], []
    for decision in verdict.decisions:
        name = sf_string(decision.policy or decision.scope)
        policies.append(f"{name};q={decision.limit};w={decision.window}")
        reset_in = max(0, math.ceil(decision.reset - now))
        states.append(f"{name};r={max(0, decision.remaining)};t={reset_in}")
    return [("RateLimit-Policy", ", ".join(policies)), ("RateLimit", ", ".join(states))]


class _RawNames(dict[str, bytes]):
    """Header names as ASGI bytes: the rate-limit ones prepared, any other (a request id
    header) lowered and encoded when first met."""

    def __missing__(self, name: str) -> bytes:
        raw = self[name] = name.lower().encode("ascii")
        return raw


_RAW_NAMES = _RawNames(
    {
        name: name.lower().encode("ascii")
        for name in (
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "RateLimit-Policy",
            "RateLimit",
            "Retry-After",
        )
    }
)


def encode_rate_headers(values: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """``rate_header_values`` as ASGI header pairs: ASCII names, and values of digits or
    sanitised structured-field strings, so there is nothing to escape (nor in a request
    id header: a token name, a visible-ASCII value)."""
    return [(_RAW_NAMES[name], value.encode("ascii")) for name, value in values]
