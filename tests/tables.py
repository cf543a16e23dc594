"""The tables every envelope test walks: API.md §1's exceptions and §2's styles.

Pure data and the readers of rendered bodies; no app, no framework. Imported by the
exception, render and envelope tests alike, so each row is written once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

from restfault import (
    BadRequestException,
    BatchException,
    ConflictResourceException,
    ForbiddenException,
    InternalServerErrorException,
    InvalidJsonException,
    NotFoundException,
    NotImplementedException,
    RestException,
    ServiceUnavailableException,
    TooManyRequestsException,
    UnauthorizedException,
    render_error,
)

StyleName: TypeAlias = Literal["dreamfactory", "bkend", "problem"]
HouseStyle: TypeAlias = Callable[[RestException, bool], tuple[dict[str, Any], str]]
StyleOption: TypeAlias = StyleName | HouseStyle
# A parsed JSON body: what json.loads returns.
Document: TypeAlias = Any

# (class, status, code, message) straight from API.md §1.
EXCEPTION_TABLE: list[tuple[type[RestException], int, str, str]] = [
    (RestException, 500, "INTERNAL_SERVER_ERROR", "Internal Server Error"),
    (BadRequestException, 400, "BAD_REQUEST", "Bad Request"),
    (InvalidJsonException, 400, "INVALID_JSON", "Invalid JSON"),
    (BatchException, 400, "BATCH_ERROR", "Batch operation error"),
    (UnauthorizedException, 401, "UNAUTHORIZED", "Unauthorized"),
    (ForbiddenException, 403, "FORBIDDEN", "Forbidden"),
    (NotFoundException, 404, "NOT_FOUND", "Not Found"),
    (ConflictResourceException, 409, "CONFLICT", "Conflict"),
    (TooManyRequestsException, 429, "RATE_LIMIT_EXCEEDED", "Too Many Requests"),
    (InternalServerErrorException, 500, "INTERNAL_SERVER_ERROR", "Internal Server Error"),
    (NotImplementedException, 501, "NOT_IMPLEMENTED", "Not Implemented"),
    (ServiceUnavailableException, 503, "SERVICE_UNAVAILABLE", "Service Unavailable"),
]
EXCEPTION_IDS = [row[0].__name__ for row in EXCEPTION_TABLE]

BATCH_ERRORS: list[dict[str, Any]] = [
    {"index": 0, "status": 409, "code": "CONFLICT", "message": "Duplicate key value"},
    {"index": 2, "status": 400, "code": "BAD_REQUEST", "message": "Foreign key violation"},
]


@dataclasses.dataclass
class TableGone(NotFoundException):
    """A domain error written as a dataclass: its generated __init__ skips RestException's."""

    table: str = "posts"
    status_code = 410
    code = "TABLE_GONE"
    message = "Table is gone"


@dataclasses.dataclass(frozen=True)
class FrozenTableGone(NotFoundException):
    """The same, frozen: restfault may set no attribute on it the usual way."""

    table: str = "posts"
    status_code = 410
    code = "TABLE_GONE"
    message = "Table is gone"


DATACLASS_EXCEPTIONS = [TableGone, FrozenTableGone]


def make_exception(
    cls: type[RestException],
    *,
    context: Any = None,
    headers: Mapping[str, str] | None = None,
) -> RestException:
    """An instance of ``cls`` with its defaults (BatchException needs its errors), and
    ``context`` and ``headers`` when given."""
    if cls is BatchException:
        return BatchException(list(BATCH_ERRORS), resource=[None, {"id": 2}, None], headers=headers)
    return cls(context=context, headers=headers)


def house_style(exc: RestException, debug: bool) -> tuple[dict[str, Any], str]:
    """A callable style: a house envelope of its own."""
    document: dict[str, Any] = {"status": exc.status_code, "kind": exc.code, "text": exc.message}
    if exc.context is not None:
        document["details"] = exc.context
    return document, "application/vnd.house+json"


STYLE_NAMES: list[StyleName] = ["dreamfactory", "bkend", "problem"]
STYLES: list[StyleOption] = [*STYLE_NAMES, house_style]
STYLE_IDS = ["dreamfactory", "bkend", "problem", "callable"]
CONTENT_TYPES: dict[StyleName, str] = {
    "dreamfactory": "application/json",
    "bkend": "application/json",
    "problem": "application/problem+json",
}
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code", "instance"}


def content_type_of(style: StyleOption) -> str:
    """The content type ``style`` answers with."""
    return CONTENT_TYPES[style] if isinstance(style, str) else "application/vnd.house+json"


def body_message(style: StyleOption, document: Document) -> str:
    if style == "dreamfactory":
        return str(document["error"]["message"])
    if style == "bkend":
        return str(document["message"])
    if style == "problem":
        return str(document["detail"])
    return str(document["text"])


def body_context(style: StyleOption, document: Document) -> Document:
    if style == "dreamfactory":
        return document["error"].get("context")
    if style == "bkend":
        return document.get("context")
    if style == "problem":
        return {k: v for k, v in document.items() if k not in PROBLEM_MEMBERS} or None
    return document.get("details")


def expected_document(exc: RestException, style: StyleOption) -> Document:
    """What restfault's own renderer says ``exc`` looks like in ``style``."""
    return json.loads(render_error(exc, style=style).body)
