"""The pure half of rate limiting: evaluation, picking, keys, windows and header values."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from limits.storage import MemoryStorage

from restfault import ConfigurationError, TooManyRequestsException
from restfault._limiting import (
    ExpiryCache,
    Plan,
    RateLimitDecision,
    Steps,
    StorageOp,
    client_address,
    evaluate,
    limits_for,
    pick,
    safe_key,
    sliding_window_stats,
)

NOW = 1_800_000_000.25


def decision(
    allowed: bool = True, remaining: int = 5, limit: int = 10, reset: float = NOW + 30
) -> RateLimitDecision:
    return RateLimitDecision(allowed, limit, remaining, reset, 60, "default", None)


def drive(steps: Steps, answers: list[object]) -> tuple[list[StorageOp], RateLimitDecision]:
    """Run an evaluation, answering its storage ops from ``answers``; (ops, decision)."""
    ops: list[StorageOp] = []
    try:
        op = next(steps)
        for answer in answers:
            ops.append(op)
            op = steps.send(answer)
        raise AssertionError(f"the evaluation asked for more: {op}")
    except StopIteration as done:
        decided = done.value
    assert isinstance(decided, RateLimitDecision)
    return ops, decided


def plan(value: str = "10/minute", strategy: str = "fixed-window", cost: int = 1) -> Plan:
    (limit,) = limits_for(value, scope="default", key_prefix="rf", strategy=strategy)
    return [(limit, limit.storage_key("k"), cost)]


# -- evaluate -----------------------------------------------------------------------------


def test_fixed_window_first_hit_is_one_op_and_fills_the_cache() -> None:
    cache = ExpiryCache()
    ops, result = drive(evaluate(plan(), "fixed-window", NOW, cache), [1])
    key = "rf/fixed-window/default/10/1minute/k"
    assert ops == [("incr", key, 60, 1)]
    assert result == RateLimitDecision(True, 10, 9, NOW + 60, 60, "default", None)
    assert cache.get(key, NOW) == NOW + 60


def test_fixed_window_asks_for_the_expiry_once_then_uses_the_cache() -> None:
    cache = ExpiryCache()
    steps = evaluate(plan(), "fixed-window", NOW, cache)
    ops, result = drive(steps, [4, NOW + 12])  # another process opened this window
    assert [op[0] for op in ops] == ["incr", "get_expiry"]
    assert (result.remaining, result.reset) == (6, NOW + 12)
    ops, result = drive(evaluate(plan(), "fixed-window", NOW + 1, cache), [5])
    assert [op[0] for op in ops] == ["incr"]
    assert result.reset == NOW + 12


def test_fixed_window_without_cache_always_asks() -> None:
    ops, _ = drive(evaluate(plan(), "fixed-window", NOW, None), [3, NOW + 5])
    assert [op[0] for op in ops] == ["incr", "get_expiry"]


def test_fixed_window_denies_past_the_amount() -> None:
    _, result = drive(evaluate(plan(), "fixed-window", NOW, ExpiryCache()), [11, NOW + 9])
    assert not result.allowed
    assert result.remaining == 0


def test_cost_is_passed_to_the_storage() -> None:
    ops, result = drive(evaluate(plan(cost=3), "fixed-window", NOW, None), [3])
    assert ops[0][-1] == 3
    assert result.remaining == 7


def test_moving_window_ops() -> None:
    key = "rf/moving-window/default/10/1minute/k"
    ops, result = drive(
        evaluate(plan(strategy="moving-window"), "moving-window", NOW, None),
        [True, (NOW - 10, 4)],
    )
    assert ops == [("acquire_entry", key, 10, 60, 1), ("get_moving_window", key, 10, 60)]
    assert (result.allowed, result.remaining, result.reset) == (True, 6, NOW + 50)


def test_sliding_window_ops() -> None:
    ops, result = drive(
        evaluate(plan(strategy="sliding-window-counter"), "sliding-window-counter", NOW, None),
        [False, (0, 0.0, 10, 42.0)],
    )
    assert [op[0] for op in ops] == ["acquire_sliding_window_entry", "get_sliding_window"]
    assert (result.allowed, result.remaining, result.reset) == (False, 0, NOW + 42)


def test_evaluation_stops_at_the_first_denial() -> None:
    limits = limits_for(
        "2/minute;100/hour", scope="default", key_prefix="rf", strategy="fixed-window"
    )
    two = [(limit, limit.storage_key("k"), 1) for limit in limits]
    ops, result = drive(evaluate(two, "fixed-window", NOW, None), [3, NOW + 20])
    assert len(ops) == 2  # the hour limit was not charged
    assert (result.allowed, result.limit) == (False, 2)


def test_evaluation_reports_the_least_remaining() -> None:
    limits = limits_for(
        "5/minute;100/hour", scope="default", key_prefix="rf", strategy="fixed-window"
    )
    two = [(limit, limit.storage_key("k"), 1) for limit in limits]
    _, result = drive(evaluate(two, "fixed-window", NOW, None), [1, 99, NOW + 100])
    assert (result.limit, result.remaining) == (100, 1)


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_evaluation_against_limits_memory_storage(strategy: str) -> None:
    storage = MemoryStorage()
    try:
        results = []
        for _ in range(4):
            steps = evaluate(plan("3/minute", strategy), strategy, NOW, ExpiryCache())
            try:
                op = next(steps)
                while True:
                    op = steps.send(getattr(storage, op[0])(*op[1:]))
            except StopIteration as done:
                results.append(done.value)
        assert [(r.allowed, r.remaining) for r in results] == [
            (True, 2),
            (True, 1),
            (True, 0),
            (False, 0),
        ]
    finally:
        storage.reset()


# -- keys and limits ------------------------------------------------------------------------


def test_storage_key_holds_prefix_strategy_scope_and_limit() -> None:
    (limit,) = limits_for(
        "3 per 2 hours", scope="app.view", key_prefix="p", strategy="moving-window"
    )
    assert limit.storage_key("1.2.3.4") == "p/moving-window/app.view/3/2hour/1.2.3.4"
    assert limit.window == 7200


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"value": "ten per minute"}, "'ten per minute'"),
        ({"value": "0/minute"}, "allows nothing"),
        ({"value": "1/minute", "code": ""}, "code"),
        ({"value": "1/minute", "cost": 0}, "cost=0"),
        ({"value": "1/minute", "cost": True}, "cost=True"),
        ({"value": "1/minute", "key_func": "user"}, "key_func"),
    ],
)
def test_bad_limits_name_what_is_wrong(kwargs: dict[str, Any], needle: str) -> None:
    value = kwargs.pop("value")
    with pytest.raises(ConfigurationError, match=needle):
        limits_for(value, scope="s", key_prefix="p", strategy="fixed-window", **kwargs)


def test_safe_key_bounds_long_keys_without_merging_them() -> None:
    assert safe_key("user-1") == "user-1"
    long_a, long_b = "x" * 300 + "a", "x" * 300 + "b"
    assert safe_key(long_a).startswith("sha256:")
    assert safe_key(long_a) != safe_key(long_b)
    assert len(safe_key(long_a)) < 100


# -- pick -----------------------------------------------------------------------------------


def test_pick() -> None:
    few, many = decision(remaining=1), decision(remaining=8)
    denied = decision(allowed=False, remaining=0)
    assert pick(None, few) is few
    assert pick(few, None) is few
    assert pick(many, few) is few
    assert pick(few, many) is few
    assert pick(few, denied) is denied
    assert pick(denied, decision(remaining=0)) is denied


# -- headers ----------------------------------------------------------------------------------


def test_headers_and_retry_after() -> None:
    d = RateLimitDecision(False, 10, -3, NOW + 29.2, 60, "default", "EMAIL_RATE_LIMIT")
    assert d.headers(NOW) == [
        ("X-RateLimit-Limit", "10"),
        ("X-RateLimit-Remaining", "0"),  # never negative
        ("X-RateLimit-Reset", str(int(NOW + 30))),  # rounded up to whole epoch seconds
    ]
    assert d.retry_after(NOW) == 30  # 29.2 s rounded up
    assert d.retry_after(NOW + 100) == 1  # at least 1
    exc = d.exception(NOW)
    assert isinstance(exc, TooManyRequestsException)
    assert (exc.code, exc.headers["Retry-After"]) == ("EMAIL_RATE_LIMIT", "30")


def test_ietf_headers_only() -> None:
    d = RateLimitDecision(True, 10, 4, NOW + 20, 60, 'app."view"', None)
    assert d.headers(NOW, legacy=False, ietf=True) == [
        ("RateLimit-Policy", '"app.view";q=10;w=60'),
        ("RateLimit", '"app.view";r=4;t=20'),
    ]


# -- sliding window -----------------------------------------------------------------------------


def test_sliding_window_stats() -> None:
    assert sliding_window_stats(10, 60, 0, 0.0, 0, 0.0, NOW) == (10, NOW + 60)
    assert sliding_window_stats(10, 60, 0, 0.0, 4, 50.0, NOW) == (6, NOW + 50)
    # 6 in the previous window, 35/60 of it still weighing: floor(3.5) + 2 used.
    remaining, reset = sliding_window_stats(10, 60, 6, 35.0, 2, 90.0, NOW)
    assert remaining == 5
    assert reset == NOW + 5  # the next previous-window hit falls out every 10 s
    # Redis keeps a new window's key for 2 * expiry: a TTL read at once is exactly 120 s,
    # and that window ends in 60 s, not now.
    assert sliding_window_stats(10, 60, 0, 0.0, 1, 120.0, NOW) == (9, NOW + 60)
    assert sliding_window_stats(10, 60, 20, 59.0, 5, 60.0, NOW)[0] == 0


# -- expiry cache ---------------------------------------------------------------------------------


def test_expiry_cache() -> None:
    cache = ExpiryCache(limit=2)
    cache.set("a", NOW + 10, NOW)
    assert cache.get("a", NOW) == NOW + 10
    assert cache.get("a", NOW + 10) is None  # a past end is never trusted
    assert cache.get("missing", NOW) is None
    cache.set("b", NOW + 1, NOW)
    cache.set("c", NOW + 5, NOW + 2)  # full: drops the stale "b", keeps "a"
    assert cache.get("a", NOW + 2) == NOW + 10
    assert cache.get("c", NOW + 2) == NOW + 5
    cache.set("d", NOW + 5, NOW + 2)  # full of live ends: starts over rather than grow
    assert cache.get("d", NOW + 2) == NOW + 5
    assert cache.get("a", NOW + 2) is None


# -- client address -------------------------------------------------------------------------------

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", "1.1.1.1", (), "203.0.113.9"),  # by default the header is ignored
        ("203.0.113.9", "1.1.1.1", TRUSTED, "203.0.113.9"),  # untrusted peer
        ("10.0.0.5", None, TRUSTED, "10.0.0.5"),
        ("10.0.0.5", "1.1.1.1", TRUSTED, "1.1.1.1"),
        ("10.0.0.5", "6.6.6.6, 1.1.1.1, 10.0.0.9", TRUSTED, "1.1.1.1"),  # right to left
        ("10.0.0.5", "10.0.0.8, 10.0.0.9", TRUSTED, "10.0.0.8"),  # all hops trusted
        ("10.0.0.5", "1.1.1.1, garbage", TRUSTED, "10.0.0.5"),  # malformed hop stops
        ("10.0.0.5", "1.1.1.1:4711", TRUSTED, "1.1.1.1"),
        ("fd00::1", "[2001:db8::7]:443", TRUSTED, "2001:db8::7"),
        ("fd00::1", "2001:db8::8", TRUSTED, "2001:db8::8"),
        (None, "1.1.1.1", TRUSTED, "unknown"),
        ("testclient", "1.1.1.1", TRUSTED, "testclient"),
    ],
)
def test_client_address(
    peer: str | None,
    forwarded: str | None,
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    expected: str,
) -> None:
    assert client_address(peer, forwarded, trusted) == expected
