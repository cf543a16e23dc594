"""The sans-IO seam of rate limiting: the storage operations the evaluation asks for.

The evaluation (``_evaluate``) is one generator that yields these small typed values and
is sent their results. ``_storage`` drives it with blocking calls for WSGI (``run``) and
awaited ``limits.aio`` calls for ASGI (``arun``); so the rate-limit logic exists once and
only the I/O twice. Each operation names the ``limits`` storage method it stands for.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import NamedTuple, Protocol, TypeAlias

__all__ = [
    "AcquireEntry",
    "AcquireSliding",
    "AsyncStorage",
    "Get",
    "GetExpiry",
    "Incr",
    "MovingWindow",
    "SlidingWindow",
    "StorageOp",
    "SyncStorage",
]

SlidingState: TypeAlias = tuple[int, float, int, float]


class SyncStorage(Protocol):
    """The methods of a sync ``limits`` storage that restfault calls."""

    def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...
    def get(self, key: str) -> int: ...
    def get_expiry(self, key: str) -> float: ...
    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool: ...
    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]: ...
    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool: ...
    def get_sliding_window(self, key: str, expiry: int) -> SlidingState: ...


class AsyncStorage(Protocol):
    """The same methods on a ``limits.aio`` storage."""

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...
    async def get(self, key: str) -> int: ...
    async def get_expiry(self, key: str) -> float: ...
    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool: ...
    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]: ...
    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool: ...
    async def get_sliding_window(self, key: str, expiry: int) -> SlidingState: ...


class Incr(NamedTuple):
    """Add ``amount`` to a counter, opening it for ``expiry`` seconds if it is new."""

    key: str
    expiry: int
    amount: int

    def run(self, storage: SyncStorage) -> int:
        return storage.incr(self.key, self.expiry, self.amount)

    def arun(self, storage: AsyncStorage) -> Awaitable[int]:
        return storage.incr(self.key, self.expiry, self.amount)


class Get(NamedTuple):
    """Read a counter (0 when absent or expired)."""

    key: str

    def run(self, storage: SyncStorage) -> int:
        return storage.get(self.key)

    def arun(self, storage: AsyncStorage) -> Awaitable[int]:
        return storage.get(self.key)


class GetExpiry(NamedTuple):
    """When a counter's window ends (epoch seconds)."""

    key: str

    def run(self, storage: SyncStorage) -> float:
        return storage.get_expiry(self.key)

    def arun(self, storage: AsyncStorage) -> Awaitable[float]:
        return storage.get_expiry(self.key)


class AcquireEntry(NamedTuple):
    """Take ``amount`` entries of a moving window, if there is room."""

    key: str
    limit: int
    expiry: int
    amount: int

    def run(self, storage: SyncStorage) -> bool:
        return storage.acquire_entry(self.key, self.limit, self.expiry, self.amount)

    def arun(self, storage: AsyncStorage) -> Awaitable[bool]:
        return storage.acquire_entry(self.key, self.limit, self.expiry, self.amount)


class MovingWindow(NamedTuple):
    """A moving window's start and the entries it holds."""

    key: str
    limit: int
    expiry: int

    def run(self, storage: SyncStorage) -> tuple[float, int]:
        return storage.get_moving_window(self.key, self.limit, self.expiry)

    def arun(self, storage: AsyncStorage) -> Awaitable[tuple[float, int]]:
        return storage.get_moving_window(self.key, self.limit, self.expiry)


class AcquireSliding(NamedTuple):
    """Count ``amount`` in a sliding-window counter, if the weighted count allows it."""

    key: str
    limit: int
    expiry: int
    amount: int

    def run(self, storage: SyncStorage) -> bool:
        return storage.acquire_sliding_window_entry(self.key, self.limit, self.expiry, self.amount)

    def arun(self, storage: AsyncStorage) -> Awaitable[bool]:
        return storage.acquire_sliding_window_entry(self.key, self.limit, self.expiry, self.amount)


class SlidingWindow(NamedTuple):
    """A sliding-window counter's (previous count, its ttl, current count, its ttl)."""

    key: str
    expiry: int

    def run(self, storage: SyncStorage) -> SlidingState:
        return storage.get_sliding_window(self.key, self.expiry)

    def arun(self, storage: AsyncStorage) -> Awaitable[SlidingState]:
        return storage.get_sliding_window(self.key, self.expiry)


StorageOp: TypeAlias = (
    Incr | Get | GetExpiry | AcquireEntry | MovingWindow | AcquireSliding | SlidingWindow
)
