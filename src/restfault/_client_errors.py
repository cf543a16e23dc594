"""Error responses → the exceptions of ``restfault`` (API.md §1), for ``restfault.client``.

Sans-IO: a response is anything with ``status_code``, ``headers``, ``content`` and
``text`` (httpx, httpx2 and requests responses all are). The envelope style is recognised
by the body's shape, never by asking the server:

- dreamfactory ``{"error": {"code": 404, "message": ..., "context": ...}}`` (no string
  code: ``.code`` is the class's default);
- bkend ``{"error": "TABLE_NOT_FOUND", "message": ..., "context": ...}``;
- problem (RFC 9457) ``{"type", "title", "status", "detail", "code", ...}``, whose
  extension members (besides ``code``) are the context.

Anything else (HTML from a proxy, text, other JSON, nothing) keeps its text as message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ._client_headers import Headers, retry_after_seconds
from ._errors import (
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
    reason_phrase,
)
from ._render import _PROBLEM_MEMBERS

__all__ = ["ResponseLike", "error_from_response", "raise_for_error"]


class ResponseLike(Protocol):
    """What ``raise_for_error`` reads of a response (httpx, httpx2 and requests have it)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...


R = TypeVar("R", bound=ResponseLike)

# The class of each status that has one; every other status is a RestException of its own.
_STATUS_CLASSES: dict[int, type[RestException]] = {
    cls.status_code: cls
    for cls in (
        BadRequestException,
        UnauthorizedException,
        ForbiddenException,
        NotFoundException,
        ConflictResourceException,
        TooManyRequestsException,
        InternalServerErrorException,
        NotImplementedException,
        ServiceUnavailableException,
    )
}
# 400s whose string code names a subclass of their own.
_CODE_CLASSES: dict[str, type[RestException]] = {
    InvalidJsonException.code: InvalidJsonException,
    BatchException.code: BatchException,
}


@dataclass(frozen=True, slots=True)
class _Envelope:
    """What an error body says, whatever its style; ``None`` where it says nothing."""

    code: str | None
    message: str | None
    context: Any


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_batch(context: Any) -> bool:
    """A batch's context by shape: ``{"errors": [{"index": 0, ...}, ...], ...}``."""
    errors = context.get("errors") if isinstance(context, dict) else None
    return (
        isinstance(errors, list)
        and bool(errors)
        and all(isinstance(e, dict) and isinstance(e.get("index"), int) for e in errors)
    )


def _envelope(document: Any, content_type: str) -> _Envelope | None:
    """The envelope in ``document`` (parsed JSON), or None when it is in no style."""
    if not isinstance(document, dict):
        return None
    error = document.get("error")
    if isinstance(error, dict):  # dreamfactory: error.code is the status (an int)
        return _Envelope(
            _string(error.get("code")), _string(error.get("message")), error.get("context")
        )
    if isinstance(error, str) and isinstance(document.get("message"), str):  # bkend
        return _Envelope(error or None, _string(document["message"]), document.get("context"))
    problem_members = _PROBLEM_MEMBERS & document.keys()
    if error is None and (problem_members or content_type.startswith("application/problem+json")):
        context = {k: v for k, v in document.items() if k not in _PROBLEM_MEMBERS}
        message = _string(document.get("detail")) or _string(document.get("title"))
        return _Envelope(_string(document.get("code")), message, context or None)
    return None


def _read(response: ResponseLike, headers: Headers) -> _Envelope:
    content = response.content or b""
    try:
        document = json.loads(content) if content.strip() else None
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError)
        document = None
    content_type = (headers.get("Content-Type") or "").lower()
    envelope = _envelope(document, content_type)
    if envelope is not None:
        return envelope
    text = response.text.strip() if content.strip() else ""
    return _Envelope(None, text or reason_phrase(response.status_code), None)


def _exception(
    status: int,
    code: str | None,
    message: str | None,
    context: Any,
    retry_after: float | None,
    *,
    item: bool = False,
) -> RestException:
    """The §1 exception for ``status`` and what its body said (``item``: a batch's item)."""
    cls = _STATUS_CLASSES.get(status, RestException)
    if status == 400:
        cls = _CODE_CLASSES.get(code or "", cls)
        if code is None and _is_batch(context):  # dreamfactory: recognised by shape
            cls = BatchException
        elif code is None and (message or "").startswith(InvalidJsonException.message):
            cls = InvalidJsonException
    if cls is BatchException:
        return _batch(code, message, context, with_causes=not item)
    if cls is TooManyRequestsException:
        return TooManyRequestsException(
            message, code=code, context=context, retry_after=retry_after
        )
    if cls is ServiceUnavailableException:
        return ServiceUnavailableException(
            message, code=code, context=context, retry_after=retry_after
        )
    if cls is not RestException:
        return cls(message, code=code, context=context)
    if 400 <= status <= 599:
        return RestException(message, code=code, context=context, status_code=status)
    # Past 599 (not HTTP, yet some servers send it): keep the status the server sent.
    exc = RestException(
        message or reason_phrase(status), code=code or f"HTTP_{status}", context=context
    )
    exc.status_code = status
    return exc


def _batch(
    code: str | None, message: str | None, context: Any, *, with_causes: bool
) -> BatchException:
    """A BatchException with ``.errors`` as sent, and ``.causes``: each item's own exception
    (an item that is a batch itself keeps its errors, not causes: no unbounded recursion)."""
    members = context if isinstance(context, dict) else {}
    listed = members.get("errors")
    errors = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    resource = members.get("resource")
    exc = BatchException(
        errors,
        message,
        resource=resource if isinstance(resource, list) else None,
        rolled_back=members.get("rolled_back") is True,
        code=code,
    )
    exc.context = context  # exactly what the body held (a problem's other members too)
    for error in errors if with_causes else ():
        index, status = error.get("index"), error.get("status")
        if isinstance(index, int):
            exc.causes[index] = _exception(
                status if isinstance(status, int) and 400 <= status <= 599 else 400,
                _string(error.get("code")),
                _string(error.get("message")),
                error.get("context"),
                None,
                item=True,
            )
    return exc


def error_from_response(
    response: ResponseLike, *, retry_after: float | None = None
) -> RestException:
    """The exception an error response stands for (its status must be 400 or more).

    ``retry_after`` overrides the seconds read from its ``Retry-After`` header.
    """
    headers = Headers(response.headers.items())  # any mapping, looked up in any case
    envelope = _read(response, headers)
    if retry_after is None:
        retry_after = retry_after_seconds(headers)
    exc = _exception(
        response.status_code, envelope.code, envelope.message, envelope.context, retry_after
    )
    exc.headers = headers  # as received, Retry-After included
    return exc


def raise_for_error(response: R) -> R:
    """Return ``response`` when its status is below 400; otherwise raise its exception.

    Works on httpx, httpx2 and requests responses, whatever the server's envelope style.

    >>> import httpx
    >>> raise_for_error(httpx.Response(404, json={"error": "TABLE_NOT_FOUND", "message": "No"}))
    Traceback (most recent call last):
    restfault._errors.NotFoundException: No
    """
    if response.status_code < 400:
        return response
    raise error_from_response(response)
