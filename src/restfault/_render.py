"""Exceptions → ``ErrorResponse(status, headers, body)``: the envelope styles.

No I/O and no framework here: adapters hand an exception in and write out what comes back.
"""

from __future__ import annotations

import base64
import datetime
import enum
import json
import logging
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ._errors import ConfigurationError, InternalServerErrorException, RestException, reason_phrase
from ._translate import Translations, to_rest_exception

__all__ = ["ErrorResponse", "Renderer", "Style", "StyleFunction", "render_error"]

logger = logging.getLogger("restfault")

StyleFunction: TypeAlias = Callable[[RestException, bool], tuple[dict[str, Any], str]]
Style: TypeAlias = Literal["dreamfactory", "bkend", "problem"] | StyleFunction
STYLE_NAMES = ("dreamfactory", "bkend", "problem")

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
# Members of a problem document that context members may not replace.
_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "instance"})


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """A rendered envelope: status, headers (content type included) and the JSON body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def json_default(value: Any) -> Any:
    """Encode what ``json`` cannot: datetimes, Decimal, UUID, bytes, sets, enums; else str
    (``None`` for an object whose ``str()`` fails)."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    try:
        return str(value)  # Decimal, UUID and anything else: its string form
    except Exception:
        return None


# Built once: json.dumps() with any option builds a new JSONEncoder on every call, which
# costs more than encoding a small envelope does. allow_nan=False: NaN and Infinity are
# no JSON (RFC 8259 §6), and a client's strict parser would reject the whole body.
_ENCODER = json.JSONEncoder(default=json_default, separators=(",", ":"), allow_nan=False)


def dumps(document: Any) -> bytes:
    """Compact, strict JSON, ASCII-only so that lone surrogates and control characters stay
    escaped. NaN and ±Infinity become ``null``, keys JSON has no form for their ``str()``:

    >>> dumps({"ratio": float("nan"), (1, 2): "pair", "n": 1})
    b'{"ratio":null,"(1, 2)":"pair","n":1}'

    Raises ValueError, TypeError or RecursionError for what JSON cannot hold (a circular
    or pathologically deep context); ``Renderer.render_rest`` then drops the context.
    """
    try:
        text = _ENCODER.encode(document)
    except (ValueError, TypeError):
        # The rare body with a non-finite float or an odd key: encode a mended copy. A
        # circular document recurses until RecursionError here, as a deep one does.
        text = _ENCODER.encode(_strict(document))
    return text.encode("ascii")


