"""Flask: an extension answering every error with the envelope and enforcing rate limits.

>>> restfault = RestFault(style="bkend", default_limits="120/minute")
>>> restfault.init_app(app)
>>> @app.post("/email")
... @restfault.limit("3/minute", code="EMAIL_RATE_LIMIT")
... def email(): ...

One error handler for ``Exception`` catches routing 404/405, werkzeug's HTTP errors (415,
400 from ``get_json()``...), RestExceptions, translated and unexpected exceptions, so the
answer is the same whether ``TESTING``, ``DEBUG`` or ``PROPAGATE_EXCEPTIONS`` is on or off.
Limits are hit in ``before_request`` (sync ``limits`` storage); headers are added in
``after_request``, which Flask runs for error responses too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, request
from werkzeug.exceptions import BadRequestKeyError, HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from ._core import Core, is_json_media_type
from ._settings import Settings
from ._storage import SyncLimiter
from ._translate import active_translations, http_exception
from .wsgi import Body, Exchange, _clean, environ_client_key, rate_headers

__all__ = ["RestFault"]

F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V")

EXTENSION_KEY = "restfault"
DECISION_KEY = "restfault.decision"  # in the WSGI environ: read after Flask has returned


class RestFault:
    """Envelopes, rate limits and batch translations for a Flask app, in Flask's conventions."""

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self.core = Core(Settings.from_options(asynchronous=False, **options))
        self.limiter = SyncLimiter(self.core.settings)
        self._exempt_blueprints: set[str] = set()
        if app is not None:
            self.init_app(app)

    @property
    def settings(self) -> Settings:
        return self.core.settings

    def init_app(self, app: Flask) -> None:
        """Register the error handler and request hooks on ``app``."""
        app.extensions[EXTENSION_KEY] = self
        app.register_error_handler(Exception, self._handle)
        app.before_request(self._before_request)
        app.after_request(self._after_request)
        # Around Flask's wsgi_app (a call, where a teardown hook costs several): the
        # translations run_batch applies by itself, and a streamed body failing before its
        # first chunk, which Flask no longer sees, answered with the envelope.
        wsgi_app, core = app.wsgi_app, self.core

        def restfault_wsgi_app(environ: Any, start_response: Any) -> Any:
            exchange = Exchange(environ, start_response)

            def passed_on(status: str, headers: Any, exc_info: Any = None) -> Any:
                exchange.started = True
                return start_response(status, headers, exc_info)

            token = active_translations.set(core.translations)
            try:
                body = wsgi_app(environ, passed_on)
            finally:
                active_translations.reset(token)
            exchange.decision = environ.get(DECISION_KEY)  # for an envelope sent mid-body
            file_wrapper = environ.get("wsgi.file_wrapper")
            if isinstance(file_wrapper, type) and isinstance(body, file_wrapper):
                return body  # left as it is, so the server can still sendfile() it
            return Body(core, body, exchange)

        app.wsgi_app = restfault_wsgi_app  # type: ignore[method-assign]

    # -- decorators ----------------------------------------------------------------------

    def limit(
        self,
        value: str | list[str],
        *,
        code: str | None = None,
        key_func: Callable[[Any], Any] | None = None,
        cost: int | Callable[[Any], Any] = 1,
    ) -> Callable[[F], F]:
        """Put an extra limit on one view (a budget of its own, on top of the defaults).

        ``key_func`` and a callable ``cost`` receive ``flask.request``.
        """
        return self.core.limit(value, code=code, key_func=key_func, cost=cost)

    def exempt(self, view: V) -> V:
        """Exempt one view — or every view of a Blueprint — from the default limits."""
        if isinstance(view, Blueprint):
            self._exempt_blueprints.add(view.name)
            return view
        self.core.exempt_endpoints.add(view)
        return view

    def translate(self, exc_type: type[BaseException]) -> Any:
        """Register ``fn(exc) -> RestException`` for ``exc_type`` (matched along its MRO)."""
        return self.core.translate(exc_type)

    # -- hooks ---------------------------------------------------------------------------

    def _before_request(self) -> WerkzeugResponse | None:
        core = self.core
        view = None
        if core.route_limits or core.exempt_endpoints:  # else no view can change the answer
            endpoint = request.endpoint
            view = current_app.view_functions.get(endpoint) if endpoint else None
        limits = core.route_limits.get(view, ()) if view is not None else ()
        if core.default_limits and not self._is_exempt(view):
            limits = core.default_limits + limits
        if not limits:
            return None
        key = environ_client_key(core, request, request.environ)
        decision = self.limiter.check(core.plan(limits, request, key))
        request.environ[DECISION_KEY] = decision
        if decision is None or decision.allowed:
            return None
        # The 429 rendered once per code; answered here rather than raised and caught.
        now = time.time()
        rendered = core.denial(decision.code)
        if rendered is None:  # a callable style renders each exception itself
            raise decision.exception(now)
        headers = [*rendered.headers, ("Retry-After", str(decision.retry_after(now)))]
        return current_app.response_class(rendered.body, status=429, headers=headers)

    def _is_exempt(self, view: Any) -> bool:
        core = self.core
        if view in core.exempt_endpoints or (
            core.settings.exempt_paths and core.is_exempt_path(request.path)
        ):
            return True
        return bool(self._exempt_blueprints) and any(
            name in self._exempt_blueprints for name in request.blueprints
        )

    def _after_request(self, response: WerkzeugResponse) -> WerkzeugResponse:
        if (
            response.status_code >= 400
            and self.core.settings.convert_error_responses
            and not is_json_media_type(response.content_type)
        ):
            # A view's own text or HTML error (``return "nope", 404``): the envelope, with
            # the status and headers kept, as the ASGI and WSGI middlewares answer.
            rest = http_exception(response.status_code, None, response.headers.items())
            response = self._handle(rest)
        headers = rate_headers(self.core, request.environ.get(DECISION_KEY))
        if headers:
            response.headers.extend(headers)
        return response

    def _handle(self, exc: Exception) -> WerkzeugResponse:
        if isinstance(exc, HTTPException) and (exc.code is None or exc.code < 400):
            # Not an error (a routing redirect, abort(response)): reaches this handler only
            # under TRAP_HTTP_EXCEPTIONS; answered as Flask would.
            return exc.get_response()
        if isinstance(exc, BadRequestKeyError):
            # Flask's DEBUG appends the KeyError to the message; answer as without DEBUG.
            exc.show_exception = False
        rendered, _ = self.core.render(exc, request.method, request.path)
        # CR/LF blanked as the other adapters do: werkzeug refuses them, which would turn
        # the envelope into Flask's own 500.
        return current_app.response_class(
            rendered.body, status=rendered.status, headers=_clean(rendered.headers)
        )
