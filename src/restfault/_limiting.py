"""Rate-limit decisions, keys and header values: pure code shared by every adapter.

The storage calls themselves (sync for WSGI, ``limits.aio`` for ASGI) live in
``_storage``; everything they feed into — which limits apply, how a client is keyed,
what the headers say, what a 429 carries — is decided here, once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from limits import RateLimitItem

from ._errors import ConfigurationError, TooManyRequestsException
from ._keys import client_address, safe_key
from ._settings import parse_limits

__all__ = [
    "Limit",
    "RateLimitDecision",
    "client_address",
    "limits_for",
    "pick",
    "safe_key",
]


@dataclass(frozen=True, slots=True)
class Limit:
    """One parsed limit bound to a scope (``default`` or one endpoint), ready to key."""

    item: RateLimitItem
    scope: str
    code: str | None = None
    key_func: Callable[[Any], Any] | None = None
    cost: int | Callable[[Any], Any] = 1
    storage_prefix: str = ""
    window: int = 0
    # Decided once: no key_func and a fixed cost, so the plan needs no request object.
    simple: bool = True

    def storage_key(self, client_key: str) -> str:
        return self.storage_prefix + client_key


def limits_for(
    value: str | Iterable[str] | tuple[RateLimitItem, ...] | None,
    *,
    scope: str,
    key_prefix: str,
    strategy: str,
    code: str | None = None,
    key_func: Callable[[Any], Any] | None = None,
    cost: int | Callable[[Any], Any] = 1,
    option: str = "limit",
) -> tuple[Limit, ...]:
    """Parse ``value`` (or take the items Settings parsed already) into Limits whose
    storage keys carry prefix, strategy and scope.

    The strategy is part of the key so that switching strategies never meets a key
    written by another one (a counter where a list is expected, say).
    """
    if code is not None and not (isinstance(code, str) and code):
        raise ConfigurationError(f"{option}: code={code!r} must be a non-empty string")
    if key_func is not None and not callable(key_func):
        raise ConfigurationError(f"{option}: key_func={key_func!r} must be callable")
    if not callable(cost) and (isinstance(cost, bool) or not isinstance(cost, int) or cost < 1):
        raise ConfigurationError(
            f"{option}: cost={cost!r} must be a positive int or a callable of the request"
        )
    items: tuple[RateLimitItem, ...]
    if isinstance(value, tuple) and all(isinstance(v, RateLimitItem) for v in value):
        items = value  # Settings parsed them already
    else:
        items = parse_limits(value, option)  # type: ignore[arg-type]
    result = []
    for item in items:
        granularity = item.GRANULARITY.name
        prefix = f"{key_prefix}/{strategy}/{scope}/{item.amount}/{item.multiples}{granularity}/"
        result.append(
            Limit(
                item=item,
                scope=scope,
                code=code,
                key_func=key_func,
                cost=cost,
                storage_prefix=prefix,
                window=item.get_expiry(),
                simple=key_func is None and not callable(cost),
            )
        )
    return tuple(result)


@dataclass(slots=True)
class RateLimitDecision:
    """The outcome of one limit for one request: what the headers and a 429 say."""

    allowed: bool
    limit: int
    remaining: int
    reset: float
    window: int
    scope: str = "default"
    code: str | None = None

    def retry_after(self, now: float) -> int:
        """Whole seconds until the request would pass: rounded up, at least 1."""
        return max(1, math.ceil(self.reset - now))

    def headers(
        self, now: float, *, legacy: bool = True, ietf: bool = False
    ) -> list[tuple[str, str]]:
        """``X-RateLimit-*`` (and the IETF draft fields when asked).

        ``Retry-After`` is not here: a denial raises ``exception()``, which carries it.
        """
        result: list[tuple[str, str]] = []
        if legacy:
            result += [
                ("X-RateLimit-Limit", str(self.limit)),
                ("X-RateLimit-Remaining", str(max(0, self.remaining))),
                ("X-RateLimit-Reset", str(math.ceil(self.reset))),
            ]
        if ietf:
            # draft-ietf-httpapi-ratelimit-headers: a policy list and the current state.
            name = _sf_string(self.scope)
            reset_in = max(0, math.ceil(self.reset - now))
            result += [
                ("RateLimit-Policy", f"{name};q={self.limit};w={self.window}"),
                ("RateLimit", f"{name};r={max(0, self.remaining)};t={reset_in}"),
            ]
        return result

    def exception(self, now: float) -> TooManyRequestsException:
        """The 429 this decision answers with, its own code kept."""
        return TooManyRequestsException(code=self.code, retry_after=self.retry_after(now))


def _sf_string(value: str) -> str:
    cleaned = "".join(ch for ch in value if 0x20 <= ord(ch) < 0x7F and ch not in '"\\')
    return f'"{cleaned}"'


def pick(
    current: RateLimitDecision | None, new: RateLimitDecision | None
) -> RateLimitDecision | None:
    """The decision the headers describe: a denial wins, else the least remaining."""
    if current is None:
        return new
    if new is None:
        return current
    if not new.allowed and current.allowed:
        return new
    if not current.allowed:
        return current
    return new if new.remaining < current.remaining else current


def sliding_window_stats(
    amount: int,
    expiry: int,
    previous_count: int,
    previous_expires_in: float,
    current_count: int,
    current_expires_in: float,
    now: float,
) -> tuple[int, float]:
    """(remaining, reset) of a sliding-window counter, as ``limits`` weighs it."""
    weighted = previous_count * previous_expires_in / expiry + current_count
    remaining = max(0, amount - math.floor(weighted))
    if not (previous_count or current_count):
        return remaining, now + expiry
    previous_reset_in = (
        previous_expires_in % (expiry / previous_count) if previous_count else math.inf
    )
    # Redis keeps a new current window for twice its length, and a TTL read in the same
    # millisecond is exactly 2 * expiry: its window ends in a full expiry, not now.
    current_reset_in = (current_expires_in % expiry or expiry) if current_count else math.inf
    return remaining, now + min(previous_reset_in, current_reset_in)


class ExpiryCache:
    """Window ends this process has already learned, to skip the storage's TTL round trip.

    A fixed window's key lives until the end its first hit set; until then every hit is in
    the same window, so a known end stays right. A past end is never trusted.
    """

    __slots__ = ("_ends", "_limit")

    def __init__(self, limit: int = 65536) -> None:
        self._ends: dict[str, float] = {}
        self._limit = limit

    def get(self, key: str, now: float) -> float | None:
        end = self._ends.get(key)
        return end if end is not None and end > now else None

    def set(self, key: str, end: float, now: float) -> None:
        ends = self._ends
        if len(ends) >= self._limit and key not in ends:
            for stale in [k for k, v in ends.items() if v <= now]:
                del ends[stale]
            if len(ends) >= self._limit:
                ends.clear()
        ends[key] = end


# A storage operation: the method name of a ``limits`` storage and its arguments. The
# evaluation below is written once as a generator that yields these and is sent their
# results; ``_storage`` drives it with sync calls for WSGI and awaited ``limits.aio``
# calls for ASGI, so only the I/O exists twice.
StorageOp = tuple[Any, ...]
Plan = list[tuple[Limit, str, int]]
Steps = Generator[StorageOp, Any, "RateLimitDecision | None"]


def evaluate(plan: Plan, strategy: str, now: float, cache: ExpiryCache | None) -> Steps:
    """Hit every limit of ``plan`` in order; stop at the first that denies.

    Round trips per limit: fixed window 1 (2 the first time this process meets a window
    another process opened), moving window 2, sliding-window counter 2.
    """
    best: RateLimitDecision | None = None
    for limit, key, cost in plan:
        item = limit.item
        amount, window = item.amount, limit.window
        if strategy == "fixed-window":
            count: int = yield ("incr", key, window, cost)
            allowed = count <= amount
            remaining = amount - count
            if count == cost:  # this hit opened the window, so its end is now + window
                reset = now + window
                if cache is not None:
                    cache.set(key, reset, now)
            else:
                known = cache.get(key, now) if cache is not None else None
                if known is None:
                    reset = yield ("get_expiry", key)
                    if cache is not None:
                        cache.set(key, reset, now)
                else:
                    reset = known
        elif strategy == "moving-window":
            allowed = yield ("acquire_entry", key, amount, window, cost)
            start, used = yield ("get_moving_window", key, amount, window)
            remaining, reset = amount - used, start + window
        else:
            allowed = yield ("acquire_sliding_window_entry", key, amount, window, cost)
            previous, previous_ttl, current, current_ttl = yield ("get_sliding_window", key, window)
            remaining, reset = sliding_window_stats(
                amount, window, previous, previous_ttl, current, current_ttl, now
            )
        decision = RateLimitDecision(
            allowed, amount, max(0, remaining), reset, window, limit.scope, limit.code
        )
        if not allowed:
            return decision
        best = pick(best, decision)
    return best


class LocalCounter(Protocol):
    """An in-process storage that hands back a fixed window's count and end in one call."""

    def hit_fixed(self, key: str, expiry: int, amount: int) -> tuple[int, float]: ...


def evaluate_local_fixed(storage: LocalCounter, plan: Plan) -> RateLimitDecision | None:
    """``evaluate`` for the fixed window on the in-process storage, without the generator
    and the separate expiry lookup: the default configuration runs it on every request."""
    best: RateLimitDecision | None = None
    for limit, key, cost in plan:
        amount = limit.item.amount
        count, reset = storage.hit_fixed(key, limit.window, cost)
        decision = RateLimitDecision(
            count <= amount,
            amount,
            max(0, amount - count),
            reset,
            limit.window,
            limit.scope,
            limit.code,
        )
        if count > amount:
            return decision
        if best is None or decision.remaining < best.remaining:
            best = decision
    return best
