"""Which limits apply to a request: declared limits, the endpoint registry, exemptions.

A ``Rule`` is one declared limit value — ``default_limits``, a ``path_limits`` entry, a
``.shared_limit()`` scope or an endpoint's ``.limit()`` — with its keywords; static values
are parsed once, callable ones per distinct returned string, once. The ``Registry``
holds what the decorators declared; ``EndpointRules`` are an endpoint's, found once per
endpoint the framework's router dispatches to (through ``functools.wraps`` wrappers and
class-based views). ``applicable`` puts them together for one request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigurationError
from ._limiting import Limit, LimitOptions
from ._validate import LimitSpec, parse_limits

__all__ = ["EndpointRules", "Registry", "Rule", "check_methods", "endpoint_name", "reachable"]

HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_DYNAMIC_CACHE = 1024  # distinct strings a limit callable may return before caching stops


class Rule:
    """One declared limit value in one budget scope, with its keywords."""

    __slots__ = (
        "_lock",
        "_parsed",
        "dynamic",
        "key_prefix",
        "option",
        "options",
        "scope",
        "static",
        "strategy",
    )

    def __init__(
        self,
        spec: LimitSpec,
        scope: str,
        options: LimitOptions,
        *,
        key_prefix: str,
        strategy: str,
        option: str,
    ) -> None:
        self.scope = scope
        self.options = options
        self.key_prefix = key_prefix
        self.strategy = strategy
        self.option = option
        self._parsed: dict[Any, tuple[Limit, ...]] = {}
        self._lock = threading.Lock()
        self.dynamic: Callable[[Any], Any] | None = None
        self.static: tuple[Limit, ...] | None = None
        if callable(spec):
            self.dynamic = spec
        else:
            self.static = self._build(spec, ConfigurationError)

    def _build(self, items: Any, error: type[Exception]) -> tuple[Limit, ...]:
        cost = self.options.cost
        for item in items:
            if isinstance(cost, int) and cost > item.amount:
                raise error(
                    f"{self.option}: cost={cost} is more than {item} allows, so no request "
                    "could ever pass; lower the cost or raise the limit"
                )
        return Limit.build_all(
            tuple(items), self.scope, self.options, self.key_prefix, self.strategy
        )

    def resolve(self, value: Any) -> tuple[Limit, ...]:
        """The limits a callable returned for this request (a string is parsed only once)."""
        key = value if isinstance(value, str) or value is None else _hashable(value)
        try:
            return self._parsed[key]
        except (KeyError, TypeError):
            pass
        if value is None:
            return ()
        try:
            items = parse_limits(value, self.option)
            limits = self._build(items, TypeError)
        except ConfigurationError as exc:
            # Raised per request, not at start-up: a bug in the app's callable, a 500.
            raise TypeError(f"the limit callable returned {value!r}: {exc}") from None
        with self._lock:
            if len(self._parsed) < _DYNAMIC_CACHE:
                self._parsed[key] = limits
        return limits

    def same_declaration(self, spec: LimitSpec, options: LimitOptions) -> bool:
        if self.options != options:
            return False
        if callable(spec):
            return spec is self.dynamic
        return self.static is not None and tuple(x.item for x in self.static) == spec


def _hashable(value: Any) -> Any:
    try:
        return tuple(value)
    except TypeError:
        return object()  # never found: parsed (and refused) below


@dataclass(frozen=True, slots=True, eq=False)
class EndpointRules:
    """What one routed endpoint (and request method) brings: an exemption, and its own and
    shared limits in the order they were declared."""

    exempt: bool = False
    rules: tuple[Rule, ...] = ()


NO_ENDPOINT = EndpointRules()


def _nothing() -> None:
    """``Registry.on_first_declared`` until a core listens."""


def endpoint_name(endpoint: Any) -> str:
    module = getattr(endpoint, "__module__", None) or "?"
    qualname = getattr(endpoint, "__qualname__", None) or repr(endpoint)
    return f"{module}.{qualname}"


class Registry:
    """The endpoints' limits and exemptions declared with the adapter's decorators."""

    def __init__(self, key_prefix: str, strategy: str, asynchronous: bool) -> None:
        self.key_prefix = key_prefix
        self.strategy = strategy
        self.asynchronous = asynchronous
        self.limits: dict[Any, list[Rule]] = {}
        self.exempt: set[Any] = set()
        self.shared: dict[str, Rule] = {}
        self._scopes: dict[str, Any] = {}  # endpoint scope name -> the function that has it
        self._resolved: dict[tuple[Any, str], EndpointRules] = {}
        self.reached: set[Any] = set()  # declared functions a router was seen to dispatch to
        self.any_declared = False  # some endpoint has a limit or an exemption
        # Called when the first one is declared (the core settles what it reads per request).
        self.on_first_declared: Callable[[], None] = _nothing

    def __bool__(self) -> bool:
        return self.any_declared

    def scope_of(self, endpoint: Any) -> str:
        """The budget scope of an endpoint: its dotted name, made distinct per function
        (two endpoints built by one factory share a ``__qualname__``) in declaration
        order, so every process names them alike."""
        base = name = endpoint_name(endpoint)
        number = 1
        while self._scopes.setdefault(name, endpoint) is not endpoint:
            number += 1
            name = f"{base}~{number}"
        return name

    def rule(self, spec: LimitSpec, scope: str, options: LimitOptions, option: str) -> Rule:
        return Rule(
            spec, scope, options, key_prefix=self.key_prefix, strategy=self.strategy, option=option
        )

    def add_limit(self, endpoint: Any, rule: Rule) -> None:
        self.limits.setdefault(endpoint, []).append(rule)
        self._declared()

    def add_exempt(self, endpoint: Any) -> None:
        self.exempt.add(endpoint)
        self._declared()

    def _declared(self) -> None:
        self._resolved.clear()
        if not self.any_declared:
            self.any_declared = True
            self.on_first_declared()

    def shared_rule(self, spec: LimitSpec, scope: str, options: LimitOptions) -> Rule:
        existing = self.shared.get(scope)
        if existing is not None:
            if not existing.same_declaration(spec, options):
                raise ConfigurationError(
                    f"shared_limit scope {scope!r} is declared again with another value or "
                    "other keywords; every endpoint of one scope shares one declaration"
                )
            return existing
        rule = self.rule(spec, f"shared:{scope}", options, f"shared_limit({scope!r})")
        self.shared[scope] = rule
        return rule

    def for_endpoint(self, endpoint: Any, method: str) -> EndpointRules:
        """The rules of the endpoint a router dispatched a ``method`` request to."""
        key = (endpoint, method)
        try:
            return self._resolved[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable endpoint object: nothing can be declared on it
            return NO_ENDPOINT
        exempt = False
        rules: list[Rule] = []
        for function in _dispatched(endpoint, method):
            if function in self.exempt:
                exempt = True
                self.reached.add(function)
            for rule in self.limits.get(function, ()):
                self.reached.add(function)
                if rule not in rules:
                    rules.append(rule)
        resolved = EndpointRules(exempt, tuple(rules)) if exempt or rules else NO_ENDPOINT
        self._resolved[key] = resolved
        return resolved

    def declared(self) -> set[Any]:
        return set(self.limits) | self.exempt


def _dispatched(endpoint: Any, method: str) -> Iterable[Any]:
    """What a request to ``endpoint`` runs: the endpoint and every function it wraps; for a
    class-based view (Starlette's ``HTTPEndpoint``, Flask's ``MethodView``) the method's
    handler, as the class picks it (HEAD falls back to ``get``)."""
    cls = getattr(endpoint, "view_class", endpoint)  # Flask's as_view() function
    if isinstance(cls, type):
        name = method.lower()
        handler = getattr(cls, name, None)
        if handler is None and method == "HEAD":
            handler = getattr(cls, "get", None)
        yield from _unwrapped(endpoint)
        if handler is not None:
            yield from _unwrapped(handler)
        return
    yield from _unwrapped(endpoint)


def reachable(endpoint: Any) -> list[Any]:
    """Every function a request to ``endpoint`` may run, whatever its method (for the
    warning about limits no route leads to)."""
    found: list[Any] = []
    for method in sorted(HTTP_METHODS):
        found.extend(f for f in _dispatched(endpoint, method) if f not in found)
    return found


def _unwrapped(function: Any) -> Iterable[Any]:
    seen = 0
    while function is not None and seen < 32:  # a __wrapped__ cycle must not hang us
        yield function
        function = getattr(function, "__wrapped__", None)
        seen += 1


def check_methods(methods: Any, option: str) -> frozenset[str] | None:
    """``methods=`` as upper-case HTTP method names; a typo raises now, not never matches."""
    if methods is None:
        return None
    if isinstance(methods, str | bytes) or not isinstance(methods, Iterable):
        raise ConfigurationError(
            f"{option}: methods={methods!r} must be an iterable of HTTP methods, e.g. ['POST']"
        )
    names = frozenset(str(m).upper() for m in methods)
    unknown = sorted(names - HTTP_METHODS)
    if not names or unknown:
        raise ConfigurationError(
            f"{option}: methods={methods!r} names no HTTP method"
            + (f" ({', '.join(unknown)} unknown)" if unknown else "")
            + f"; use some of {', '.join(sorted(HTTP_METHODS))}"
        )
    return names
