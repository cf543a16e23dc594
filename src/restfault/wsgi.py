"""Pure WSGI middleware: envelopes and rate limits for any WSGI application.

>>> app.wsgi_app = RestFaultMiddleware(app.wsgi_app, default_limits="100/minute")

For each request it hits the default limits (sync ``limits`` storage, bounded by
``storage_timeout``), turns an exception that escapes the app before the response
started into the envelope, turns a non-JSON error response (status >= 400) into the
envelope with its status and headers kept, and adds ``X-RateLimit-*`` headers.
An error raised while the body is already being sent is logged and re-raised, so the
server closes the connection instead of sending a second, corrupt response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._core import Core, is_json_media_type, log_after_start
from ._errors import reason_phrase
from ._keys import client_address, safe_key
from ._limiting import RateLimitDecision
from ._settings import Settings
from ._storage import SyncLimiter
from ._translate import active_translations, http_exception

__all__ = ["RestFaultMiddleware"]

logger = logging.getLogger("restfault")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def environ_client_key(core: Core, request: Any, environ: Environ) -> str:
    """The key of a WSGI request: ``key_func(request)``, else the client's address."""
    settings = core.settings
    key = settings.key_func(request) if settings.key_func is not None else None
    if key is None:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR") if settings.trusted_proxies else None
        key = client_address(environ.get("REMOTE_ADDR"), forwarded, settings.trusted_proxies)
    return safe_key(key)


def rate_headers(core: Core, decision: RateLimitDecision | None) -> list[tuple[str, str]]:
    if decision is None:
        return []
    settings = core.settings
    return decision.headers(
        time.time(), legacy=settings.headers_enabled, ietf=settings.ietf_headers
    )


def _status_line(status: int) -> str:
    return f"{status} {reason_phrase(status)}"


def _clean(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v.replace("\r", " ").replace("\n", " ")) for k, v in headers]


class RestFaultMiddleware:
    """Envelopes and rate limits for any WSGI app; takes every option of API.md §4.

    ``key_func`` receives the WSGI environ; returning ``None`` keys the request by client
    address. ``exempt_paths`` exempts paths (health checks) from the default limits.
    """

    def __init__(self, app: WSGIApp, **options: Any) -> None:
        self.app = app
        self.core = Core(Settings.from_options(asynchronous=False, **options))
        self.limiter = SyncLimiter(self.core.settings)

    def translate(self, exc_type: type[BaseException]) -> Any:
        """A decorator registering ``fn(exc) -> RestException`` for ``exc_type``."""
        return self.core.translate(exc_type)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        core = self.core
        exchange = Exchange(environ, start_response)

        def hold_errors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            code = int(status.split(" ", 1)[0])
            content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
            if (
                core.settings.convert_error_responses
                and code >= 400
                and not is_json_media_type(content_type)
            ):
                exchange.held = (code, headers)
                return _discard
            exchange.started = True
            return start_response(
                status, [*headers, *rate_headers(core, exchange.decision)], exc_info
            )

        token = active_translations.set(core.translations)
        try:
            if core.default_limits and not core.is_exempt_path(environ.get("PATH_INFO", "")):
                key = environ_client_key(core, environ, environ)
                exchange.decision = self.limiter.check(core.plan(core.default_limits, environ, key))
                if exchange.decision is not None and not exchange.decision.allowed:
                    raise exchange.decision.exception(time.time())
            body = self.app(environ, hold_errors)
        except Exception as exc:
            return answer(core, exchange, exc)
        finally:
            active_translations.reset(token)
        return Body(core, body, exchange)


def answer(core: Core, exchange: Exchange, exc: BaseException) -> list[bytes]:
    """Start the envelope response for ``exc`` and return its body."""
    environ = exchange.environ
    method = environ.get("REQUEST_METHOD", "")
    response, _ = core.render(exc, method, environ.get("PATH_INFO", ""))
    # exc_info only when replacing headers the app already passed on (PEP 3333); on a
    # first call, servers such as werkzeug's test client re-raise it.
    exc_info = (type(exc), exc, exc.__traceback__) if exchange.started else None
    exchange.started = True
    exchange.start_response(
        _status_line(response.status),
        _clean(response.headers + rate_headers(core, exchange.decision)),
        exc_info,
    )
    return [b""] if method == "HEAD" else [response.body]


class Exchange:
    """One request's WSGI state, shared by the middleware and the body it returns."""

    __slots__ = ("decision", "environ", "held", "start_response", "started")

    def __init__(self, environ: Environ, start_response: StartResponse) -> None:
        self.environ = environ
        self.start_response = start_response
        self.decision: RateLimitDecision | None = None
        self.held: tuple[int, list[tuple[str, str]]] | None = None
        self.started = False


def _discard(data: bytes) -> None:
    """The write() of a response restfault replaces: the bytes are not sent."""


class Body:
    """The app's body iterable: converts a held error response, answers a failure before
    the first chunk with the envelope, logs (and re-raises) one after it."""

    def __init__(self, core: Core, body: Iterable[bytes], exchange: Exchange) -> None:
        self.core = core
        self.body = body
        self.exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        exchange = self.exchange
        iterator = iter(self.body)
        # A server sends the headers with the first non-empty chunk (PEP 3333): until then
        # the envelope can still replace them, even after start_response was passed on.
        body_sent = False
        while exchange.held is None:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                if body_sent:
                    environ = exchange.environ
                    log_after_start(
                        exc, environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
                    )
                    raise
                yield from answer(self.core, exchange, exc)
                return
            if exchange.held is None:
                body_sent = body_sent or bool(chunk)
                yield chunk
        if exchange.held is not None:
            status, headers = exchange.held
            exchange.held = None
            yield from answer(self.core, exchange, http_exception(status, None, headers))

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
