"""``render_error`` (API.md §2): every exception in every style, framework HTTP
exceptions, unexpected exceptions and debug details."""

from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid
from http import HTTPStatus
from typing import Any

import pytest
import starlette.exceptions
import werkzeug.exceptions

from restfault import (
    BadRequestException,
    BatchException,
    ErrorResponse,
    NotFoundException,
    RestException,
    TooManyRequestsException,
    render_error,
)
from tests.tables import (
    BATCH_ERRORS,
    EXCEPTION_IDS,
    EXCEPTION_TABLE,
    STYLE_IDS,
    STYLE_NAMES,
    STYLES,
    StyleName,
    StyleOption,
    body_context,
    body_message,
    content_type_of,
    house_style,
    make_exception,
)


def document(response: ErrorResponse) -> Any:
    return json.loads(response.body)


@pytest.mark.parametrize("style", STYLES, ids=STYLE_IDS)
@pytest.mark.parametrize(("cls", "status", "code", "message"), EXCEPTION_TABLE, ids=EXCEPTION_IDS)
def test_every_exception_in_every_style(
    style: StyleOption, cls: type[RestException], status: int, code: str, message: str
) -> None:
    exc = make_exception(cls)
    response = render_error(exc, style=style)
    body = document(response)

    assert response.status == status
    assert response.header("content-type") == content_type_of(style)
    assert response.header("Content-Length") == str(len(response.body))
    assert body_message(style, body).startswith(message)
    assert body_context(style, body) == exc.context
    if style == "dreamfactory":
        assert set(body) == {"error"}
        assert body["error"]["code"] == status
    elif style == "bkend":
        assert body["error"] == code
        assert isinstance(body["error"], str)
    elif style == "problem":
        assert body["status"] == status
        assert body["code"] == code
        assert body["type"] == "about:blank"
        assert body["title"] == HTTPStatus(status).phrase
    else:
        assert body["status"] == status
        assert body["kind"] == code


UNBATCHED = [row[0] for row in EXCEPTION_TABLE if row[0] is not BatchException]


@pytest.mark.parametrize("style", ["dreamfactory", "bkend"])
@pytest.mark.parametrize("cls", UNBATCHED, ids=[c.__name__ for c in UNBATCHED])
def test_context_is_left_out_when_none(style: StyleName, cls: type[RestException]) -> None:
    body = document(render_error(cls(), style=style))
    assert "context" not in (body["error"] if style == "dreamfactory" else body)
    assert "context" not in json.dumps(body)


def test_default_style_is_dreamfactory() -> None:
    response = render_error(NotFoundException("Table 'posts' not found", context={"t": 1}))
    assert document(response) == {
        "error": {"code": 404, "message": "Table 'posts' not found", "context": {"t": 1}}
    }
    assert response.headers[0] == ("Content-Type", "application/json")


def test_bkend_shape() -> None:
    exc = NotFoundException("Table 'posts' not found", code="TABLE_NOT_FOUND", context={"t": 1})
    assert document(render_error(exc, style="bkend")) == {
        "error": "TABLE_NOT_FOUND",
        "message": "Table 'posts' not found",
        "context": {"t": 1},
    }


def test_problem_context_members_become_extension_members() -> None:
    exc = NotFoundException(
        "Table 'posts' not found",
        code="TABLE_NOT_FOUND",
        context={"table": "posts", "hint": ["a", "b"], "status": 999, "title": "forged"},
    )
    body = document(render_error(exc, style="problem"))
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Table 'posts' not found",
        "code": "TABLE_NOT_FOUND",
        "table": "posts",
        "hint": ["a", "b"],
    }


@pytest.mark.parametrize("context", [["a", "b"], "text", 7])
def test_problem_non_mapping_context(context: Any) -> None:
    body = document(render_error(NotFoundException(context=context), style="problem"))
    assert body["context"] == context
    assert body["status"] == 404


def test_problem_batch_errors_are_extension_members() -> None:
    exc = BatchException(list(BATCH_ERRORS), resource=[None, {"id": 2}, None])
    body = document(render_error(exc, style="problem"))
    assert body["errors"] == BATCH_ERRORS
    assert body["resource"] == [None, {"id": 2}, None]
    assert (body["status"], body["code"], body["title"]) == (400, "BATCH_ERROR", "Bad Request")


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_batch_context_in_every_style(style: StyleName) -> None:
    exc = BatchException(list(BATCH_ERRORS), rolled_back=True)
    body = document(render_error(exc, style=style))
    assert body_context(style, body) == {"errors": BATCH_ERRORS, "rolled_back": True}


