"""The rate-limit decisions of one request, written once for every adapter.

``Policies.admit`` is a sans-IO generator: from plain facts (method, path, the endpoint
the framework's router dispatched to, the client's address, a request object made on
demand) it decides maintenance mode, which limits apply (``applicable``), what each one's
storage key and cost are (``plan``), asks its driver to evaluate them on the storage (it
yields a ``Check``), and returns the ``Admission``. It also yields what the app's callables
return (``key_func``, ``maintenance``, callable limits and costs): the ASGI driver awaits
what is awaitable, the WSGI driver refuses it. So only the awaiting and the storage I/O
exist twice.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ._expiry import ExpiryCache
from ._inspect import Inspections
from ._keys import address_key, client_address, safe_key
from ._limiting import Limit, LimitOptions, PlanItem, Verdict, checked_cost, simple_plan
from ._logging import log_safe, logger
from ._maintenance import maintenance_due
from ._registry import HTTP_METHODS, NO_ENDPOINT, EndpointRules, Registry, Rule
from ._settings import Settings

if TYPE_CHECKING:  # imported at run time only with metrics=True
    from ._metrics import Metrics

__all__ = ["Admission", "Applicable", "Check", "Policies", "checked_cost"]


@dataclass(frozen=True, slots=True)
class Applicable:
    """The limits that apply to one kind of request: its rules, and — when every one of
    them is static, keyed by the client and of fixed cost — the limits themselves, so the
    plan needs no request object and no callable."""

    rules: tuple[Rule, ...]
    simple: tuple[Limit, ...] | None
    # Some limit is counted only after the response (``deduct_when``).
    deducts: bool = False
    # Some limit runs in shadow mode (``enforce=False``): its verdicts are observed.
    shadow: bool = False


NOTHING = Applicable((), ())


class Check(NamedTuple):
    """Asks the driver to evaluate ``plan`` on its storage and send back the verdict."""

    plan: list[PlanItem]


@dataclass(slots=True)
class Admission:
    """What admitting a request decided: the verdict the response reports (None when no
    limit applied), and the limits to count once the response's status is known."""

    verdict: Verdict | None = None
    deducts: Sequence[PlanItem] = ()
    # Maintenance mode answers the request 503 with this Retry-After (no limit counted).
    unavailable: int | None = None


ADMITTED = Admission()
_PLANS_KEPT = 4096  # clients whose plan is kept; all are forgotten when it is full
Steps = Generator[Any, Any, Admission]
Now = Callable[[], float]


