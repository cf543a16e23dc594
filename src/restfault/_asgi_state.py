"""What one request carries through an ASGI stack, and where a router hands it over.

``RequestState`` lives in the scope (``STATE_KEY``) for the request's life: the facts the
driver read once, and the answers the core gave. ``Dispatch`` is put by a framework
adapter where the router calls an endpoint, so the request is admitted there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._asgi_messages import Message, Receive, Scope, Send, header, joined_header, route_path
from ._limiting import PlanItem, Verdict
from ._request_id import assign_request_id

if TYPE_CHECKING:
    from ._asgi import Pipeline
    from ._core import Core

__all__ = [
    "ANSWERED_KEY",
    "BEGAN_KEY",
    "STATE_KEY",
    "ASGIApp",
    "Dispatch",
    "RequestState",
    "client_key",
]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
STATE_KEY = "restfault.state"
# The exception restfault answered (and logged) for this request: a framework's outer
# error handler that meets it again must neither answer nor log it a second time.
ANSWERED_KEY = "restfault.answered"
# When a request with no state (nothing to admit, no id) reached restfault: its log
# record's duration starts there.
BEGAN_KEY = "restfault.began"


class RequestState:
    """One request's facts and answers, shared by the middleware and the dispatch point."""

    __slots__ = (
        "address",
        "admitted",
        "began",
        "deducts",
        "method",
        "path",
        "pipeline",
        "request",
        "request_id",
        "scope",
        "send",
        "started",
        "status",
        "verdict",
    )

    def __init__(self, pipeline: Pipeline, scope: Scope, send: Send) -> None:
        self.began = time.perf_counter()
        self.pipeline = pipeline
        self.scope = scope
        self.send = send  # the server's send: restfault's own answers go straight to it
        self.method: str = scope["method"]
        self.path = route_path(scope)  # before routing rewrites root_path (Mounts)
        self.admitted = False
        self.started = False
        self.status = 0
        self.verdict: Verdict | None = None
        self.deducts: Sequence[PlanItem] = ()
        self.request: Any = None
        self.address: str | None = None
        raw = pipeline.core.request_id_raw
        self.request_id = assign_request_id(header(scope.get("headers", ()), raw)) if raw else None

    @classmethod
    def late(
        cls,
        pipeline: Pipeline,
        scope: Scope,
        send: Send,
        began: float,
        verdict: Verdict | None = None,
    ) -> RequestState:
        """The state of a request that had none (admitted before the app ran, or nothing
        to admit) until an error needed its facts."""
        state = cls(pipeline, scope, send)
        state.began = began
        state.admitted = True
        state.verdict = verdict
        return state

    def client_key(self) -> str:
        """The client's address as its rate-limit key (``trusted_proxies`` applied)."""
        if self.address is None:
            self.address = client_key(self.pipeline.core, self.scope)
        return self.address

    def app_request(self) -> Any:
        """What the app's callables receive: the framework's request, built once, or the
        scope."""
        if self.request is None:
            factory = self.pipeline.request_factory
            self.request = factory(self.scope) if factory is not None else self.scope
        return self.request

    def logged_path(self) -> str:
        path: str = self.scope.get("path", "")  # the whole path, as access logs show it
        return path

    async def send_own(self, message: Message) -> None:
        """Send restfault's own answer: once a start is handed over, never another."""
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
        await self.send(message)


def client_key(core: Core, scope: Scope) -> str:
    """The client's address in ``scope`` as its rate-limit key (``trusted_proxies``
    applied)."""
    client = scope.get("client")
    return core.address_key(
        client[0] if client else None,
        lambda: joined_header(scope.get("headers", ()), b"x-forwarded-for"),
    )


class Dispatch:
    """Where a framework's router hands a request to ``endpoint``: the request is admitted
    here, keyed to what the router found (path parameters included), before it runs."""

    __slots__ = ("app", "endpoint")

    def __init__(self, app: ASGIApp, endpoint: Any) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get(STATE_KEY)
        if (
            state is not None
            and not state.admitted
            and await state.pipeline.admit(state, self.endpoint)
        ):
            return
        await self.app(scope, receive, send)