@pytest.mark.parametrize("style", STYLES, ids=STYLE_IDS)
def test_retry_after_header(style: StyleOption) -> None:
    response = render_error(TooManyRequestsException(retry_after=12), style=style)
    assert response.header("retry-after") == "12"
    assert response.status == 429


def test_exception_headers_follow_the_content_type() -> None:
    response = render_error(NotFoundException(headers={"X-Trace": "t-1"}))
    assert response.headers == [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(response.body))),
        ("X-Trace", "t-1"),
    ]
    assert response.header("x-trace") == "t-1"
    assert response.header("x-missing") is None


def test_messages_are_not_html_escaped() -> None:
    message = "<script>alert('x')</script> & \"quotes\""
    for style in ("dreamfactory", "bkend", "problem"):
        assert (
            body_message(style, document(render_error(NotFoundException(message), style=style)))
            == message
        )


def test_body_is_ascii_json() -> None:
    response = render_error(NotFoundException("ünïcode \u2028 \ud800 \x00"))
    response.body.decode("ascii")
    assert document(response)["error"]["message"] == "ünïcode \u2028 \ud800 \x00"


def test_odd_context_values_are_encoded() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    ident = uuid.UUID(int=1)
    context = {
        "when": when,
        "price": decimal.Decimal("1.10"),
        "id": ident,
        "raw": b"bytes",
        "tags": {"x"},
        "pair": (1, 2),
        "other": object,
    }
    body = document(render_error(NotFoundException(context=context)))
    got = body["error"]["context"]
    assert got["when"] == when.isoformat()
    assert got["price"] == "1.10"
    assert got["id"] == str(ident)
    assert got["raw"] == "bytes"
    assert got["tags"] == ["x"]
    assert got["pair"] == [1, 2]
    assert isinstance(got["other"], str)


def test_unencodable_context_keeps_the_envelope(caplog: pytest.LogCaptureFixture) -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    response = render_error(NotFoundException("still here", context=circular))
    assert response.status == 404
    assert document(response) == {"error": {"code": 404, "message": "still here"}}


# -- the callable style -------------------------------------------------------------------


def test_callable_style_gets_the_exception_and_debug() -> None:
    calls: list[tuple[RestException, bool]] = []

    def style(exc: RestException, debug: bool) -> tuple[dict[str, Any], str]:
        calls.append((exc, debug))
        return house_style(exc, debug)

    exc = NotFoundException(context={"a": 1})
    response = render_error(exc, style=style, debug=True)
    assert calls == [(exc, True)]
    assert document(response) == {
        "status": 404,
        "kind": "NOT_FOUND",
        "text": "Not Found",
        "details": {"a": 1},
    }
    assert response.header("content-type") == "application/vnd.house+json"


def test_callable_style_failing_falls_back_to_dreamfactory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(exc: RestException, debug: bool) -> tuple[dict[str, Any], str]:
        raise RuntimeError("style bug")

    response = render_error(NotFoundException(), style=broken)
    assert response.status == 404
    assert document(response) == {"error": {"code": 404, "message": "Not Found"}}
    assert "style callable failed" in caplog.text


def test_unknown_style_is_a_configuration_error() -> None:
    from restfault import ConfigurationError

    with pytest.raises(ConfigurationError, match="'xml'"):
        render_error(NotFoundException(), style="xml")  # type: ignore[arg-type]


# -- framework HTTP exceptions --------------------------------------------------------------

WERKZEUG = sorted(werkzeug.exceptions.default_exceptions.items())


@pytest.mark.parametrize(("status", "cls"), WERKZEUG, ids=[str(s) for s, _ in WERKZEUG])
def test_every_werkzeug_exception_is_mapped(
    status: int, cls: type[werkzeug.exceptions.HTTPException]
) -> None:
    exc = cls()
    response = render_error(exc, style="problem")
    body = document(response)

    assert response.status == status
    assert body["status"] == status
    assert body["detail"] == exc.description
    assert body["title"] == (
        {
            413: "Content Too Large",
            414: "URI Too Long",
            416: "Range Not Satisfiable",
            422: "Unprocessable Content",
        }.get(status)
        or HTTPStatus(status).phrase
    )
    assert response.header("content-type") == "application/problem+json"
    assert not any(v.startswith("text/html") for _, v in response.headers)


