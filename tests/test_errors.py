"""The RestException tree of API.md §1: defaults, overrides, Retry-After, batches."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

import restfault
from restfault import (
    BadRequestException,
    BatchException,
    ConflictResourceException,
    InvalidJsonException,
    NotFoundException,
    RestException,
    ServiceUnavailableException,
    TooManyRequestsException,
    UnauthorizedException,
)
from restfault._errors import chain
from tests.tables import (
    BATCH_ERRORS,
    DATACLASS_EXCEPTIONS,
    EXCEPTION_IDS,
    EXCEPTION_TABLE,
    FrozenTableGone,
    TableGone,
    make_exception,
)


@pytest.mark.parametrize(("cls", "status", "code", "message"), EXCEPTION_TABLE, ids=EXCEPTION_IDS)
def test_defaults(cls: type[RestException], status: int, code: str, message: str) -> None:
    exc = make_exception(cls)

    assert isinstance(exc, RestException)
    assert exc.status_code == status
    assert exc.code == code
    assert exc.message.startswith(message)
    assert str(exc) == exc.message
    assert exc.headers == {}
    assert getattr(restfault, cls.__name__) is cls
    if cls is not BatchException:
        assert exc.context is None


@pytest.mark.parametrize(("cls", "status", "code", "message"), EXCEPTION_TABLE, ids=EXCEPTION_IDS)
def test_every_default_can_be_overridden(
    cls: type[RestException], status: int, code: str, message: str
) -> None:
    if cls is BatchException:
        exc: RestException = BatchException(
            [], "Two rows failed", code="ROWS_FAILED", headers={"X-Trace": "1"}
        )
        expected: tuple[str, str, object] = ("ROWS_FAILED", "Two rows failed", {"errors": []})
    else:
        exc = cls(
            "Something specific",
            code="HOUSE_CODE",
            context={"field": "email"},
            headers={"X-Trace": "1"},
        )
        expected = ("HOUSE_CODE", "Something specific", {"field": "email"})

    assert exc.status_code == status
    assert (exc.code, exc.message, exc.context) == expected
    assert exc.headers == {"X-Trace": "1"}
    # Overriding one instance never changes the class defaults.
    assert make_exception(cls).code == code


def test_constructor_shape() -> None:
    with pytest.raises(TypeError):
        NotFoundException("message", "CODE")  # type: ignore[call-arg]  # deliberately wrong
    exc = NotFoundException(context=["any", {"json": 1}])
    assert exc.context == ["any", {"json": 1}]
    assert exc.message == "Not Found"


def test_inheritance() -> None:
    assert issubclass(InvalidJsonException, BadRequestException)
    assert issubclass(BatchException, BadRequestException)
    for cls, *_ in EXCEPTION_TABLE:
        assert issubclass(cls, RestException)
        assert issubclass(cls, Exception)


@pytest.mark.parametrize(
    ("code", "message"),
    [("TABLE_NOT_FOUND", "Table 'posts' not found"), ("RECORD_NOT_FOUND", None)],
)
def test_bkend_codes_are_a_code_away(code: str, message: str | None) -> None:
    exc = NotFoundException(message, code=code)
    assert (exc.status_code, exc.code) == (404, code)
    assert exc.message == (message or "Not Found")


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "BAD_REQUEST", "Bad Request"),
        (404, "NOT_FOUND", "Not Found"),
        (405, "METHOD_NOT_ALLOWED", "Method Not Allowed"),
        (410, "GONE", "Gone"),
        (413, "CONTENT_TOO_LARGE", "Content Too Large"),
        (422, "UNPROCESSABLE_CONTENT", "Unprocessable Content"),
        (429, "RATE_LIMIT_EXCEEDED", "Too Many Requests"),
        (502, "BAD_GATEWAY", "Bad Gateway"),
        (599, "SERVER_ERROR", "Server Error"),
    ],
)
def test_status_code_on_rest_exception(status: int, code: str, message: str) -> None:
    exc = RestException(status_code=status)
    assert (exc.status_code, exc.code, exc.message) == (status, code, message)

    spelled = RestException("Gone for good", code="ARCHIVED", status_code=status)
    assert (spelled.status_code, spelled.code, spelled.message) == (
        status,
        "ARCHIVED",
        "Gone for good",
    )


@pytest.mark.parametrize("status", [200, 302, 399, 600, "404", 404.0, True])
def test_status_code_must_be_an_error_status(status: Any) -> None:
    with pytest.raises(ValueError, match="status_code"):
        RestException(status_code=status)


class TeapotError(RestException):
    status_code = 418
    code = "TEAPOT"
    message = "I'm a teapot"


class TableMissing(NotFoundException):
    code = "TABLE_NOT_FOUND"


def test_domain_subclasses_keep_their_class_defaults() -> None:
    assert (TeapotError().status_code, TeapotError().code) == (418, "TEAPOT")
    exc = TableMissing("Table 'posts' not found")
    assert (exc.status_code, exc.code, exc.message) == (404, "TABLE_NOT_FOUND", exc.message)
    # status_code= on a subclass changes the status only
    assert TableMissing(status_code=410).code == "TABLE_NOT_FOUND"


@pytest.mark.parametrize("cls", [TooManyRequestsException, ServiceUnavailableException])
@pytest.mark.parametrize(
    ("retry_after", "header"), [(1, "1"), (30, "30"), (2.1, "3"), (0.2, "1"), (0, "0")]
)
def test_retry_after(cls: type[TooManyRequestsException], retry_after: float, header: str) -> None:
    exc = cls(retry_after=retry_after)
    assert exc.headers["Retry-After"] == header
    assert exc.retry_after == int(header)


@pytest.mark.parametrize("cls", [TooManyRequestsException, ServiceUnavailableException])
def test_no_retry_after_no_header(cls: type[TooManyRequestsException]) -> None:
    exc = cls()
    assert "Retry-After" not in exc.headers
    assert exc.retry_after is None


def test_retry_after_keeps_other_headers() -> None:
    exc = TooManyRequestsException(
        code="EMAIL_RATE_LIMIT", retry_after=5, headers={"X-RateLimit-Limit": "3"}
    )
    assert exc.headers == {"X-RateLimit-Limit": "3", "Retry-After": "5"}
    assert exc.code == "EMAIL_RATE_LIMIT"


def test_retry_after_only_where_api_says() -> None:
    with pytest.raises(TypeError):
        NotFoundException(retry_after=3)  # type: ignore[call-arg]


def test_headers_are_copied() -> None:
    given = {"X-One": "1"}
    exc = UnauthorizedException(code="TOKEN_EXPIRED", headers=given)
    exc.headers["X-Two"] = "2"
    assert given == {"X-One": "1"}


# -- headers: what a constructor accepts --------------------------------------------------

HEADER_VALUES = [
    # (given, sent)
    ("no-store", "no-store"),
    (5, "5"),
    (-1, "-1"),
    ("Grüße", "Grüße"),  # Latin-1 travels as it is
    ("a\tb", "a\tb"),
    # What no field value can carry is blanked, not refused: values often echo the client.
    ("a\r\nSet-Cookie: forged", "a  Set-Cookie: forged"),
    ("a\x00b\x7fc", "a b c"),
    ("a\u2192b \U0001f600", "a?b ?"),
]


@pytest.mark.parametrize(("given", "sent"), HEADER_VALUES)
@pytest.mark.parametrize(("cls", "status", "code", "message"), EXCEPTION_TABLE, ids=EXCEPTION_IDS)
def test_header_values(
    cls: type[RestException], status: int, code: str, message: str, given: Any, sent: str
) -> None:
    exc = make_exception(cls, headers={"X-Value": given})
    assert exc.headers == {"X-Value": sent}


@pytest.mark.parametrize(
    ("headers", "error", "text"),
    [
        (
            {"X-Flag": True},
            TypeError,
            "header 'X-Flag' has a bool value (True): header values are str or int",
        ),
        (
            {"X-Ratio": 2.5},
            TypeError,
            "header 'X-Ratio' has a float value (2.5): header values are str or int",
        ),
        (
            {"X-None": None},
            TypeError,
            "header 'X-None' has a NoneType value (None): header values are str or int",
        ),
        (
            {"X-Raw": b"v"},
            TypeError,
            "header 'X-Raw' has a bytes value (b'v'): header values are str or int",
        ),
        ({5: "v"}, TypeError, "header names are str, not int: 5"),
        ({"Bad Name": "v"}, ValueError, "'Bad Name' is not a header name (an RFC 9110 token)"),
        (
            {"X-A\r\nSet-Cookie": "v"},
            ValueError,
            "'X-A\\r\\nSet-Cookie' is not a header name (an RFC 9110 token)",
        ),
        ({"": "v"}, ValueError, "'' is not a header name (an RFC 9110 token)"),
        (
            {"Content-Type": "text/plain"},
            ValueError,
            "'Content-Type' describes the envelope's body, which restfault writes "
            "(a style chooses its content type)",
        ),
        (
            {"content-length": 3},
            ValueError,
            "'content-length' describes the envelope's body, which restfault writes "
            "(a style chooses its content type)",
        ),
        (
            {"Transfer-Encoding": "chunked"},
            ValueError,
            "'Transfer-Encoding' describes the envelope's body, which restfault writes "
            "(a style chooses its content type)",
        ),
        (
            {"Content-Encoding": "gzip"},
            ValueError,
            "'Content-Encoding' describes the envelope's body, which restfault writes "
            "(a style chooses its content type)",
        ),
    ],
    ids=[
        "bool",
        "float",
        "none",
        "bytes",
        "int-name",
        "space",
        "crlf",
        "empty",
        "content-type",
        "content-length",
        "transfer-encoding",
        "content-encoding",
    ],
)
def test_header_a_response_cannot_carry_is_refused_at_construction(
    headers: dict[Any, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=f"^{re.escape(text)}$"):
        NotFoundException(headers=headers)
    with pytest.raises(error, match=f"^{re.escape(text)}$"):
        TooManyRequestsException(retry_after=3, headers=headers)


# -- subclasses whose __init__ never calls ours -----------------------------------------------


@pytest.mark.parametrize("cls", DATACLASS_EXCEPTIONS)
def test_a_dataclass_subclass_is_a_whole_rest_exception(
    cls: type[TableGone] | type[FrozenTableGone],
) -> None:
    exc, other = cls("comments"), cls()

    assert (exc.status_code, exc.code, exc.message) == (410, "TABLE_GONE", "Table is gone")
    assert (exc.context, exc.headers) == (None, {})
    assert exc.table == "comments"
    # Each instance has headers of its own.
    exc.headers["X-Table"] = "comments"
    assert (exc.headers, other.headers, cls().headers) == ({"X-Table": "comments"}, {}, {})


def test_chain_sets_the_cause_even_on_a_frozen_dataclass() -> None:
    exc, cause = FrozenTableGone(), KeyError("posts")
    with pytest.raises(dataclasses.FrozenInstanceError):
        exc.__cause__ = cause  # what restfault must not do
    chain(exc, cause)
    assert exc.__cause__ is cause
    assert exc.__suppress_context__ is True  # as after `raise exc from cause`


# -- BatchException -------------------------------------------------------------------------


def test_batch_context_shape() -> None:
    exc = BatchException(list(BATCH_ERRORS), resource=[None, {"id": 2}, None])

    assert (exc.status_code, exc.code, exc.message) == (400, "BATCH_ERROR", "Batch operation error")
    assert exc.context == {"errors": BATCH_ERRORS, "resource": [None, {"id": 2}, None]}
    assert exc.errors == BATCH_ERRORS
    for error in exc.context["errors"]:
        assert set(error) == {"index", "status", "code", "message"}


def test_batch_without_resource() -> None:
    exc = BatchException([{"index": 0, "message": "Duplicate key value"}], "Rows failed")
    assert exc.context == {"errors": [{"index": 0, "message": "Duplicate key value"}]}
    assert exc.message == "Rows failed"


def test_batch_rolled_back_leaves_resource_out() -> None:
    exc = BatchException(list(BATCH_ERRORS), resource=[None, {"id": 2}], rolled_back=True)
    assert exc.context == {"errors": BATCH_ERRORS, "rolled_back": True}
    assert exc.rolled_back is True


def test_batch_errors_are_copied() -> None:
    errors = [{"index": 0, "message": "x"}]
    exc = BatchException(errors)
    errors.append({"index": 1, "message": "y"})
    assert len(exc.context["errors"]) == 1


def test_conflict_code() -> None:
    exc = ConflictResourceException(code="UNIQUE_CONSTRAINT")
    assert (exc.status_code, exc.code, exc.message) == (409, "UNIQUE_CONSTRAINT", "Conflict")


def test_repr_names_class_message_and_code() -> None:
    assert repr(NotFoundException(code="TABLE_NOT_FOUND")) == (
        "NotFoundException('Not Found', code='TABLE_NOT_FOUND')"
    )


@pytest.mark.parametrize(("cls", "status", "code", "message"), EXCEPTION_TABLE, ids=EXCEPTION_IDS)
def test_constructor_signatures(
    cls: type[RestException], status: int, code: str, message: str
) -> None:
    import inspect

    parameters = inspect.signature(cls).parameters
    keyword_only = {
        name for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    positional = [name for name in parameters if name not in keyword_only]
    if cls is BatchException:
        assert positional == ["errors", "message"]
        assert keyword_only == {"resource", "rolled_back", "code", "headers"}
        assert parameters["rolled_back"].default is False
        return
    assert positional == ["message"]
    assert parameters["message"].default is None
    # status_code= is RestException's (API.md §1), inherited by every subclass.
    expected = {"code", "context", "headers", "status_code"}
    if cls in (TooManyRequestsException, ServiceUnavailableException):
        expected.add("retry_after")
    assert keyword_only == expected