def _strict(value: Any) -> Any:
    """A copy of ``value`` that ``_ENCODER`` encodes: non-finite floats as None, keys that
    are not str, int, float or None as their ``str()``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, dict):
        return {_strict_key(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    return _strict(json_default(value))


def _strict_key(key: Any) -> Any:
    if key is None or isinstance(key, str | int):
        return key
    if isinstance(key, float) and math.isfinite(key):
        return key
    return str(key)


def debug_details(exc: BaseException) -> dict[str, Any]:
    """The type, message and traceback of ``exc``, for ``debug=True`` bodies only."""
    try:
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"  # as the traceback module words it
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": message,
        "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


def _with_debug(context: Any, details: dict[str, Any]) -> Any:
    if context is None:
        return {"debug": details}
    if isinstance(context, dict):
        return {**context, "debug": details}
    return {"value": context, "debug": details}


class Renderer:
    """Renders exceptions in one style; built once per adapter from its settings."""

    __slots__ = ("debug", "problem_type", "style", "translations")

    def __init__(
        self,
        style: Style = "dreamfactory",
        *,
        debug: bool = False,
        problem_type: str = "about:blank",
        translations: Translations | None = None,
    ) -> None:
        if not callable(style) and style not in STYLE_NAMES:
            raise ConfigurationError(
                f"style={style!r} is not a style: use one of {', '.join(STYLE_NAMES)} "
                "or a callable (exc, debug) -> (dict, content_type)"
            )
        self.style = style
        self.debug = bool(debug)
        self.problem_type = problem_type
        self.translations = translations

    def resolve(self, exc: BaseException) -> tuple[RestException, bool]:
        """The RestException to render for ``exc``, and whether ``exc`` was unexpected."""
        try:
            rest = to_rest_exception(exc, self.translations)
        except Exception:
            logger.exception("restfault: translating %s failed", type(exc).__name__)
            rest = None
        if rest is not None:
            return rest, False
        internal = InternalServerErrorException()
        internal.__cause__ = exc
        return internal, True

    def render(self, exc: BaseException) -> ErrorResponse:
        """The envelope for any exception."""
        rest, unexpected = self.resolve(exc)
        return self.render_resolved(exc, rest, unexpected)

    def render_resolved(
        self,
        exc: BaseException,
        rest: RestException,
        unexpected: bool,
        request_id: str | None = None,
    ) -> ErrorResponse:
        """Render ``rest`` (what ``resolve(exc)`` gave), with debug details when due."""
        due = self.debug and (unexpected or rest.status_code >= 500)
        return self.render_rest(rest, debug_details(exc) if due else None, request_id)

    def render_rest(
        self,
        exc: RestException,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> ErrorResponse:
        """The envelope for a RestException, with optional debug details and the request's
        id (a callable style reads it from ``current_request_id()``)."""
        style = self.style
        if callable(style):
            document, content_type = self._call_style(style, exc)
        else:
            document, content_type = self._document(style, exc, details, request_id)
        try:
            body = dumps(document)
        except Exception:
            # A circular or pathologically deep context (or a style's document), or one
            # whose own methods fail: keep the envelope, status, code and message, and
            # drop what could not be encoded.
            logger.warning("restfault: an error context could not be encoded as JSON; dropped")
            bare = RestException(exc.message, code=exc.code, status_code=exc.status_code)
            document, content_type = self._document(
                "dreamfactory" if callable(style) else style, bare, None, request_id
            )
            body = dumps(document)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        headers.extend(exc.headers.items())
        return ErrorResponse(exc.status_code, headers, body)

    def _call_style(self, style: StyleFunction, exc: RestException) -> tuple[Any, str]:
        try:
            document, content_type = style(exc, self.debug)
        except Exception:
            logger.exception(
                "restfault: the style callable failed; answering in dreamfactory style"
            )
            return self._document("dreamfactory", exc, None)
        return document, str(content_type)

    def _document(
        self,
        style: str,
        exc: RestException,
        details: dict[str, Any] | None,
        request_id: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        context = exc.context if details is None else _with_debug(exc.context, details)
        if style == "dreamfactory":
            error: dict[str, Any] = {"code": exc.status_code, "message": exc.message}
            if request_id is not None:
                error["request_id"] = request_id
            if context is not None:
                error["context"] = context
            return {"error": error}, JSON
        if style == "bkend":
            document: dict[str, Any] = {"error": exc.code, "message": exc.message}
            if request_id is not None:
                document["request_id"] = request_id
            if context is not None:
                document["context"] = context
            return document, JSON
        problem: dict[str, Any] = {
            "type": self.problem_type,
            "title": reason_phrase(exc.status_code),
            "status": exc.status_code,
            "detail": exc.message,
            "code": exc.code,
        }
        if isinstance(context, dict):
            problem.update((k, v) for k, v in context.items() if k not in _PROBLEM_MEMBERS)
        elif context is not None:
            problem["context"] = context
        if request_id is not None:
            problem["request_id"] = request_id  # the request's, whatever the context says
        return problem, PROBLEM_JSON


def render_error(
    exc: BaseException, *, style: Style = "dreamfactory", debug: bool = False
) -> ErrorResponse:
    """Render any exception as the envelope of ``style``.

    >>> from restfault import NotFoundException
    >>> response = render_error(NotFoundException(code="TABLE_NOT_FOUND"), style="bkend")
    >>> response.status, response.body
    (404, b'{"error":"TABLE_NOT_FOUND","message":"Not Found"}')
    """
    return Renderer(style, debug=debug).render(exc)