STARLETTE_STATUSES = [s.value for s in HTTPStatus if s.value >= 400]


@pytest.mark.parametrize("status", STARLETTE_STATUSES)
def test_every_starlette_http_exception_is_mapped(status: int) -> None:
    exc = starlette.exceptions.HTTPException(status)
    response = render_error(exc, style="bkend")
    body = document(response)
    assert response.status == status
    assert body["message"] == exc.detail
    assert body["error"] == body["error"].upper()
    assert " " not in body["error"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "BAD_REQUEST"),
        (401, "UNAUTHORIZED"),
        (403, "FORBIDDEN"),
        (404, "NOT_FOUND"),
        (405, "METHOD_NOT_ALLOWED"),
        (409, "CONFLICT"),
        (413, "CONTENT_TOO_LARGE"),
        (415, "UNSUPPORTED_MEDIA_TYPE"),
        (422, "UNPROCESSABLE_CONTENT"),
        (429, "RATE_LIMIT_EXCEEDED"),
        (500, "INTERNAL_SERVER_ERROR"),
        (501, "NOT_IMPLEMENTED"),
        (503, "SERVICE_UNAVAILABLE"),
    ],
)
@pytest.mark.parametrize("framework", ["starlette", "werkzeug"])
def test_http_exception_codes(status: int, code: str, framework: str) -> None:
    exc: Exception
    if framework == "starlette":
        exc = starlette.exceptions.HTTPException(status)
    else:
        exc = werkzeug.exceptions.default_exceptions[status]()
    body = document(render_error(exc, style="bkend"))
    assert body["error"] == code


def test_starlette_detail_and_headers() -> None:
    exc = starlette.exceptions.HTTPException(
        401, detail="Token expired", headers={"WWW-Authenticate": "Bearer", "X-Own": "1"}
    )
    response = render_error(exc)
    assert response.status == 401
    assert document(response) == {"error": {"code": 401, "message": "Token expired"}}
    assert response.header("www-authenticate") == "Bearer"
    assert response.header("x-own") == "1"
    assert response.header("content-type") == "application/json"


@pytest.mark.parametrize(
    ("exc", "header", "value"),
    [
        (werkzeug.exceptions.MethodNotAllowed(["GET", "POST"]), "Allow", "GET, POST"),
        (
            werkzeug.exceptions.Unauthorized(
                www_authenticate=werkzeug.datastructures.WWWAuthenticate("bearer", {"realm": "api"})
            ),
            "WWW-Authenticate",
            "Bearer realm=api",
        ),
        (werkzeug.exceptions.TooManyRequests(retry_after=42), "Retry-After", "42"),
        (werkzeug.exceptions.ServiceUnavailable(retry_after=9), "Retry-After", "9"),
    ],
    ids=["allow", "www-authenticate", "retry-after-429", "retry-after-503"],
)
def test_werkzeug_headers_are_kept(exc: Any, header: str, value: str) -> None:
    response = render_error(exc)
    assert response.header(header) == value
    assert response.header("content-type") == "application/json"
    content_types = [v for k, v in response.headers if k.lower() == "content-type"]
    assert content_types == ["application/json"]


def test_werkzeug_description_is_the_message() -> None:
    exc = werkzeug.exceptions.NotFound("No such table: posts")
    assert document(render_error(exc, style="bkend")) == {
        "error": "NOT_FOUND",
        "message": "No such table: posts",
    }


def test_werkzeug_exception_with_response_keeps_its_status() -> None:
    from werkzeug.wrappers import Response

    exc = werkzeug.exceptions.HTTPException(response=Response("teapot", status=418))
    exc.code = 418
    response = render_error(exc)
    assert response.status == 418
    assert response.header("content-type") == "application/json"


# -- unexpected exceptions ---------------------------------------------------------------


