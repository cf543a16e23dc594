"""What Starlette and Flask apps share: every error reaches the client as the envelope.

Each test runs once per framework (the ``harness`` fixture) through a real app and its
test client.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from restfault import (
    BadRequestException,
    ConflictResourceException,
    NotFoundException,
    RestException,
    ServiceUnavailableException,
    TooManyRequestsException,
    run_batch,
)
from tests.conftest import (
    DATACLASS_EXCEPTIONS,
    EXCEPTION_TABLE,
    STYLE_IDS,
    STYLES,
    Harness,
    body_context,
    expected_document,
    make_exception,
    reply_from_httpx,
    reply_from_werkzeug,
    restfault_records,
)

MakeHarness = Callable[..., Harness]

SECRETS = {
    "Authorization": "Bearer s3cr3t-t0ken",
    "Cookie": "session=c00kie-value",
    "X-API-Key": "pk_l34ky-k3y",
}


def raising(exc: BaseException) -> Callable[[], Any]:
    def view() -> Any:
        raise exc

    return view


@pytest.mark.parametrize("style", STYLES, ids=STYLE_IDS)
@pytest.mark.parametrize(
    ("cls", "status", "code", "message"),
    EXCEPTION_TABLE,
    ids=[r[0].__name__ for r in EXCEPTION_TABLE],
)
def test_every_exception_in_every_style(
    harness: MakeHarness, style: Any, cls: type[RestException], status: int, code: str, message: str
) -> None:
    app = harness(style=style)

    @app.route("/raise")
    def view() -> Any:
        raise make_exception(cls)

    reply = app.get("/raise")

    assert reply.status == status
    assert reply.json() == expected_document(make_exception(cls), style)
    document = reply.json()
    if style == "dreamfactory":
        assert reply.content_type == "application/json"
        assert document["error"]["code"] == status
        assert document["error"]["message"] == message
    elif style == "bkend":
        assert reply.content_type == "application/json"
        assert document["error"] == code
        assert document["message"] == message
    elif style == "problem":
        assert reply.content_type == "application/problem+json"
        assert document["status"] == status
        assert document["code"] == code
        assert document["type"] == "about:blank"
    else:
        assert reply.content_type == "application/vnd.house+json"
        assert document["status"] == status
    assert int(reply.headers["content-length"]) == len(reply.body)


@pytest.mark.parametrize("style", ["dreamfactory", "bkend", "problem"])
def test_context_reaches_the_client(harness: MakeHarness, style: str) -> None:
    app = harness(style=style)

    @app.route("/raise")
    def view() -> Any:
        raise NotFoundException(
            "Table 'posts' not found", code="TABLE_NOT_FOUND", context={"table": "posts"}
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


def test_exception_headers_are_sent(harness: MakeHarness) -> None:
    app = harness()
    app.route("/raise")(
        raising(
            BadRequestException(headers={"X-Request-Id": "abc-123", "Cache-Control": "no-store"})
        )
    )

    reply = app.get("/raise")

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
    assert reply.json()["error"] == code


def test_header_values_cannot_split_lines(harness: MakeHarness) -> None:
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

    assert app.get("/raise").json()["type"] == "https://errors.example/problems"


def test_messages_are_not_html_escaped(harness: MakeHarness) -> None:
    message = "<b>'posts' & \"comments\"</b> — ünïcode"
    app = harness()
    app.route("/raise")(raising(BadRequestException(message)))

    assert app.get("/raise").json()["error"]["message"] == message


# -- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["dreamfactory", "bkend", "problem"])
def test_routing_404(harness: MakeHarness, style: str) -> None:
    app = harness(style=style)

    reply = app.get("/nowhere")

    assert reply.status == 404
    assert reply.content_type in {"application/json", "application/problem+json"}
    document = reply.json()
    if style == "dreamfactory":
        assert document["error"]["code"] == 404
    elif style == "bkend":
        assert document["error"] == "NOT_FOUND"
    else:
        assert (document["status"], document["title"]) == (404, "Not Found")


def test_routing_405_keeps_allow(harness: MakeHarness) -> None:
    app = harness(style="bkend")
    app.route("/things", methods=["GET", "POST"])(list)

    reply = app.request("DELETE", "/things")

    assert reply.status == 405
    assert reply.json()["error"] == "METHOD_NOT_ALLOWED"
    allowed = {m.strip() for m in reply.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
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
    def view() -> Any:
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


@pytest.mark.parametrize("style", ["dreamfactory", "bkend", "problem"])
def test_debug_shows_type_message_and_traceback(
    harness: MakeHarness, style: str, restfault_log: pytest.LogCaptureFixture
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

    errors = [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]
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

    app.get("/raise")
    app.get("/nowhere")

    assert not [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]


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
    errors = [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "/boom/" in message
    assert not any(ch in message for ch in "\n\r\x1b\t\x7f")
    # (a path with a raw newline never matches a route in either framework; the bare
    # middlewares' tests send one to an app that fails on every path)


# -- request bodies -----------------------------------------------------------------------

JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"name": "test",}', "Invalid JSON"),
        (b"{'single': 'quotes'}", "Invalid JSON"),
        (b'{"unclosed": [1, 2}', "Invalid JSON"),
        (b'{"latin1": "\xe9t\xe9"}', "Invalid JSON"),
        (b"[" * 20_000, "Invalid JSON"),
        (b"[" * 20_000 + b"]" * 20_000, "Invalid JSON"),
        (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "Invalid JSON"),
    ],
    ids=[
        "trailing-comma",
        "single-quotes",
        "unclosed",
        "invalid-utf8",
        "deep-open",
        "deep-closed",
        "deep-objects",
    ],
)
def test_invalid_json_body_is_400(
    harness: MakeHarness, body: bytes, message: str, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness(style="bkend")

    reply = app.post("/echo", content=body, headers=JSON_HEADERS)

    assert reply.status == 400
    document = reply.json()
    assert document["error"] == "INVALID_JSON"
    assert document["message"].startswith(message)
    assert not [r for r in restfault_records(restfault_log) if r.levelno >= logging.ERROR]


def test_valid_json_body_passes(harness: MakeHarness) -> None:
    app = harness()

    reply = app.post("/echo", content=b'{"name": "test", "tags": [1, 2]}', headers=JSON_HEADERS)

    assert reply.status == 200
    assert reply.json() == {"received": {"name": "test", "tags": [1, 2]}}


@pytest.mark.parametrize(
    "payload", ["{broken", '{"a": "\\ud800"', "[" * 20_000], ids=["syntax", "unfinished", "deep"]
)
def test_json_errors_elsewhere_stay_500(
    harness: MakeHarness, payload: str, restfault_log: pytest.LogCaptureFixture
) -> None:
    """A JSONDecodeError from an upstream reply or a file is the server's fault, not the
    client's: it must not pass for a 400 INVALID_JSON."""
    app = harness(style="bkend")

    @app.route("/upstream")
    def view() -> Any:
        return json.loads(payload)

    reply = app.get("/upstream")

    assert reply.status == 500
    assert reply.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}


