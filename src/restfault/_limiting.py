"""What a limit is and what its outcome says: pure code.

A ``Limit`` is one parsed window (``100/minute``) bound to a budget scope (``default``,
``path:/api/``, ``shared:db`` or one endpoint) with its keywords. A ``Verdict`` is the
outcome of every limit evaluated for one request; ``_rate_headers`` turns it into header
values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from limits import RateLimitItem

from ._errors import TooManyRequestsException
from ._logging import logger
from ._rate_headers import rate_header_values

__all__ = [
    "Limit",
    "LimitOptions",
    "PlanItem",
    "RateLimitDecision",
    "Verdict",
    "checked_cost",
    "counted_after",
    "policy_name",
    "simple_plan",
    "sliding_window_stats",
]


@dataclass(frozen=True, slots=True)
class LimitOptions:
    """The keywords of one declared limit (``.limit()``, ``.shared_limit()``, an option)."""

    code: str | None = None
    key_func: Callable[[Any], Any] | None = None
    cost: int | Callable[[Any], Any] = 1
    methods: frozenset[str] | None = None
    deduct_when: Callable[[int], Any] | None = None
    block_for: int | None = None
    enforce: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class Limit:
    """One parsed window bound to a budget scope, ready to key."""

    item: RateLimitItem
    scope: str
    options: LimitOptions
    storage_prefix: str
    # The policy name (RateLimit-Policy, logs): stable, and distinct among its siblings.
    name: str
    # Decided once, read on every request.
    amount: int = field(init=False)
    window: int = field(init=False)
    # No key_func and a fixed cost: its plan needs no request object.
    simple: bool = field(init=False)
    fixed_cost: int = field(init=False)  # the cost when it is not a callable (else 0)
    # No deduct_when, no block_for: counted on admission, nothing else to ask.
    plain: bool = field(init=False)
    code: str | None = field(init=False)
    enforce: bool = field(init=False)

    def __post_init__(self) -> None:
        options = self.options
        set_ = object.__setattr__
        set_(self, "amount", self.item.amount)
        set_(self, "window", self.item.get_expiry())
        cost = options.cost
        set_(self, "fixed_cost", 0 if callable(cost) else cost)
        set_(self, "simple", options.key_func is None and not callable(cost))
        set_(self, "plain", options.deduct_when is None and options.block_for is None)
        set_(self, "code", options.code)
        set_(self, "enforce", options.enforce)

    @classmethod
    def build_all(
        cls,
        items: tuple[RateLimitItem, ...],
        scope: str,
        options: LimitOptions,
        key_prefix: str,
        strategy: str,
    ) -> tuple[Limit, ...]:
        """The limits of ``items`` in ``scope``. Storage keys carry prefix, strategy and
        scope, so a strategy switch never meets a key another strategy wrote. A scope of
        one window is named as the scope (``default``); several are told apart by window."""
        built = []
        for index, item in enumerate(items):
            granularity = item.GRANULARITY.name
            prefix = f"{key_prefix}/{strategy}/{scope}/{item.amount}/{item.multiples}{granularity}/"
            name = policy_name(scope)
            if len(items) > 1:
                window = item.get_expiry()
                twins = [i for i, other in enumerate(items) if other.get_expiry() == window]
                name = f"{name};w={window}" + (
                    f"#{twins.index(index) + 1}" if len(twins) > 1 else ""
                )
            built.append(cls(item, scope, options, prefix, name))
        return tuple(built)

    def storage_key(self, client_key: str) -> str:
        return self.storage_prefix + client_key


class PlanItem(NamedTuple):
    """One limit of a request's plan: the limit, its storage key and this request's cost."""

    limit: Limit
    key: str
    cost: int


def simple_plan(limits: tuple[Limit, ...], client_key: str) -> list[PlanItem]:
    """The plan of limits keyed by the client, of fixed cost: no callable to call."""
    if len(limits) == 1:  # most requests: without a comprehension's frame
        only = limits[0]
        return [PlanItem(only, only.storage_prefix + client_key, only.fixed_cost)]
    return [PlanItem(x, x.storage_prefix + client_key, x.fixed_cost) for x in limits]


def counted_after(deducts: Sequence[PlanItem], status: int) -> list[PlanItem]:
    """The ``deduct_when`` limits a response of ``status`` counts on."""
    counted = []
    for item in deducts:
        try:
            if item.limit.options.deduct_when(status):  # type: ignore[misc]
                counted.append(item)
        except Exception:  # a bug in the app's predicate: logged, never a crash
            logger.exception("restfault: the deduct_when of %s failed", item.limit.name)
    return counted


def checked_cost(cost: Any) -> int:
    """The cost a limit's ``cost`` callable returned, checked: an int of at least 1."""
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise TypeError(f"a limit's cost callable returned {cost!r}; it must return an int >= 1")
    return cost


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
    # The policy name (``RateLimit-Policy``, logs, metrics): stable and distinct per limit.
    policy: str = ""
    # The window's capacity in this request's units: remaining below it denies next time.
    cost: int = 1
    enforced: bool = True
    # The storage key it was counted under (per limit and client): logs, denial cache.
    key: str = ""

    def retry_after(self, now: float) -> int:
        """Whole seconds until the request would pass: rounded up, at least 1."""
        seconds = math.ceil(self.reset - now)
        return seconds if seconds > 1 else 1

    def headers(
        self, now: float, *, legacy: bool = True, ietf: bool = False
    ) -> list[tuple[str, str]]:
        """This decision alone as header values (see ``rate_header_values``)."""
        return rate_header_values(Verdict([self], self), now, legacy=legacy, ietf=ietf)

    def exception(self, now: float) -> TooManyRequestsException:
        """The 429 this decision answers with, its own code kept."""
        return TooManyRequestsException(code=self.code, retry_after=self.retry_after(now))

    @property
    def exhausted(self) -> bool:
        """The same request again would be refused by this limit until ``reset``."""
        return not self.allowed or self.remaining < self.cost