class Policies(Inspections):
    """Default, path, shared and endpoint limits, decided per request."""

    settings: Settings
    registry: Registry
    metrics: Metrics | None = None

    def __init__(self, settings: Settings, registry: Registry) -> None:
        options = LimitOptions(enforce=settings.enforce)
        self.default_rules: tuple[Rule, ...] = ()
        if settings.default_limits:
            self.default_rules = (
                registry.rule(settings.default_limits, "default", options, "default_limits"),
            )
        self.path_rules = tuple(
            (prefix, registry.rule(spec, f"path:{prefix}", options, f"path_limits[{prefix!r}]"))
            for prefix, spec in settings.path_limits
            if spec
        )
        self.path_dependent = bool(self.path_rules or settings.exempt_paths)
        self._applicable: dict[tuple[EndpointRules, str], Applicable] = {}
        # Recent clients' plans (never changed once made), by endpoint, method and peer
        # address when that decides the plan (``peer_keyed``), else by limits and client key.
        self._plans: dict[tuple[Any, ...], tuple[Applicable, list[PlanItem]]] = {}
        self.peer_keyed = not (self.path_dependent or settings.trusted_proxies)
        self._shadow_logged = ExpiryCache(4096)
        Inspections.__init__(self, settings)

    @property
    def limited(self) -> bool:
        """Whether any limit is declared at all (else nothing per request but envelopes)."""
        return bool(self.default_rules or self.path_rules or self.registry)

    # -- which limits apply -------------------------------------------------------------

    def is_exempt_path(self, path: str) -> bool:
        for exempt in self.settings.exempt_paths:
            if path == exempt or (exempt.endswith("/") and path.startswith(exempt)):
                return True
        return False

    def applicable(
        self, method: str, path: str, endpoint: EndpointRules = NO_ENDPOINT
    ) -> Applicable:
        """The limits of a ``method`` request to ``path``, routed to ``endpoint``: default
        and path limits unless exempt, then the endpoint's shared and own limits."""
        if self.path_dependent:
            return self._applicable_to(method, path, endpoint)
        key = (endpoint, method)
        try:
            return self._applicable[key]
        except KeyError:
            found = self._applicable_to(method, path, endpoint)
            if method in HTTP_METHODS:  # never a cache entry per invented method
                self._applicable[key] = found
            return found

    def _applicable_to(self, method: str, path: str, endpoint: EndpointRules) -> Applicable:
        rules: list[Rule] = []
        if not (endpoint.exempt or (self.settings.exempt_paths and self.is_exempt_path(path))):
            rules += self.default_rules
            rules += [rule for prefix, rule in self.path_rules if path.startswith(prefix)]
        for rule in endpoint.rules:
            methods = rule.options.methods
            if methods is None or method in methods:
                rules.append(rule)
        if not rules:
            return NOTHING
        simple: tuple[Limit, ...] | None = None
        if self.settings.key_func is None and all(r.static is not None for r in rules):
            flat = tuple(limit for r in rules for limit in r.static or ())
            if all(limit.simple for limit in flat):
                simple = flat
        deducts = any(r.options.deduct_when is not None for r in rules)
        shadow = any(not r.options.enforce for r in rules)
        return Applicable(tuple(rules), simple, deducts, shadow)

    # -- the plan: storage keys and costs -----------------------------------------------

    def address_key(self, peer: str | None, forwarded_for: Callable[[], str | None]) -> str:
        """The key of the client's address (trusted proxies, IPv6 subnets applied)."""
        settings = self.settings
        if settings.trusted_proxies:
            address = client_address(peer, forwarded_for(), settings.trusted_proxies)
        else:
            address = peer or "unknown"
        return address_key(address, settings.ipv6_subnet)

    def plan(
        self, applicable: Applicable, address: Callable[[], str], request: Callable[[], Any]
    ) -> Generator[Any, Any, list[PlanItem]]:
        """Each limit's storage key and cost for this request, calling the app's callables
        (``key_func``, limit values, per-limit ``key_func`` and ``cost``) as needed.

        A ``key_func`` — the option's or a limit's own — that returns ``None`` keys the
        request by the client's address (trusted proxies and IPv6 subnets applied)."""
        if applicable.simple is not None:
            return simple_plan(applicable.simple, address())
        custom_key: str | None = None
        key_func = self.settings.key_func
        if key_func is not None:
            custom = yield key_func(request())
            if custom is not None:
                custom_key = safe_key(custom)
        client_key = address() if custom_key is None else custom_key
        items: list[PlanItem] = []
        for rule in applicable.rules:
            limits = rule.static
            if limits is None:
                limits = rule.resolve((yield rule.dynamic(request())))  # type: ignore[misc]
            for limit in limits:
                options = limit.options
                key = client_key
                if options.key_func is not None:
                    custom = yield options.key_func(request())
                    key = address() if custom is None else safe_key(custom)
                cost = options.cost
                if callable(cost):
                    cost = checked_cost((yield cost(request())))
                items.append(PlanItem(limit, limit.storage_prefix + key, cost))
        return items

    # -- admission ----------------------------------------------------------------------

    def admit(
        self,
        method: str,
        path: str,
        endpoint: EndpointRules,
        address: Callable[[], str],
        request: Callable[[], Any],
        now: Callable[[], float],
    ) -> Steps:
        """Decide one request's limits (see the module docstring for what it yields)."""
        check = self.settings.maintenance
        if check is not None and not (endpoint.exempt or self.is_exempt_path(path)):
            seconds = yield from maintenance_due(check, request)
            if seconds is not None:
                return Admission(unavailable=seconds)
        applicable = self.applicable(method, path, endpoint)
        if not applicable.rules:
            return ADMITTED
        if applicable.simple is not None:  # no callable to call: no generator to run
            plan = simple_plan(applicable.simple, address())
        else:
            plan = yield from self.plan(applicable, address, request)
        verdict: Verdict | None = yield Check(plan)
        return self.admitted(applicable, plan, verdict, now)

    def plan_at_once(
        self,
        method: str,
        path: str,
        endpoint: EndpointRules,
        address: Callable[[], str],
        peer: str | None = None,
    ) -> tuple[Applicable, list[PlanItem]] | None:
        """What ``admit`` decides before its ``Check`` when that needs no callable of the app
        (most requests: no maintenance mode, static limits keyed by the client's address, of
        fixed cost); None when ``admit`` must run. A client's plan never changes: it is kept,
        by the ``peer`` address when that alone decides it (``peer_keyed``)."""
        if self.settings.maintenance is not None:
            return None
        plans = self._plans
        by_peer = peer is not None and self.peer_keyed and method in HTTP_METHODS
        if by_peer and (kept := plans.get((endpoint, method, peer))) is not None:
            return kept
        applicable = self.applicable(method, path, endpoint)
        limits = applicable.simple
        if limits is None:
            return None
        if not limits:
            return applicable, []
        client_key = address()
        key = (endpoint, method, peer) if by_peer else (limits, client_key)
        planned = None if by_peer else plans.get(key)  # by peer: not found above
        if planned is None:
            if len(plans) >= _PLANS_KEPT:
                plans.clear()
            planned = plans[key] = (applicable, simple_plan(limits, client_key))
        return planned

    def admitted(
        self, applicable: Applicable, plan: list[PlanItem], verdict: Verdict | None, now: Now
    ) -> Admission:
        """The admission of a checked plan: its verdict ``observed``, and the limits to
        count once the response's status is known (``deducted``)."""
        if self.observed(applicable, verdict, now) is None:
            return ADMITTED
        return Admission(verdict, self.deducted(applicable, plan, verdict))

    def observed(self, applicable: Applicable, verdict: Verdict | None, now: Now) -> Verdict | None:
        """``verdict``, counted (``metrics``) and its shadow-mode breaches logged; None
        when no limit was counted (none applied, or ``on_storage_error="allow"``)."""
        if verdict is not None and (self.metrics is not None or applicable.shadow):
            self.observe(verdict, now())
        return verdict

    @staticmethod
    def deducted(
        applicable: Applicable, plan: list[PlanItem], verdict: Verdict | None
    ) -> Sequence[PlanItem]:
        """The ``deduct_when`` limits of an admitted request (none when it was refused)."""
        if applicable.deducts and verdict is not None and not verdict.denied:
            return [item for item in plan if item.limit.options.deduct_when is not None]
        return ()

    def observe(self, verdict: Verdict, now: float) -> None:
        """Count the verdict's decisions (``metrics``), and log each shadow-mode limit a
        request would have breached: once per key and limit until its reset."""
        if self.metrics is not None:
            self.metrics.decided(verdict)
        for decision in verdict.decisions:
            if decision.enforced or decision.allowed:
                continue
            key = decision.key
            if self._shadow_logged.get(key, now) is None:
                self._shadow_logged.set(key, decision.reset, now)
                logger.warning(
                    "restfault: shadow mode: limit %s would have answered 429 to client %s "
                    "(for %d s); enforce it with enforce=True",
                    log_safe(decision.policy),
                    hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12],
                    max(1, math.ceil(decision.reset - now)),
                )