# -- translations -------------------------------------------------------------------------


class DomainError(Exception):
    pass


class RecordMissing(DomainError):
    pass


class Unmapped(Exception):
    pass


def test_translate_decorator_and_mro(harness: MakeHarness) -> None:
    app = harness(style="bkend")
    app.route("/domain")(raising(DomainError("domain")))
    app.route("/missing")(raising(RecordMissing("record 7")))
    app.route("/unmapped")(raising(Unmapped("nope")))
    app.build()

    @app.restfault.translate(DomainError)
    def domain(exc: DomainError) -> RestException:
        return BadRequestException(str(exc), code="DOMAIN_RULE")

    assert app.get("/domain").json() == {"error": "DOMAIN_RULE", "message": "domain"}
    # RecordMissing inherits DomainError's translation ...
    assert app.get("/missing").json() == {"error": "DOMAIN_RULE", "message": "record 7"}

    # ... until it gets one of its own.
    @app.restfault.translate(RecordMissing)
    def missing(exc: RecordMissing) -> RestException:
        return NotFoundException(str(exc), code="RECORD_NOT_FOUND")

    reply = app.get("/missing")
    assert reply.status == 404
    assert reply.json() == {"error": "RECORD_NOT_FOUND", "message": "record 7"}
    assert app.get("/domain").json()["error"] == "DOMAIN_RULE"
    assert app.get("/unmapped").status == 500


def test_translation_returning_a_non_rest_exception_is_a_500(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness(style="bkend")
    app.route("/domain")(raising(DomainError("domain")))
    app.build()

    @app.restfault.translate(DomainError)
    def wrong(exc: DomainError) -> Any:
        return ValueError("not a RestException")

    reply = app.get("/domain")

    assert reply.status == 500
    assert reply.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}
    assert any(r.levelno >= logging.ERROR for r in restfault_records(restfault_log))