@dataclass(slots=True)
class Verdict:
    """Every limit evaluated for one request and what the response reports.

    ``reported`` is the limit the ``X-RateLimit-*`` headers describe: on a denial the
    limit that holds the request longest (so ``Reset`` and ``Retry-After`` say when it
    would really pass), otherwise the one with the least remaining.
    """

    decisions: list[RateLimitDecision]
    reported: RateLimitDecision | None
    denied: bool = False

    @classmethod
    def of(cls, decisions: list[RateLimitDecision]) -> Verdict:
        if len(decisions) == 1:  # most requests: one limit applies
            decision = decisions[0]
            return cls(decisions, decision, decision.enforced and not decision.allowed)
        breached = [d for d in decisions if d.enforced and not d.allowed]
        if breached:
            holding = [d for d in decisions if d.enforced and d.exhausted]
            return cls(decisions, max(holding, key=_reset), denied=True)
        reported = None
        for decision in decisions:
            if reported is None or (decision.remaining, -decision.reset) < (
                reported.remaining,
                -reported.reset,
            ):
                reported = decision
        return cls(decisions, reported)

    @property
    def breached(self) -> list[RateLimitDecision]:
        """The enforced limits that refused this request."""
        return [d for d in self.decisions if d.enforced and not d.allowed]


def _reset(decision: RateLimitDecision) -> int:
    # Whole seconds, as the headers say it: limits ending in the same second are a tie,
    # which the first evaluated (default before path, shared and endpoint) wins.
    return math.ceil(decision.reset)


# What a policy name escapes: "%" itself, the separators of the suffixes ";w=60#2", the
# characters a Structured Field String escapes, and anything but printable ASCII.
_NAME_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - set('%;#"\\')


def policy_name(scope: str) -> str:
    """The ``RateLimit-Policy`` name of a budget scope: printable ASCII, distinct for
    distinct scopes (other characters percent-encoded as UTF-8), so a Structured Field
    String carries it unchanged and two limits never share a name.

    >>> policy_name("path:/café/"), policy_name("shared:a;w=60")
    ('path:/caf%C3%A9/', 'shared:a%3Bw=60')
    """
    if all(ch in _NAME_SAFE for ch in scope):
        return scope
    return "".join(
        ch
        if ch in _NAME_SAFE
        else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in scope
    )


def sliding_window_stats(
    limit: Limit, state: tuple[int, float, int, float], now: float
) -> tuple[int, float]:
    """(remaining, reset) of a sliding-window counter, as ``limits`` weighs it."""
    previous_count, previous_expires_in, current_count, current_expires_in = state
    expiry = limit.window
    weighted = previous_count * previous_expires_in / expiry + current_count
    remaining = max(0, limit.amount - math.floor(weighted))
    if not (previous_count or current_count):
        return remaining, now + expiry
    previous_reset_in = (
        previous_expires_in % (expiry / previous_count) if previous_count else math.inf
    )
    # Redis keeps a new current window for twice its length, and a TTL read in the same
    # millisecond is exactly 2 * expiry: its window ends in a full expiry, not now.
    current_reset_in = (current_expires_in % expiry or expiry) if current_count else math.inf
    return remaining, now + min(previous_reset_in, current_reset_in)
