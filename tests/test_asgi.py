"""The ASGI protocol, message by message: what a server sees of the ASGI adapters.

HTTP-level behaviours (envelopes, converted responses, limits) are the harness's, on every
adapter; here are the messages themselves: one response start, exceptions re-raised to the
server, scopes that are not HTTP, responses that had started, paths no client can send.
The table of exceptions runs on every ASGI adapter; the rest wraps bare ASGI apps in
``restfault.asgi.RestFaultMiddleware``.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import starlette.exceptions
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restfault import BadRequestException, NotFoundException, ServiceUnavailableException
from restfault.asgi import RestFaultMiddleware
from tests.harness import (
    ASGI_ADAPTERS,
    AsgiHarness,
    MakeHarness,
    asgi_call,
    body_of,
    error_records,
    http_scope,
    raising,
    start_headers,
    starts,
)


def raising_app(exc: BaseException) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


def responding(status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


# -- exceptions before the response started -------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "code", "reraised"),
    [
        (NotFoundException(code="TABLE_NOT_FOUND"), 404, "TABLE_NOT_FOUND", False),
        (BadRequestException("Bad filter", code="INVALID_FILTER"), 400, "INVALID_FILTER", False),
        (ServiceUnavailableException(retry_after=5), 503, "SERVICE_UNAVAILABLE", False),
        (
            starlette.exceptions.HTTPException(405, headers={"Allow": "GET"}),
            405,
            "METHOD_NOT_ALLOWED",
            False,
        ),
        (RuntimeError("secret"), 500, "INTERNAL_SERVER_ERROR", True),
        (KeyError("secret"), 500, "INTERNAL_SERVER_ERROR", True),
    ],
    ids=["not-found", "bad-request", "unavailable", "starlette-405", "runtime", "key"],
)
@pytest.mark.parametrize("adapter", ASGI_ADAPTERS)
def test_exception_before_start_becomes_the_envelope(
    harness: MakeHarness,
    exc: Exception,
    status: int,
    code: str,
    reraised: bool,
    restfault_log: pytest.LogCaptureFixture,
) -> None:
    app = harness(style="bkend")
    app.route("/items")(raising(exc))
    assert isinstance(app, AsgiHarness)

    sent, error = asgi_call(app.asgi_app, http_scope("/items"))

    assert starts(sent) == [status]
    headers = start_headers(sent)
    assert headers["content-type"] == "application/json"
    body = body_of(sent)
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body)["error"] == code
    assert b"secret" not in body
    assert (error is exc) is reraised
    if not reraised:
        assert error is None
    if isinstance(exc, ServiceUnavailableException):
        assert headers["retry-after"] == "5"
    if status == 405:
        assert headers["allow"] == "GET"
    if reraised:  # the server hears of it, after the envelope was sent
        assert body == b'{"error":"INTERNAL_SERVER_ERROR","message":"Internal Server Error"}'
    # API.md §7: every 5xx is logged at ERROR (a raised 503 too), every 4xx at INFO.
    assert len(error_records(restfault_log)) == (1 if status >= 500 else 0)


def test_exception_after_a_held_error_start(restfault_log: pytest.LogCaptureFixture) -> None:
    """The app started a text/plain 500 and then raised: nothing was sent yet, so the
    exception itself is answered — once."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        raise NotFoundException()

    sent, error = asgi_call(RestFaultMiddleware(app), http_scope("/x"))
    assert starts(sent) == [404]
    assert error is None


# -- other scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
def test_other_scopes_pass_straight_through(scope_type: str) -> None:
    seen: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))
        raise RuntimeError("the app's own business")

    middleware = RestFaultMiddleware(app, default_limits="1/minute")
    scope: Scope = {"type": scope_type, "path": "/ws", "headers": [], "client": ("127.0.0.1", 1)}

    async def receive() -> Message:
        return {"type": f"{scope_type}.connect"}  # pragma: no cover

    async def send(message: Message) -> None:
        raise AssertionError("restfault sent something")  # pragma: no cover

    for _ in range(3):  # never rate limited
        with pytest.raises(RuntimeError, match="own business"):
            asyncio.run(middleware(scope, receive, send))
    assert all(r is receive and s is send for _, r, s in seen)
    assert seen[0][0] is scope


# -- a response that has started ----------------------------------------------------------


class Broke(Exception):
    pass


def test_error_after_the_first_chunk(restfault_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/csv")],
            }
        )
        await send({"type": "http.response.body", "body": b"a,b\n", "more_body": True})
        raise Broke("mid-stream")

    sent, error = asgi_call(RestFaultMiddleware(app), http_scope("/export"))

    assert isinstance(error, Broke)
    assert starts(sent) == [200]
    assert body_of(sent) == b"a,b\n"
    errors = error_records(restfault_log)
    assert len(errors) == 1
    assert "Broke" in errors[0].getMessage()
    assert "/export" in errors[0].getMessage()


def test_error_after_start_before_body(restfault_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise NotFoundException()

    sent, error = asgi_call(RestFaultMiddleware(app), http_scope("/x"))

    assert isinstance(error, NotFoundException)
    assert starts(sent) == [200]
    assert body_of(sent) == b""


# -- logs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/a\nINJECTED fake line", "/a\\x0aINJECTED fake line"),
        ("/a\r\nINJECTED", "/a\\x0d\\x0aINJECTED"),
        ("/\x1b[31mred", "/\\x1b[31mred"),
        ("/nul\x00", "/nul\\x00"),
        ("/nel\x85INJECTED", "/nel\\x85INJECTED"),
        ("/ls\u2028INJECTED", "/ls\\u2028INJECTED"),
        ("/ps\u2029INJECTED", "/ps\\u2029INJECTED"),
    ],
    ids=["lf", "crlf", "ansi", "nul", "nel", "ls", "ps"],
)
def test_control_characters_cannot_forge_log_lines(
    path: str, logged: str, restfault_log: pytest.LogCaptureFixture
) -> None:
    sent, _ = asgi_call(RestFaultMiddleware(raising_app(RuntimeError("x"))), http_scope(path))
    assert starts(sent) == [500]
    errors = error_records(restfault_log)
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert not any(ch in message for ch in "\n\r\x1b\x00")
    assert len(message.splitlines()) == 1
    assert logged in message  # escaped, visibly


# -- through httpx ---------------------------------------------------------------------------


def test_through_httpx_asgi_transport() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/missing":
            raise NotFoundException("No such thing", code="RECORD_NOT_FOUND")
        if scope["path"] == "/plain":
            await responding(404, [(b"content-type", b"text/plain")], [b"nope"])(
                scope, receive, send
            )
            return
        await responding(200, [(b"content-type", b"application/json")], [b"{}"])(
            scope, receive, send
        )

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=RestFaultMiddleware(app, style="problem"))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get(p) for p in ("/missing", "/plain", "/ok")]

    missing, plain, ok = asyncio.run(run())
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "RECORD_NOT_FOUND"
    assert plain.json()["title"] == "Not Found"
    assert ok.json() == {}


def test_a_failing_send_never_gets_a_second_start() -> None:
    wrapped = RestFaultMiddleware(responding(404, [], [b"Not Found"]))
    sent: list[str] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message["type"])
        if message["type"] == "http.response.body":
            raise OSError("client went away")

    async def run() -> None:
        await wrapped(http_scope("/"), receive, send)

    with pytest.raises(OSError, match="client went away"):
        asyncio.run(run())
    assert sent.count("http.response.start") == 1
