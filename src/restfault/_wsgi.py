"""The WSGI driver: carries a request's facts to the core and its answers back.

Shared by ``restfault.wsgi`` and the Flask adapter. ``admit`` decides a request's limits
(sync ``limits`` storage, bounded by ``storage_timeout``); ``answer`` starts the envelope
of an exception; ``Body`` wraps the app's body iterable to convert a held error response,
to answer a failure before the first chunk with the envelope (after it, log and re-raise,
so the server closes the connection instead of sending a second, corrupt response), and
to count ``deduct_when`` limits once the response is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._core import Core
from ._http import clean_headers, status_line
from ._limiting import PlanItem, Verdict
from ._logging import log_after_start
from ._policies import Admission, Check, Steps
from ._registry import NO_ENDPOINT, EndpointRules
from ._storage import SyncLimiter
from ._translate import http_exception

__all__ = ["Body", "Exchange", "admit", "answer", "discard", "finish", "refusal", "respond"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
EXCHANGE_KEY = "restfault.exchange"  # in the environ: the Flask adapter's hooks find it


class Exchange:
    """One request's WSGI state, shared by the middleware, the hooks and the body."""

    __slots__ = ("deducts", "environ", "held", "start_response", "started", "status", "verdict")

    def __init__(self, environ: Environ, start_response: StartResponse) -> None:
        self.environ = environ
        self.start_response = start_response
        self.verdict: Verdict | None = None
        self.held: tuple[int, list[tuple[str, str]]] | None = None
        self.started = False
        self.status = 0
        self.deducts: list[PlanItem] = []


def admit(
    core: Core,
    limiter: SyncLimiter,
    exchange: Exchange,
    endpoint: EndpointRules = NO_ENDPOINT,
    request: Callable[[], Any] | None = None,
) -> Verdict | None:
    """Decide this request's limits; the verdict (``.denied`` for a 429), or None."""
    environ = exchange.environ
    if core.requests_to_inspect > 0:
        core.inspect_request(
            bool(environ.get("wsgi.multiprocess")),  # gunicorn -w 2 and more
            "HTTP_X_FORWARDED_FOR" in environ or "HTTP_FORWARDED" in environ,
        )

    def address() -> str:
        return core.address_key(
            environ.get("REMOTE_ADDR"), lambda: environ.get("HTTP_X_FORWARDED_FOR")
        )

    steps = core.admit(
        environ.get("REQUEST_METHOD", "GET"),
        environ.get("PATH_INFO", ""),
        endpoint,
        address,
        request or (lambda: environ),
        time.time,
    )
    admission = _drive(steps, limiter)
    exchange.verdict = admission.verdict
    exchange.deducts = admission.deducts
    return admission.verdict


def refusal(core: Core, verdict: Verdict) -> tuple[int, list[tuple[str, str]], bytes]:
    """The 429 of a denied verdict: status, every header and the body."""
    denial, extra = core.refusal(verdict, time.time())
    return denial.status, [*denial.headers, *extra], denial.body


def answer(core: Core, exchange: Exchange, exc: BaseException) -> list[bytes]:
    """Start the envelope response for ``exc`` and return its body."""
    environ = exchange.environ
    method = environ.get("REQUEST_METHOD", "")
    response, _ = core.render(exc, method, environ.get("PATH_INFO", ""))
    respond(core, exchange, response.status, response.headers, exc)
    return [b""] if method == "HEAD" else [response.body]


def respond(
    core: Core,
    exchange: Exchange,
    status: int,
    headers: list[tuple[str, str]],
    exc: BaseException | None = None,
) -> None:
    """Start restfault's own response, with the rate-limit headers."""
    # exc_info only when replacing headers the app already passed on (PEP 3333); on a
    # first call, servers such as werkzeug's test client re-raise it.
    exc_info = (type(exc), exc, exc.__traceback__) if exchange.started and exc else None
    exchange.started = True
    exchange.status = status
    rate = core.rate_headers(exchange.verdict, time.time())
    exchange.start_response(status_line(status), clean_headers(headers + rate), exc_info)


def finish(core: Core, limiter: SyncLimiter, exchange: Exchange) -> None:
    """After the response: count the ``deduct_when`` limits its final status asks for."""
    if not (exchange.deducts and exchange.status):
        return
    counted = core.counted_after(exchange.deducts, exchange.status)
    exchange.deducts = []
    if counted:
        limiter.deduct(counted)


def discard(data: bytes) -> None:
    """The write() of a response restfault replaces: the bytes are not sent."""


class Body:
    """The app's body iterable: converts a held error response, answers a failure before
    the first chunk with the envelope, logs (and re-raises) one after it, and counts the
    ``deduct_when`` limits when closed."""

    def __init__(
        self, core: Core, limiter: SyncLimiter, body: Iterable[bytes], exchange: Exchange
    ) -> None:
        self.core = core
        self.limiter = limiter
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
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            finish(self.core, self.limiter, self.exchange)


def _drive(steps: Steps, limiter: SyncLimiter) -> Admission:
    """Run an admission: evaluate its plan on the storage. A WSGI adapter cannot await,
    so an awaitable from the app's callable is a bug in the app (a 500), never silently
    a key or a limit."""
    try:
        value = next(steps)
        while True:
            if type(value) is Check:
                value = limiter.check(value.plan)
            elif hasattr(value, "__await__"):
                close = getattr(value, "close", None)
                if close is not None:
                    close()  # no "coroutine was never awaited" warning on top
                raise TypeError(
                    f"a callable given to restfault returned {type(value).__name__}, an "
                    "awaitable; a WSGI adapter cannot await it: make the callable sync"
                )
            value = steps.send(value)
    except StopIteration as done:
        admission: Admission = done.value
        return admission
