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
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from ._core import Core
from ._http import clean_headers, status_line
from ._limiting import PlanItem, Verdict
from ._logging import log_after_start, logger
from ._policies import NO_ENDPOINT, EndpointRules
from ._storage import SyncLimiter
from ._translate import http_exception

__all__ = ["Body", "Exchange", "admit", "answer", "denial_response", "discard", "finish", "respond"]

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
    method = environ.get("REQUEST_METHOD", "GET")
    applicable = core.applicable(method, environ.get("PATH_INFO", ""), endpoint)
    if not applicable.rules:
        return None

    def address() -> str:
        return core.address_key(
            environ.get("REMOTE_ADDR"), lambda: environ.get("HTTP_X_FORWARDED_FOR")
        )

    if applicable.simple is not None:
        plan = core.simple_plan(applicable.simple, address())
    else:
        plan = _drive(core.plan(applicable, address, request or (lambda: environ)))
    verdict = limiter.check(plan)
    exchange.verdict = verdict
    if verdict is None:
        return None
    if core.has_shadow:
        core.observe(verdict, time.time())
    if applicable.deducts and not verdict.denied:
        exchange.deducts = [item for item in plan if item.limit.options.deduct_when is not None]
    return verdict


def denial_response(
    core: Core, verdict: Verdict, method: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The 429 of a denied verdict: status, headers (``Retry-After`` included; the
    rate-limit headers are the caller's) and body, rendered once per limit code."""
    now = time.time()
    denial = core.denial(verdict)
    if denial is None:  # a callable style renders each exception itself
        exc = verdict.reported.exception(now) if verdict.reported else None
        response, _ = core.render(exc, method, "")  # type: ignore[arg-type]
        return response.status, response.headers, response.body
    retry = ("Retry-After", str(core.retry_after(verdict, now)))
    return denial.status, [*denial.headers, retry], denial.body


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
    counted = []
    for item in exchange.deducts:
        try:
            if item.limit.options.deduct_when(exchange.status):  # type: ignore[misc]
                counted.append(item)
        except Exception:
            logger.exception("restfault: the deduct_when of %s failed", item.limit.name)
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


def _drive(steps: Generator[Any, Any, list[PlanItem]]) -> list[PlanItem]:
    """Run a plan; a WSGI adapter cannot await, so an awaitable from the app's callable
    is a bug in the app (a 500), never silently a key or a limit."""
    try:
        value = next(steps)
        while True:
            if hasattr(value, "__await__"):
                close = getattr(value, "close", None)
                if close is not None:
                    close()  # no "coroutine was never awaited" warning on top
                raise TypeError(
                    f"a callable given to restfault returned {type(value).__name__}, an "
                    "awaitable; a WSGI adapter cannot await it: make the callable sync"
                )
            value = steps.send(value)
    except StopIteration as done:
        result: list[PlanItem] = done.value
        return result
