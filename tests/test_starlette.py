"""Starlette specifics: Mounts, raw mounted ASGI apps, streaming, background tasks,
CORS, WebSocket and lifespan, through ``restfault.starlette.RestFault``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, Router, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from restfault import NotFoundException, RestException
from restfault.starlette import RestFault
from tests.harness import FakeClock, asgi_call, body_of, error_records, http_scope, starts


def starlette_app(
    routes: Sequence[BaseRoute] = (),
    *,
    middleware: Sequence[Middleware] = (),
    **options: Any,
) -> tuple[Starlette, RestFault]:
    """A Starlette app of ``routes`` with restfault installed: ``(app, restfault)``."""
    app = Starlette(routes=list(routes), middleware=list(middleware))
    return app, RestFault(app, **options)


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def missing(request: Request) -> JSONResponse:
    raise NotFoundException("Record 7 not found", code="RECORD_NOT_FOUND")


async def crash(request: Request) -> JSONResponse:
    raise RuntimeError("db password in here")


async def raw_not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app answering its own text/plain 404, as many do."""
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"x-raw-app", b"yes")],
        }
    )
    await send({"type": "http.response.body", "body": b"Not ", "more_body": True})
    await send({"type": "http.response.body", "body": b"Found"})


async def raw_json_error(scope: Scope, receive: Receive, send: Send) -> None:
    body = b'{"detail":"the app\'s own JSON"}'
    await send(
        {
            "type": "http.response.start",
            "status": 409,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- Mounts ---------------------------------------------------------------------------------


def test_mount_with_routes() -> None:
    app, _ = starlette_app(
        [
            Mount(
                "/api",
                routes=[
                    Route("/ok", ok),
                    Route("/missing", missing),
                    Route("/crash", crash),
                    Mount("/v2", routes=[Route("/missing", missing)]),
                ],
            )
        ],
        style="bkend",
    )
    client = TestClient(app, raise_server_exceptions=False)

    assert client.get("/api/ok").json() == {"ok": True}
    for path in ("/api/missing", "/api/v2/missing"):
        reply = client.get(path)
        assert reply.status_code == 404
        assert reply.json() == {"error": "RECORD_NOT_FOUND", "message": "Record 7 not found"}
    assert client.get("/api/nowhere").json()["error"] == "NOT_FOUND"
    reply = client.post("/api/ok")
    assert reply.status_code == 405
    assert reply.json()["error"] == "METHOD_NOT_ALLOWED"
    assert reply.headers["allow"] == "GET, HEAD"
    reply = client.get("/api/crash")
    assert reply.status_code == 500
    assert reply.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}


def test_mounted_raw_asgi_text_404_becomes_the_envelope() -> None:
    app, _ = starlette_app([Mount("/raw", app=raw_not_found)], style="problem")
    client = TestClient(app)

    reply = client.get("/raw/anything")

    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["x-raw-app"] == "yes"
    assert reply.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
        "code": "NOT_FOUND",
    }
    assert int(reply.headers["content-length"]) == len(reply.content)


def test_mounted_json_error_is_untouched() -> None:
    app, _ = starlette_app([Mount("/raw", app=raw_json_error)])
    reply = TestClient(app).get("/raw/x")
    assert reply.status_code == 409
    assert reply.json() == {"detail": "the app's own JSON"}


@pytest.mark.parametrize("own_restfault", [True, False])
def test_mounted_sub_application(
    own_restfault: bool, restfault_log: pytest.LogCaptureFixture
) -> None:
    """A mounted sub-app answers its errors as its routes would in the parent: with the
    envelope, keeping status and headers, with or without a RestFault of its own."""

    async def teapot(request: Request) -> Response:
        raise HTTPException(418, "short and stout", headers={"X-Sub": "1"})

    sub = Starlette(routes=[Route("/teapot", teapot), Route("/missing", missing)])
    if own_restfault:
        RestFault(sub, style="bkend")
    app, _ = starlette_app([Mount("/sub", app=sub)], style="bkend")
    client = TestClient(app, raise_server_exceptions=False)

    reply = client.get("/sub/teapot")
    assert reply.status_code == 418
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-sub"] == "1"
    assert reply.json()["error"] == "I_M_A_TEAPOT"
    assert client.get("/sub/nowhere").json()["error"] == "NOT_FOUND"

    reply = client.get("/sub/missing")
    assert reply.headers["content-type"] == "application/json"
    assert reply.status_code == 404
    assert reply.json()["error"] == "RECORD_NOT_FOUND"