def test_translation_that_raises_is_a_500(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness(style="bkend")
    app.route("/domain")(raising(DomainError("domain")))
    app.build()

    @app.restfault.translate(DomainError)
    def broken(exc: DomainError) -> RestException:
        raise LookupError("the translation itself is broken")

    reply = app.get("/domain")

    assert reply.status == 500
    assert b"broken" not in reply.body


# -- rate limits meet envelopes -----------------------------------------------------------


@pytest.mark.parametrize("style", STYLES, ids=STYLE_IDS)
def test_429_is_the_envelope(harness: MakeHarness, style: Any) -> None:
    app = harness(style=style, default_limits="2/minute")
    app.route("/ping")(lambda: {"ok": True})

    assert [app.get("/ping").status for _ in range(2)] == [200, 200]
    reply = app.get("/ping")

    assert reply.status == 429
    assert reply.json() == expected_document(TooManyRequestsException(), style)
    assert 1 <= int(reply.headers["retry-after"]) <= 60
    assert reply.headers["x-ratelimit-limit"] == "2"
    assert reply.headers["x-ratelimit-remaining"] == "0"


def test_rate_limit_headers_on_error_responses(harness: MakeHarness) -> None:
    app = harness(default_limits="5/minute")
    app.route("/raise")(raising(NotFoundException()))

    reply = app.get("/raise")

    assert reply.status == 404
    assert reply.headers["x-ratelimit-limit"] == "5"
    assert reply.headers["x-ratelimit-remaining"] == "4"
    assert "retry-after" not in reply.headers


# -- exceptions of every shape --------------------------------------------------------------

GONE = {
    "dreamfactory": {"error": {"code": 410, "message": "Table is gone"}},
    "bkend": {"error": "TABLE_GONE", "message": "Table is gone"},
    "problem": {
        "type": "about:blank",
        "title": "Gone",
        "status": 410,
        "detail": "Table is gone",
        "code": "TABLE_GONE",
    },
}


@pytest.mark.parametrize("style", sorted(GONE))
@pytest.mark.parametrize("cls", DATACLASS_EXCEPTIONS, ids=["dataclass", "frozen"])
@pytest.mark.parametrize("how", ["raised", "translated"])
def test_a_dataclass_exception_answers_as_its_class_says(
    harness: MakeHarness,
    restfault_log: pytest.LogCaptureFixture,
    style: str,
    cls: type[NotFoundException],
    how: str,
) -> None:
    app = harness(style=style)
    app.route("/raise")(raising(cls() if how == "raised" else DomainError("posts")))
    app.build()
    app.restfault.translate(DomainError)(lambda exc: cls())

    reply = app.get("/raise")

    assert reply.status == 410
    assert reply.json() == GONE[style]
    assert "x-" not in "".join(reply.headers)  # no headers but restfault's own
    assert [r.getMessage() for r in restfault_records(restfault_log) if r.levelno >= 30] == []


# Computed fields with a bug: dataclasses, whose __init__ reads none of them.


@dataclasses.dataclass
class MessageFails(NotFoundException):
    table: str = "posts"

    @property  # type: ignore[override]
    def message(self) -> str:
        raise RuntimeError("the message property is broken")


@dataclasses.dataclass
class CodeFails(NotFoundException):
    table: str = "posts"

    @property  # type: ignore[override]
    def code(self) -> str:
        raise RuntimeError("the code property is broken")


@dataclasses.dataclass
class ContextFails(NotFoundException):
    table: str = "posts"

    @property  # type: ignore[override]
    def context(self) -> Any:
        raise RuntimeError("the context property is broken")


@dataclasses.dataclass
class StatusFails(NotFoundException):
    table: str = "posts"

    @property  # type: ignore[override]
    def status_code(self) -> int:
        raise RuntimeError("the status_code property is broken")


class CodeIsNone(NotFoundException):
    code = None  # type: ignore[assignment]


class MessageIsNone(NotFoundException):
    message = None  # type: ignore[assignment]


class HeadersIsNone(NotFoundException):
    def __init__(self) -> None:
        super().__init__()
        self.headers = None  # type: ignore[assignment]


class StatusIs(RestException):
    def __init__(self, status: Any) -> None:
        super().__init__()
        self.status_code = status


def mutated_headers(**headers: Any) -> NotFoundException:
    """A NotFoundException whose headers were changed after construction."""
    exc = NotFoundException(code="TABLE_NOT_FOUND", headers={"X-Kept": "yes"})
    exc.headers.update(headers)
    return exc


NOT_FOUND = {"error": "NOT_FOUND", "message": "Not Found"}
INTERNAL = {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}

# (exception, status, bkend body, headers sent, what the ERROR log line says)
BROKEN_SHAPES: list[tuple[Callable[[], BaseException], int, Any, dict[str, str], str]] = [
    (MessageFails, 404, NOT_FOUND, {}, "reading message raised RuntimeError"),
    (CodeFails, 404, NOT_FOUND, {}, "reading code raised RuntimeError"),
    (CodeIsNone, 404, NOT_FOUND, {}, "code is NoneType, not str"),
    (MessageIsNone, 404, NOT_FOUND, {}, "message is NoneType, not str"),
    (HeadersIsNone, 404, NOT_FOUND, {}, "headers is NoneType, not a mapping"),
    (ContextFails, 404, NOT_FOUND, {}, "reading context raised RuntimeError"),
    (
        lambda: mutated_headers(**{"X-Count": 3}),
        404,
        {"error": "TABLE_NOT_FOUND", "message": "Not Found"},
        {"x-kept": "yes", "x-count": "3"},
        "header 'X-Count' sent as '3', not 3",
    ),
    (
        lambda: mutated_headers(**{"X-Bad Name": "v", "X-None": None}),
        404,
        {"error": "TABLE_NOT_FOUND", "message": "Not Found"},
        {"x-kept": "yes"},
        "header dropped: 'X-Bad Name' is not a header name (an RFC 9110 token); header "
        "dropped: header 'X-None' has a NoneType value (None): header values are str or int",
    ),
    (
        lambda: mutated_headers(**{"Content-Type": "text/plain", "Content-Length": "3"}),
        404,
        {"error": "TABLE_NOT_FOUND", "message": "Not Found"},
        {"x-kept": "yes"},
        "header dropped: 'Content-Type' describes the envelope's body, which restfault writes",
    ),
    (StatusFails, 500, INTERNAL, {}, "reading status_code raised RuntimeError"),
    (lambda: StatusIs(200), 500, INTERNAL, {}, "status_code is 200, not an int from 400 to 599"),
    (
        lambda: StatusIs("404"),
        500,
        INTERNAL,
        {},
        "status_code is '404', not an int from 400 to 599",
    ),
]


@pytest.mark.parametrize(
    ("make", "status", "body", "headers", "logged"),
    BROKEN_SHAPES,
    ids=[
        "message-raises",
        "code-raises",
        "code-none",
        "message-none",
        "headers-none",
        "context-raises",
        "header-int",
        "header-unsendable",
        "header-of-the-body",
        "status-raises",
        "status-200",
        "status-str",
    ],
)
def test_an_exception_with_broken_fields_still_gets_an_envelope(
    harness: MakeHarness,
    restfault_log: pytest.LogCaptureFixture,
    make: Callable[[], BaseException],
    status: int,
    body: Any,
    headers: dict[str, str],
    logged: str,
) -> None:
    app = harness(style="bkend")

    @app.route("/raise")
    def view() -> Any:
        raise make()

    reply = app.get("/raise")

    assert (reply.status, reply.json()) == (status, body)
    assert {k: v for k, v in reply.headers.items() if k.startswith("x-")} == headers
    assert reply.headers.get_list("content-type") == ["application/json"]
    assert reply.headers.get_list("content-length") == [str(len(reply.body))]
    errors = [r.getMessage() for r in restfault_records(restfault_log) if r.levelno >= 40]
    assert any(logged in message for message in errors), errors


def test_header_values_of_every_type_reach_the_client(harness: MakeHarness) -> None:
    app = harness()
    app.route("/raise")(
        raising(
            ConflictResourceException(
                headers={"X-Retry": 5, "X-Arrow": "a\u2192b", "X-Nul": "a\0b"}
            )
        )
    )

    reply = app.get("/raise")

    assert (reply.status, reply.json()) == (409, {"error": {"code": 409, "message": "Conflict"}})
    assert {k: v for k, v in reply.headers.items() if k.startswith("x-")} == {
        "x-retry": "5",
        "x-arrow": "a?b",
        "x-nul": "a b",
    }


# -- strict JSON ------------------------------------------------------------------------------


def strict_json(body: bytes) -> Any:
    """``body`` parsed as RFC 8259 JSON: Python's NaN, Infinity and -Infinity refused."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(body, parse_constant=refuse)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


NON_FINITE = {"ratio": math.nan, "high": math.inf, "low": -math.inf, "name": "x", "n": 1.5}
NON_FINITE_SENT = {"ratio": None, "high": None, "low": None, "name": "x", "n": 1.5}


@pytest.mark.parametrize("style", STYLES, ids=STYLE_IDS)
def test_every_body_is_strict_json(harness: MakeHarness, style: Any) -> None:
    context = {
        **NON_FINITE,
        "nested": [math.nan, {"deep": -math.inf}],
        "odd": Unprintable(),
        (1, 2): "a tuple key",
    }
    app = harness(style=style)
    app.route("/raise")(raising(BadRequestException("bad", context=context)))

    reply = app.get("/raise")

    assert reply.status == 400
    assert body_context(style, strict_json(reply.body)) == {
        **NON_FINITE_SENT,
        "nested": [None, {"deep": None}],
        "odd": None,
        "(1, 2)": "a tuple key",
    }


def test_a_batch_resource_and_item_context_are_strict_json(harness: MakeHarness) -> None:
    def operation(item: int) -> Any:
        if item == 1:
            raise BadRequestException(context={"limit": math.inf})
        return {"score": math.nan, "item": item}

    app = harness(style="bkend")

    @app.route("/batch")
    def view() -> Any:
        return run_batch([0, 1, 2], operation, mode="continue")

    reply = app.get("/batch")

    assert reply.status == 400
    assert strict_json(reply.body) == {
        "error": "BATCH_ERROR",
        "message": "Batch operation error",
        "context": {
            "errors": [
                {
                    "index": 1,
                    "status": 400,
                    "code": "BAD_REQUEST",
                    "message": "Bad Request",
                    "context": {"limit": None},
                }
            ],
            "resource": [{"score": None, "item": 0}, None, {"score": None, "item": 2}],
        },
    }


# -- headers of converted framework errors ----------------------------------------------------

# (status, header the framework's exception carries, whether the envelope keeps it)
CONVERTED_HEADERS = [
    # RFC 9110 §15.5.17: a 416 says the representation's length in Content-Range.
    (416, ("Content-Range", "bytes */10"), True),
    (404, ("Content-Range", "bytes 0-9/10"), False),  # described the page's body
    (404, ("Content-Disposition", 'attachment; filename="404.html"'), False),
    (404, ("Content-Location", "/errors/404.html"), False),
    (404, ("Content-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"), False),
    (404, ("Repr-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"), False),
    (404, ("Digest", "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="), False),
    (404, ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="), False),
    (404, ("Cache-Control", "no-store"), True),
    (404, ("Vary", "Accept"), True),
    (401, ("WWW-Authenticate", 'Bearer realm="api"'), True),
]


@pytest.mark.parametrize(
    ("status", "header", "kept"), CONVERTED_HEADERS, ids=[h[0] for _, h, _ in CONVERTED_HEADERS]
)
def test_a_converted_framework_error_keeps_the_headers_that_still_hold(
    harness: MakeHarness, status: int, header: tuple[str, str], kept: bool
) -> None:
    app = harness(style="bkend")

    @app.route("/raise")
    def view() -> Any:
        raise app.http_exception(status, None, dict([header]))

    reply = app.get("/raise")

    assert reply.status == status
    assert reply.content_type == "application/json"
    assert reply.headers.get(header[0]) == (header[1] if kept else None)


def test_an_unsatisfiable_range_answers_416_with_content_range(
    starlette_app: Callable[..., Any], flask_app: Callable[..., Any], tmp_path: Path
) -> None:
    from flask import send_file
    from starlette.responses import FileResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    path = tmp_path / "ten.txt"
    path.write_bytes(b"0123456789")

    async def download(request: Any) -> FileResponse:
        return FileResponse(path)

    starlette, _ = starlette_app([Route("/file", download)], style="bkend")
    flask, _ = flask_app(style="bkend")
    flask.get("/file")(lambda: send_file(path, conditional=True))
    replies = [
        reply_from_httpx(TestClient(starlette).get("/file", headers={"Range": "bytes=20-30"})),
        reply_from_werkzeug(flask.test_client().get("/file", headers={"Range": "bytes=20-30"})),
    ]

    for reply in replies:
        assert reply.status == 416
        assert reply.json()["error"] == "RANGE_NOT_SATISFIABLE"
        assert reply.headers["content-range"] == "bytes */10"
        assert reply.content_type == "application/json"
