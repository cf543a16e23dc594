"""Exceptions of every shape get their envelope, bodies are strict JSON, converted
framework errors keep the headers that still hold — on every adapter."""

from __future__ import annotations

import dataclasses
import json
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
    run_batch,
)
from tests.harness import MakeHarness, raising, restfault_records
from tests.tables import (
    DATACLASS_EXCEPTIONS,
    STYLE_IDS,
    STYLES,
    body_context,
)


class DomainError(Exception):
    pass


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

    @property
    def message(self) -> str:  # type: ignore[override]
        raise RuntimeError("the message property is broken")


@dataclasses.dataclass
class CodeFails(NotFoundException):
    table: str = "posts"

    @property
    def code(self) -> str:  # type: ignore[override]
        raise RuntimeError("the code property is broken")


@dataclasses.dataclass
class ContextFails(NotFoundException):
    table: str = "posts"

    @property
    def context(self) -> Any:
        raise RuntimeError("the context property is broken")


@dataclasses.dataclass
class StatusFails(NotFoundException):
    table: str = "posts"

    @property
    def status_code(self) -> int:  # type: ignore[override]
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
    context: dict[Any, object] = {
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


@pytest.mark.parametrize("adapter", ["starlette", "flask"])
def test_an_unsatisfiable_range_answers_416_with_content_range(
    adapter: str, tmp_path: Path
) -> None:
    """A real file response of each framework, asked for a range past its end."""
    from flask import Flask, send_file
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    import restfault.flask
    import restfault.starlette

    path = tmp_path / "ten.txt"
    path.write_bytes(b"0123456789")
    headers = {"Range": "bytes=20-30"}
    if adapter == "starlette":

        async def download(request: Any) -> FileResponse:
            return FileResponse(path)

        starlette = Starlette(routes=[Route("/file", download)])
        restfault.starlette.RestFault(starlette, style="bkend")
        response = TestClient(starlette).get("/file", headers=headers)
        status, content_type = response.status_code, response.headers["content-type"]
        content_range, document = response.headers["content-range"], response.json()
    else:
        flask = Flask(__name__)
        restfault.flask.RestFault(flask, style="bkend")
        flask.get("/file")(lambda: send_file(path, conditional=True))
        reply = flask.test_client().get("/file", headers=headers)
        status, content_type = reply.status_code, reply.headers["content-type"]
        content_range, document = reply.headers["content-range"], reply.get_json()

    assert status == 416
    assert document["error"] == "RANGE_NOT_SATISFIABLE"
    assert content_range == "bytes */10"
    assert content_type == "application/json"