def test_router_as_app() -> None:
    """RestFault on a bare Router-based Starlette app with no routes at all."""
    app = Starlette()
    RestFault(app)
    reply = TestClient(app).get("/")
    assert reply.status_code == 404
    assert reply.json() == {"error": {"code": 404, "message": "Not Found"}}


def test_init_app_later() -> None:
    restfault = RestFault(style="bkend")
    app = Starlette(routes=[Route("/missing", missing)])
    restfault.init_app(app)
    assert app.state.restfault is restfault
    assert TestClient(app).get("/missing").json()["error"] == "RECORD_NOT_FOUND"


def test_invalid_json_wrapped_by_the_app_is_still_400() -> None:
    async def create(request: Request) -> JSONResponse:
        data = await request.json()
        return JSONResponse(data)

    app, _ = starlette_app([Route("/create", create, methods=["POST"])], style="bkend")
    reply = TestClient(app).post("/create", content=b"{", headers={"content-type": "text/plain"})
    assert reply.status_code == 400
    assert reply.json()["error"] == "INVALID_JSON"


# -- streaming and background tasks ----------------------------------------------------------


class StreamBroke(Exception):
    pass


def test_streaming_error_after_first_chunk(restfault_log: pytest.LogCaptureFixture) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk,"
        raise StreamBroke("mid-stream")

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/csv")

    app, _ = starlette_app([Route("/stream", stream)])

    sent, error = asgi_call(app, http_scope("/stream"))

    assert isinstance(error, StreamBroke)  # re-raised: the server closes the connection
    assert starts(sent) == [200]
    body = body_of(sent)
    assert body.startswith(b"first chunk,")
    assert b"error" not in body
    records = error_records(restfault_log)
    assert len(records) == 1
    assert "StreamBroke" in records[0].getMessage()


def test_streaming_error_before_first_chunk_is_not_a_second_start() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        if request_made:  # an async generator: it raises when Starlette asks for a chunk
            raise NotFoundException("stream source gone")
        yield b""  # pragma: no cover

    request_made = True

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks())

    app, _ = starlette_app([Route("/stream", stream)])
    sent, error = asgi_call(app, http_scope("/stream"))
    # Starlette sends a StreamingResponse's start before iterating it: too late for the
    # envelope, so the start stays the only one and the error reaches the server.
    assert starts(sent) == [200]
    # (Starlette's exception middleware wraps it: "response already started")
    assert error is not None
    assert NotFoundException in {type(error), type(error.__cause__)}


def test_background_task_failure_after_the_response(
    restfault_log: pytest.LogCaptureFixture,
) -> None:
    def send_mail() -> None:
        raise ConnectionError("smtp down")

    async def signup(request: Request) -> JSONResponse:
        return JSONResponse({"created": True}, background=BackgroundTask(send_mail))

    app, _ = starlette_app([Route("/signup", signup, methods=["POST"])])
    client = TestClient(app, raise_server_exceptions=False)

    reply = client.post("/signup")

    assert reply.status_code == 200
    assert reply.json() == {"created": True}
    records = error_records(restfault_log)
    assert len(records) == 1
    assert "ConnectionError" in records[0].getMessage()

    # The server sees the failure too (restfault re-raises it).
    with pytest.raises(ConnectionError):
        TestClient(app).post("/signup")


# -- CORS ---------------------------------------------------------------------------------


