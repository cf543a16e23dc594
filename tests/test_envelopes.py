"""Every error reaches the client as the envelope, on every adapter (API.md §2, §4).

Each test runs once per adapter (the ``harness`` fixture: pure ASGI, pure WSGI, Starlette,
FastAPI, Flask) through a real app and a client.
"""

from __future__ import annotations

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from restfault import (
    BadRequestException,
    NotFoundException,
    RestException,
    ServiceUnavailableException,
    TooManyRequestsException,
)
from tests.harness import MakeHarness, error_records, raising
from tests.tables import (
    EXCEPTION_IDS,
    EXCEPTION_TABLE,
    STYLE_IDS,
    STYLE_NAMES,
    STYLES,
    StyleName,
    StyleOption,
    content_type_of,
    expected_document,
    make_exception,
)

SECRETS = {
    "Authorization": "Bearer s3cr3t-t0ken",
    "Cookie": "session=c00kie-value",
    "X-API-Key": "pk_l34ky-k3y",
}


@pytest.mark.parametrize("style", STYLES, ids=STYLE_IDS)
@pytest.mark.parametrize(("cls", "status", "code", "message"), EXCEPTION_TABLE, ids=EXCEPTION_IDS)
def test_every_exception_in_every_style(
    harness: MakeHarness,
    style: StyleOption,
    cls: type[RestException],
    status: int,
    code: str,
    message: str,
) -> None:
    app = harness(style=style)

    @app.route("/raise")
    def view() -> object:
        raise make_exception(cls)

    reply = app.get("/raise")

    assert reply.status == status
    assert reply.json() == expected_document(make_exception(cls), style)
    assert reply.content_type == content_type_of(style)
    document = reply.json()
    if style == "dreamfactory":
        assert document["error"]["code"] == status
        assert document["error"]["message"] == message
    elif style == "bkend":
        assert document["error"] == code
        assert document["message"] == message
    elif style == "problem":
        assert document["status"] == status
        assert document["code"] == code
        assert document["type"] == "about:blank"
    else:
        assert document["status"] == status
    assert reply.headers["content-length"] == str(len(reply.body))


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_context_reaches_the_client(harness: MakeHarness, style: StyleName) -> None:
    app = harness(style=style)
    app.route("/raise")(
        raising(
            NotFoundException(
                "Table 'posts' not found", code="TABLE_NOT_FOUND", context={"table": "posts"}
            )
        )
    )

    document = app.get("/raise").json()

    if style == "dreamfactory":
        assert document == {
            "error": {
                "code": 404,
                "message": "Table 'posts' not found",
                "context": {"table": "posts"},
            }
        }
    elif style == "bkend":
        assert document == {
            "error": "TABLE_NOT_FOUND",
            "message": "Table 'posts' not found",
            "context": {"table": "posts"},
        }
    else:
        assert document == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "Table 'posts' not found",
            "code": "TABLE_NOT_FOUND",
            "table": "posts",
        }


@pytest.mark.parametrize(
    ("cls", "status"), [(TooManyRequestsException, 429), (ServiceUnavailableException, 503)]
)
def test_retry_after_becomes_a_header(
    harness: MakeHarness, cls: type[TooManyRequestsException], status: int
) -> None:
    app = harness()
    app.route("/raise")(raising(cls(retry_after=2.2)))

    reply = app.get("/raise")

    assert reply.status == status
    assert reply.headers["retry-after"] == "3"
    assert reply.json() == expected_document(cls(), "dreamfactory")


def test_exception_headers_are_sent(harness: MakeHarness) -> None:
    app = harness()
    app.route("/raise")(
        raising(
            BadRequestException(headers={"X-Request-Id": "abc-123", "Cache-Control": "no-store"})
        )
    )

    reply = app.get("/raise")

    assert reply.status == 400
    assert reply.headers["x-request-id"] == "abc-123"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.content_type == "application/json"


