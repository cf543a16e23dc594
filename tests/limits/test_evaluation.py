"""The pure half of rate limiting: the evaluation's storage operations, verdicts, keys,
windows and header values (the sans-IO seam, driven here by hand)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Generator
from typing import Any

import pytest

from restfault import ConfigurationError, TooManyRequestsException
from restfault._evaluate import (
    Evaluation,
    deduct,
    evaluate,
    evaluate_in_process,
    known_denial,
)
from restfault._expiry import ExpiryCache
from restfault._keys import address_key, client_address, safe_key
from restfault._limiting import (
    Limit,
    LimitOptions,
    PlanItem,
    RateLimitDecision,
    Verdict,
    sliding_window_stats,
)
from restfault._memory import InProcessStorage
from restfault._ops import (
    AcquireEntry,
    AcquireSliding,
    Get,
    GetExpiry,
    Incr,
    MovingWindow,
    SlidingWindow,
)
from restfault._rate_headers import rate_header_values, raw_rate_header_values
from restfault._registry import Rule
from restfault._storage import run
from restfault._validate import parse_limits

NOW = 1_800_000_000.25
KEY = "rf/fixed-window/default/10/1minute/k"


def how(strategy: str = "fixed-window") -> Evaluation:
    return Evaluation(strategy, ExpiryCache(), ExpiryCache())


def drive(steps: Generator[Any, Any, Any], answers: list[Any]) -> tuple[list[Any], Any]:
    """Run an evaluation, answering its storage ops from ``answers``; (ops, result)."""
    ops = []
    try:
        op = next(steps)
        for answer in answers:
            ops.append(op)
            op = steps.send(answer)
        raise AssertionError(f"the evaluation asked for more: {op}")
    except StopIteration as done:
        return ops, done.value


def reported(verdict: Verdict) -> RateLimitDecision:
    """The decision a verdict's headers describe (every verdict here has one)."""
    assert verdict.reported is not None
    return verdict.reported


def limits(
    value: str = "10/minute", strategy: str = "fixed-window", scope: str = "default", **kw: Any
) -> tuple[Limit, ...]:
    rule = Rule(
        parse_limits(value, "test"),
        scope,
        LimitOptions(**kw),
        key_prefix="rf",
        strategy=strategy,
        option="test",
    )
    assert rule.static is not None
    return rule.static


def plan(
    value: str = "10/minute", strategy: str = "fixed-window", cost: int = 1, **kw: Any
) -> list[PlanItem]:
    return [PlanItem(x, x.storage_key("k"), cost) for x in limits(value, strategy, **kw)]


# -- evaluate -----------------------------------------------------------------------------


def test_fixed_window_first_hit_is_one_op_and_fills_the_cache() -> None:
    evaluation = how()
    ops, verdict = drive(evaluate(plan(), evaluation, NOW), [1])
    assert ops == [Incr(KEY, 60, 1)]
    reported = verdict.reported
    assert (reported.allowed, reported.limit, reported.remaining, reported.reset) == (
        True,
        10,
        9,
        NOW + 60,
    )
    assert evaluation.ends.get(KEY, NOW) == NOW + 60


def test_fixed_window_asks_for_the_expiry_once_then_uses_the_cache() -> None:
    evaluation = how()
    ops, verdict = drive(evaluate(plan(), evaluation, NOW), [4, NOW + 12])
    assert ops == [Incr(KEY, 60, 1), GetExpiry(KEY)]  # another process opened this window
    assert (verdict.reported.remaining, verdict.reported.reset) == (6, NOW + 12)
    ops, verdict = drive(evaluate(plan(), evaluation, NOW + 1), [5])
    assert ops == [Incr(KEY, 60, 1)]
    assert verdict.reported.reset == NOW + 12


def test_fixed_window_denies_past_the_amount_and_remembers_it() -> None:
    evaluation = how()
    _, verdict = drive(evaluate(plan(), evaluation, NOW), [11, NOW + 9])
    assert verdict.denied
    assert (verdict.reported.allowed, verdict.reported.remaining) == (False, 0)
    # Spent until NOW + 9: the process answers the key without the storage until then.
    known = known_denial(plan(), evaluation.denials, NOW + 1)
    assert known is not None
    assert known.denied
    assert reported(known).reset == NOW + 9
    assert known_denial(plan(), evaluation.denials, NOW + 9) is None


def test_cost_is_passed_to_the_storage() -> None:
    ops, verdict = drive(evaluate(plan(cost=3), how(), NOW), [3])
    assert ops == [Incr(KEY, 60, 3)]
    assert verdict.reported.remaining == 7