def _cors_app(where: str, **options: Any) -> Starlette:
    async def limited(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [Route("/missing", missing), Route("/crash", crash), Route("/limited", limited)]
    middleware = [Middleware(CORSMiddleware, allow_origins=["https://app.example"])]
    if where == "constructor":
        app = Starlette(routes=routes, middleware=middleware)
        RestFault(app, **options)
    elif where == "before":
        app = Starlette(routes=routes)
        app.add_middleware(CORSMiddleware, allow_origins=["https://app.example"])
        RestFault(app, **options)
    else:
        app = Starlette(routes=routes)
        RestFault(app, **options)
        app.add_middleware(CORSMiddleware, allow_origins=["https://app.example"])
    return app


@pytest.mark.parametrize("where", ["constructor", "before", "after"])
def test_cors_headers_on_errors_and_429(where: str, clock: FakeClock) -> None:
    app = _cors_app(where, default_limits="1/minute")
    client = TestClient(app, raise_server_exceptions=False)
    origin = {"Origin": "https://app.example"}

    first = client.get("/missing", headers=origin)
    assert first.status_code == 404
    assert first.headers["access-control-allow-origin"] == "https://app.example"

    limited = client.get("/limited", headers=origin)
    assert limited.status_code == 429
    assert limited.headers["access-control-allow-origin"] == "https://app.example"
    assert limited.json()["error"]["code"] == 429
    assert limited.headers["retry-after"] == "60"

    unlimited = _cors_app(where)
    client = TestClient(unlimited, raise_server_exceptions=False)
    for path, status in (("/crash", 500), ("/nowhere", 404)):
        reply = client.get(path, headers=origin)
        assert reply.status_code == status
        assert reply.headers["access-control-allow-origin"] == "https://app.example"
    preflight = client.options(
        "/missing",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200


# -- WebSocket and lifespan --------------------------------------------------------------


def test_websocket_passes_through() -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app, _ = starlette_app([WebSocketRoute("/ws", echo)], default_limits="1/minute")
    client = TestClient(app)
    for _ in range(3):  # never rate limited: only HTTP requests are
        with client.websocket_connect("/ws") as ws:
            ws.send_text("hello")
            assert ws.receive_text() == "hello"


@pytest.mark.parametrize("accept_first", [True, False])
def test_websocket_errors_are_not_restfaults_business(accept_first: bool) -> None:
    """A RestException in a WebSocket endpoint goes on as it would without restfault
    (Starlette hands it to the same exception handlers as HTTP errors)."""

    async def endpoint(websocket: WebSocket) -> None:
        if accept_first:
            await websocket.accept()
        raise NotFoundException("no such channel")

    app, _ = starlette_app([WebSocketRoute("/ws", endpoint)])

    with (
        pytest.raises(NotFoundException, match="no such channel"),
        TestClient(app).websocket_connect("/ws") as ws,
    ):
        ws.receive()


def test_lifespan_passes_through() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(routes=[Route("/ok", ok)], lifespan=lifespan)
    RestFault(app, default_limits="10/minute")
    with TestClient(app) as client:
        assert client.get("/ok").status_code == 200
    assert events == ["startup", "shutdown"]


def test_rest_exception_subclass_from_a_router() -> None:
    class Teapot(RestException):
        status_code = 418
        code = "TEAPOT"
        message = "I'm a teapot"

    async def brew(request: Request) -> Response:
        raise Teapot()

    app, _ = starlette_app([Mount("/r", app=Router(routes=[Route("/brew", brew)]))])
    reply = TestClient(app).get("/r/brew")
    assert reply.status_code == 418
    assert reply.json() == {"error": {"code": 418, "message": "I'm a teapot"}}


@pytest.mark.parametrize(
    ("status", "headers"),
    [(304, {"ETag": '"v1"'}), (307, {"Location": "/elsewhere"}), (301, {"Location": "/moved"})],
)
def test_non_error_http_exceptions_are_not_envelopes(status: int, headers: dict[str, str]) -> None:
    """HTTPException(304) is how a handler says Not Modified: it must stay a 304."""

    async def conditional(request: Request) -> Response:
        raise HTTPException(status, headers=headers)

    app, _ = starlette_app([Route("/conditional", conditional)])
    reply = TestClient(app, follow_redirects=False).get("/conditional")

    assert reply.status_code == status
    assert reply.content == b""
    for name, value in headers.items():
        assert reply.headers[name] == value


class Gate:
    """A user's pure ASGI middleware, outside RestFault, that refuses some requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/rest":
            raise RestException(status_code=401, code="TOKEN_EXPIRED")
        if scope["type"] == "http" and scope["path"] == "/http":
            raise HTTPException(403, "Not for you")
        if scope["type"] == "http" and scope["path"] == "/crash":
            raise RuntimeError("gate broke")
        await self.app(scope, receive, send)


def test_errors_from_outer_middleware() -> None:
    app, _ = starlette_app([Route("/", ok)], middleware=[Middleware(Gate)], style="bkend")
    client = TestClient(app, raise_server_exceptions=False)

    reply = client.get("/rest")
    assert (reply.status_code, reply.json()["error"]) == (401, "TOKEN_EXPIRED")
    reply = client.get("/http")
    assert reply.status_code == 403
    assert reply.json() == {"error": "FORBIDDEN", "message": "Not for you"}
    reply = client.get("/crash")
    assert reply.status_code == 500
    assert reply.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}
    assert client.get("/").json() == {"ok": True}


def test_one_restfault_limits_the_routes_of_each_app_it_serves() -> None:
    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    async def pong(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ping")

    rf = RestFault(style="bkend")
    rf.limit("1/minute")(ping)
    rf.limit("1/minute")(pong)
    apps = [Starlette(routes=[Route("/a", ping)]), Starlette(routes=[Route("/b", pong)])]
    for app in apps:
        rf.init_app(app)
    assert [TestClient(apps[0]).get("/a").status_code for _ in range(2)] == [200, 429]
    assert [TestClient(apps[1]).get("/b").status_code for _ in range(2)] == [200, 429]


class Failing:
    """A route's own middleware that fails before the endpoint is reached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the gate's database is down")


class StrictOrderNumber(Convertor[int]):
    """An app's own path convertor that raises on what it does not expect, which the
    router does not catch: the request fails while it is being routed."""

    regex = "[^/]+"

    def convert(self, value: str) -> int:
        return int(value)  # ValueError for "abc"

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("restfault_tests_order", StrictOrderNumber())


@pytest.mark.parametrize(
    ("route", "path"),
    [
        (Route("/gated", ok, middleware=[Middleware(Failing)]), "/gated"),
        (Route("/orders/{number:restfault_tests_order}", ok), "/orders/abc"),
    ],
    ids=["route-middleware", "while-routing"],
)
def test_a_failure_before_the_endpoint_is_refused_once_the_limit_is_spent(
    clock: FakeClock, restfault_log: pytest.LogCaptureFixture, route: Route, path: str
) -> None:
    """A request that fails before its endpoint runs (in a route's own middleware, or in
    the router itself) is still admitted: counted while the limit lasts, and answered 429
    once it is spent, rather than with another 500."""

    async def report(request: Request) -> JSONResponse:
        return JSONResponse({"report": []})

    # An endpoint's own limit elsewhere: requests are admitted where the router hands
    # them over, so the failing one is admitted when it fails.
    app, restfault = starlette_app(
        [route, Route("/report", report)], style="bkend", default_limits="2/minute"
    )
    restfault.limit("10/minute")(report)
    client = TestClient(app, raise_server_exceptions=False)
    replies = [client.get(path) for _ in range(3)]
    assert [r.status_code for r in replies] == [500, 500, 429]
    assert replies[0].json() == {
        "error": "INTERNAL_SERVER_ERROR",
        "message": "Internal Server Error",
    }
    assert replies[1].headers["x-ratelimit-remaining"] == "0"
    assert replies[2].json()["error"] == "RATE_LIMIT_EXCEEDED"
    assert replies[2].headers["retry-after"] == "60"
    assert len(error_records(restfault_log)) == 2  # the two failures, with their tracebacks
