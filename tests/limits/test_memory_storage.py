"""``memory://`` is restfault's own storage: it implements ``limits``' storage interface,
so ``limits``' own strategies run on it and count as on ``limits.MemoryStorage``."""

from __future__ import annotations

import pytest
from limits import parse
from limits.storage import MemoryStorage, MovingWindowSupport, SlidingWindowCounterSupport
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

from restfault._memory import InProcessStorage
from tests.harness import FakeClock

STRATEGIES: list[type[RateLimiter]] = [
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
]


def test_it_is_a_limits_storage() -> None:
    storage = InProcessStorage()
    assert isinstance(storage, MovingWindowSupport)
    assert isinstance(storage, SlidingWindowCounterSupport)
    assert storage.check() is True
    assert storage.base_exceptions is RuntimeError


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.__name__)
def test_limits_strategies_count_on_it_as_on_limits_own(
    strategy: type[RateLimiter], clock: FakeClock
) -> None:
    item = parse("3/minute")
    ours, theirs = strategy(InProcessStorage()), strategy(MemoryStorage())
    for limiter in (ours, theirs):
        assert [limiter.hit(item, "k") for _ in range(4)] == [True, True, True, False]
        assert limiter.test(item, "k") is False
        assert limiter.test(item, "other") is True
    ours_stats, theirs_stats = ours.get_window_stats(item, "k"), theirs.get_window_stats(item, "k")
    assert ours_stats.remaining == theirs_stats.remaining == 0
    clock.advance(120)  # both windows are over
    assert ours.hit(item, "k") is True
    assert ours.get_window_stats(item, "k").remaining == 2
    ours.clear(item, "k")
    assert ours.get_window_stats(item, "k").remaining == 3


def test_counters_expire_lazily_and_are_swept(clock: FakeClock) -> None:
    storage = InProcessStorage(sweep_interval=1.0)
    assert storage.incr("a", 10) == 1
    assert storage.incr("a", 10, 2) == 3
    assert (storage.get("a"), storage.get_expiry("a")) == (3, clock.now + 10)
    assert storage.decr("a") == 2
    assert storage.decr("missing") == 0
    assert storage.acquire_entry("m", 2, 10) is True
    assert storage.sizes() == {"counters": 1, "windows": 1}
    clock.advance(11)
    assert storage.get("a") == 0  # ended, even before a sweep
    assert storage.get_expiry("a") == clock.now
    assert storage.decr("a") == 0
    storage.incr("b", 10)  # the sweep runs inline, at most once per interval
    assert storage.sizes() == {"counters": 1, "windows": 0}
    assert len(storage) == 1


def test_a_moving_window_keeps_at_most_its_limit_of_entries(clock: FakeClock) -> None:
    storage = InProcessStorage()
    assert storage.acquire_entry("k", 3, 60, amount=4) is False  # more than it can ever hold
    for _ in range(3):
        assert storage.acquire_entry("k", 3, 60) is True
        clock.advance(1)
    assert storage.acquire_entry("k", 3, 60) is False
    assert storage.get_moving_window("k", 3, 60) == (clock.now - 3, 3)
    clock.advance(58)  # the first entry is out of the window
    assert storage.acquire_entry("k", 3, 60) is True
    assert storage.get_moving_window("nobody", 3, 60) == (clock.now, 0)
    clock.advance(120)
    assert storage.get_moving_window("k", 3, 60) == (clock.now, 0)


def test_sliding_window_counters(clock: FakeClock) -> None:
    storage = InProcessStorage()
    assert storage.acquire_sliding_window_entry("k", 2, 60, amount=3) is False
    assert storage.acquire_sliding_window_entry("k", 2, 60) is True
    assert storage.acquire_sliding_window_entry("k", 2, 60) is True
    assert storage.acquire_sliding_window_entry("k", 2, 60) is False
    previous, _, current, _ = storage.get_sliding_window("k", 60)
    assert (previous, current) == (0, 2)
    storage.clear_sliding_window("k", 60)
    assert storage.get_sliding_window("k", 60)[2] == 0


def test_reset_forgets_everything() -> None:
    storage = InProcessStorage()
    storage.incr("a", 10)
    storage.acquire_entry("m", 2, 10)
    assert storage.reset() == 2
    assert storage.sizes() == {"counters": 0, "windows": 0}
