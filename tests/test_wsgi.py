"""``restfault.wsgi.RestFaultMiddleware`` around bare WSGI apps, through a strict
PEP 3333 server stand-in and through werkzeug's test client."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.test import Client, EnvironBuilder

from restfault import BadRequestException, NotFoundException, ServiceUnavailableException
from restfault.wsgi import RestFaultMiddleware
from tests.conftest import restfault_records

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


@dataclass
class Exchange:
    """What a strict WSGI server saw of one request."""

    calls: list[tuple[str, list[tuple[str, str]], Any]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    closed: bool = False

    @property
    def status(self) -> int:
        return int(self.calls[-1][0].split(" ", 1)[0])

    @property
    def headers(self) -> httpx.Headers:
        return httpx.Headers(self.calls[-1][1])

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def serve(app: WSGIApp, path: str = "/", method: str = "GET", **builder: Any) -> Exchange:
    """Run one request the way PEP 3333 says a server must."""
    environ = EnvironBuilder(path="/", method=method, **builder).get_environ()
    environ["PATH_INFO"] = path
    exchange = Exchange()
    headers_sent = False

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None:
            if headers_sent:
                raise exc_info[1].with_traceback(exc_info[2])
        elif exchange.calls:
            raise AssertionError("start_response called again without exc_info")
        for name, value in headers:
            assert "\n" not in value, (name, value)
            assert "\r" not in value, (name, value)
        exchange.calls.append((status, list(headers), exc_info))
        return exchange.chunks.append

    try:
        result = app(environ, start_response)
        try:
            for chunk in result:
                if chunk:
                    headers_sent = True
                exchange.chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
                exchange.closed = True
    except Exception as exc:
        exchange.error = exc
    return exchange


def raising(exc: BaseException) -> WSGIApp:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        raise exc

    return app


def responding(status: str, headers: list[tuple[str, str]], chunks: list[bytes]) -> WSGIApp:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response(status, headers)
        return list(chunks)

    return app


# -- exceptions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "code", "logged"),
    [
        (NotFoundException(code="TABLE_NOT_FOUND"), 404, "TABLE_NOT_FOUND", False),
        (BadRequestException("Bad filter", code="INVALID_FILTER"), 400, "INVALID_FILTER", False),
        # API.md §7: every 5xx is logged at ERROR, a raised 503 too.
        (ServiceUnavailableException(retry_after=5), 503, "SERVICE_UNAVAILABLE", True),
        (MethodNotAllowed(["GET"]), 405, "METHOD_NOT_ALLOWED", False),
        (RuntimeError("secret"), 500, "INTERNAL_SERVER_ERROR", True),
    ],
    ids=["not-found", "bad-request", "unavailable", "werkzeug-405", "runtime"],
)
def test_exception_before_start_becomes_the_envelope(
    exc: Exception, status: int, code: str, logged: bool, restfault_log: pytest.LogCaptureFixture
) -> None:
    exchange = serve(RestFaultMiddleware(raising(exc), style="bkend"), "/items")

    assert exchange.error is None
    assert len(exchange.calls) == 1
    assert exchange.calls[0][2] is None  # a first call carries no exc_info
    assert exchange.status == status
    assert exchange.headers["content-type"] == "application/json"
    assert int(exchange.headers["content-length"]) == len(exchange.body)
    assert json.loads(exchange.body)["error"] == code
    assert b"secret" not in exchange.body
    if status == 405:
        assert exchange.headers["allow"] == "GET"
    if status == 503:
        assert exchange.headers["retry-after"] == "5"
    errors = [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]
    assert len(errors) == (1 if logged else 0)
    if logged:
        assert "GET" in errors[0].getMessage()
        assert "/items" in errors[0].getMessage()


def test_exception_after_start_response_replaces_the_headers() -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise NotFoundException()

    exchange = serve(RestFaultMiddleware(app), "/x")

    assert exchange.error is None
    assert [c[0].split()[0] for c in exchange.calls] == ["200", "404"]
    assert exchange.calls[1][2] is not None  # replaced with exc_info, as PEP 3333 asks
    assert json.loads(exchange.body) == {"error": {"code": 404, "message": "Not Found"}}


def test_exception_before_the_first_chunk() -> None:
    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        raise NotFoundException()
        yield b""  # pragma: no cover

    exchange = serve(RestFaultMiddleware(app), "/x")
    assert exchange.status == 404
    assert exchange.error is None


# -- the app's own error responses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "code"),
    [
        ("400 BAD REQUEST", [], "BAD_REQUEST"),
        ("401 UNAUTHORIZED", [("WWW-Authenticate", 'Basic realm="x"')], "UNAUTHORIZED"),
        ("404 NOT FOUND", [("X-Trace", "t-1")], "NOT_FOUND"),
        ("405 METHOD NOT ALLOWED", [("Allow", "GET, HEAD")], "METHOD_NOT_ALLOWED"),
        ("429 TOO MANY REQUESTS", [("Retry-After", "9")], "RATE_LIMIT_EXCEEDED"),
        ("500 INTERNAL SERVER ERROR", [], "INTERNAL_SERVER_ERROR"),
        ("503 SERVICE UNAVAILABLE", [("Retry-After", "120")], "SERVICE_UNAVAILABLE"),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain; charset=utf-8", "text/html", None])
def test_non_json_error_response_becomes_the_envelope(
    status: str, headers: list[tuple[str, str]], code: str, content_type: str | None
) -> None:
    own = [("Content-Type", content_type)] if content_type else []
    own.append(("Content-Length", "13"))
    app = RestFaultMiddleware(
        responding(status, own + headers, [b"<p>", b"original", b" page"]), style="bkend"
    )

    exchange = serve(app, "/x")

    assert exchange.error is None
    assert len(exchange.calls) == 1
    assert exchange.status == int(status.split()[0])
    assert exchange.headers["content-type"] == "application/json"
    assert exchange.headers.get_list("content-length") == [str(len(exchange.body))]
    assert json.loads(exchange.body)["error"] == code
    assert b"original" not in exchange.body
    for name, value in headers:
        assert exchange.headers[name] == value
    assert exchange.closed


def test_write_callable_output_is_replaced() -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        write = start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
        write(b"written directly")
        return []

    exchange = serve(RestFaultMiddleware(app), "/x")
    assert exchange.status == 404
    assert b"written directly" not in exchange.body
    assert json.loads(exchange.body)["error"]["code"] == 404


def test_converted_response_drops_headers_of_the_replaced_body() -> None:
    import gzip

    page = gzip.compress(b"<html>" + b"x" * 600 + b"</html>")
    headers = [
        ("Content-Type", "text/html"),
        ("Content-Encoding", "gzip"),
        ("Vary", "Accept-Encoding"),
    ]
    exchange = serve(RestFaultMiddleware(responding("502 BAD GATEWAY", headers, [page])), "/x")
    assert exchange.status == 502
    assert "content-encoding" not in exchange.headers
    assert exchange.headers["vary"] == "Accept-Encoding"
    assert json.loads(exchange.body)["error"]["code"] == 502


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/problem+json; charset=utf-8"]
)
def test_json_error_responses_are_untouched(content_type: str) -> None:
    app = RestFaultMiddleware(
        responding("409 CONFLICT", [("Content-Type", content_type)], [b'{"own":1}'])
    )
    exchange = serve(app, "/x")
    assert exchange.status == 409
    assert exchange.body == b'{"own":1}'


@pytest.mark.parametrize("status", ["200 OK", "204 NO CONTENT", "302 FOUND", "304 NOT MODIFIED"])
def test_non_error_responses_are_untouched(status: str) -> None:
    app = RestFaultMiddleware(responding(status, [("Content-Type", "text/plain")], [b"a", b"b"]))
    exchange = serve(app, "/x")
    assert exchange.calls[0][0] == status
    assert exchange.body == b"ab"


@pytest.mark.parametrize(
    "inner",
    [
        raising(NotFoundException()),
        responding("404 NOT FOUND", [("Content-Type", "text/plain")], [b"x"]),
    ],
    ids=["raised", "converted"],
)
def test_head_gets_no_body(inner: WSGIApp) -> None:
    exchange = serve(RestFaultMiddleware(inner), "/x", method="HEAD")
    assert exchange.status == 404
    assert exchange.headers["content-type"] == "application/json"
    assert exchange.body == b""


# -- a response that has started ----------------------------------------------------------


class Broke(Exception):
    pass


def test_error_after_the_first_chunk(restfault_log: pytest.LogCaptureFixture) -> None:
    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/csv")])
        yield b"a,b\n"
        raise Broke("mid-stream")

    exchange = serve(RestFaultMiddleware(app), "/export")

    assert isinstance(exchange.error, Broke)  # the server sees it and drops the connection
    assert len(exchange.calls) == 1
    assert exchange.status == 200
    assert exchange.body == b"a,b\n"
    assert exchange.closed
    errors = [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "Broke" in errors[0].getMessage()
    assert "/export" in errors[0].getMessage()


def test_close_is_called_on_the_apps_iterable() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"<html>not found</html>"

        def close(self) -> None:
            closed.append(True)

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("404 NOT FOUND", [("Content-Type", "text/html")])
        return Body()

    exchange = serve(RestFaultMiddleware(app), "/x")
    assert exchange.status == 404
    assert closed == [True]


# -- logs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/a\nINJECTED fake line", "/a\r\nINJECTED", "/\x1b[31mred"])
def test_control_characters_cannot_forge_log_lines(
    path: str, restfault_log: pytest.LogCaptureFixture
) -> None:
    exchange = serve(RestFaultMiddleware(raising(RuntimeError("x"))), path)
    assert exchange.status == 500
    errors = [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert not any(ch in errors[0].getMessage() for ch in "\n\r\x1b")


def test_secret_headers_never_reach_the_log(restfault_log: pytest.LogCaptureFixture) -> None:
    secrets = {"Authorization": "Bearer s3cr3t", "Cookie": "session=c00kie", "X-API-Key": "pk_k3y"}
    serve(RestFaultMiddleware(raising(RuntimeError("x")), debug=True), "/x", headers=secrets)
    assert restfault_log.records
    for value in secrets.values():
        assert value not in restfault_log.text


def test_header_values_cannot_split_lines() -> None:
    app = RestFaultMiddleware(
        raising(NotFoundException(headers={"X-Evil": "a\r\nSet-Cookie: x=1"}))
    )
    exchange = serve(app, "/x")  # serve() rejects CR/LF in any header value
    assert exchange.status == 404
    assert "set-cookie" not in exchange.headers


# -- werkzeug's test client and a Flask app's wsgi_app ------------------------------------


def test_through_werkzeug_test_client() -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/missing":
            raise NotFoundException("No such thing", code="RECORD_NOT_FOUND")
        start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
        return [b"nope"]

    client = Client(RestFaultMiddleware(app, style="problem"))
    missing = client.get("/missing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.get_json()["code"] == "RECORD_NOT_FOUND"
    plain = client.get("/plain")
    assert plain.get_json()["title"] == "Not Found"


def test_wrapping_a_flask_wsgi_app() -> None:
    """Without the Flask extension, the middleware sees what Flask lets out: with
    PROPAGATE_EXCEPTIONS the exceptions themselves, else Flask's own HTML errors."""
    from flask import Flask

    app = Flask("wrapped")
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/crash")
    def crash() -> Any:
        raise RuntimeError("x")

    @app.get("/missing")
    def missing() -> Any:
        raise NotFoundException()

    app.wsgi_app = RestFaultMiddleware(app.wsgi_app, style="bkend")  # type: ignore[method-assign]
    client = app.test_client()
    assert client.get("/nowhere").get_json() == {"error": "NOT_FOUND", "message": "Not Found"}
    assert client.get("/missing").get_json() == {"error": "NOT_FOUND", "message": "Not Found"}
    reply = client.post("/missing")
    assert reply.status_code == 405
    assert reply.get_json()["error"] == "METHOD_NOT_ALLOWED"
    assert "GET" in reply.headers["allow"]
    reply = client.get("/crash")
    assert reply.status_code == 500
    assert reply.get_json()["error"] == "INTERNAL_SERVER_ERROR"


