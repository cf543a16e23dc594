"""The rate-limit evaluation of one request, written once as a sans-IO generator.

``evaluate(plan, ...)`` yields the storage operations of ``_ops`` and is sent their
results; ``_storage`` drives it with sync ``limits`` calls for WSGI and awaited
``limits.aio`` calls for ASGI (and plain calls for the in-process storage). What it
decides, for every strategy and storage alike:

- a client key this process knows to be denied until a known time is denied again
  without any storage round trip until then (``known_denial``, asked before the storage);
- limits are hit in plan order until one refuses; the remaining ones are only read, so
  ``Retry-After`` can say when the request would really pass;
- ``deduct_when`` limits are only read on admission and counted after the response
  (``deduct``); ``block_for`` penalties live in the storage, so every process agrees.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._expiry import DenialCache, KnownEnds
from ._limiting import PlanItem, RateLimitDecision, Verdict, sliding_window_stats
from ._ops import (
    AcquireEntry,
    AcquireSliding,
    Get,
    GetExpiry,
    Incr,
    MovingWindow,
    SlidingWindow,
    StorageOp,
)

__all__ = [
    "Evaluation",
    "deduct",
    "evaluate",
    "evaluate_in_process",
    "known_denial",
]

Steps = Generator[StorageOp, Any, Verdict]
# A ``block_for`` penalty is kept beside the limit's counter, its TTL the block's length.
BLOCKED = "/blocked"
Hit = Generator[StorageOp, Any, RateLimitDecision]


@dataclass(slots=True)
class Evaluation:
    """How to evaluate on one storage: its strategy and what this process remembers."""

    strategy: str
    ends: KnownEnds
    denials: DenialCache


def evaluate(plan: Sequence[PlanItem], how: Evaluation, now: float) -> Steps:
    """Admit or refuse one request on every limit of ``plan``.

    Round trips per limit: fixed window 1 (2 the first time this process meets a window
    another process opened), moving window 2, sliding-window counter 2; ``block_for``
    adds one read; a denied key costs none until its known end.
    """
    denials = how.denials
    decisions: list[RateLimitDecision] = []
    refused = False
    fixed = how.strategy == "fixed-window"
    for item in plan:
        limit = item.limit
        if fixed and not refused and limit.plain:  # the common case, without sub-generators
            count = yield Incr(item.key, limit.window, item.cost)
            end = _known_end(item, count, how, now)
            if end is None:
                end = yield GetExpiry(item.key)
                how.ends.set(item.key, end, now)
            decision = _decision(item, count <= limit.amount, limit.amount - count, end)
            decisions.append(decision)
            refused = limit.enforce and not decision.allowed
            continue
        if limit.options.block_for is not None:
            until = yield from _blocked_until(item, how, now)
            if until is not None:
                decision = _spent(item, until)
                decisions.append(decision)
                refused = refused or limit.enforce
                continue
        if refused or limit.options.deduct_when is not None:
            decision = yield from _peek(item, how, now)
            if not refused:  # deduct_when: refused when spent, counted after the response
                decision.allowed = decision.remaining >= item.cost
        else:
            decision = yield from _hit(item, how, now)
        if not decision.allowed and limit.options.block_for is not None and not refused:
            decision.reset = yield from _block(item, how, now)
        decisions.append(decision)
        refused = refused or (limit.enforce and not decision.allowed)
    return _verdict(plan, decisions, denials, now)


class FixedCounters(Protocol):
    """The in-process storage's fixed windows, asked without any operation object."""

    def hit_fixed(self, key: str, expiry: float, amount: int, now: float) -> tuple[int, float]: ...
    def peek_fixed(self, key: str, now: float) -> tuple[int, float]: ...


def evaluate_in_process(
    plan: Sequence[PlanItem], counters: FixedCounters, how: Evaluation, now: float
) -> Verdict | None:
    """``evaluate`` for the commonest plan, called directly on the in-process storage:
    fixed windows, every limit plain (no ``block_for``, no ``deduct_when``). The same
    decisions as ``evaluate`` (hit in plan order until one refuses, the rest only read; a
    spent key remembered as denied), without a generator or an operation object per
    limit. None for any other plan."""
    if how.strategy != "fixed-window":
        return None
    if len(plan) == 1:  # most requests: one limit applies
        item = plan[0]
        limit = item.limit
        if not limit.plain:
            return None
        count, end = counters.hit_fixed(item.key, limit.window, item.cost, now)
        decision = _decision(item, count <= limit.amount, limit.amount - count, end)
        if decision.remaining <= 0:
            _remember(item, decision, how.denials, now)
        # Verdict.of's one-limit case, without its call.
        return Verdict([decision], decision, decision.enforced and not decision.allowed)
    for item in plan:
        if not item.limit.plain:
            return None
    decisions: list[RateLimitDecision] = []
    refused = False
    for item in plan:
        limit = item.limit
        amount = limit.amount
        if refused:
            count, end = counters.peek_fixed(item.key, now)
            allowed = count < amount
            if not count:
                end = now + limit.window
        else:
            count, end = counters.hit_fixed(item.key, limit.window, item.cost, now)
            allowed = count <= amount
            refused = limit.enforce and not allowed
        decisions.append(_decision(item, allowed, amount - count, end))
    return _verdict(plan, decisions, how.denials, now)


