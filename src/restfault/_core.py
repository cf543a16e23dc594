"""What every adapter shares: settings, renderer, translations, limits and their registry.

An adapter owns one ``Core``. It translates its framework's request into the few facts
the core needs (client key, method, path, endpoint) and the core's answers back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ._errors import ConfigurationError, RestException, TooManyRequestsException
from ._keys import safe_key
from ._limiting import Limit, Plan, limits_for
from ._render import ErrorResponse, Renderer
from ._settings import Settings
from ._translate import Translations

__all__ = ["Core", "is_json_media_type", "log_safe"]

logger = logging.getLogger("restfault")

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=BaseException)

# C0, DEL and C1 controls, and the Unicode line and paragraph separators: every character
# str.splitlines() (and many log viewers) break a line at.
_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def log_safe(text: str, limit: int = 512) -> str:
    """``text`` with control characters escaped, so it cannot forge log lines."""
    return text[:limit].translate(_CONTROL)


def log_after_start(exc: BaseException, method: str, path: str) -> None:
    """Log an error raised once the response had started: it cannot be answered any more,
    so the adapter re-raises it and the server closes the connection."""
    logger.error(
        "restfault: %s after the response started on %s %s; closing the connection",
        type(exc).__name__,
        log_safe(method, 16),
        log_safe(path),
        exc_info=exc,
    )


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json``, ``application/problem+json`` and other ``+json`` types."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def endpoint_name(endpoint: Any) -> str:
    module = getattr(endpoint, "__module__", None) or "?"
    qualname = getattr(endpoint, "__qualname__", None) or repr(endpoint)
    return f"{module}.{qualname}"


class Core:
    """One adapter's configuration and registries; the request-independent half of it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.translations = Translations()
        self.renderer = Renderer(
            settings.style,
            debug=settings.debug,
            problem_type=settings.problem_type,
            translations=self.translations,
        )
        self.default_limits: tuple[Limit, ...] = self._limits(
            settings.default_limits,  # parsed once, by Settings
            scope="default",
            option="default_limits",
        )
        self.route_limits: dict[Any, tuple[Limit, ...]] = {}
        self.exempt_endpoints: set[Any] = set()
        self.translate_hooks: list[Callable[[type[BaseException]], None]] = []
        self._denials: dict[str | None, ErrorResponse] = {}
        if settings.debug:
            logger.warning(
                "restfault: debug=True shows exception types, messages and tracebacks to "
                "clients; never enable it in production"
            )

    def _limits(
        self,
        value: Any,
        *,
        scope: str,
        code: str | None = None,
        key_func: Callable[[Any], Any] | None = None,
        cost: int | Callable[[Any], Any] = 1,
        option: str,
    ) -> tuple[Limit, ...]:
        return limits_for(
            value,
            scope=scope,
            key_prefix=self.settings.key_prefix,
            strategy=self.settings.strategy,
            code=code,
            key_func=key_func,
            cost=cost,
            option=option,
        )

    # -- the decorators every adapter exposes ------------------------------------------

    def limit(
        self,
        value: str | list[str],
        *,
        code: str | None = None,
        key_func: Callable[[Any], Any] | None = None,
        cost: int | Callable[[Any], Any] = 1,
    ) -> Callable[[F], F]:
        """A decorator putting an extra limit (a budget of its own) on one endpoint."""

        def decorator(endpoint: F) -> F:
            name = endpoint_name(endpoint)
            parsed = self._limits(
                value,
                scope=name,
                code=code,
                key_func=key_func,
                cost=cost,
                option=f"limit on {name}",
            )
            self.route_limits[endpoint] = self.route_limits.get(endpoint, ()) + parsed
            return endpoint

        if callable(value):
            raise ConfigurationError("limit() needs a limit string: use @limit('10/minute')")
        return decorator

    def exempt(self, endpoint: F) -> F:
        """A decorator exempting one endpoint from the default limits."""
        self.exempt_endpoints.add(endpoint)
        return endpoint

    def translate(self, exc_type: type[E]) -> Callable[[Callable[[E], RestException]], Any]:
        """A decorator registering ``fn(exc) -> RestException`` for ``exc_type`` and subclasses."""

        def decorator(fn: Callable[[E], RestException]) -> Callable[[E], RestException]:
            self.translations.add(exc_type, fn)
            for hook in self.translate_hooks:
                hook(exc_type)
            return fn

        return decorator

    def denial(self, code: str | None) -> ErrorResponse | None:
        """The 429 envelope for a limit's ``code``, rendered once (``Retry-After`` and the
        rate-limit headers are the caller's); None for a callable style, which renders
        every exception itself."""
        try:
            return self._denials[code]
        except KeyError:
            pass
        if callable(self.settings.style):
            return None
        response = self.renderer.render_rest(TooManyRequestsException(code=code))
        self._denials[code] = response
        return response

    # -- per request --------------------------------------------------------------------

    def is_exempt_path(self, path: str) -> bool:
        for exempt in self.settings.exempt_paths:
            if path == exempt or (exempt.endswith("/") and path.startswith(exempt)):
                return True
        return False

    @staticmethod
    def plan(limits: tuple[Limit, ...], request: Any, client_key: str) -> Plan:
        """(limit, storage key, cost) for each limit; sync key_func/cost only."""
        result: Plan = []
        for limit in limits:
            if limit.simple:
                result.append((limit, limit.storage_prefix + client_key, limit.cost))  # type: ignore[arg-type]
                continue
            key = client_key
            if limit.key_func is not None:
                custom = limit.key_func(request)
                key = client_key if custom is None else safe_key(custom)
            cost = limit.cost(request) if callable(limit.cost) else limit.cost
            result.append((limit, limit.storage_key(key), checked_cost(cost)))
        return result

    def render(self, exc: BaseException, method: str, path: str) -> tuple[ErrorResponse, bool]:
        """The envelope for ``exc`` and whether it was unexpected (then it is logged here)."""
        rest, unexpected = self.renderer.resolve(exc)
        if unexpected:
            logger.error(
                "restfault: unhandled %s on %s %s",
                type(exc).__name__,
                log_safe(method, 16),
                log_safe(path),
                exc_info=exc,
            )
        elif rest is not exc and rest.status_code < 500:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "restfault: %s on %s %s answered %d %s",
                    type(exc).__name__,
                    log_safe(method, 16),
                    log_safe(path),
                    rest.status_code,
                    rest.code,
                )
        elif rest.status_code >= 500 and rest is not exc:
            logger.error(
                "restfault: %s on %s %s became %d %s",
                type(exc).__name__,
                log_safe(method, 16),
                log_safe(path),
                rest.status_code,
                rest.code,
                exc_info=exc,
            )
        return self.renderer.render_resolved(exc, rest, unexpected), unexpected


def checked_cost(cost: Any) -> int:
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise TypeError(f"a limit's cost callable returned {cost!r}; it must return an int >= 1")
    return cost