@pytest.mark.parametrize(
    ("status", "code"), [(410, "GONE"), (422, "UNPROCESSABLE_CONTENT"), (418, "I_M_A_TEAPOT")]
)
def test_status_code_on_rest_exception(harness: MakeHarness, status: int, code: str) -> None:
    app = harness(style="bkend")
    app.route("/raise")(raising(RestException(status_code=status)))

    reply = app.get("/raise")

    assert reply.status == status
    assert reply.json() == {"error": code, "message": RestException(status_code=status).message}


def test_header_values_cannot_split_lines(harness: MakeHarness) -> None:
    # (the WSGI adapters' server stand-in also refuses CR or LF in any header value)
    app = harness()
    app.route("/raise")(
        raising(NotFoundException(headers={"X-Echo": "a\r\nSet-Cookie: session=forged"}))
    )

    reply = app.get("/raise")

    assert reply.status == 404
    assert "set-cookie" not in reply.headers
    assert reply.json() == {"error": {"code": 404, "message": "Not Found"}}


def test_problem_type_option(harness: MakeHarness) -> None:
    app = harness(style="problem", problem_type="https://errors.example/problems")
    app.route("/raise")(raising(NotFoundException()))

    assert app.get("/raise").json() == {
        "type": "https://errors.example/problems",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
        "code": "NOT_FOUND",
    }


def test_messages_are_not_html_escaped(harness: MakeHarness) -> None:
    message = "<b>'posts' & \"comments\"</b> — ünïcode"
    app = harness()
    app.route("/raise")(raising(BadRequestException(message)))

    assert app.get("/raise").json() == {"error": {"code": 400, "message": message}}


# -- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_routing_404(harness: MakeHarness, adapter: str, style: StyleName) -> None:
    app = harness(style=style)

    reply = app.get("/nowhere")

    assert reply.status == 404
    assert reply.content_type == content_type_of(style)
    # Flask's router raises werkzeug's NotFound: its description is the message.
    message = NotFound.description if adapter == "flask" else None
    assert reply.json() == expected_document(NotFoundException(message), style)


# What each router answers in Allow for a route of GET and POST (frameworks add their own).
ALLOWED = {
    "asgi": {"GET", "POST"},
    "wsgi": {"GET", "POST"},
    "starlette": {"GET", "HEAD", "POST"},
    "fastapi": {"GET", "POST"},
    "flask": {"GET", "HEAD", "OPTIONS", "POST"},
}


def test_routing_405_keeps_allow(harness: MakeHarness, adapter: str) -> None:
    app = harness(style="bkend")
    app.route("/things", methods=["GET", "POST"])(list)

    reply = app.request("DELETE", "/things")

    assert reply.status == 405
    message = MethodNotAllowed.description if adapter == "flask" else "Method Not Allowed"
    assert reply.json() == {"error": "METHOD_NOT_ALLOWED", "message": message}
    assert {m.strip() for m in reply.headers["allow"].split(",")} == ALLOWED[adapter]
    assert reply.content_type == "application/json"


@pytest.mark.parametrize(
    ("status", "headers", "code"),
    [
        (401, {"WWW-Authenticate": 'Bearer realm="api"'}, "UNAUTHORIZED"),
        (405, {"Allow": "GET"}, "METHOD_NOT_ALLOWED"),
        (429, {"Retry-After": "7"}, "RATE_LIMIT_EXCEEDED"),
        (503, {"Retry-After": "30"}, "SERVICE_UNAVAILABLE"),
        (413, {}, "CONTENT_TOO_LARGE"),
        (415, {}, "UNSUPPORTED_MEDIA_TYPE"),
        (422, {}, "UNPROCESSABLE_CONTENT"),
    ],
)
def test_framework_http_exception_with_headers(
    harness: MakeHarness, status: int, headers: dict[str, str], code: str
) -> None:
    app = harness(style="bkend")

    @app.route("/raise")
    def view() -> object:
        raise app.http_exception(status, "Spelled out by the app", headers)

    reply = app.get("/raise")

    assert reply.status == status
    assert reply.json() == {"error": code, "message": "Spelled out by the app"}
    assert reply.content_type == "application/json"
    for name, value in headers.items():
        assert reply.headers[name] == value


