"""Starlette and FastAPI: one object installs the middleware and the exception handlers.

>>> from starlette.applications import Starlette
>>> from starlette.responses import JSONResponse
>>> from starlette.routing import Route
>>> from restfault.starlette import RestFault
>>> restfault = RestFault(style="bkend", default_limits="120/minute")
>>> @restfault.limit("3/minute", code="EMAIL_RATE_LIMIT")
... async def email(request):
...     return JSONResponse({"queued": True}, status_code=202)
>>> app = Starlette(routes=[Route("/email", email, methods=["POST"])])
>>> restfault.init_app(app)

The middleware goes innermost (just outside Starlette's exception middleware), so every
middleware the app adds — CORS included — wraps the envelopes and 429s it sends. The
limits of a request are decided where Starlette's router hands it to its endpoint
(``_starlette_routes``), never by a second route matcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from ._adapter import RoutedAdapter
from ._asgi import Pipeline
from ._asgi_state import ANSWERED_KEY, BEGAN_KEY, STATE_KEY
from ._core import Core
from ._errors import BadRequestException, ConfigurationError, InvalidJsonException, RestException
from ._http import encode_headers
from ._observe import PlainFacts
from ._options import Options, Unpack
from ._render import ErrorResponse
from ._settings import Settings
from ._starlette_routes import Answered, Routes
from ._storage import AsyncLimiter

__all__ = ["RestFault"]


class RestFault(RoutedAdapter):
    """Envelopes, rate limits and batch translations for a Starlette or FastAPI app."""

    def __init__(self, app: Starlette | None = None, **options: Unpack[Options]) -> None:
        self.core = Core(Settings.from_options(asynchronous=True, **options), asynchronous=True)
        self.limiter = AsyncLimiter(self.core.settings)
        self.app: Starlette | None = None
        self._installed: list[Starlette] = []
        self.core.translate_hooks.append(self._translated)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Starlette) -> None:
        """Install the middleware and exception handlers on ``app`` (before it serves)."""
        if getattr(app, "middleware_stack", None) is not None:
            raise ConfigurationError(
                "RestFault.init_app() must run before the app serves its first request"
            )
        self.app = self.app or app
        # Appended, not add_middleware()'d: innermost, so the app's own middleware (CORS)
        # wraps every response restfault sends.
        app.user_middleware.append(Middleware(_StarlettePipeline, restfault=self, routed_app=app))
        _body_limit_inside(app)
        self.install_handlers(app, top=True)
        app.state.restfault = self
        if _is_fastapi(app):
            from ._fastapi_openapi import install_openapi

            install_openapi(app, self.core)  # its OpenAPI document tells the truth

    def install_handlers(self, app: Starlette, *, top: bool) -> None:
        """Answer ``app``'s errors with the envelope: the top app's, and a mounted app's."""
        if app in self._installed:
            return
        if app.middleware_stack is not None:
            from ._logging import logger

            logger.warning(
                "restfault: the mounted app %r already served requests before the parent "
                "did; its errors keep its own handlers",
                app,
            )
            return
        self._installed.append(app)
        # The top app's RestExceptions reach restfault's middleware, which answers them
        # like any other exception (Starlette's handlers then reset ``exc.__traceback__``,
        # which a frozen dataclass exception refuses). A mounted app answers its own: its
        # server-error middleware would otherwise answer them 500 first.
        handled = (HTTPException,) if top else (HTTPException, RestException)
        for exc_type in (*handled, *self.core.translations.types()):
            app.add_exception_handler(exc_type, self._handle)
        if top:
            app.add_exception_handler(Exception, self._handle_unexpected)
        try:
            from fastapi.exceptions import RequestValidationError
        except ImportError:
            pass
        else:
            app.add_exception_handler(RequestValidationError, self._handle_validation)

    def _translated(self, exc_type: type[BaseException]) -> None:
        for app in self._installed:
            app.add_exception_handler(exc_type, self._handle)  # type: ignore[arg-type]

    # -- exception handlers --------------------------------------------------------------

    async def _handle(self, request: Request, exc: Exception) -> Response:
        if request.scope["type"] != "http":
            # Starlette hands a WebSocket's exceptions to the same handlers: restfault
            # answers HTTP only, so the error goes on as if restfault were not there.
            raise exc
        if isinstance(exc, HTTPException) and exc.status_code < 400:
            # Not an error (304 Not Modified, a redirect): answered as Starlette would.
            return Response(status_code=exc.status_code, headers=exc.headers)
        facts = request.scope.get(STATE_KEY)
        if facts is None:  # no state: nothing to admit, or raised further out
            facts = PlainFacts(request.method, request.scope.get("path", ""))
            facts.began = request.scope.get(BEGAN_KEY, facts.began)
        elif not facts.admitted and await facts.pipeline.admit(facts, None):
            # No endpoint was reached (a routing 404): admitted before the 404 is rendered
            # and logged, as its 429 or maintenance 503 replaces it.
            return Answered()
        rendered, _ = self.core.render(exc, facts)
        return _response(rendered, request.method == "HEAD")

    async def _handle_unexpected(self, request: Request, exc: Exception) -> Response:
        if request.scope.get(ANSWERED_KEY) is exc:
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


class _StarlettePipeline(Pipeline):
    """The middleware around one app: its dispatch points are put in place first."""

    def __init__(self, app: ASGIApp, restfault: RestFault, routed_app: Starlette) -> None:
        super().__init__(
            app, restfault.core, restfault.limiter, request_factory=Request, routed=True
        )
        self.routes = Routes(restfault, routed_app, self)
        self.prepare = self.routes.prepare


def _response(rendered: ErrorResponse, head: bool) -> Response:
    response = Response(b"" if head else rendered.body, status_code=rendered.status)
    response.raw_headers = encode_headers(rendered.headers)
    return response


def _is_fastapi(app: Starlette) -> bool:
    try:
        from fastapi import FastAPI
    except ImportError:
        return False
    return isinstance(app, FastAPI)


def _body_limit_inside(app: Starlette) -> None:
    """Starlette's app-wide ``max_body_size`` runs outside every user middleware and
    answers its 413 in plain text: moved inside restfault's middleware, the 413 becomes
    the envelope like every other error (and CORS still wraps it)."""
    size = getattr(app, "max_body_size", None)
    if size is None:
        return
    from starlette.middleware.body_limit import RequestBodyLimitMiddleware

    app.max_body_size = None
    app.user_middleware.append(Middleware(RequestBodyLimitMiddleware, max_body_size=size))
