"""What every adapter exposes, written once and typed: ``translate``, ``limit``,
``shared_limit`` and ``exempt``.

The decorators return what they decorate, unchanged: a limit belongs to the endpoint
function, and the framework's router — not restfault — decides which endpoint a request
reaches. ``_policies.Registry`` keeps what they declare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._core import Core
from ._errors import ConfigurationError, RestException
from ._limiting import LimitOptions
from ._options import LimitValue
from ._registry import check_methods
from ._settings import Settings
from ._validate import check_callable, limit_spec

__all__ = ["Adapter", "RoutedAdapter"]

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=BaseException)
R = TypeVar("R", bound=RestException)


class Adapter:
    """The part of every adapter that is not about endpoints."""

    core: Core

    @property
    def settings(self) -> Settings:
        """The adapter's validated options."""
        return self.core.settings

    def translate(self, exc_type: type[E]) -> Callable[[Callable[[E], R]], Callable[[E], R]]:
        """A decorator registering ``fn(exc) -> RestException`` for ``exc_type`` (matched
        along the exception's class hierarchy, so subclasses share it).

        >>> import sqlite3
        >>> from restfault import ConflictResourceException
        >>> from restfault.starlette import RestFault
        >>> restfault = RestFault()
        >>> @restfault.translate(sqlite3.IntegrityError)
        ... def unique(exc: sqlite3.IntegrityError) -> ConflictResourceException:
        ...     return ConflictResourceException(str(exc), code="UNIQUE_CONSTRAINT")
        >>> unique(sqlite3.IntegrityError("taken")).code  # still the function it was
        'UNIQUE_CONSTRAINT'
        """

        def decorator(fn: Callable[[E], R]) -> Callable[[E], R]:
            self.core.translations.add(exc_type, fn)
            for hook in self.core.translate_hooks:
                hook(exc_type)
            return fn

        return decorator


class RoutedAdapter(Adapter):
    """An adapter for a framework with a router: endpoints may carry limits of their own."""

    def limit(
        self,
        value: LimitValue,
        *,
        code: str | None = None,
        key_func: Callable[[Any], Any] | None = None,
        cost: int | Callable[[Any], Any] = 1,
        methods: Iterable[str] | None = None,
        deduct_when: Callable[[int], Any] | None = None,
        block_for: float | None = None,
        enforce: bool = True,
    ) -> Callable[[F], F]:
        """A decorator putting an extra limit — a budget of its own — on one endpoint.

        ``value`` is a limit string (``"3/minute"``), a list of them, or a callable of the
        request returning them (or None). ``code`` replaces ``RATE_LIMIT_EXCEEDED`` in
        its 429; ``key_func`` and ``cost`` key and weigh it per request; ``methods``
        narrows it to some HTTP methods; ``deduct_when(status)`` counts a request only
        after its response (failed logins: ``lambda status: status == 401``);
        ``block_for`` denies a client that breached it for that many seconds;
        ``enforce=False`` only logs what it would deny.
        """
        registry = self.core.registry
        if value is None:
            raise ConfigurationError("limit() needs a limit: @limit('10/minute')")
        # Every argument checked where it is written, before anything is decorated.
        spec = limit_spec(value, "limit()", self.core.asynchronous)
        checked = self._options(
            "limit()", code, key_func, cost, methods, deduct_when, block_for, enforce
        )

        def decorator(endpoint: F) -> F:
            scope = registry.scope_of(endpoint)
            option = f"limit on {scope}"
            registry.add_limit(endpoint, registry.rule(spec, scope, checked, option))
            return endpoint

        return decorator

    def shared_limit(
        self,
        value: LimitValue,
        scope: str,
        *,
        code: str | None = None,
        key_func: Callable[[Any], Any] | None = None,
        cost: int | Callable[[Any], Any] = 1,
        methods: Iterable[str] | None = None,
        deduct_when: Callable[[int], Any] | None = None,
        block_for: float | None = None,
        enforce: bool = True,
    ) -> Callable[[F], F]:
        """A decorator putting an endpoint under a budget it shares with every endpoint
        decorated with the same ``scope`` (one "service" of several endpoints); the same
        keywords as ``limit``. Declaring a scope again with another value is an error.
        """
        if not isinstance(scope, str) or not scope:
            raise ConfigurationError(f"shared_limit: scope={scope!r} must be a non-empty string")
        option = f"shared_limit({scope!r})"
        spec = limit_spec(value, option, self.core.asynchronous)
        options = self._options(
            option, code, key_func, cost, methods, deduct_when, block_for, enforce
        )
        rule = self.core.registry.shared_rule(spec, scope, options)

        def decorator(endpoint: F) -> F:
            self.core.registry.add_limit(endpoint, rule)
            return endpoint

        return decorator

    def exempt(self, endpoint: F) -> F:
        """A decorator exempting one endpoint from the default and path limits (its own
        ``limit`` and ``shared_limit`` limits still apply)."""
        self.core.registry.add_exempt(endpoint)
        return endpoint

    def _options(
        self,
        option: str,
        code: Any,
        key_func: Any,
        cost: Any,
        methods: Any,
        deduct_when: Any,
        block_for: Any,
        enforce: Any,
    ) -> LimitOptions:
        asynchronous = self.core.asynchronous
        if code is not None and not (isinstance(code, str) and code):
            raise ConfigurationError(f"{option}: code={code!r} must be a non-empty string")
        if key_func is not None:
            check_callable(key_func, f"{option}: key_func", asynchronous)
        if callable(cost):
            check_callable(cost, f"{option}: cost", asynchronous)
        elif isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
            raise ConfigurationError(
                f"{option}: cost={cost!r} must be a positive int or a callable of the request"
            )
        if deduct_when is not None:
            check_callable(deduct_when, f"{option}: deduct_when", False, "the status code")
        if block_for is not None and (
            isinstance(block_for, bool)
            or not isinstance(block_for, int | float)
            or not 0 < block_for < math.inf
        ):
            raise ConfigurationError(
                f"{option}: block_for={block_for!r} must be a positive number of seconds"
            )
        if not isinstance(enforce, bool):
            raise ConfigurationError(f"{option}: enforce={enforce!r} must be True or False")
        return LimitOptions(
            code=code,
            key_func=key_func,
            cost=cost,
            methods=check_methods(methods, option),
            deduct_when=deduct_when,
            block_for=None if block_for is None else math.ceil(block_for),
            enforce=enforce,
        )
