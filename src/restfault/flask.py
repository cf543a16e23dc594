"""Flask: an extension answering every error with the envelope and enforcing rate limits.

>>> from flask import Flask
>>> from restfault.flask import RestFault
>>> restfault = RestFault(style="bkend", default_limits="120/minute")
>>> app = Flask(__name__)
>>> restfault.init_app(app)
>>> @app.post("/email")
... @restfault.limit("3/minute", code="EMAIL_RATE_LIMIT")
... def email():
...     return {"queued": True}, 202

One error handler for ``Exception`` catches routing 404/405, werkzeug's HTTP errors (415,
400 from ``get_json()``...), RestExceptions, translated and unexpected exceptions, so the
answer is the same whether ``TESTING``, ``DEBUG`` or ``PROPAGATE_EXCEPTIONS`` is on or off.
Limits are decided in ``before_request``, once Flask's router has matched the view. Where
the response starts (``start_response``), as in the WSGI middleware, a view's own text
error is held to be answered with the envelope, and the rate-limit headers and the
request id are added: restfault has no ``after_request`` hook, which Flask would pay for on
every request. The machinery is the private WSGI driver, ``restfault._wsgi``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, request
from werkzeug.exceptions import BadRequestKeyError, HTTPException, InternalServerError
from werkzeug.wrappers import Response as WerkzeugResponse

from ._adapter import RoutedAdapter
from ._core import Core
from ._http import clean_headers
from ._logging import logger
from ._options import Options, Unpack
from ._registry import NO_ENDPOINT, EndpointRules, endpoint_name, reachable
from ._settings import Settings
from ._storage import SyncLimiter
from ._translate import activate, deactivate
from ._wsgi import EXCHANGE_KEY, Exchange, admit, answer, respond
from ._wsgi_body import Body

__all__ = ["RestFault"]

V = TypeVar("V")

EXTENSION_KEY = "restfault"


class RestFault(RoutedAdapter):
    """Envelopes, rate limits and batch translations for a Flask app, in Flask's conventions."""

    def __init__(self, app: Flask | None = None, **options: Unpack[Options]) -> None:
        self.core = Core(Settings.from_options(asynchronous=False, **options), asynchronous=False)
        self.limiter = SyncLimiter(self.core.settings)
        self._exempt_blueprints: set[str] = set()
        self._exempted: dict[EndpointRules, EndpointRules] = {}
        self._checked: set[Flask] = set()
        self._before_flask: dict[Flask, bool] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the error handler and request hooks on ``app``."""
        app.extensions[EXTENSION_KEY] = self
        app.register_error_handler(Exception, self._handle)
        position = len(app.before_request_funcs.get(None, ()))
        app.before_request(self._before_request)
        # Whether restfault's before_request hook is in the app's list: Flask pays for
        # every hook on every request, and it has nothing to do while no limit applies
        # or requests are decided before Flask runs (then it is taken out, and put back
        # at its place should a limit be declared later).
        hooked = [True]
        # Around Flask's wsgi_app (one call, where a teardown hook costs several): the
        # translations run_batch applies by itself; a view's own text error, held where
        # its response starts (the exchange is the app's ``start_response``) and answered
        # with the envelope by the exchange as the body (``Body``);
        # a streamed body failing before its first chunk, which Flask no longer sees,
        # answered too; an error escaping Flask itself (PROPAGATE_EXCEPTIONS) too;
        # deduct_when after the response.
        wsgi_app, core, limiter = app.wsgi_app, self.core, self.limiter

        def restfault_wsgi_app(environ: Any, start_response: Any) -> Any:
            exchange = Body(core, limiter, environ, start_response)
            environ[EXCHANGE_KEY] = exchange
            admits = core.admits
            early = admits and core.admits_unrouted and self._decides_before_flask(app)
            if (admits and not early) is not hooked[0]:
                hooked[0] = not hooked[0]
                self._hook_before_request(app, hooked[0], position)
            activation = activate(core.translations)
            try:
                answered = None
                if early:
                    # Nothing Flask would do first changes the decision: admitted before
                    # Flask runs, so a 429 costs none of Flask's request machinery.
                    exchange.admitted = True
                    answered = exchange.run(admit, limiter, exchange)
                if answered is None:
                    exchange.body = exchange.run(wsgi_app, environ, exchange)
                else:  # a 429
                    status, headers, content = answered
                    respond(exchange, status, headers)
                    exchange.body = [b"" if exchange.method == "HEAD" else content]
            except Exception as exc:
                exchange.body = exchange.run(answer, exchange, exc)
            finally:
                deactivate(activation)
            file_wrapper = environ.get("wsgi.file_wrapper")
            if (
                exchange.held is None
                and isinstance(file_wrapper, type)
                and isinstance(exchange.body, file_wrapper)
            ):
                # Left as it is, so the server can still sendfile() it: its status is final.
                exchange.done()
                return exchange.body
            return exchange

        app.wsgi_app = restfault_wsgi_app  # type: ignore[method-assign]

    def exempt(self, view: V) -> V:
        """Exempt one view — or every view of a Blueprint — from the default and path limits."""
        if isinstance(view, Blueprint):
            self._exempt_blueprints.add(view.name)
            return view
        return super().exempt(view)  # type: ignore[type-var]

    def _decides_before_flask(self, app: Flask) -> bool:
        """Whether a request to ``app`` may be admitted before Flask runs (when the core
        needs no router, ``Core.admits_unrouted``): no Blueprint is exempt, restfault's
        ``before_request`` is the app's first (no hook of the app would run before the
        decision) and the app has no ``after_request`` hook (Flask-CORS and its kind add
        their headers there, to a 429 too). Flask refuses new hooks once it has handled
        a request, so this is decided once per app."""
        decided = self._before_flask.get(app)
        if decided is None:
            befores = app.before_request_funcs.get(None, [])
            afters = [f for funcs in app.after_request_funcs.values() for f in funcs]
            decided = (
                not self._exempt_blueprints
                and bool(befores)
                and befores[0] == self._before_request
                and not afters
            )
            self._before_flask[app] = decided
        return decided

    def _hook_before_request(self, app: Flask, hooked: bool, position: int) -> None:
        """Put restfault's before_request hook in the app's list, or take it out. The list
        is replaced, never changed in place: a request in another thread may be going
        through it."""
        funcs = [f for f in app.before_request_funcs.get(None, ()) if f != self._before_request]
        if hooked:
            funcs.insert(min(position, len(funcs)), self._before_request)
        app.before_request_funcs[None] = funcs

    # -- hooks ---------------------------------------------------------------------------

    def _before_request(self) -> WerkzeugResponse | None:
        core = self.core
        if not core.admits:
            return None
        exchange = self._exchange()
        if exchange.admitted:  # before Flask ran (``Core.admits_unrouted``)
            return None
        exchange.admitted = True
        answered = admit(self.limiter, exchange, self._endpoint_rules(), _request)
        if answered is None:
            return None
        # A 429 (rendered once per code) or maintenance mode's 503, every header included:
        # answered here rather than raised and caught.
        status, headers, body = answered
        return current_app.response_class(body, status=status, headers=headers)

    def _exchange(self) -> Exchange:
        exchange: Exchange | None = request.environ.get(EXCHANGE_KEY)
        if exchange is None:  # the app's wsgi_app was replaced after init_app
            exchange = Exchange(self.core, request.environ, _no_start)
            request.environ[EXCHANGE_KEY] = exchange
        return exchange

    def _endpoint_rules(self) -> EndpointRules:
        """What the view Flask's router matched brings (and a Blueprint's exemption)."""
        registry = self.core.registry
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if app not in self._checked:
            self._checked.add(app)
            self._warn_unrouted(app)
        if not (registry or self._exempt_blueprints):
            return NO_ENDPOINT
        endpoint = request.endpoint
        view = app.view_functions.get(endpoint) if endpoint else None
        rules = registry.for_endpoint(view, request.method) if view is not None else NO_ENDPOINT
        blueprints = self._exempt_blueprints
        if blueprints and not rules.exempt and any(b in blueprints for b in request.blueprints):
            exempted = self._exempted.get(rules)
            if exempted is None:
                exempted = self._exempted[rules] = EndpointRules(True, rules.rules)
            rules = exempted
        return rules

    def _warn_unrouted(self, app: Flask) -> None:
        reached: set[Any] = set()
        for view in app.view_functions.values():
            reached.update(reachable(view))
        for function in self.core.registry.declared() - reached:
            logger.warning(
                "restfault: %s has a limit or exemption but no view of the app leads to it; "
                "decorate the function the route is given (check the decorator order)",
                endpoint_name(function),
            )

    def _handle(self, exc: Exception) -> WerkzeugResponse:
        if isinstance(exc, InternalServerError) and exc.original_exception is not None:
            # Flask wraps an error it could not hand to a handler (one raised by an
            # after_request hook): answer and log the real one.
            original = exc.original_exception
            exc = original if isinstance(original, Exception) else exc
        if isinstance(exc, HTTPException) and (exc.code is None or exc.code < 400):
            # Not an error (a routing redirect, abort(response)): reaches this handler only
            # under TRAP_HTTP_EXCEPTIONS; answered as Flask would.
            return exc.get_response()
        if isinstance(exc, BadRequestKeyError):
            # Flask's DEBUG appends the KeyError to the message; answer as without DEBUG.
            exc.show_exception = False
        rendered, _ = self.core.render(exc, self._exchange())
        # CR/LF blanked as the other adapters do: werkzeug refuses them, which would turn
        # the envelope into Flask's own 500.
        return current_app.response_class(
            rendered.body, status=rendered.status, headers=clean_headers(rendered.headers)
        )


def _no_start(*args: Any) -> None:
    raise RuntimeError("restfault: start_response is not available here")


def _request() -> Any:
    """What the app's callables receive: Flask's request proxy."""
    return request
