"""Pure WSGI middleware: envelopes and rate limits for any WSGI application.

>>> def app(environ, start_response): ...
>>> app = RestFaultMiddleware(app, default_limits="100/minute")

For each request it hits the default and path limits (sync ``limits`` storage, bounded
by ``storage_timeout``), turns an exception that escapes the app before the response
started into the envelope, turns a non-JSON error response (status >= 400) into the
envelope with its status and headers kept, and adds the ``X-RateLimit-*`` headers. The
machinery is the private WSGI driver, ``restfault._wsgi``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ._adapter import Adapter
from ._core import Core
from ._options import Options, Unpack
from ._settings import Settings
from ._storage import SyncLimiter
from ._translate import activate, deactivate
from ._wsgi import (
    Environ,
    Exchange,
    StartResponse,
    admit,
    answer,
    respond,
)
from ._wsgi_body import Body

__all__ = ["RestFaultMiddleware"]

WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class RestFaultMiddleware(Adapter):
    """Envelopes and rate limits for any WSGI app; takes every option of API.md §4.

    ``key_func`` and limit callables receive the WSGI environ; a ``key_func`` returning
    ``None`` keys the request by client address.
    """

    def __init__(self, app: WSGIApp, **options: Unpack[Options]) -> None:
        self.app = app
        self.core = Core(Settings.from_options(asynchronous=False, **options), asynchronous=False)
        self.limiter = SyncLimiter(self.core.settings)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        core = self.core
        exchange = Body(core, self.limiter, environ, start_response)

        activation = activate(core.translations)
        try:
            # The request's id is current while the app runs (and in Body, while it
            # produces a streamed body).
            exchange.body = exchange.run(self._call, exchange)
        finally:
            deactivate(activation)
        return exchange

    def _call(self, exchange: Exchange) -> Iterable[bytes]:
        core = self.core
        try:
            if core.admits:
                answered = admit(self.limiter, exchange)
                if answered is not None:  # a 429, or maintenance mode's 503
                    status, headers, body = answered
                    respond(exchange, status, headers)
                    return [b"" if exchange.method == "HEAD" else body]
            return self.app(exchange.environ, exchange)
        except Exception as exc:
            return answer(exchange, exc)
