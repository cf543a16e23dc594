"""The WSGI driver: carries a request's facts to the core and its answers back.

Shared by ``restfault.wsgi`` and the Flask adapter. An ``Exchange`` is one request (its
id too: ``request_id_header``) and the ``start_response`` the app is given; ``admit``
decides its maintenance mode and limits (sync ``limits`` storage, bounded by
``storage_timeout``); ``answer`` starts the envelope of an exception. The adapters make
each request's exchange a ``_wsgi_body.Body``: the same object is the body iterable
around the app's, so a request costs one object of restfault's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ._core import Core
from ._http import clean_headers, status_line
from ._limiting import PlanItem, Verdict, counted_after
from ._policies import Admission, Check, Steps
from ._registry import NO_ENDPOINT, EndpointRules
from ._request_id import assign_request_id, request_id_var
from ._storage import SyncLimiter

__all__ = [
    "Answer",
    "Exchange",
    "admit",
    "answer",
    "discard",
    "finish",
    "respond",
    "response_headers",
    "with_request_id",
]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
# restfault's own answer to a request it does not let through: status, headers, body.
Answer = tuple[int, list[tuple[str, str]], bytes]
EXCHANGE_KEY = "restfault.exchange"  # in the environ: the Flask adapter's hooks find it
T = TypeVar("T")


class Exchange:
    """One request's WSGI state, shared by the middleware, the hooks and the body; called,
    the ``start_response`` the app is given."""

    __slots__ = (
        "admitted",
        "began",
        "core",
        "deducts",
        "environ",
        "held",
        "method",
        "request_id",
        "start_response",
        "started",
        "status",
        "verdict",
    )

    def __init__(self, core: Core, environ: Environ, start_response: StartResponse) -> None:
        self.began = time.perf_counter()
        self.core = core
        self.admitted = False
        self.environ = environ
        self.start_response = start_response
        self.method: str = environ.get("REQUEST_METHOD", "GET")
        self.verdict: Verdict | None = None
        self.held: tuple[int, list[tuple[str, str]]] | None = None
        self.started = False
        self.status = 0
        self.deducts: Sequence[PlanItem] = ()
        name = core.request_id_environ
        self.request_id = assign_request_id(environ.get(name)) if name else None

    def logged_path(self) -> str:
        return self.path()

    def path(self) -> str:
        """The request's path as text: PEP 3333 hands its bytes over as latin-1, and most
        clients send UTF-8 (so ``path_limits`` and ``exempt_paths`` match as written)."""
        path: str = self.environ.get("PATH_INFO", "")
        if path.isascii():
            return path
        try:
            return path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return path

    def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` with this request's id as ``current_request_id()``."""
        if self.request_id is None:
            return function(*args)
        token = request_id_var.set(self.request_id)
        try:
            return function(*args)
        finally:
            request_id_var.reset(token)

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        """The ``start_response`` the app is given: an error response restfault answers
        with the envelope instead (``Core.replaces``) is held for the body; any other goes
        on to the server with the rate-limit headers and the request's id."""
        core = self.core
        code = int(status[:3])  # "200 OK" (PEP 3333: a three-digit code first)
        if code >= 400 and core.replaces(
            code, next((v for k, v in headers if k.lower() == "content-type"), None)
        ):
            self.held = (code, headers)
            return discard
        self.started = True
        self.status = code
        return self.start_response(status, response_headers(self, headers), exc_info)


def admit(
    limiter: SyncLimiter,
    exchange: Exchange,
    endpoint: EndpointRules = NO_ENDPOINT,
    request: Callable[[], Any] | None = None,
) -> Answer | None:
    """Decide this request's maintenance mode and limits: restfault's own answer (a 503 or
    a 429, every header included), or None to let the request through."""
    core, environ = exchange.core, exchange.environ
    if core.requests_to_inspect > 0:
        core.inspect_request(
            bool(environ.get("wsgi.multiprocess")),  # gunicorn -w 2 and more
            "HTTP_X_FORWARDED_FOR" in environ or "HTTP_FORWARDED" in environ,
        )

    def address() -> str:
        return core.address_key(
            environ.get("REMOTE_ADDR"), lambda: environ.get("HTTP_X_FORWARDED_FOR")
        )

    method, path = exchange.method, exchange.path()
    planned = core.plan_at_once(method, path, endpoint, address, environ.get("REMOTE_ADDR"))
    if planned is not None:
        applicable, plan = planned
        verdict = core.observed(applicable, limiter.check(plan) if plan else None, time.time)
        exchange.deducts = core.deducted(applicable, plan, verdict)
    else:
        steps = core.admit(method, path, endpoint, address, request or (lambda: environ), time.time)
        admission = _drive(steps, limiter)
        if admission.unavailable is not None:
            response = core.unavailable(admission.unavailable, exchange)
            return response.status, response.headers, response.body
        verdict = admission.verdict
        exchange.deducts = admission.deducts
    exchange.verdict = verdict
    if verdict is None or not verdict.denied:
        return None
    denial, extra = core.refusal(verdict, exchange, time.time())
    exchange.verdict = None  # its rate-limit headers are in the answer's
    return denial.status, [*denial.headers, *extra], denial.body


def answer(exchange: Exchange, exc: BaseException) -> list[bytes]:
    """Start the envelope response for ``exc`` and return its body."""
    response, _ = exchange.core.render(exc, exchange)
    respond(exchange, response.status, response.headers, exc)
    return [b""] if exchange.method == "HEAD" else [response.body]


def respond(
    exchange: Exchange,
    status: int,
    headers: list[tuple[str, str]],
    exc: BaseException | None = None,
) -> None:
    """Start restfault's own response, with the rate-limit headers and the request id."""
    # exc_info only when replacing headers the app already passed on (PEP 3333); on a
    # first call, servers such as werkzeug's test client re-raise it.
    exc_info = (type(exc), exc, exc.__traceback__) if exchange.started and exc else None
    exchange.started = True
    exchange.status = status
    headers = headers + exchange.core.rate_headers(exchange.verdict, time.time())
    if exchange.request_id is not None:
        headers = with_request_id(exchange, headers)
    exchange.start_response(status_line(status), clean_headers(headers), exc_info)


def response_headers(exchange: Exchange, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The app's response headers and what restfault adds to them: the rate-limit headers
    and the request's id (unless the app set it)."""
    if exchange.verdict is not None:
        headers = [*headers, *exchange.core.rate_headers(exchange.verdict)]
    if exchange.request_id is not None:
        headers = with_request_id(exchange, headers)
    return headers


def with_request_id(exchange: Exchange, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` and the request's id, unless they carry it already (the app's own)."""
    name = exchange.core.request_id_header
    request_id = exchange.request_id
    if name is None or request_id is None:
        return headers
    lowered = name.lower()
    if any(key.lower() == lowered for key, _ in headers):
        return headers
    return [*headers, (name, request_id)]


def finish(limiter: SyncLimiter, exchange: Exchange) -> None:
    """After the response: count the ``deduct_when`` limits its final status asks for."""
    if not (exchange.deducts and exchange.status):
        return
    counted = counted_after(exchange.deducts, exchange.status)
    exchange.deducts = ()
    if counted:
        limiter.deduct(counted)


def discard(data: bytes) -> None:
    """The write() of a response restfault replaces: the bytes are not sent."""


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
