"""Pure ASGI middleware: envelopes and rate limits for any ASGI application.

>>> async def app(scope, receive, send): ...
>>> app = RestFaultMiddleware(app, style="bkend", default_limits="100/minute")

For each HTTP request (WebSocket and lifespan scopes pass straight through) it hits the
default and path limits (``limits.aio`` storage, never blocking the event loop) and
answers 429 with the envelope when one is exhausted; turns an exception that escapes the
app before the response started, and a framework's own non-JSON error response, into
the envelope; and adds the ``X-RateLimit-*`` headers. A response that has already started
is never rewritten: the error is logged and re-raised, so the server closes the
connection. The machinery is the private ASGI driver, ``restfault._asgi``.
"""

from __future__ import annotations

from ._adapter import Adapter
from ._asgi import Pipeline
from ._asgi_state import ASGIApp
from ._core import Core
from ._options import Options, Unpack
from ._settings import Settings
from ._storage import AsyncLimiter

__all__ = ["RestFaultMiddleware"]


class RestFaultMiddleware(Pipeline, Adapter):
    """Envelopes and rate limits for any ASGI app; takes every option of API.md §4.

    ``key_func`` and limit callables (sync or async) receive the ASGI scope; a
    ``key_func`` returning ``None`` keys the request by client address.
    """

    def __init__(self, app: ASGIApp, **options: Unpack[Options]) -> None:
        core = Core(Settings.from_options(asynchronous=True, **options), asynchronous=True)
        super().__init__(app, core, AsyncLimiter(core.settings))
