"""``restfault.asgi.RestFaultMiddleware`` around bare ASGI apps, driven message by message."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import starlette.exceptions

from restfault import BadRequestException, NotFoundException, ServiceUnavailableException
from restfault.asgi import RestFaultMiddleware
from tests.conftest import (
    asgi_call,
    body_of,
    http_scope,
    restfault_records,
    start_headers,
    starts,
)

App = Callable[[Any, Any, Any], Awaitable[None]]


def raising(exc: BaseException) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise exc

    return app


def responding(
    status: int,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes] = [b"body"],  # noqa: B006
) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
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
def test_exception_before_start_becomes_the_envelope(
    exc: Exception, status: int, code: str, reraised: bool, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = RestFaultMiddleware(raising(exc), style="bkend")

    sent, error = asgi_call(app, http_scope("/items"))

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
    # API.md §7: every 5xx is logged at ERROR (a raised 503 too), every 4xx at INFO.
    errors = [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]
    assert len(errors) == (1 if status >= 500 else 0)


def test_exception_after_a_held_error_start(restfault_log: pytest.LogCaptureFixture) -> None:
    """The app started a text/plain 500 and then raised: nothing was sent yet, so the
    exception itself is answered — once."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
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


# -- the app's own error responses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "code"),
    [
        (400, [], "BAD_REQUEST"),
        (401, [(b"www-authenticate", b'Basic realm="x"')], "UNAUTHORIZED"),
        (404, [(b"x-trace", b"t-1")], "NOT_FOUND"),
        (405, [(b"allow", b"GET, HEAD")], "METHOD_NOT_ALLOWED"),
        (413, [], "CONTENT_TOO_LARGE"),
        (429, [(b"retry-after", b"9")], "RATE_LIMIT_EXCEEDED"),
        (500, [], "INTERNAL_SERVER_ERROR"),
        (503, [(b"retry-after", b"120")], "SERVICE_UNAVAILABLE"),
    ],
)
@pytest.mark.parametrize(
    "content_type",
    [b"text/plain; charset=utf-8", b"text/html", None],
    ids=["plain", "html", "none"],
)
def test_non_json_error_response_becomes_the_envelope(
    status: int, headers: list[tuple[bytes, bytes]], code: str, content_type: bytes | None
) -> None:
    own = [(b"content-type", content_type)] if content_type else []
    own += [(b"content-length", b"9")]
    app = RestFaultMiddleware(
        responding(status, own + headers, [b"<p>", b"original", b" page"]), style="bkend"
    )

    sent, error = asgi_call(app, http_scope("/x"))

    assert error is None
    assert starts(sent) == [status]
    got = start_headers(sent)
    assert got["content-type"] == "application/json"
    body = body_of(sent)
    assert int(got["content-length"]) == len(body)
    assert len(got.get_list("content-length")) == 1
    assert json.loads(body) == {"error": code, "message": json.loads(body)["message"]}
    assert b"original" not in body
    for name, value in headers:
        assert got[name.decode()] == value.decode()


def test_converted_response_drops_headers_of_the_replaced_body() -> None:
    import gzip

    page = gzip.compress(b"<html>" + b"x" * 600 + b"</html>")
    app = RestFaultMiddleware(
        responding(
            500,
            [
                (b"content-type", b"text/html"),
                (b"content-encoding", b"gzip"),
                (b"content-disposition", b"inline"),
                (b"vary", b"Accept-Encoding"),
            ],
            [page],
        )
    )

    sent, _ = asgi_call(app, http_scope("/x"))

    headers = start_headers(sent)
    assert "content-encoding" not in headers
    assert "content-disposition" not in headers
    assert headers["vary"] == "Accept-Encoding"
    assert json.loads(body_of(sent))["error"]["code"] == 500


@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"application/problem+json", b"application/vnd.api+json; charset=utf-8"],
)
def test_json_error_responses_are_untouched(content_type: bytes) -> None:
    payload = b'{"own": "error"}'
    app = RestFaultMiddleware(responding(409, [(b"content-type", content_type)], [payload]))

    sent, _ = asgi_call(app, http_scope("/x"))

    assert starts(sent) == [409]
    assert start_headers(sent)["content-type"] == content_type.decode()
    assert body_of(sent) == payload


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 399])
def test_non_error_responses_are_untouched(status: int) -> None:
    app = RestFaultMiddleware(responding(status, [(b"content-type", b"text/plain")], [b"a", b"b"]))
    sent, _ = asgi_call(app, http_scope("/x"))
    assert starts(sent) == [status]
    assert body_of(sent) == b"ab"


