"""The ``memory://`` storage: ``limits``' MemoryStorage without a sweeper thread per request.

``limits.storage.MemoryStorage`` expires keys from a ``threading.Timer`` that every
counter update restarts once the last one has finished: under load a new thread every
10 ms, each scanning every key. (Its ``limits.aio`` twin schedules an asyncio task that
scans every key on each event-loop turn, milliseconds per request once keys number in
the tens of thousands.) Here fixed-window counters (``incr``/``decr``, which the
sliding-window counter also uses) expire lazily when read, and expired keys are swept
inline at most once per ``sweep_interval`` seconds, moving windows' ended keys included.
Counting is unchanged; moving windows keep ``limits``' own code.
"""

from __future__ import annotations

import threading
import time

from limits.storage import MemoryStorage

__all__ = ["InProcessStorage"]


class InProcessStorage(MemoryStorage):
    """``MemoryStorage`` whose counters expire lazily, with an amortised inline sweep."""

    def __init__(self, sweep_interval: float = 1.0) -> None:
        super().__init__()
        # One lock for the counters: held for a few dict operations, never across I/O, and
        # unlike limits' lock per key it leaves nothing behind per client.
        self._counter_lock = threading.Lock()
        self._sweep_interval = sweep_interval
        self._next_sweep = 0.0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self.hit_fixed(key, expiry, amount)[0]

    def hit_fixed(self, key: str, expiry: float, amount: int = 1) -> tuple[int, float]:
        """``incr`` that also returns the window's end: one call per limit and request."""
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        with self._counter_lock:
            end = self.expirations.get(key, 0.0)
            if end <= now:  # the window ended (or never began): count anew
                value = amount
                end = self.expirations[key] = now + expiry
            else:
                value = self.storage[key] + amount
            self.storage[key] = value
        return value, end

    def decr(self, key: str, amount: int = 1) -> int:
        now = time.time()
        with self._counter_lock:
            if self.expirations.get(key, 0) <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
            self.storage[key] = max(self.storage[key] - amount, 0)
            return self.storage.get(key, 0)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        return super().acquire_entry(key, limit, expiry, amount)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_interval
        with self._counter_lock:
            ended = [key for key, end in self.expirations.items() if end <= now]
            for key in ended:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
        # Moving windows: limits' sweeper empties a key's list of entries but keeps the key
        # (and an empty list) forever, so every client ever seen stays in ``events``. Entries
        # are newest first: when the first has expired, the whole window has.
        for key, events in list(self.events.items()):
            if events and events[0].expiry > now:
                continue
            with self.locks[key]:  # acquire_entry's lock: never mid-update
                current = self.events.get(key)
                if not current or current[0].expiry <= now:
                    self.events.pop(key, None)
                    self.locks.pop(key, None)
