"""The WSGI protocol (PEP 3333), call by call: what a server sees of the WSGI adapters.

HTTP-level behaviours are the harness's, on every adapter (its WSGI client is ``serve``,
the strict server stand-in used here too); here are the calls themselves: one
``start_response`` (or a second with ``exc_info``), ``close()``, the write callable,
responses that had started, paths no client can send. The table of exceptions runs on
every WSGI adapter; the rest wraps bare WSGI apps in ``restfault.wsgi.RestFaultMiddleware``.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import flask
import pytest
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.test import Client, EnvironBuilder

from restfault import BadRequestException, NotFoundException, ServiceUnavailableException
from restfault._wsgi import Exchange
from restfault.flask import RestFault as RestFaultFlask
from restfault.wsgi import RestFaultMiddleware
from tests.harness import WSGI_ADAPTERS, MakeHarness, WsgiHarness, error_records, raising, serve

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def raising_app(exc: BaseException) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raise exc

    return app


def responding(status: str, headers: list[tuple[str, str]], chunks: list[bytes]) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
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
@pytest.mark.parametrize("adapter", WSGI_ADAPTERS)
def test_exception_before_start_becomes_the_envelope(
    harness: MakeHarness,
    exc: Exception,
    status: int,
    code: str,
    logged: bool,
    restfault_log: pytest.LogCaptureFixture,
) -> None:
    app = harness(style="bkend")
    app.route("/items")(raising(exc))
    assert isinstance(app, WsgiHarness)

    exchange = serve(app.wsgi_app, "/items")

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
    errors = error_records(restfault_log)
    assert len(errors) == (1 if logged else 0)
    if logged:
        assert "GET" in errors[0].getMessage()
        assert "/items" in errors[0].getMessage()


def test_exception_after_start_response_replaces_the_headers() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise NotFoundException()

    exchange = serve(RestFaultMiddleware(app), "/x")

    assert exchange.error is None
    assert [c[0].split()[0] for c in exchange.calls] == ["200", "404"]
    assert exchange.calls[1][2] is not None  # replaced with exc_info, as PEP 3333 asks
    assert json.loads(exchange.body) == {"error": {"code": 404, "message": "Not Found"}}


def test_exception_before_the_first_chunk() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        if environ:  # a generator: it raises when the server asks for the first chunk
            raise NotFoundException()
        yield b""  # pragma: no cover

    exchange = serve(RestFaultMiddleware(app), "/x")
    assert exchange.status == 404
    assert exchange.error is None


def test_write_callable_output_is_replaced() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
        write(b"written directly")
        return []

    exchange = serve(RestFaultMiddleware(app), "/x")
    assert exchange.status == 404
    assert b"written directly" not in exchange.body
    assert json.loads(exchange.body)["error"]["code"] == 404


@pytest.mark.parametrize("status", ["200 OK", "204 NO CONTENT", "302 FOUND", "304 NOT MODIFIED"])
def test_the_apps_own_status_line_passes_untouched(status: str) -> None:
    app = RestFaultMiddleware(responding(status, [("Content-Type", "text/plain")], [b"a", b"b"]))
    exchange = serve(app, "/x")
    assert [call[0] for call in exchange.calls] == [status]
    assert exchange.body == b"ab"


# -- a response that has started ----------------------------------------------------------


class Broke(Exception):
    pass


def test_error_after_the_first_chunk(restfault_log: pytest.LogCaptureFixture) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/csv")])
        yield b"a,b\n"
        raise Broke("mid-stream")

    exchange = serve(RestFaultMiddleware(app), "/export")

    assert isinstance(exchange.error, Broke)  # the server sees it and drops the connection
    assert len(exchange.calls) == 1
    assert exchange.status == 200
    assert exchange.body == b"a,b\n"
    assert exchange.closed
    errors = error_records(restfault_log)
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

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("404 NOT FOUND", [("Content-Type", "text/html")])
        return Body()

    exchange = serve(RestFaultMiddleware(app), "/x")
    assert exchange.status == 404
    assert json.loads(exchange.body) == {"error": {"code": 404, "message": "Not Found"}}
    assert closed == [True]  # the app's iterable, though its body was replaced
    assert exchange.closed  # and restfault's own, by the server


# -- logs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/a\nINJECTED fake line", "/a\\x0aINJECTED fake line"),
        ("/a\r\nINJECTED", "/a\\x0d\\x0aINJECTED"),
        ("/\x1b[31mred", "/\\x1b[31mred"),
    ],
    ids=["lf", "crlf", "ansi"],
)
def test_control_characters_cannot_forge_log_lines(
    path: str, logged: str, restfault_log: pytest.LogCaptureFixture
) -> None:
    exchange = serve(RestFaultMiddleware(raising_app(RuntimeError("x"))), raw_path=path)
    assert exchange.status == 500
    errors = error_records(restfault_log)
    assert len(errors) == 1
    assert not any(ch in errors[0].getMessage() for ch in "\n\r\x1b")
    assert logged in errors[0].getMessage()  # escaped, visibly


# -- werkzeug's test client and a Flask app's wsgi_app ------------------------------------


def test_through_werkzeug_test_client() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
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
    app = flask.Flask("wrapped")
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/crash")
    def crash() -> flask.Response:
        raise RuntimeError("x")

    @app.get("/missing")
    def missing() -> flask.Response:
        raise NotFoundException()

    app.wsgi_app = RestFaultMiddleware(app.wsgi_app, style="bkend")  # type: ignore[method-assign]
    client = app.test_client()
    assert client.get("/nowhere").get_json() == {"error": "NOT_FOUND", "message": "Not Found"}
    assert client.get("/missing").get_json() == {"error": "NOT_FOUND", "message": "Not Found"}
    reply = client.post("/missing")
    assert reply.status_code == 405
    assert reply.get_json()["error"] == "METHOD_NOT_ALLOWED"
    assert reply.headers["allow"] == "GET, HEAD, OPTIONS"
    reply = client.get("/crash")
    assert reply.status_code == 500
    assert reply.get_json()["error"] == "INTERNAL_SERVER_ERROR"


def test_error_before_the_first_chunk_of_a_started_response() -> None:
    """start_response was passed on, but no body chunk yet: the server has sent nothing,
    so the envelope replaces the headers (with exc_info, as PEP 3333 asks)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/csv")])
        yield b""
        raise NotFoundException("export source gone")

    exchange = serve(RestFaultMiddleware(app), "/export")

    assert exchange.error is None
    assert [c[0].split()[0] for c in exchange.calls] == ["200", "404"]
    assert exchange.calls[1][2] is not None
    assert json.loads(exchange.body)["error"]["message"] == "export source gone"
    assert exchange.closed


@pytest.mark.parametrize("extension", [True, False], ids=["flask-extension", "wsgi-middleware"])
def test_a_requests_state_goes_when_the_server_drops_its_body(extension: bool) -> None:
    """restfault's per-request objects are freed as soon as the server closes and drops
    the body, never left to the garbage collector, though werkzeug's request keeps the
    environ in a reference cycle: a busy server's memory and collection pauses stay the
    framework's own."""
    app = flask.Flask("collected")

    @app.get("/things")
    def things() -> flask.Response:
        return flask.jsonify([])

    if extension:
        RestFaultFlask(app, default_limits="1000/minute")
    else:
        app.wsgi_app = RestFaultMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, default_limits="1000/minute"
        )

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Any:
        return lambda data: None

    def live_exchanges() -> int:
        return sum(isinstance(o, Exchange) for o in gc.get_objects())

    gc.collect()
    gc.disable()
    try:
        before = live_exchanges()
        for _ in range(50):
            body = app(EnvironBuilder(path="/things").get_environ(), start_response)
            assert b"".join(body) == b"[]\n"
            getattr(body, "close", lambda: None)()
            del body
        assert live_exchanges() == before
    finally:
        gc.enable()