def test_moving_window_ops() -> None:
    key = "rf/moving-window/default/10/1minute/k"
    ops, verdict = drive(
        evaluate(plan(strategy="moving-window"), how("moving-window"), NOW),
        [True, (NOW - 10, 4)],
    )
    assert ops == [AcquireEntry(key, 10, 60, 1), MovingWindow(key, 10, 60)]
    reported = verdict.reported
    assert (reported.allowed, reported.remaining, reported.reset) == (True, 6, NOW + 50)


def test_sliding_window_ops() -> None:
    key = "rf/sliding-window-counter/default/10/1minute/k"
    ops, verdict = drive(
        evaluate(plan(strategy="sliding-window-counter"), how("sliding-window-counter"), NOW),
        [False, (0, 0.0, 10, 42.0)],
    )
    assert ops == [AcquireSliding(key, 10, 60, 1), SlidingWindow(key, 60)]
    reported = verdict.reported
    assert (reported.allowed, reported.remaining, reported.reset) == (False, 0, NOW + 42)


def test_after_a_denial_the_other_limits_are_read_not_charged() -> None:
    two = plan("2/minute;100/hour")
    ops, verdict = drive(evaluate(two, how(), NOW), [3, NOW + 20, 40, NOW + 1800])
    minute, hour = (item.key for item in two)
    # The hour limit is only read (no INCR): the denied request costs it nothing.
    assert ops == [Incr(minute, 60, 1), GetExpiry(minute), Get(hour), GetExpiry(hour)]
    assert verdict.denied
    assert (verdict.reported.limit, verdict.reported.remaining) == (2, 0)


def test_retry_after_says_when_the_request_would_really_pass() -> None:
    """Two spent limits: the 429 reports the one that holds the request longest."""
    two = plan("2/minute;100/hour")
    _, verdict = drive(evaluate(two, how(), NOW), [3, NOW + 20, 100, NOW + 1800])
    assert (verdict.reported.limit, verdict.reported.reset) == (100, NOW + 1800)
    assert [d.limit for d in verdict.breached] == [2, 100]  # both refuse it
    # An earlier limit this request spent to its last unit holds it too.
    _, verdict = drive(evaluate(two, how(), NOW), [2, NOW + 20, 1])
    assert not verdict.denied
    _, verdict = drive(evaluate(plan("3/hour;2/minute"), how(), NOW), [3, NOW + 3000, 3, NOW + 10])
    assert verdict.denied
    assert verdict.reported.reset == NOW + 3000


def test_evaluation_reports_the_least_remaining() -> None:
    _, verdict = drive(evaluate(plan("5/minute;100/hour"), how(), NOW), [1, 99, NOW + 100])
    assert (verdict.reported.limit, verdict.reported.remaining) == (100, 1)


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_evaluation_against_the_in_process_storage(strategy: str) -> None:
    storage = InProcessStorage()
    evaluation = Evaluation(strategy, storage.known_ends, ExpiryCache())
    results = [
        run(storage, evaluate(plan("3/minute", strategy), evaluation, NOW)) for _ in range(4)
    ]
    assert [(v.denied, reported(v).remaining) for v in results] == [
        (False, 2),
        (False, 1),
        (False, 0),
        (True, 0),
    ]


@pytest.mark.parametrize(
    ("value", "cost", "options"),
    [
        ("3/minute", 1, {}),
        ("3/minute", 2, {}),
        ("2/minute;5/hour", 1, {}),  # the minute refuses: the hour is read, not charged
        ("5/hour;2/minute", 1, {}),
        ("2/minute;3/minute", 1, {}),
        ("2/minute", 1, {"enforce": False}),  # shadow mode: counted, never refused
    ],
)
def test_the_in_process_shortcut_decides_as_the_evaluation(
    value: str, cost: int, options: dict[str, Any]
) -> None:
    """``memory://`` with plain fixed windows skips the generator: same verdicts, same
    counts, same denials remembered, request after request."""
    items = plan(value, cost=cost, **options)
    direct, driven = InProcessStorage(), InProcessStorage()
    direct_how = Evaluation("fixed-window", direct.known_ends, ExpiryCache())
    driven_how = Evaluation("fixed-window", driven.known_ends, ExpiryCache())
    for _ in range(7):
        now = time.time()
        fast = evaluate_in_process(items, direct, direct_how, now)
        slow = run(driven, evaluate(items, driven_how, now))
        assert fast is not None
        assert fast.denied == slow.denied
        for mine, theirs in zip(fast.decisions, slow.decisions, strict=True):
            assert (mine.allowed, mine.remaining, mine.limit, mine.policy, mine.key) == (
                theirs.allowed,
                theirs.remaining,
                theirs.limit,
                theirs.policy,
                theirs.key,
            )
            assert mine.reset == pytest.approx(theirs.reset, abs=0.5)
        assert [direct.peek_fixed(i.key, now)[0] for i in items] == [
            driven.peek_fixed(i.key, now)[0] for i in items
        ]
        assert {i.key: direct_how.denials.get(i.key, now) is not None for i in items} == {
            i.key: driven_how.denials.get(i.key, now) is not None for i in items
        }


