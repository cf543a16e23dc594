"""The RestException tree of API.md §1: defaults, overrides, Retry-After, batches."""

from __future__ import annotations

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
from tests.tables import BATCH_ERRORS, EXCEPTION_IDS, EXCEPTION_TABLE, make_exception


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