@pytest.mark.parametrize("style", STYLE_NAMES)
@pytest.mark.parametrize(
    "exc",
    [RuntimeError("password=hunter2"), KeyError("hunter2"), ValueError("hunter2"), Exception()],
    ids=["runtime", "key", "value", "bare"],
)
def test_unexpected_exception_says_only_internal_server_error(
    style: StyleName, exc: Exception
) -> None:
    response = render_error(exc, style=style)
    body = document(response)
    assert response.status == 500
    assert body_message(style, body) == "Internal Server Error"
    assert body_context(style, body) is None
    for leak in (b"hunter2", type(exc).__name__.encode(), b"Traceback", b"debug"):
        assert leak not in response.body


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_debug_adds_type_message_and_traceback(style: StyleName) -> None:
    try:
        raise ZeroDivisionError("ratio of nothing")
    except ZeroDivisionError as caught:
        exc = caught
    body = document(render_error(exc, style=style, debug=True))
    details = body_context(style, body)["debug"]
    assert details["type"] == "builtins.ZeroDivisionError"
    assert details["message"] == "ratio of nothing"
    assert any("raise ZeroDivisionError" in line for line in details["traceback"])
    assert body_message(style, body) == "Internal Server Error"


def test_debug_keeps_an_existing_context() -> None:
    from restfault import InternalServerErrorException

    body = document(render_error(InternalServerErrorException(context={"a": 1}), debug=True))
    assert body["error"]["context"]["a"] == 1
    assert body["error"]["context"]["debug"]["type"].endswith("InternalServerErrorException")


def test_debug_leaves_client_errors_alone() -> None:
    body = document(render_error(NotFoundException(), debug=True))
    assert body == {"error": {"code": 404, "message": "Not Found"}}


def test_system_exiting_exceptions_are_not_rest_errors() -> None:
    response = render_error(KeyboardInterrupt())
    assert response.status == 500


def test_more_context_values() -> None:
    import enum

    class Color(enum.Enum):
        RED = "red"

    body = document(render_error(NotFoundException(context={"c": Color.RED, "b": b"\xff\xfe"})))
    assert body["error"]["context"] == {"c": "red", "b": "//4="}


def test_debug_with_a_non_mapping_context() -> None:
    from restfault import InternalServerErrorException

    body = document(render_error(InternalServerErrorException(context=["x"]), debug=True))
    assert body["error"]["context"]["value"] == ["x"]
    assert set(body["error"]["context"]) == {"value", "debug"}


def test_render_error_signature() -> None:
    import inspect

    parameters = inspect.signature(render_error).parameters
    assert list(parameters) == ["exc", "style", "debug"]
    assert parameters["style"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["style"].default == "dreamfactory"
    assert parameters["debug"].default is False


def test_error_response_fields() -> None:
    response = render_error(NotFoundException())
    assert isinstance(response, ErrorResponse)
    assert isinstance(response.status, int)
    assert isinstance(response.body, bytes)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response.headers)


# -- strict JSON ------------------------------------------------------------------------------


def refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


@pytest.mark.parametrize(
    ("context", "sent"),
    [
        ({"a": math.nan, "b": 1}, {"a": None, "b": 1}),
        ([math.inf, -math.inf, 0.5], [None, None, 0.5]),
        ({"set": {math.nan}, "pair": (math.inf, 2)}, {"set": [None], "pair": [None, 2]}),
        (
            {math.nan: 1, 2.5: 2, None: 3, True: 4, (1, 2): 5},
            {"nan": 1, "2.5": 2, "null": 3, "true": 4, "(1, 2)": 5},
        ),
        ({"odd": Unprintable(), "kept": "yes"}, {"odd": None, "kept": "yes"}),
        (decimal.Decimal("NaN"), "NaN"),  # a str, which JSON holds
    ],
    ids=["dict", "list", "containers", "keys", "unprintable", "decimal"],
)
@pytest.mark.parametrize("style", STYLES, ids=STYLE_IDS)
def test_a_body_is_strict_json_whatever_the_context(style: Any, context: Any, sent: Any) -> None:
    response = render_error(BadRequestException("bad", context=context), style=style)
    body = json.loads(response.body, parse_constant=refuse_constant)
    if style == "problem" and not isinstance(sent, dict):
        sent = {"context": sent}  # the problem style's member for a context of another kind
    assert body_context(style, body) == sent
    assert response.header("content-length") == str(len(response.body))


def test_debug_details_of_an_exception_whose_str_fails() -> None:
    class Mute(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    body = document(render_error(Mute(), debug=True))
    details = body["error"]["context"]["debug"]
    assert details["type"].endswith("Mute")
    assert details["message"] == "<exception str() failed>"
    assert body["error"]["message"] == "Internal Server Error"


@pytest.mark.parametrize("style", STYLE_NAMES)
@pytest.mark.parametrize("shape", ["circular", "deep"])
def test_a_context_json_cannot_hold_is_dropped_not_a_crash(style: StyleName, shape: str) -> None:
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
