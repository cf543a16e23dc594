"""Starlette and FastAPI: one object installs the middleware and the exception handlers.

>>> restfault = RestFault(app, style="bkend", default_limits="120/minute")
>>> @app.route("/email", methods=["POST"])
... @restfault.limit("3/minute", code="EMAIL_RATE_LIMIT")
... async def email(request): ...

The middleware goes innermost (just outside Starlette's exception middleware), so every
middleware the app adds — CORS included — wraps the envelopes and 429s it sends.
Per-endpoint limits and exemptions are found by walking the routes once; per request only
the routes of endpoints that have them are matched, before anything runs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from ._asgi_messages import encode_headers
from ._core import Core
from ._errors import BadRequestException, ConfigurationError, InvalidJsonException, RestException
from ._limiting import Limit
from ._render import ErrorResponse
from ._settings import Settings
from ._storage import AsyncLimiter
from .asgi import STATE_KEY, Pipeline, RequestState

__all__ = ["RestFault"]

F = TypeVar("F", bound=Callable[..., Any])


def _response(rendered: ErrorResponse, head: bool) -> Response:
    response = Response(b"" if head else rendered.body, status_code=rendered.status)
    response.raw_headers = encode_headers(rendered.headers)
    return response


class RestFault:
    """Envelopes, rate limits and batch translations for a Starlette or FastAPI app."""

    def __init__(self, app: Any = None, **options: Any) -> None:
        self.core = Core(Settings.from_options(asynchronous=True, **options))
        self.limiter = AsyncLimiter(self.core.settings)
        self.pipeline = _Pipeline(self)
        self.app: Any = None
        if app is not None:
            self.init_app(app)

    @property
    def settings(self) -> Settings:
        return self.core.settings

    def init_app(self, app: Any) -> None:
        """Install the middleware and exception handlers on ``app`` (before it serves)."""
        if getattr(app, "middleware_stack", None) is not None:
            raise ConfigurationError(
                "RestFault.init_app() must run before the app serves its first request"
            )
        self.app = app
        # Appended, not add_middleware()'d: innermost, so the app's own middleware (CORS)
        # wraps every response restfault sends.
        app.user_middleware.append(Middleware(self.pipeline.bind, _RouteRules(app, self.core)))
        for exc_type in (HTTPException, RestException, *self.core.translations.types()):
            app.add_exception_handler(exc_type, self._handle)
        app.add_exception_handler(Exception, self._handle_unexpected)
        self.core.translate_hooks.append(
            lambda exc_type: app.add_exception_handler(exc_type, self._handle)
        )
        try:
            from fastapi.exceptions import RequestValidationError
        except ImportError:
            pass
        else:
            app.add_exception_handler(RequestValidationError, self._handle_validation)
        app.state.restfault = self

    # -- decorators ----------------------------------------------------------------------

    def limit(
        self,
        value: str | list[str],
        *,
        code: str | None = None,
        key_func: Callable[[Any], Any] | None = None,
        cost: int | Callable[[Any], Any] = 1,
    ) -> Callable[[F], F]:
        """Put an extra limit on one endpoint (a budget of its own, on top of the defaults)."""
        return self.core.limit(value, code=code, key_func=key_func, cost=cost)

    def exempt(self, endpoint: F) -> F:
        """Exempt one endpoint from the default limits."""
        return self.core.exempt(endpoint)

    def translate(self, exc_type: type[BaseException]) -> Any:
        """Register ``fn(exc) -> RestException`` for ``exc_type`` (matched along its MRO)."""
        return self.core.translate(exc_type)

    # -- exception handlers --------------------------------------------------------------

    async def _handle(self, request: Request, exc: Exception) -> Response:
        if request.scope["type"] != "http":
            # Starlette hands a WebSocket's exceptions to the same handlers: restfault
            # answers HTTP only, so the error goes on as if restfault were not there.
            raise exc
        if isinstance(exc, HTTPException) and exc.status_code < 400:
            # Not an error (304 Not Modified, a redirect): answered as Starlette would.
            return Response(status_code=exc.status_code, headers=exc.headers)
        rendered, _ = self.core.render(exc, request.method, request.scope.get("path", ""))
        return _response(rendered, request.method == "HEAD")

    async def _handle_unexpected(self, request: Request, exc: Exception) -> Response:
        state = request.scope.get(STATE_KEY)
        if isinstance(state, RequestState) and state.answered is exc:
            # restfault's middleware already answered and logged this one; Starlette only
            # asks for a response it will not send because one has started.
            return Response(status_code=500)
        return await self._handle(request, exc)

    async def _handle_validation(self, request: Request, exc: Exception) -> Response:
        errors: Sequence[Any] = exc.errors()  # type: ignore[attr-defined]
        invalid_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if invalid_json is not None:
            detail = (invalid_json.get("ctx") or {}).get("error")
            rest: RestException = InvalidJsonException(
                f"Invalid JSON: {detail}" if detail else None
            )
        else:
            # Location, type and message of each field; never the client's input values.
            fields = [
                {"loc": list(e.get("loc", ())), "type": e.get("type"), "message": e.get("msg")}
                for e in errors
            ]
            rest = BadRequestException(
                "Request validation failed", code="VALIDATION_ERROR", context={"errors": fields}
            )
        rest.__cause__ = exc
        return await self._handle(request, rest)

    # -- routes --------------------------------------------------------------------------


_Rule = tuple[re.Pattern[str], frozenset[str] | None, tuple[Limit, ...], bool]


class _RouteRules:
    """One app's endpoints with limits or exemptions, as rules matched before routing."""

    def __init__(self, app: Any, core: Core) -> None:
        self.app = app
        self.core = core
        self._rules: list[_Rule] = []
        self._prepared = -1

    def prepare(self) -> None:
        """Find the routes of endpoints with limits or exemptions (cheap when unchanged).

        Each becomes a rule matched against the path before routing — only those routes,
        never the whole table — so that an endpoint's limits and exemption are known
        before anything runs, in Mounts and FastAPI's included routers alike.
        """
        routes = getattr(getattr(self.app, "router", None), "routes", None)
        if routes is None:
            return
        core = self.core
        version = len(routes) + len(core.route_limits) + len(core.exempt_endpoints)
        if version == self._prepared:  # only ever grows: a change changes the sum
            return
        rules: list[_Rule] = []
        if core.route_limits or core.exempt_endpoints:
            self._walk(routes, "", rules)
        self._rules = rules
        self._prepared = version

    def _walk(self, routes: Sequence[BaseRoute], prefix: str, rules: list[_Rule]) -> None:
        core = self.core
        for route in routes:
            if isinstance(route, Mount):
                self._walk(route.routes, prefix + route.path, rules)
                continue
            included = getattr(route, "original_router", None)  # FastAPI's include_router()
            if included is not None:
                context_prefix = getattr(getattr(route, "include_context", None), "prefix", "")
                self._walk(included.routes, prefix + (context_prefix or ""), rules)
                continue
            endpoint = getattr(route, "endpoint", None)
            path = getattr(route, "path", None)
            if endpoint is None or not isinstance(path, str):
                continue
            limits = core.route_limits.get(endpoint, ())
            exempt = endpoint in core.exempt_endpoints
            if limits or exempt:
                methods = getattr(route, "methods", None)
                regex = compile_path(prefix + path)[0]
                rules.append((regex, frozenset(methods) if methods else None, limits, exempt))

    def __call__(self, scope: Scope) -> tuple[tuple[Limit, ...], bool]:
        """The limits of the endpoint this request will reach, and whether it is exempt."""
        self.prepare()
        if not self._rules:
            return (), False
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
            path = path[len(root) :]
        method = scope["method"]
        for regex, methods, limits, exempt in self._rules:
            if regex.match(path) and (methods is None or method in methods):
                return limits, exempt
        return (), False


class _Pipeline(Pipeline):
    def __init__(self, restfault: RestFault) -> None:
        super().__init__(_missing_app, restfault.core, restfault.limiter, Request)
        self.restfault = restfault

    def bind(self, app: ASGIApp, rules: _RouteRules) -> _Pipeline:
        """The middleware around ``app`` (a copy, so one RestFault may serve two apps)."""
        bound = copy.copy(self)
        bound.app = app
        bound.route_rules = rules
        return bound


async def _missing_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("restfault's middleware is not bound to an app yet")
