"""The ``memory://`` storage: restfault's own, in process, with nothing running in the background.

``limits``' ``MemoryStorage`` expires keys from a ``threading.Timer`` restarted after
counter updates (under load a new thread every 10 ms, each scanning every key), and its
``limits.aio`` twin schedules an asyncio task that scans every key per request. Here
windows end lazily when read, and ended keys are swept inline at most once per
``sweep_interval`` seconds. It implements ``limits``' public storage interface
(``Storage``, ``MovingWindowSupport``, ``SlidingWindowCounterSupport``) with the same
semantics, and is called directly by both drivers: dict work under one lock, no I/O, so
nothing to await and nothing to time out.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from typing import Any

from limits.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage

__all__ = ["InProcessStorage"]


class InProcessStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """Counters, moving windows and sliding-window counters in dicts, swept inline."""

    def __init__(self, sweep_interval: float = 1.0) -> None:
        super().__init__()
        # key -> [count (an int, read as it is), end of its window (a float)]
        self._counters: dict[str, list[Any]] = {}
        # key -> entry times, newest first, at most ``limit`` of them; and their window
        self._entries: dict[str, list[float]] = {}
        self._entry_windows: dict[str, int] = {}
        # One lock for everything: held for a few dict operations, never across I/O, and
        # unlike a lock per key it leaves nothing behind per client.
        self._lock = threading.Lock()
        self._sweep_interval = sweep_interval
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return RuntimeError  # nothing here fails the way a network storage does

    # -- fixed windows (and the counters below everything else) ---------------------------

    def hit_fixed(self, key: str, expiry: float, amount: int, now: float) -> tuple[int, float]:
        """Add ``amount`` at ``now`` and return the count and the window's end: one call
        per hit (the caller's clock reading, so a request reads the clock once)."""
        if now >= self._next_sweep:
            self._sweep(now)
        lock = self._lock
        lock.acquire()  # not ``with``: a third fewer instructions, on every limited request
        try:
            counter = self._counters.get(key)
            if counter is None or counter[1] <= now:  # the window ended (or never began)
                self._counters[key] = [amount, now + expiry]
                return amount, now + expiry
            counter[0] += amount
            return counter[0], counter[1]
        finally:
            lock.release()

    @property
    def known_ends(self) -> _CounterEnds:
        """Fixed windows' ends as the evaluation asks for them: read off the counters."""
        return _CounterEnds(self._counters)

    def peek_fixed(self, key: str, now: float) -> tuple[int, float]:
        """The count and the window's end, counting nothing (0 and now when absent)."""
        counter = self._counters.get(key)
        if counter is None or counter[1] <= now:
            return 0, now
        return counter[0], counter[1]

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self.hit_fixed(key, expiry, amount, time.time())[0]

    def decr(self, key: str, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            counter = self._counters.get(key)
            if counter is None or counter[1] <= now:
                return 0
            count: int = max(0, counter[0] - amount)
            counter[0] = count
            return count

    def get(self, key: str) -> int:
        return self.peek_fixed(key, time.time())[0]

    def get_expiry(self, key: str) -> float:
        return self.peek_fixed(key, time.time())[1]

    def clear(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)
            self._entries.pop(key, None)
            self._entry_windows.pop(key, None)

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            count = len(self._counters) + len(self._entries)
            self._counters.clear()
            self._entries.clear()
            self._entry_windows.clear()
        return count

    def __len__(self) -> int:
        """Keys held: counters and moving windows (ended ones until the next sweep)."""
        return len(self._counters) + len(self._entries)

    def sizes(self) -> dict[str, int]:
        """What is kept, by kind: ``counters`` (fixed and sliding windows, penalties) and
        ``windows`` (moving windows) — for memory checks and benchmarks."""
        return {"counters": len(self._counters), "windows": len(self._entries)}

    # -- moving windows -----------------------------------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        with self._lock:
            entries = self._entries.setdefault(key, [])
            self._entry_windows[key] = expiry
            # Room for ``amount`` more when the entry that would become the limit-th is old.
            if len(entries) > limit - amount and entries[limit - amount] >= now - expiry:
                return False
            entries[:0] = [now] * amount
            del entries[limit:]  # older entries can never decide anything again
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        entries = self._entries.get(key)
        if not entries:
            return now, 0
        # Entries are newest first: how many lie inside the window, and the oldest of them.
        inside = bisect.bisect_left(entries, -(now - expiry), key=lambda t: -t)
        if inside == 0:
            return now, 0
        return entries[inside - 1], inside

    # -- sliding-window counters --------------------------------------------------------

    @staticmethod
    def _window_keys(key: str, expiry: int, now: float) -> tuple[str, str]:
        # Clock-aligned windows, named as limits names them.
        return f"{key}/{int((now - expiry) / expiry)}", f"{key}/{int(now / expiry)}"

    def _sliding(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float]:
        previous_key, current_key = self._window_keys(key, expiry, now)
        previous = self.peek_fixed(previous_key, now)[0]
        current = self.peek_fixed(current_key, now)[0]
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, current, current_ttl

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = time.time()
        previous, previous_ttl, current, _ = self._sliding(key, expiry, now)
        if math.floor(previous * previous_ttl / expiry + current) + amount > limit:
            return False
        current_key = self._window_keys(key, expiry, now)[1]
        current = self.hit_fixed(current_key, 2 * expiry, amount, now)[0]
        if math.floor(previous * previous_ttl / expiry + current) > limit:
            self.decr(current_key, amount)  # another hit won the race: give it back
            return False
        return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return self._sliding(key, expiry, time.time())

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        for window_key in self._window_keys(key, expiry, time.time()):
            self.clear(window_key)

    # -- expiry -------------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        """Forget every window that has ended: memory stays bounded by the live keys."""
        self._next_sweep = now + self._sweep_interval
        with self._lock:
            for key in [k for k, (_, end) in self._counters.items() if end <= now]:
                del self._counters[key]
            windows = self._entry_windows
            ended = [k for k, v in self._entries.items() if not v or v[0] <= now - windows[k]]
            for key in ended:
                del self._entries[key]
                del windows[key]


class _CounterEnds:
    """The window ends of in-process counters, for ``_evaluate.KnownEnds``: nothing to
    remember apart from the counters themselves."""

    __slots__ = ("_counters",)

    def __init__(self, counters: dict[str, list[Any]]) -> None:
        self._counters = counters

    def get(self, key: str, now: float) -> float | None:
        counter = self._counters.get(key)
        return counter[1] if counter is not None and counter[1] > now else None

    def set(self, key: str, until: float, now: float) -> None:
        """Nothing to do: the counter holds its end."""
