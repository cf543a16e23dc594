"""Edge cases found in review: each a promise of API.md kept where it was once broken."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from flask import Flask, abort
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import restfault.flask
import restfault.starlette
from restfault import BadRequestException, ConflictResourceException, render_error
from restfault.asgi import RestFaultMiddleware


class Domain(Exception):
    pass


def _starlette_app(action: str) -> Starlette:
    async def endpoint(request: Request) -> PlainTextResponse:
        try:
            await request.json()
        except ValueError:
            if action == "http422":
                raise HTTPException(422, "payload is not what we need") from None
            if action == "domain":
                raise Domain() from None
            raise RuntimeError("a bug while handling the parse error") from None
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", endpoint, methods=["POST"])])
    rf = restfault.starlette.RestFault(app, style="bkend")
    rf.translate(Domain)(lambda exc: ConflictResourceException(code="DOMAIN"))
    return app


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [("http422", 422, "UNPROCESSABLE_CONTENT"), ("domain", 409, "DOMAIN"), ("bug", 500, None)],
)
def test_an_exception_raised_while_handling_a_parse_error_keeps_its_meaning(
    action: str, status: int, code: str | None
) -> None:
    client = TestClient(_starlette_app(action), raise_server_exceptions=False)
    reply = client.post("/", content=b"{not json")
    assert reply.status_code == status
    assert reply.json()["error"] == (code or "INTERNAL_SERVER_ERROR")


def test_flask_abort_422_after_a_parse_error_stays_422() -> None:
    app = Flask(__name__)
    restfault.flask.RestFault(app, style="bkend")

    @app.post("/")
    def endpoint() -> str:
        try:
            json.loads(flask_request.get_data())
        except ValueError:
            abort(422)
        return "ok"

    reply = app.test_client().post("/", data=b"{not json")
    assert reply.status_code == 422
    assert reply.get_json()["error"] == "UNPROCESSABLE_CONTENT"
    # ...while get_json() on the same body is the client's invalid JSON.
    app2 = Flask(__name__)
    restfault.flask.RestFault(app2, style="bkend")
    app2.post("/")(lambda: flask_request.get_json())
    assert (
        app2.test_client()
        .post("/", data=b"{x", content_type="application/json")
        .get_json()["error"]
        == "INVALID_JSON"
    )


@pytest.mark.parametrize("style", ["dreamfactory", "bkend", "problem"])
@pytest.mark.parametrize("shape", ["circular", "deep"])
def test_a_context_json_cannot_hold_is_dropped_not_a_crash(style: str, shape: str) -> None:
    context: dict[str, Any] = {}
    if shape == "circular":
        context["self"] = context
    else:
        inner = context
        for _ in range(5000):
            inner["next"] = {}
            inner = inner["next"]
    rendered = render_error(BadRequestException("bad", context=context), style=style)
    assert rendered.status == 400
    body = json.loads(rendered.body)
    assert (
        body
        == {
            "dreamfactory": {"error": {"code": 400, "message": "bad"}},
            "bkend": {"error": "BAD_REQUEST", "message": "bad"},
            "problem": {
                "type": "about:blank",
                "title": "Bad Request",
                "status": 400,
                "detail": "bad",
                "code": "BAD_REQUEST",
            },
        }[style]
    )


def test_a_callable_styles_unencodable_document_falls_back() -> None:
    document: dict[str, Any] = {}
    document["me"] = document
    rendered = render_error(
        BadRequestException("bad"), style=lambda exc, debug: (document, "application/json")
    )
    assert (rendered.status, json.loads(rendered.body)) == (
        400,
        {"error": {"code": 400, "message": "bad"}},
    )


def test_every_x_forwarded_for_line_is_read_right_to_left() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = RestFaultMiddleware(app, default_limits="1/minute", trusted_proxies=["10.0.0.0/8"])
    statuses = []
    for fake in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "client": ("10.0.0.2", 1234),
            # the client's own line first, the proxy's line (the real client) after it
            "headers": [(b"x-forwarded-for", fake.encode()), (b"x-forwarded-for", b"203.0.113.7")],
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        asyncio.run(wrapped(scope, receive, send))
        statuses.append(sent[0]["status"])
    assert statuses == [200, 429, 429]


def test_a_failing_send_never_gets_a_second_start() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"Not Found"})

    wrapped = RestFaultMiddleware(app)
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])
        if message["type"] == "http.response.body":
            raise OSError("client went away")

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "client": ("127.0.0.1", 1),
        "headers": [],
    }
    with pytest.raises(OSError, match="client went away"):
        asyncio.run(wrapped(scope, receive, send))
    assert sent.count("http.response.start") == 1


def test_fastapi_included_routers_keep_their_limits_and_exemptions() -> None:
    from fastapi import APIRouter, FastAPI

    app = FastAPI()
    rf = restfault.starlette.RestFault(app, style="bkend", default_limits="2/minute")
    inner = APIRouter(prefix="/inner")
    router = APIRouter(prefix="/r")

    @router.get("/limited")
    @rf.limit("1/minute", code="ROUTE_LIMIT")
    def limited() -> dict[str, bool]:
        return {"ok": True}

    @rf.exempt
    @inner.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    router.include_router(inner)
    app.include_router(router, prefix="/v1")
    client = TestClient(app)

    first, second = client.get("/v1/r/limited"), client.get("/v1/r/limited")
    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]) == (429, "ROUTE_LIMIT")
    # The exempt endpoint answers whatever the default budget (2/minute) says; the first
    # request spent one of it (the second was denied without counting, API.md §6).
    assert [client.get("/v1/r/inner/health").status_code for _ in range(4)] == [200] * 4
    assert [client.get("/docs").status_code for _ in range(2)] == [200, 429]


def test_one_restfault_limits_the_routes_of_each_app_it_serves() -> None:
    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    async def pong(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ping")

    rf = restfault.starlette.RestFault(style="bkend")
    rf.limit("1/minute")(ping)
    rf.limit("1/minute")(pong)
    apps = [Starlette(routes=[Route("/a", ping)]), Starlette(routes=[Route("/b", pong)])]
    for app in apps:
        rf.init_app(app)
    assert [TestClient(apps[0]).get("/a").status_code for _ in range(2)] == [200, 429]
    assert [TestClient(apps[1]).get("/b").status_code for _ in range(2)] == [200, 429]


def test_a_converted_error_keeps_every_challenge() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [
            (b"content-type", b"text/plain"),
            (b"www-authenticate", b'Basic realm="api"'),
            (b"www-authenticate", b'Bearer realm="api"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": b"Unauthorized"})

    reply = TestClient(RestFaultMiddleware(app)).get("/")
    assert reply.status_code == 401
    assert reply.json() == {"error": {"code": 401, "message": "Unauthorized"}}
    assert reply.headers["www-authenticate"] == 'Basic realm="api", Bearer realm="api"'
