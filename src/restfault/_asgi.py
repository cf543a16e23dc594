"""The ASGI driver: carries a request's facts to the core and its answers back.

``Pipeline`` is the pure ASGI middleware behind ``restfault.asgi`` and the Starlette
adapter. Per HTTP request (other scopes pass straight through) it

- gives it its id (``request_id_header``), echoed on every response and held in
  ``current_request_id()`` while the app runs;
- admits the request — maintenance mode and limits decided by the core, storage called
  through ``limits.aio`` — before the app runs (no router known, or nothing the router
  finds would change the decision) or where the router hands it to an endpoint
  (``Dispatch``), at the latest when a response no endpoint produced starts (a 404);
- turns an exception escaping the app before the response started, and a framework's
  own non-JSON error response, into the envelope; adds the rate-limit headers;
- never rewrites a response that has started: the error is logged and re-raised, so the
  server closes the connection.

Per-request state lives in a ``RequestState`` kept in the scope, never on ``self``. A
request without an id that is decided before the app runs (or has nothing to decide)
carries none: one is made only if an error needs its facts. Admission itself is
``_asgi_admission.Admitting``.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any

from ._asgi_admission import PENDING, Admitting
from ._asgi_messages import (
    Message,
    Receive,
    Scope,
    Send,
    converted,
    header,
    route_path,
    send_envelope,
)
from ._asgi_state import ANSWERED_KEY, BEGAN_KEY, STATE_KEY, ASGIApp, RequestState, client_key
from ._core import Core
from ._limiting import Verdict
from ._logging import log_after_start
from ._observe import PlainFacts
from ._registry import NO_ENDPOINT
from ._request_id import request_id_var
from ._storage import AsyncLimiter
from ._translate import activate, deactivate

__all__ = ["Pipeline"]

_PROXY_HEADERS = (b"x-forwarded-for", b"forwarded")


class Pipeline(Admitting):
    """The ASGI machinery, shared by ``RestFaultMiddleware`` and the Starlette adapter.

    ``routed`` says a ``Dispatch`` point will admit each request once the framework's
    router has found its endpoint; otherwise requests are admitted before the app runs.
    """

    def __init__(
        self,
        app: ASGIApp,
        core: Core,
        limiter: AsyncLimiter,
        *,
        request_factory: Callable[[Scope], Any] | None = None,
        routed: bool = False,
    ) -> None:
        self.app = app
        self.core = core
        self.limiter = limiter
        self.request_factory = request_factory
        self.routed = routed
        # Called first on every HTTP request (the Starlette adapter's route walk).
        self.prepare: Callable[[], None] | None = None
        # Nothing of the app's lies between this middleware and its endpoints but the
        # router (no mounted app's or route's own middleware): when the core needs no
        # router either (``Core.admits_unrouted``), requests are admitted before routing.
        self.bare_routes = False
        self.settle()

    def settle(self) -> None:
        """Whether a request is admitted before the app runs (read per request, settled
        whenever what it depends on changes): no router hands it over
        (``restfault.asgi``), or nothing the router finds could change the decision and
        nothing of the app's runs between restfault and the endpoint."""
        self.decides_before_routing = not self.routed or (
            self.bare_routes and self.core.admits_unrouted
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.prepare is not None:
            self.prepare()
        core = self.core
        if core.requests_to_inspect > 0:
            headers = scope.get("headers", ())
            core.inspect_request(
                multiprocessing.parent_process() is not None,  # uvicorn --workers
                any(name.lower() in _PROXY_HEADERS for name, _ in headers),
            )
        admits = core.admits
        if (
            core.request_id_raw
            or scope.get(STATE_KEY) is not None
            or (admits and not self.decides_before_routing)
        ):
            await self.stateful(scope, receive, send)
            return
        # No request id, and nothing to admit or all of it decided before the app runs:
        # the request carries no state. Its facts are gathered if an error needs them
        # (``RequestState.late``); a framework's non-JSON error response is still
        # converted, and the rate-limit headers added.
        began = scope[BEGAN_KEY] = time.perf_counter()
        planned = None
        if admits:
            client = scope.get("client")
            planned = core.plan_at_once(
                scope["method"],
                route_path(scope),
                NO_ENDPOINT,
                lambda: client_key(core, scope),
                client[0] if client else None,
            )
            if planned is None or planned[0].deducts:  # nothing counted yet
                await self.stateful(scope, receive, send)
                return
        verdict: Verdict | None = None
        started = False
        held: Message | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal started, held
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = message.get("headers", ())
                if status >= 400 and core.replaces(status, header(sent, b"content-type")):
                    held = message  # answer with the envelope once the app's body is done
                    return
                started = True
                if verdict is not None:
                    extra = core.raw_rate_headers(verdict)
                    if extra:
                        message = {**message}  # the app's own is left as it is
                        message["headers"] = [*sent, *extra]
            elif held is not None and message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    start, held = held, None
                    started = True  # restfault's own answer: never a second start
                    state = RequestState.late(self, scope, send, began, verdict)
                    await self.answer(state, converted(start))
                return
            await send(message)

        activation = None
        try:
            if planned is not None:
                checked = self.checked_now(*planned)  # memory://: no coroutine
                verdict = await self.checked_on_storage(*planned) if checked is PENDING else checked
                if verdict is not None and verdict.denied:
                    started = True  # restfault's own answer: never a second start
                    facts = PlainFacts(scope["method"], scope.get("path", ""), None, began)
                    await self.refuse(facts, send, verdict)
                    return
            activation = activate(core.translations)  # for the app's run_batch
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started:
                log_after_start(exc, scope.get("method", ""), scope.get("path", ""))
                scope[ANSWERED_KEY] = exc
                raise
            if await self.answer(RequestState.late(self, scope, send, began, verdict), exc):
                raise
        finally:
            deactivate(activation)

    async def stateful(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request with something to decide: its ``RequestState`` lives in the scope."""
        core = self.core
        state = RequestState(self, scope, send)
        outer = scope.get(STATE_KEY)  # another restfault further out (a mounted sub-app's)
        scope[STATE_KEY] = state
        held: Message | None = None
        replaced = False  # the app's response, replaced by restfault's 429 or 503
        id_token = request_id_var.set(state.request_id) if state.request_id else None

        async def send_wrapper(message: Message) -> None:
            nonlocal held, replaced
            kind = message["type"]
            if kind == "http.response.start":
                # A response no endpoint produced (routing 404/405): admitted now.
                if not state.admitted and await self.admit(state, None):
                    replaced = True
                    return
                status = message["status"]
                if status >= 400 and core.replaces(
                    status, header(message.get("headers", ()), b"content-type")
                ):
                    held = message  # answer with the envelope once the app's body is done
                    return
                state.started = True
                state.status = status
                if state.verdict is not None or state.request_id is not None:
                    sent = message.get("headers", ())
                    extra = self.rate_headers(state, sent)
                    if extra:
                        message = {**message}  # the app's own is left as it is
                        message["headers"] = [*sent, *extra]
            elif replaced:
                return
            elif held is not None and kind == "http.response.body":
                if not message.get("more_body", False):
                    start, held = held, None
                    await self.answer(state, converted(start))
                return
            await send(message)

        activation = activate(core.translations)
        try:
            if not core.admits:
                state.admitted = True  # nothing to decide, for every request
            elif self.decides_before_routing and await self.admit(state, None):
                return
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if state.started:
                log_after_start(exc, scope.get("method", ""), scope.get("path", ""))
                scope[ANSWERED_KEY] = exc
                raise
            if not state.admitted and await self.admit(state, None):
                return
            if await self.answer(state, exc):
                raise
        finally:
            deactivate(activation)
            if id_token is not None:
                request_id_var.reset(id_token)
            scope[STATE_KEY] = outer
            if state.deducts and state.status:
                await self.deduct(state)

    def rate_headers(self, state: RequestState, sent: Any) -> list[tuple[bytes, bytes]]:
        """The headers restfault adds to the app's response: rate limits, and the request
        id unless the app (or a restfault further in) has set it already."""
        core = self.core
        extra = core.raw_rate_headers(state.verdict)
        if state.request_id is not None and header(sent, core.request_id_raw) is None:
            extra.append((core.request_id_raw, state.request_id.encode("ascii")))
        return extra

    # -- errors -------------------------------------------------------------------------

    async def answer(self, state: RequestState, exc: BaseException) -> bool:
        """Send the envelope for ``exc``; True when it was unexpected (to be re-raised)."""
        core = self.core
        response, unexpected = core.render(exc, state)
        state.scope[ANSWERED_KEY] = exc
        extra = core.rate_headers(state.verdict, time.time()) + core.id_headers(state.request_id)
        if unexpected:
            # Re-raised below, so the server drops the connection (uvicorn does): say so,
            # or a keep-alive client's next request on it meets a reset.
            extra.append(("Connection", "close"))
        await send_envelope(state.send_own, response, extra, state.method == "HEAD")
        return unexpected
