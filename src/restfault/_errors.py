"""The exceptions a restfault app raises, and the status/code tables behind them.

The whole tree::

    RestException                      500 INTERNAL_SERVER_ERROR
    ├── BadRequestException            400 BAD_REQUEST
    │   ├── InvalidJsonException       400 INVALID_JSON
    │   └── BatchException             400 BATCH_ERROR
    ├── UnauthorizedException          401 UNAUTHORIZED
    ├── ForbiddenException             403 FORBIDDEN
    ├── NotFoundException              404 NOT_FOUND
    ├── ConflictResourceException      409 CONFLICT
    ├── TooManyRequestsException       429 RATE_LIMIT_EXCEEDED   (retry_after=)
    ├── InternalServerErrorException   500 INTERNAL_SERVER_ERROR
    ├── NotImplementedException        501 NOT_IMPLEMENTED
    └── ServiceUnavailableException    503 SERVICE_UNAVAILABLE   (retry_after=)

    ConfigurationError (ValueError)    a bad option, raised at start-up

Status, code and message are class attributes; an instance may override each. Context
and headers have class defaults too, so a subclass whose ``__init__`` never calls ours
(a ``@dataclass``, frozen or not) is still a whole RestException.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from ._headers import header_fields

__all__ = [
    "BadRequestException",
    "BatchException",
    "ConfigurationError",
    "ConflictResourceException",
    "ForbiddenException",
    "InternalServerErrorException",
    "InvalidJsonException",
    "NotFoundException",
    "NotImplementedException",
    "RestException",
    "ServiceUnavailableException",
    "TooManyRequestsException",
    "UnauthorizedException",
    "chain",
    "reason_phrase",
    "status_code_name",
]

# RFC 9110 names; Python before 3.13 still uses the RFC 7231 ones for these.
_PHRASE_OVERRIDES = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}
_CODE_OVERRIDES = {
    429: "RATE_LIMIT_EXCEEDED",  # the conventions' name, not TOO_MANY_REQUESTS
}


# Both are pure functions of the status, met on every converted error response: cached.
@functools.lru_cache(maxsize=1024)
def reason_phrase(status: int) -> str:
    """The reason phrase of an HTTP status: ``reason_phrase(405) == "Method Not Allowed"``."""
    phrase = _PHRASE_OVERRIDES.get(status)
    if phrase is not None:
        return phrase
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error" if status < 500 else "Server Error"


@functools.lru_cache(maxsize=1024)
def status_code_name(status: int) -> str:
    """The string code of a status with no class of its own: 405 → ``METHOD_NOT_ALLOWED``."""
    code = _CODE_OVERRIDES.get(status)
    if code is not None:
        return code
    return re.sub(r"[^A-Z0-9]+", "_", reason_phrase(status).upper()).strip("_")


def chain(exc: BaseException, cause: BaseException) -> None:
    """Set ``exc.__cause__`` as ``raise exc from cause`` does, even when ``exc`` is a frozen
    dataclass (its generated ``__setattr__`` refuses every attribute, ``__cause__`` too)."""
    object.__setattr__(exc, "__cause__", cause)


class ConfigurationError(ValueError):
    """A restfault option has a value it cannot use; raised when the adapter is created."""


class RestException(Exception):
    """Base of every error that renders as an envelope.

    >>> exc = NotFoundException("Table 'posts' not found", code="TABLE_NOT_FOUND")
    >>> exc.status_code, exc.code, exc.message
    (404, 'TABLE_NOT_FOUND', "Table 'posts' not found")

    ``headers`` are sent with the envelope; an int value is sent as its decimal text, and
    a name that is no header name or a value of another type raises at once:

    >>> BadRequestException(headers={"X-Retry": 5}).headers
    {'X-Retry': '5'}
    >>> BadRequestException(headers={"X-Retry": 2.5})
    Traceback (most recent call last):
      ...
    TypeError: header 'X-Retry' has a float value (2.5): header values are str or int
    """

    status_code: int = 500
    code: str = "INTERNAL_SERVER_ERROR"
    message: str = "Internal Server Error"
    # Defaults for a subclass whose __init__ never calls ours (a @dataclass): no context,
    # and an empty dict of headers made per instance (a cached_property writes the
    # instance's __dict__ directly, so a frozen dataclass gets one too).
    context: Any = None

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """Headers sent with the envelope (``Retry-After``, ``WWW-Authenticate``...)."""
        return {}

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        context: Any = None,
        headers: Mapping[str, str | int] | None = None,
        status_code: int | None = None,
    ) -> None:
        if status_code is not None:
            if not isinstance(status_code, int) or not 400 <= status_code <= 599:
                raise ValueError(f"status_code must be an int from 400 to 599, not {status_code!r}")
            self.status_code = status_code
            if type(self) is RestException and code is None:
                self.code = status_code_name(status_code)
            if type(self) is RestException and message is None:
                self.message = reason_phrase(status_code)
        if message is not None:
            self.message = str(message)
        if code is not None:
            self.code = str(code)
        self.context = context
        self.headers = header_fields(headers)
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class _RetryAfter(RestException):
    """Adds ``retry_after=`` (whole seconds), sent as the ``Retry-After`` header."""

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        context: Any = None,
        headers: Mapping[str, str | int] | None = None,
        status_code: int | None = None,
    ) -> None:
        self.retry_after: int | None = None
        if retry_after is not None:
            self.retry_after = max(0, math.ceil(retry_after))
            headers = {**(headers or {}), "Retry-After": self.retry_after}
        super().__init__(
            message, code=code, context=context, headers=headers, status_code=status_code
        )


class BadRequestException(RestException):
    """400: the request is malformed or holds invalid data."""

    status_code = 400
    code = "BAD_REQUEST"
    message = "Bad Request"


class InvalidJsonException(BadRequestException):
    """400: the request body is not valid JSON."""

    code = "INVALID_JSON"
    message = "Invalid JSON"


class BatchException(BadRequestException):
    """400: one or more items of a batch failed; ``context["errors"]`` lists them by index."""

    code = "BATCH_ERROR"
    message = "Batch operation error"

    def __init__(
        self,
        errors: list[dict[str, Any]],
        message: str | None = None,
        *,
        resource: list[Any] | None = None,
        rolled_back: bool = False,
        code: str | None = None,
        headers: Mapping[str, str | int] | None = None,
    ) -> None:
        self.errors = list(errors)
        self.resource = resource
        self.rolled_back = rolled_back
        # index -> the item's own RestException, filled in by run_batch
        self.causes: dict[int, RestException] = {}
        context: dict[str, Any] = {"errors": self.errors}
        if rolled_back:
            context["rolled_back"] = True
        elif resource is not None:
            context["resource"] = resource
        super().__init__(message, code=code, context=context, headers=headers)


class UnauthorizedException(RestException):
    """401: credentials are missing or invalid."""

    status_code = 401
    code = "UNAUTHORIZED"
    message = "Unauthorized"


class ForbiddenException(RestException):
    """403: authenticated, but not allowed to do this."""

    status_code = 403
    code = "FORBIDDEN"
    message = "Forbidden"


class NotFoundException(RestException):
    """404: the resource does not exist."""

    status_code = 404
    code = "NOT_FOUND"
    message = "Not Found"


class ConflictResourceException(RestException):
    """409: the request conflicts with the resource's state."""

    status_code = 409
    code = "CONFLICT"
    message = "Conflict"


class TooManyRequestsException(_RetryAfter):
    """429: a rate limit is exhausted; ``retry_after`` says when to come back."""

    status_code = 429
    code = "RATE_LIMIT_EXCEEDED"
    message = "Too Many Requests"


class InternalServerErrorException(RestException):
    """500: an unexpected server-side error."""

    status_code = 500
    code = "INTERNAL_SERVER_ERROR"
    message = "Internal Server Error"


class NotImplementedException(RestException):
    """501: the feature or endpoint is not available."""

    status_code = 501
    code = "NOT_IMPLEMENTED"
    message = "Not Implemented"


class ServiceUnavailableException(_RetryAfter):
    """503: the service is temporarily unavailable; ``retry_after`` says when to come back."""

    status_code = 503
    code = "SERVICE_UNAVAILABLE"
    message = "Service Unavailable"