def test_default_limits_answer_429_envelopes() -> None:
    app = RestFaultMiddleware(
        responding("200 OK", [("Content-Type", "text/plain")], [b"ok"]),
        style="bkend",
        default_limits="2/minute",
        exempt_paths=["/health"],
    )

    assert [serve(app, "/x").status for _ in range(2)] == [200, 200]
    exchange = serve(app, "/x")

    assert exchange.status == 429
    assert json.loads(exchange.body)["error"] == "RATE_LIMIT_EXCEEDED"
    assert int(exchange.headers["retry-after"]) >= 1
    assert exchange.headers["x-ratelimit-remaining"] == "0"
    assert serve(app, "/health").status == 200


def test_error_before_the_first_chunk_of_a_started_response() -> None:
    """start_response was passed on, but no body chunk yet: the server has sent nothing,
    so the envelope replaces the headers (with exc_info, as PEP 3333 asks)."""

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/csv")])
        yield b""
        raise NotFoundException("export source gone")

    exchange = serve(RestFaultMiddleware(app), "/export")

    assert exchange.error is None
    assert [c[0].split()[0] for c in exchange.calls] == ["200", "404"]
    assert exchange.calls[1][2] is not None
    assert json.loads(exchange.body)["error"]["message"] == "export source gone"
    assert exchange.closed
