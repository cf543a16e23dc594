"""Every per-request decision, made once from plain facts, for every adapter.

An adapter owns one ``Core``. Its protocol driver (``_asgi``, ``_wsgi``) carries the
request's facts in — method, path, the endpoint the framework's router dispatched to,
the client's address, headers — and the core's answers out:

- ``applicable``: which limits apply (default, path, shared, endpoint; exemptions);
- ``plan``: each limit's storage key and cost (``key_func``, callables, dynamic limits);
- ``_evaluate.evaluate`` (driven by ``_storage``): the verdict;
- ``rate_headers``: the header values of a verdict (``_limiting.rate_header_values``);
- ``maintenance``: whether maintenance mode answers the request 503 (``_maintenance``);
- ``denial``: the 429, rendered once per code (``_denial``);
- ``render``: the envelope of any exception;
- the request's id (``_request_id``), and one log record per error response, with its
  metric (``_observe``, ``_metrics``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from ._denial import Denial, Denials
from ._errors import RestException, ServiceUnavailableException
from ._evaluate import ExpiryCache
from ._keys import address_key, client_address, safe_key
from ._limiting import Limit, LimitOptions, PlanItem, Verdict, rate_header_values
from ._logging import log_safe, logger
from ._maintenance import maintenance_seconds
from ._observe import Facts, Reporter
from ._policies import HTTP_METHODS, NO_ENDPOINT, EndpointRules, Registry, Rule
from ._render import ErrorResponse, Renderer
from ._settings import Settings
from ._translate import Translations

__all__ = ["Applicable", "Core", "Denial", "checked_cost"]

# A plan step yields a value a callable of the app returned; the driver sends it back,
# awaited when it is awaitable (ASGI) or refused when it is (WSGI).
PlanSteps = Generator[Any, Any, list[PlanItem]]


@dataclass(frozen=True, slots=True)
class Applicable:
    """The limits that apply to one kind of request: its rules, and — when every one of
    them is static, keyed by the client and of fixed cost — the limits themselves, so the
    plan needs no request object and no generator."""

    rules: tuple[Rule, ...]
    simple: tuple[Limit, ...] | None
    # Some limit is counted only after the response (``deduct_when``).
    deducts: bool = False


NOTHING = Applicable((), ())


class Core:
    """One adapter's configuration, registries and per-request decisions."""

    def __init__(self, settings: Settings, *, asynchronous: bool) -> None:
        self.settings = settings
        self.asynchronous = asynchronous
        self.translations = Translations()
        self.renderer = Renderer(
            settings.style,
            debug=settings.debug,
            problem_type=settings.problem_type,
            translations=self.translations,
        )
        self.registry = Registry(settings.key_prefix, settings.strategy, asynchronous)
        options = LimitOptions(enforce=settings.enforce)
        rule = self.registry.rule
        self.default_rules: tuple[Rule, ...] = ()
        if settings.default_limits:
            self.default_rules = (
                rule(settings.default_limits, "default", options, "default_limits"),
            )
        self.path_rules = tuple(
            (prefix, rule(spec, f"path:{prefix}", options, f"path_limits[{prefix!r}]"))
            for prefix, spec in settings.path_limits
            if spec
        )
        self.path_dependent = bool(self.path_rules or settings.exempt_paths)
        self.translate_hooks: list[Callable[[type[BaseException]], None]] = []
        self._applicable: dict[tuple[EndpointRules, str], Applicable] = {}
        self._shadow_logged = ExpiryCache(4096)
        # Request ids: the header's name as each driver reads it (empty when off).
        header = settings.request_id_header
        self.request_id_header = header
        self.request_id_raw = header.lower().encode("ascii") if header else b""
        self.request_id_environ = "HTTP_" + header.upper().replace("-", "_") if header else ""
        self.denials = Denials(self.renderer, ietf=settings.ietf_headers, with_ids=bool(header))
        self.metrics = None
        if settings.metrics:
            from ._metrics import Metrics  # imports opentelemetry: only when asked for

            self.metrics = Metrics()
        self.reporter = Reporter(self.metrics)
        if settings.debug:
            logger.warning(
                "restfault: debug=True shows exception types, messages and tracebacks to "
                "clients; never enable it in production"
            )

    @property
    def has_shadow(self) -> bool:
        """Whether some limit runs in shadow mode (``enforce=False``): its would-be
        denials are logged."""
        return not self.settings.enforce or self.registry.shadow

    @property
    def observing(self) -> bool:
        """Whether a verdict is to be ``observe``d: metrics, or shadow-mode limits."""
        return self.metrics is not None or self.has_shadow

    @property
    def limited(self) -> bool:
        """Whether any limit is declared at all (else nothing per request but envelopes)."""
        return bool(self.default_rules or self.path_rules or self.registry)

    @property
    def admits(self) -> bool:
        """Whether requests are admitted at all: limits, or maintenance mode, to decide."""
        return self.settings.maintenance is not None or self.limited

    # -- maintenance mode ---------------------------------------------------------------

    def maintenance(
        self, rules: EndpointRules, path: str, request: Callable[[], Any]
    ) -> Generator[Any, Any, int | None]:
        """``Retry-After`` seconds when maintenance mode answers this request 503, else
        None (the driver awaits the callable's answer in ASGI)."""
        check = self.settings.maintenance
        if check is None or rules.exempt or self.is_exempt_path(path):
            return None
        return maintenance_seconds((yield check(request())))

    def unavailable(self, seconds: int, facts: Facts) -> ErrorResponse:
        """The 503 of maintenance mode (logged at INFO: it was asked for)."""
        rest = ServiceUnavailableException(retry_after=seconds)
        response = self.renderer.render_rest(rest, None, facts.request_id)
        self.reporter.error(facts, response.status, rest.code, None, maintenance=True)
        return response

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
        return Applicable(tuple(rules), simple, deducts)

    # -- the plan: storage keys and costs -----------------------------------------------

    def address_key(self, peer: str | None, forwarded_for: Callable[[], str | None]) -> str:
        """The key of the client's address (trusted proxies, IPv6 subnets applied)."""
        settings = self.settings
        if settings.trusted_proxies:
            address = client_address(peer, forwarded_for(), settings.trusted_proxies)
        else:
            address = peer or "unknown"
        return address_key(address, settings.ipv6_subnet)

    @staticmethod
    def simple_plan(limits: tuple[Limit, ...], client_key: str) -> list[PlanItem]:
        """The plan of an ``Applicable.simple`` request: no callable to call."""
        return [PlanItem(x, x.storage_prefix + client_key, x.fixed_cost) for x in limits]

    def plan(
        self, applicable: Applicable, address: Callable[[], str], request: Callable[[], Any]
    ) -> PlanSteps:
        """Each limit's storage key and cost for this request, calling the app's callables
        (``key_func``, limit values, per-limit ``key_func`` and ``cost``) as needed."""
        client_key: str | None = None
        key_func = self.settings.key_func
        if key_func is not None:
            custom = yield key_func(request())
            if custom is not None:
                client_key = safe_key(custom)
        if client_key is None:
            client_key = address()
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
                    if custom is not None:
                        key = safe_key(custom)
                cost = options.cost
                if callable(cost):
                    cost = checked_cost((yield cost(request())))
                items.append(PlanItem(limit, limit.storage_prefix + key, cost))
        return items

    # -- what the response says ---------------------------------------------------------

    def rate_headers(self, verdict: Verdict | None, now: float) -> list[tuple[str, str]]:
        if verdict is None:
            return []
        settings = self.settings
        return rate_header_values(
            verdict, now, legacy=settings.headers_enabled, ietf=settings.ietf_headers
        )

    def id_headers(self, request_id: str | None) -> list[tuple[str, str]]:
        """The request-id header of a response (none when request ids are off)."""
        if request_id is None or self.request_id_header is None:
            return []
        return [(self.request_id_header, request_id)]

    def retry_after(self, verdict: Verdict, now: float) -> int:
        """Whole seconds until a denied request would really pass (rounded up, >= 1)."""
        reported = verdict.reported
        return max(1, math.ceil(reported.reset - now)) if reported is not None else 1

    def denial(self, verdict: Verdict, facts: Facts, now: float) -> Denial:
        """The 429 envelope of a denied verdict (rendered once per limit code, the
        request's id spliced in), logged once per client key and limit until its reset."""
        denial = self.denials.denial(verdict, facts.request_id, now)
        self.reporter.denied(facts, verdict, denial.code, now)
        return denial

    def observe(self, verdict: Verdict, now: float) -> None:
        """Count the verdict's decisions (``metrics``), and log each shadow-mode limit a
        request would have breached: once per key and limit until its reset, so one
        client's flood writes one line."""
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

    def render(self, exc: BaseException, facts: Facts) -> tuple[ErrorResponse, bool]:
        """The envelope for ``exc`` and whether it was unexpected; its log record is
        written here (``_observe``)."""
        rest, unexpected = self.renderer.resolve(exc)
        response = self.renderer.render_resolved(exc, rest, unexpected, facts.request_id)
        self.reporter.error(facts, response.status, rest.code, exc, unexpected=unexpected)
        return response, unexpected

    def rest_exception(self, exc: BaseException) -> RestException:
        return self.renderer.resolve(exc)[0]


def checked_cost(cost: Any) -> int:
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise TypeError(f"a limit's cost callable returned {cost!r}; it must return an int >= 1")
    return cost
