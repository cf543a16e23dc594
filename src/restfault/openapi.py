"""JSON Schemas of the envelope styles, and OpenAPI response objects built from them.

>>> from restfault.openapi import error_responses
>>> responses = error_responses(404, 429, style="bkend")
>>> sorted(responses)
[404, 429]
>>> responses[429]["headers"]["Retry-After"]["schema"]
{'type': 'integer', 'minimum': 1}

FastAPI takes them as they are:
``@app.get("/items/{id}", responses=error_responses(404, 429))``.

The schemas describe exactly what ``render_error`` produces, so a schema-driven client
(or schemathesis) can check every error response a restfault app sends.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import ConfigurationError, reason_phrase
from ._render import JSON, PROBLEM_JSON, STYLE_NAMES

__all__ = ["envelope_schema", "error_responses", "with_error_responses"]

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

_CODE = {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"}
# A request id as restfault reuses or mints it: 1 to 128 visible ASCII characters.
REQUEST_ID_SCHEMA = {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"}
_HEADERS_429 = {
    "Retry-After": {
        "description": "Whole seconds until the request would be allowed again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "X-RateLimit-Limit": {"schema": {"type": "integer", "minimum": 1}},
    "X-RateLimit-Remaining": {"schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Reset": {
        "description": "When the window resets, as Unix epoch seconds.",
        "schema": {"type": "integer"},
    },
}


def _status_schema(status: int | None) -> dict[str, Any]:
    if status is None:
        return {"type": "integer", "minimum": 400, "maximum": 599}
    return {"type": "integer", "const": status}


def envelope_schema(
    style: str = "dreamfactory", status: int | None = None, *, request_id: bool = False
) -> dict[str, Any]:
    """The JSON Schema of an error envelope in ``style`` (for one ``status``, or any);
    with ``request_id``, the envelope carries the request's id (``request_id_header``)."""
    if style == "dreamfactory":
        error: dict[str, Any] = {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": _status_schema(status),
                "message": {"type": "string"},
                "context": {},
            },
        }
        _with_request_id(error, request_id)
        return {"type": "object", "required": ["error"], "properties": {"error": error}}
    if style == "bkend":
        document: dict[str, Any] = {
            "type": "object",
            "required": ["error", "message"],
            "properties": {"error": _CODE, "message": {"type": "string"}, "context": {}},
        }
        return _with_request_id(document, request_id)
    if style == "problem":
        problem: dict[str, Any] = {
            "type": "object",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": _status_schema(status),
                "detail": {"type": "string"},
                "code": _CODE,
                "instance": {"type": "string"},
            },
            "additionalProperties": True,
        }
        return _with_request_id(problem, request_id)
    raise ConfigurationError(
        f"style={style!r} has no schema; use one of {', '.join(map(repr, STYLE_NAMES))}"
    )


def _with_request_id(schema: dict[str, Any], request_id: bool) -> dict[str, Any]:
    if request_id:
        schema["required"].append("request_id")
        schema["properties"]["request_id"] = REQUEST_ID_SCHEMA
    return schema


def error_responses(
    *statuses: int,
    style: str = "dreamfactory",
    descriptions: Mapping[int, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response objects for ``statuses`` (FastAPI's ``responses=`` takes them as is).

    With no statuses, one ``"4XX"`` and one ``"5XX"`` entry cover every error.
    """
    content_type = PROBLEM_JSON if style == "problem" else JSON
    wanted: Iterable[int | str] = statuses or ("4XX", "5XX")
    result: dict[int | str, dict[str, Any]] = {}
    for status in wanted:
        number = status if isinstance(status, int) else None
        if number is not None and not 400 <= number <= 599:
            raise ConfigurationError(f"error_responses: {number} is not an error status")
        description = (descriptions or {}).get(number or 0) or (
            reason_phrase(number) if number else f"Error ({status})"
        )
        response: dict[str, Any] = {
            "description": description,
            "content": {content_type: {"schema": envelope_schema(style, number)}},
        }
        if number in (429, 503):
            response["headers"] = (
                _HEADERS_429 if number == 429 else {"Retry-After": _HEADERS_429["Retry-After"]}
            )
        result[status] = response
    return result


def with_error_responses(
    document: Mapping[str, Any], style: str = "dreamfactory"
) -> dict[str, Any]:
    """A copy of an OpenAPI ``document`` with restfault's error responses filled in.

    Each operation that lists ``x-restfault-errors`` (statuses, possibly none) gets a
    response object for each of them and the ``4XX``/``5XX`` catch-alls; responses the
    document already has are kept. The marker is removed.

    >>> operation = {"x-restfault-errors": [404], "responses": {"200": {"description": "OK"}}}
    >>> document = {"openapi": "3.1.0", "paths": {"/items/{id}": {"get": operation}}}
    >>> sorted(with_error_responses(document, "bkend")["paths"]["/items/{id}"]["get"]["responses"])
    ['200', '404', '4XX', '5XX']
    """
    result: dict[str, Any] = copy.deepcopy(dict(document))
    for path_item in (result.get("paths") or {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            statuses = operation.pop("x-restfault-errors", None)
            if statuses is None:
                continue
            responses = operation.setdefault("responses", {})
            added = {**error_responses(*statuses, style=style), **error_responses(style=style)}
            for status, response in added.items():
                responses.setdefault(str(status), response)
    return result