def test_head_error_has_no_body(harness: MakeHarness) -> None:
    app = harness()
    app.route("/raise", methods=["GET", "HEAD"])(raising(NotFoundException()))

    for path in ("/raise", "/nowhere"):
        reply = app.request("HEAD", path)
        assert reply.status == 404
        assert reply.body == b""
        assert reply.content_type == "application/json"


# -- unexpected exceptions ----------------------------------------------------------------


def test_unexpected_exception_says_nothing(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness(style="problem")
    app.route("/boom")(raising(KeyError("db_password=hunter2")))

    reply = app.get("/boom")

    assert reply.status == 500
    assert reply.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Internal Server Error",
        "code": "INTERNAL_SERVER_ERROR",
    }
    assert b"hunter2" not in reply.body
    assert b"KeyError" not in reply.body
    assert b"Traceback" not in reply.body


@pytest.mark.parametrize("style", ["dreamfactory", "bkend"])
def test_unexpected_exception_plain_body(harness: MakeHarness, style: str) -> None:
    app = harness(style=style)
    app.route("/boom")(raising(ZeroDivisionError("secret ratio")))

    reply = app.get("/boom")

    assert reply.status == 500
    if style == "dreamfactory":
        assert reply.json() == {"error": {"code": 500, "message": "Internal Server Error"}}
    else:
        assert reply.json() == {
            "error": "INTERNAL_SERVER_ERROR",
            "message": "Internal Server Error",
        }


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_debug_shows_type_message_and_traceback(
    harness: MakeHarness, style: StyleName, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness(style=style, debug=True)
    app.route("/boom")(raising(ZeroDivisionError("secret ratio")))

    reply = app.get("/boom")

    assert reply.status == 500
    document = reply.json()
    if style == "dreamfactory":
        details = document["error"]["context"]["debug"]
    elif style == "bkend":
        details = document["context"]["debug"]
    else:
        details = document["debug"]
    assert details["type"] == "builtins.ZeroDivisionError"
    assert details["message"] == "secret ratio"
    assert "ZeroDivisionError: secret ratio" in "".join(details["traceback"])


def test_unexpected_exception_is_logged_once_with_method_and_path(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness()
    app.route("/boom", methods=["POST"])(raising(ZeroDivisionError("ratio")))

    app.post("/boom", headers=SECRETS)

    errors = error_records(restfault_log)
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "POST" in message
    assert "/boom" in message
    assert "ZeroDivisionError" in message
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is ZeroDivisionError


def test_expected_errors_are_not_logged_as_errors(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness()
    app.route("/raise")(raising(NotFoundException()))

    assert app.get("/raise").status == 404
    assert app.get("/nowhere").status == 404

    assert error_records(restfault_log) == []


def test_secret_headers_never_reach_the_log(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness(debug=True)
    app.route("/boom")(raising(RuntimeError("boom")))
    app.route("/raise")(raising(ServiceUnavailableException()))

    app.get("/boom", headers=SECRETS)
    app.get("/raise", headers=SECRETS)
    app.get("/nowhere", headers=SECRETS)

    assert restfault_log.records
    logged = restfault_log.text + "".join(str(r.__dict__) for r in restfault_log.records)
    for value in SECRETS.values():
        assert value not in logged


@pytest.mark.parametrize("raw", ["%0DINJECTED%20line", "x%1B%5B31mred", "tab%09%7Fdel"])
def test_control_characters_cannot_forge_log_lines(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture, raw: str
) -> None:
    app = harness()
    app.route("/boom/{rest:path}")(raising(RuntimeError("boom")))

    reply = app.get("/boom/" + raw)

    assert reply.status == 500
    errors = error_records(restfault_log)
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "/boom/" in message
    assert not any(ch in message for ch in "\n\r\x1b\t\x7f")
    # (a path with a raw newline cannot be sent by an HTTP client: the protocol tests,
    # test_asgi.py and test_wsgi.py, put one straight into the scope and the environ)