@pytest.mark.parametrize(
    ("strategy", "options"),
    [
        ("moving-window", {}),
        ("fixed-window", {"block_for": 60}),
        ("fixed-window", {"deduct_when": bool}),
    ],
)
def test_the_in_process_shortcut_leaves_other_plans_to_the_evaluation(
    strategy: str, options: dict[str, Any]
) -> None:
    storage = InProcessStorage()
    evaluation = Evaluation(strategy, storage.known_ends, ExpiryCache())
    assert (
        evaluate_in_process(plan("2/minute", strategy, **options), storage, evaluation, NOW) is None
    )
    assert len(storage) == 0  # nothing was counted


def test_deduct_when_limits_are_read_on_admission_and_counted_after() -> None:
    items = plan("2/minute", deduct_when=lambda status: status == 401)
    ops, verdict = drive(evaluate(items, how(), NOW), [1, NOW + 30])
    assert ops == [Get(KEY.replace("10", "2")), GetExpiry(KEY.replace("10", "2"))]
    assert not verdict.denied
    assert verdict.reported.remaining == 1
    evaluation = how()
    ops, _ = drive(deduct(items, evaluation, NOW), [2, NOW + 30])
    assert ops[0] == Incr(items[0].key, 60, 1)
    assert known_denial(items, evaluation.denials, NOW) is not None  # now spent
    _, verdict = drive(evaluate(items, how(), NOW), [2, NOW + 30])
    assert verdict.denied  # spent: refused, yet never counted on admission


def test_block_for_keeps_a_breaching_key_out() -> None:
    items = plan("2/minute", block_for=300)
    key = items[0].key
    blocked = f"{key}/blocked"
    # Not blocked: one read of the penalty, then the hit, which breaches and starts it.
    ops, verdict = drive(evaluate(items, how(), NOW), [0, 3, NOW + 20, 1])
    assert ops == [Get(blocked), Incr(key, 60, 1), GetExpiry(key), Incr(blocked, 300, 1)]
    assert verdict.denied
    assert verdict.reported.reset == NOW + 300
    # Blocked (another process started it): denied until the block's end, nothing counted.
    ops, verdict = drive(evaluate(items, how(), NOW + 100), [1, NOW + 300])
    assert ops == [Get(blocked), GetExpiry(blocked)]
    assert verdict.denied
    assert verdict.reported.reset == NOW + 300


def test_shadow_limits_count_and_never_deny() -> None:
    evaluation = how()
    _, verdict = drive(evaluate(plan(enforce=False), evaluation, NOW), [11, NOW + 9])
    assert not verdict.denied
    assert verdict.reported.allowed is False
    assert verdict.reported.enforced is False
    assert known_denial(plan(enforce=False), evaluation.denials, NOW) is None


# -- limits, keys and names -----------------------------------------------------------------


def test_storage_key_holds_prefix_strategy_scope_and_limit() -> None:
    (limit,) = limits("3 per 2 hours", "moving-window", scope="app.view")
    assert limit.storage_key("1.2.3.4") == "rf/moving-window/app.view/3/2hour/1.2.3.4"
    assert limit.window == 7200
    assert limit.name == "app.view"


def test_policy_names_are_distinct_and_stable() -> None:
    assert [x.name for x in limits("10/minute;100/hour")] == ["default;w=60", "default;w=3600"]
    assert [x.name for x in limits("1/minute;5/minute")] == ["default;w=60#1", "default;w=60#2"]


def test_a_cost_no_window_allows_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="cost=5 is more than 3 per 1 minute"):
        limits("3/minute", cost=5)


