"""Pure ASGI middleware: envelopes and rate limits for any ASGI application.

>>> app = RestFaultMiddleware(app, style="bkend", default_limits="100/minute")

What it does for each HTTP request (WebSocket and lifespan scopes pass straight through):

- hits the default limits (``limits.aio`` storage, never blocking the event loop) and
  answers 429 with the envelope when one is exhausted;
- turns an exception that escapes the app before the response started into the
  envelope (unexpected ones are logged, answered 500, then re-raised for the server);
- turns a framework's own non-JSON error response (status >= 400) into the envelope,
  keeping its status and headers;
- adds ``X-RateLimit-*`` headers to the response.

A response that has already started is never rewritten: the error is logged and
re-raised, so the server closes the connection.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._asgi_messages import (
    Message,
    Send,
    converted,
    encode_headers,
    encode_rate_headers,
    header,
    joined_header,
    send_envelope,
)
from ._core import Core, checked_cost, is_json_media_type, log_after_start
from ._keys import client_address, safe_key
from ._limiting import Limit, Plan, RateLimitDecision, pick
from ._settings import Settings
from ._storage import AsyncLimiter
from ._translate import active_translations

__all__ = ["RestFaultMiddleware"]

logger = logging.getLogger("restfault")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY = "restfault.state"


class RequestState:
    """Per-request facts shared by the middleware and route-level checks (kept in scope)."""

    __slots__ = ("answered", "client_key", "decision", "request")

    def __init__(self) -> None:
        self.decision: RateLimitDecision | None = None
        self.client_key: str | None = None
        self.answered: BaseException | None = None
        self.request: Any = None


class Pipeline:
    """The ASGI machinery, shared by ``RestFaultMiddleware`` and the Starlette adapter."""

    def __init__(
        self,
        app: ASGIApp,
        core: Core,
        limiter: AsyncLimiter,
        request_factory: Callable[[Scope], Any] | None = None,
        route_rules: Callable[[Scope], tuple[tuple[Limit, ...], bool]] | None = None,
    ) -> None:
        self.app = app
        self.core = core
        self.limiter = limiter
        self.request_factory = request_factory
        self.route_rules = route_rules
        settings = core.settings
        self.convert = settings.convert_error_responses
        self.legacy_headers = settings.headers_enabled
        self.ietf_headers = settings.ietf_headers
        # limit code -> the 429's encoded headers and body, rendered once
        self.denials: dict[str | None, tuple[list[tuple[bytes, bytes]], bytes]] = {}

    # -- rate limits ---------------------------------------------------------------------

    def request_for(self, scope: Scope, state: RequestState) -> Any:
        if state.request is None:
            state.request = self.request_factory(scope) if self.request_factory else scope
        return state.request

    async def client_key(self, scope: Scope, state: RequestState) -> str:
        if state.client_key is None:
            settings = self.core.settings
            if settings.key_func is None and not settings.trusted_proxies:
                client = scope.get("client")
                state.client_key = client[0] if client else "unknown"
                return state.client_key
            key: Any = None
            if settings.key_func is not None:
                key = settings.key_func(self.request_for(scope, state))
                if hasattr(key, "__await__"):
                    key = await key
            if key is None:
                client = scope.get("client")
                forwarded = (
                    joined_header(scope.get("headers", ()), b"x-forwarded-for")
                    if settings.trusted_proxies
                    else None
                )
                key = client_address(
                    client[0] if client else None, forwarded, settings.trusted_proxies
                )
            state.client_key = safe_key(key)
        return state.client_key

    async def check(
        self, scope: Scope, state: RequestState, limits: tuple[Limit, ...]
    ) -> RateLimitDecision | None:
        """Hit ``limits`` for this request; the decision that denies it, or None."""
        client_key = state.client_key or await self.client_key(scope, state)
        plan: Plan = []
        request = None
        for limit in limits:
            if limit.simple:
                plan.append((limit, limit.storage_prefix + client_key, limit.cost))  # type: ignore[arg-type]
                continue
            # The framework's request object is built only when a key_func or cost reads it.
            if request is None:
                request = self.request_for(scope, state)
            key = await _maybe_key(limit, request, client_key)
            plan.append((limit, limit.storage_key(key), await _maybe_cost(limit, request)))
        decision = await self.limiter.check(plan)
        state.decision = pick(state.decision, decision)
        return decision if decision is not None and not decision.allowed else None

    async def deny(self, scope: Scope, send: Send, decision: RateLimitDecision) -> None:
        """Answer the 429 of ``decision``: the envelope rendered once per code, with this
        request's Retry-After and rate-limit headers, and no exception raised and caught."""
        now = time.time()
        cached = self.denials.get(decision.code)
        if cached is None:
            rendered = self.core.denial(decision.code)
            if rendered is None:  # a callable style renders each exception itself
                raise decision.exception(now)
            cached = self.denials[decision.code] = (encode_headers(rendered.headers), rendered.body)
        headers, body = cached
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    *headers,
                    (b"retry-after", b"%d" % decision.retry_after(now)),
                    *self.raw_rate_headers(decision),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    def raw_rate_headers(self, decision: RateLimitDecision) -> list[tuple[bytes, bytes]]:
        """The rate-limit headers as ASGI bytes; the common set formatted straight to bytes
        (names and values are ASCII digits, nothing to sanitise)."""
        if self.legacy_headers and not self.ietf_headers:
            return [
                (b"x-ratelimit-limit", b"%d" % decision.limit),
                (b"x-ratelimit-remaining", b"%d" % decision.remaining),
                (b"x-ratelimit-reset", b"%d" % math.ceil(decision.reset)),
            ]
        return encode_rate_headers(
            decision.headers(time.time(), legacy=self.legacy_headers, ietf=self.ietf_headers)
        )

    def rate_headers(self, state: RequestState) -> list[tuple[str, str]]:
        decision = state.decision
        if decision is None:
            return []
        return decision.headers(time.time(), legacy=self.legacy_headers, ietf=self.ietf_headers)

    # -- the request ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = RequestState()
        scope[STATE_KEY] = state
        started = False
        held: Message | None = None

        async def send_own(message: Message) -> None:
            # restfault's own answers: once a start is handed to the server, never another.
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def send_wrapper(message: Message) -> None:
            nonlocal started, held
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                if (
                    self.convert
                    and status >= 400
                    and not is_json_media_type(header(message.get("headers", ()), b"content-type"))
                ):
                    held = message  # answer with the envelope once the app's body is done
                    return
                started = True
                if state.decision is not None:
                    extra = self.raw_rate_headers(state.decision)
                    if extra:
                        message = {**message, "headers": [*message.get("headers", ()), *extra]}
            elif held is not None and kind == "http.response.body":
                if not message.get("more_body", False):
                    start, held = held, None
                    await self.answer(scope, send_own, state, converted(start))
                return
            await send(message)

        token = active_translations.set(self.core.translations)
        try:
            core = self.core
            limits = core.default_limits
            if limits and core.settings.exempt_paths and core.is_exempt_path(scope["path"]):
                limits = ()
            if self.route_rules is not None:  # the endpoint's own limits, or its exemption
                route_limits, exempt = self.route_rules(scope)
                limits = route_limits if exempt else limits + route_limits
            if limits:
                denied = await self.check(scope, state, limits)
                if denied is not None:
                    await self.deny(scope, send_own, denied)
                    return
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started:
                log_after_start(exc, scope.get("method", ""), scope.get("path", ""))
                state.answered = exc  # logged: outer handlers must not log it again
                raise
            if await self.answer(scope, send_own, state, exc):
                raise
        finally:
            active_translations.reset(token)

    async def answer(
        self, scope: Scope, send: Send, state: RequestState, exc: BaseException
    ) -> bool:
        """Send the envelope for ``exc``; True when it was unexpected (to be re-raised)."""
        response, unexpected = self.core.render(exc, scope.get("method", ""), scope.get("path", ""))
        state.answered = exc
        head = scope.get("method") == "HEAD"
        extra = self.rate_headers(state)
        if unexpected:
            # Re-raised below, so the server drops the connection (uvicorn does): say so,
            # or a keep-alive client's next request on it meets a reset.
            extra.append(("Connection", "close"))
        await send_envelope(send, response, extra, head)
        return unexpected


async def _maybe_key(limit: Limit, request: Any, client_key: str) -> str:
    if limit.key_func is None:
        return client_key
    key = limit.key_func(request)
    if hasattr(key, "__await__"):
        key = await key
    return client_key if key is None else safe_key(key)


async def _maybe_cost(limit: Limit, request: Any) -> int:
    if not callable(limit.cost):
        return limit.cost
    cost = limit.cost(request)
    if hasattr(cost, "__await__"):
        cost = await cost
    return checked_cost(cost)


class RestFaultMiddleware(Pipeline):
    """Envelopes and rate limits for any ASGI app; takes every option of API.md §4.

    ``key_func`` (sync or async) receives the ASGI scope; returning ``None`` keys the
    request by client address. ``exempt_paths`` exempts paths from the default limits.
    """

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        core = Core(Settings.from_options(asynchronous=True, **options))
        super().__init__(app, core, AsyncLimiter(core.settings))

    def translate(self, exc_type: type[BaseException]) -> Any:
        """A decorator registering ``fn(exc) -> RestException`` for ``exc_type``."""
        return self.core.translate(exc_type)
