"""What this process remembers of a storage's times: windows' ends and denials.

An ``ExpiryCache`` holds times keyed by storage key and never trusts a past one. The
evaluation (``_evaluate``) keeps fixed windows' ends in one (a network storage's; the
in-process storage hands its own over as ``KnownEnds``) and the keys known to be denied
until a known time in another (``DenialCache``); the shadow-mode and 429 log lines use
one to write once per key until its reset.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["DenialCache", "ExpiryCache", "KnownEnds"]


class ExpiryCache:
    """Times this process has learned, keyed by storage key; a past time is never trusted.

    Used for fixed windows' ends (a window's key lives until the end its first hit set, so
    a known end stays right and saves the TTL round trip) and for denials (a key spent
    until a known time stays spent until then). Bounded: past entries are swept when full.
    """

    __slots__ = ("_limit", "times")

    def __init__(self, limit: int = 65536) -> None:
        self.times: dict[str, float] = {}
        self._limit = limit

    def get(self, key: str, now: float) -> float | None:
        until = self.times.get(key)
        return until if until is not None and until > now else None

    def set(self, key: str, until: float, now: float) -> None:
        times = self.times
        if len(times) >= self._limit and key not in times:
            for stale in [k for k, v in times.items() if v <= now]:
                del times[stale]
            if len(times) >= self._limit:
                times.clear()
        times[key] = until

    def __len__(self) -> int:
        return len(self.times)

    def __bool__(self) -> bool:
        return bool(self.times)


DenialCache = ExpiryCache


class KnownEnds(Protocol):
    """Where fixed windows' ends are remembered: an ``ExpiryCache`` for a network storage,
    the in-process storage's own counters for ``memory://``."""

    def get(self, key: str, now: float) -> float | None: ...
    def set(self, key: str, until: float, now: float) -> None: ...