def test_conversion_can_be_switched_off() -> None:
    app = RestFaultMiddleware(
        responding(404, [(b"content-type", b"text/plain")], [b"plain"]),
        convert_error_responses=False,
    )
    sent, _ = asgi_call(app, http_scope("/x"))
    assert body_of(sent) == b"plain"


# -- HEAD ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inner",
    [raising(NotFoundException()), responding(404, [(b"content-type", b"text/plain")], [b""])],
    ids=["raised", "converted"],
)
def test_head_gets_no_body(inner: App) -> None:
    sent, _ = asgi_call(RestFaultMiddleware(inner), http_scope("/x", method="HEAD"))
    assert starts(sent) == [404]
    assert start_headers(sent)["content-type"] == "application/json"
    assert body_of(sent) == b""


# -- other scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
def test_other_scopes_pass_straight_through(scope_type: str) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))
        raise RuntimeError("the app's own business")

    middleware = RestFaultMiddleware(app, default_limits="1/minute")
    scope = {"type": scope_type, "path": "/ws", "headers": [], "client": ("127.0.0.1", 1)}

    async def receive() -> dict[str, Any]:
        return {"type": f"{scope_type}.connect"}  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
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
    async def app(scope: Any, receive: Any, send: Any) -> None:
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
    errors = [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "Broke" in errors[0].getMessage()
    assert "/export" in errors[0].getMessage()


def test_error_after_start_before_body(restfault_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise NotFoundException()

    sent, error = asgi_call(RestFaultMiddleware(app), http_scope("/x"))

    assert isinstance(error, NotFoundException)
    assert starts(sent) == [200]
    assert body_of(sent) == b""


# -- logs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/a\nINJECTED fake line",
        "/a\r\nINJECTED",
        "/\x1b[31mred",
        "/nul\x00",
        "/nel\x85INJECTED",
        "/ls\u2028INJECTED",
        "/ps\u2029INJECTED",
    ],
)
def test_control_characters_cannot_forge_log_lines(
    path: str, restfault_log: pytest.LogCaptureFixture
) -> None:
    sent, _ = asgi_call(RestFaultMiddleware(raising(RuntimeError("x"))), http_scope(path))
    assert starts(sent) == [500]
    errors = [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert not any(ch in message for ch in "\n\r\x1b\x00")
    assert len(message.splitlines()) == 1
    assert "INJECTED" in message or "red" in message or "nul" in message


def test_secret_headers_never_reach_the_log(restfault_log: pytest.LogCaptureFixture) -> None:
    secrets = [
        (b"authorization", b"Bearer s3cr3t"),
        (b"cookie", b"session=c00kie"),
        (b"x-api-key", b"pk_k3y"),
    ]
    app = RestFaultMiddleware(raising(RuntimeError("x")), debug=True)
    asgi_call(app, http_scope("/x", headers=secrets))
    assert restfault_log.records
    for _, value in secrets:
        assert value.decode() not in restfault_log.text


# -- through httpx ---------------------------------------------------------------------------


def test_through_httpx_asgi_transport() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
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


# -- rate limits answer with the envelope ---------------------------------------------------


def test_default_limits_answer_429_envelopes() -> None:
    app = RestFaultMiddleware(
        responding(200, [(b"content-type", b"text/plain")], [b"ok"]),
        style="bkend",
        default_limits="2/minute",
        exempt_paths=["/health"],
    )

    statuses = [starts(asgi_call(app, http_scope("/x"))[0]) for _ in range(2)]
    sent, error = asgi_call(app, http_scope("/x"))

    assert statuses == [[200], [200]]
    assert error is None
    assert starts(sent) == [429]
    headers = start_headers(sent)
    assert json.loads(body_of(sent))["error"] == "RATE_LIMIT_EXCEEDED"
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-remaining"] == "0"
    assert starts(asgi_call(app, http_scope("/health"))[0]) == [200]