def test_dynamic_limits_are_parsed_once_per_string() -> None:
    rule = Rule(
        lambda r: None,
        "default",
        LimitOptions(),
        key_prefix="rf",
        strategy="fixed-window",
        option="o",
    )
    first = rule.resolve("5/minute")
    assert rule.resolve("5/minute") is first
    assert rule.resolve(None) == ()
    with pytest.raises(TypeError, match="returned 'lots'"):
        rule.resolve("lots")


def test_safe_key_bounds_long_keys_without_merging_them() -> None:
    assert safe_key("user-1") == "user-1"
    long_a, long_b = "x" * 300 + "a", "x" * 300 + "b"
    assert safe_key(long_a).startswith("sha256:")
    assert safe_key(long_a) != safe_key(long_b)
    assert len(safe_key(long_a)) < 100


@pytest.mark.parametrize(
    ("address", "subnet", "key"),
    [
        ("203.0.113.9", 56, "203.0.113.9"),
        ("::ffff:10.0.0.5", 56, "10.0.0.5"),  # IPv4-mapped: keyed as IPv4
        ("0:0:0:0:0:ffff:a00:5", 56, "10.0.0.5"),  # recognised by range, not notation
        ("2001:db8:1234:5678::1", 56, "2001:db8:1234:5600::/56"),
        ("2001:db8:1234:56ff:ffff::9", 56, "2001:db8:1234:5600::/56"),
        ("2001:db8:1234:5678::1", 64, "2001:db8:1234:5678::/64"),
        ("2001:db8:1234:5678::1", None, "2001:db8:1234:5678::1"),
        ("unknown", 56, "unknown"),
    ],
)
def test_address_keys(address: str, subnet: int | None, key: str) -> None:
    assert address_key(address, subnet) == key


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


def test_ietf_headers_list_every_limit() -> None:
    one = RateLimitDecision(True, 10, 4, NOW + 20, 60, "s", None, 'app."view"')
    other = RateLimitDecision(True, 100, 90, NOW + 3000, 3600, "default", None, "default")
    assert rate_header_values(Verdict.of([one, other]), NOW, legacy=False, ietf=True) == [
        ("RateLimit-Policy", '"app.\\"view\\"";q=10;w=60, "default";q=100;w=3600'),
        ("RateLimit", '"app.\\"view\\"";r=4;t=20, "default";r=90;t=3000'),
    ]


def test_header_values_stay_right_across_many_windows_and_limits() -> None:
    """A limit's size and a window's end are kept once written (they repeat from one
    request to the next); past the bound the kept ones are forgotten, never reused for
    another number."""
    for i in range(5000):  # more distinct numbers than are kept at once
        d = RateLimitDecision(True, 10 + i, i, NOW + i + 0.5, 60)
        expected = [str(10 + i), str(i), str(int(NOW) + i + 1)]
        text = rate_header_values(Verdict.of([d]), NOW)
        raw = raw_rate_header_values(Verdict.of([d]), NOW)
        assert [value for _, value in text] == expected
        assert [value for _, value in raw] == [value.encode() for value in expected]


# -- sliding window -----------------------------------------------------------------------------


def test_sliding_window_stats() -> None:
    (limit,) = limits("10/minute", "sliding-window-counter")
    assert sliding_window_stats(limit, (0, 0.0, 0, 0.0), NOW) == (10, NOW + 60)
    assert sliding_window_stats(limit, (0, 0.0, 4, 50.0), NOW) == (6, NOW + 50)
    # 6 in the previous window, 35/60 of it still weighing: floor(3.5) + 2 used.
    remaining, reset = sliding_window_stats(limit, (6, 35.0, 2, 90.0), NOW)
    assert remaining == 5
    assert reset == NOW + 5  # the next previous-window hit falls out every 10 s
    # Redis keeps a new window's key for 2 * expiry: a TTL read at once is exactly 120 s,
    # and that window ends in 60 s, not now.
    assert sliding_window_stats(limit, (0, 0.0, 1, 120.0), NOW) == (9, NOW + 60)
    assert sliding_window_stats(limit, (20, 59.0, 5, 60.0), NOW)[0] == 0


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
        # A dual-stack listener reports an IPv4 proxy as ::ffff:10.0.0.5: still trusted.
        ("::ffff:10.0.0.5", "1.1.1.1", TRUSTED, "1.1.1.1"),
        ("10.0.0.5", "::ffff:10.0.0.9, ::ffff:1.1.1.1", TRUSTED, "1.1.1.1"),
    ],
)
def test_client_address(
    peer: str | None, forwarded: str | None, trusted: Any, expected: str
) -> None:
    assert client_address(peer, forwarded, trusted) == expected