def _verdict(
    plan: Sequence[PlanItem], decisions: list[RateLimitDecision], denials: DenialCache, now: float
) -> Verdict:
    """The verdict of a request's decisions; a key now spent is remembered as denied."""
    for item, decision in zip(plan, decisions, strict=True):
        if decision.remaining <= 0:
            _remember(item, decision, denials, now)
    return Verdict.of(decisions)


def _remember(
    item: PlanItem, decision: RateLimitDecision, denials: DenialCache, now: float
) -> None:
    """A spent key is remembered as denied: nothing passes until its reset. A penalty
    starts with a refused request, in the storage where every process sees it: a spent
    window alone is not cached for it."""
    if decision.enforced and not (decision.allowed and item.limit.options.block_for is not None):
        denials.set(item.key, decision.reset, now)


def known_denial(plan: Sequence[PlanItem], denials: DenialCache, now: float) -> Verdict | None:
    """The 429 this process already knows a request gets: one of its keys is spent until
    a known time. No storage is asked (nor counted on) until then."""
    if len(plan) == 1:  # most requests: without a comprehension's frame
        only = plan[0]
        until = denials.get(only.key, now)
        return Verdict.of([_spent(only, until)]) if until else None
    cached = [(item, until) for item in plan if (until := denials.get(item.key, now))]
    if not cached:
        return None
    return Verdict.of([_spent(item, until) for item, until in cached])


def deduct(
    items: Sequence[PlanItem], how: Evaluation, now: float
) -> Generator[StorageOp, Any, None]:
    """Count ``deduct_when`` limits after the response (their predicate held)."""
    for item in items:
        limit = item.limit
        if how.strategy == "fixed-window":
            count = yield Incr(item.key, limit.window, item.cost)
            if count >= limit.amount:
                end = yield from _fixed_end(item, count, how, now)
                how.denials.set(item.key, end, now)
        elif how.strategy == "moving-window":
            yield AcquireEntry(item.key, limit.amount, limit.window, item.cost)
        else:
            yield AcquireSliding(item.key, limit.amount, limit.window, item.cost)


def _decision(item: PlanItem, allowed: bool, remaining: int, reset: float) -> RateLimitDecision:
    limit = item.limit
    return RateLimitDecision(
        allowed,
        limit.amount,
        remaining if remaining > 0 else 0,
        reset,
        limit.window,
        limit.scope,
        limit.code,
        limit.name,
        item.cost,
        limit.enforce,
        item.key,
    )


def _spent(item: PlanItem, until: float) -> RateLimitDecision:
    return _decision(item, False, 0, until)


def _hit(item: PlanItem, how: Evaluation, now: float) -> Hit:
    limit = item.limit
    amount, window, key = limit.amount, limit.window, item.key
    if how.strategy == "fixed-window":
        count = yield Incr(key, window, item.cost)
        end = yield from _fixed_end(item, count, how, now)
        return _decision(item, count <= amount, amount - count, end)
    if how.strategy == "moving-window":
        allowed = yield AcquireEntry(key, amount, window, item.cost)
        start, used = yield MovingWindow(key, amount, window)
        return _decision(item, allowed, amount - used, start + window)
    allowed = yield AcquireSliding(key, amount, window, item.cost)
    remaining, reset = sliding_window_stats(limit, (yield SlidingWindow(key, window)), now)
    return _decision(item, allowed, remaining, reset)


def _peek(item: PlanItem, how: Evaluation, now: float) -> Hit:
    """The limit's state without counting anything."""
    limit = item.limit
    amount, window, key = limit.amount, limit.window, item.key
    if how.strategy == "fixed-window":
        count = yield Get(key)
        if not count:
            return _decision(item, True, amount, now + window)
        end = how.ends.get(key, now)
        if end is None:
            end = yield GetExpiry(key)
        return _decision(item, count < amount, amount - count, end)
    if how.strategy == "moving-window":
        start, used = yield MovingWindow(key, amount, window)
        return _decision(item, used < amount, amount - used, start + window)
    remaining, reset = sliding_window_stats(limit, (yield SlidingWindow(key, window)), now)
    return _decision(item, remaining > 0, remaining, reset)


def _known_end(item: PlanItem, count: int, how: Evaluation, now: float) -> float | None:
    """When a fixed window that now holds ``count`` ends, if this process knows it."""
    if count != item.cost:
        return how.ends.get(item.key, now)
    end = now + item.limit.window  # this hit opened the window: it ends a window from now
    how.ends.set(item.key, end, now)
    return end


def _fixed_end(
    item: PlanItem, count: int, how: Evaluation, now: float
) -> Generator[StorageOp, Any, float]:
    """When a fixed window that now holds ``count`` ends (asked of the storage if need be)."""
    end = _known_end(item, count, how, now)
    if end is None:
        end = yield GetExpiry(item.key)
        how.ends.set(item.key, end, now)
    return end


def _blocked_until(
    item: PlanItem, how: Evaluation, now: float
) -> Generator[StorageOp, Any, float | None]:
    """When the ``block_for`` penalty of this key ends, or None when there is none."""
    key = item.key + BLOCKED
    if not (yield Get(key)):
        return None
    until: float = yield GetExpiry(key)
    return until if until > now else None


def _block(item: PlanItem, how: Evaluation, now: float) -> Generator[StorageOp, Any, float]:
    """Start the penalty of a breach; requests during a block never extend it."""
    block_for = item.limit.options.block_for or 0
    key = item.key + BLOCKED
    started = yield Incr(key, block_for, 1)
    if started == 1:
        return now + block_for
    until: float = yield GetExpiry(key)
    return until
