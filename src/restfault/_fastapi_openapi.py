"""FastAPI's OpenAPI document, made to tell the truth about restfault's answers.

FastAPI documents a 422 with its own ``HTTPValidationError`` body on every operation
that validates input, and nothing else that can go wrong. Under restfault:

- a validation error is a 400 ``VALIDATION_ERROR`` envelope (an unparsable body a 400
  ``INVALID_JSON``): the 422 is gone, a 400 is documented where FastAPI put the 422;
- every operation may answer any error with the envelope: ``4XX`` and ``5XX`` responses;
- a rate-limited operation (default or path limits that its endpoint is not exempt
  from, or limits of its own) documents its 429, with ``Retry-After``, the
  ``X-RateLimit-*`` fields and, with ``ietf_headers``, ``RateLimit`` and
  ``RateLimit-Policy``; maintenance mode (and ``on_storage_error="deny"``) a 503;

every body with the configured style's schema (``restfault.openapi.envelope_schema``).
Installed by ``RestFault.init_app`` through FastAPI's documented hook: ``app.openapi``
is replaced by a function that post-processes the generated document once and keeps it
in ``app.openapi_schema``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._core import Core
from ._denial import QUOTA_EXCEEDED
from ._render import JSON, PROBLEM_JSON
from .openapi import _HEADERS_429, REQUEST_ID_SCHEMA, envelope_schema

__all__ = ["install_openapi", "truthful_openapi"]

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# FastAPI's schemas of its 422 body: dropped when nothing refers to them any more.
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_IETF_HEADERS = {
    "RateLimit": {
        "description": "Each policy's remaining quota (r) and seconds to its reset (t).",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": "Every limit applied: its name, quota (q) and window in seconds (w).",
        "schema": {"type": "string"},
    },
}


def install_openapi(app: Any, core: Core) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json`` and ``/docs``) truthful."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    made: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI's own, or what it cached: ours, once made
        if not (made and document is made[0]):
            made[:] = [truthful_openapi(document, core, _operations(app))]
            app.openapi_schema = made[0]
        return made[0]

    app.openapi = openapi


def truthful_openapi(
    document: dict[str, Any], core: Core, operations: Iterable[tuple[str, str, Any]]
) -> dict[str, Any]:
    """A copy of ``document`` describing restfault's error responses; ``operations`` are
    the app's ``(path, method, endpoint)``, which say which limits apply."""
    result = copy.deepcopy(document)
    responses = _Responses(core)
    endpoints = {(path, method.lower()): endpoint for path, method, endpoint in operations}
    for path, path_item in (result.get("paths") or {}).items():
        for method, operation in path_item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            answers = operation.setdefault("responses", {})
            if answers.pop("422", None) is not None:
                answers.setdefault("400", responses.validation())
            endpoint = endpoints.get((path, method))
            limited, maintained = _applies(core, path, method.upper(), endpoint)
            if limited:
                answers.setdefault("429", responses.rate_limited())
            if maintained or (limited and core.settings.on_storage_error == "deny"):
                answers.setdefault("503", responses.unavailable())
            answers.setdefault("4XX", responses.any_error("4XX"))
            answers.setdefault("5XX", responses.any_error("5XX"))
    _drop_unreferenced(result, _VALIDATION_SCHEMAS)
    return result


def _applies(core: Core, path: str, method: str, endpoint: Any) -> tuple[bool, bool]:
    """Whether limits apply to the operation, and whether maintenance mode does."""
    rules = core.registry.for_endpoint(endpoint, method)
    limited = bool(core.applicable(method, path, rules).rules)
    exempt = rules.exempt or core.is_exempt_path(path)
    return limited, core.settings.maintenance is not None and not exempt


def _operations(app: Any) -> Iterator[tuple[str, str, Any]]:
    """``(path, method, endpoint)`` of every route FastAPI documents, included routers'
    routes with their prefixes (FastAPI's own walk where it has one)."""
    from fastapi import routing

    iterate = getattr(routing, "iter_route_contexts", None)
    routes: Iterable[Any] = iterate(app.routes) if iterate is not None else app.routes
    for route in routes:
        original = getattr(route, "original_route", route)
        if not isinstance(original, routing.APIRoute):
            continue
        for method in route.methods or ():
            yield route.path_format, method, route.endpoint


class _Responses:
    """The response objects of one adapter's style and options."""

    def __init__(self, core: Core) -> None:
        settings = core.settings
        self.style = settings.style if isinstance(settings.style, str) else None
        self.content_type = PROBLEM_JSON if self.style == "problem" else JSON
        self.request_id = settings.request_id_header
        self.legacy = settings.headers_enabled
        self.ietf = settings.ietf_headers

    def _response(
        self, description: str, status: int | None, headers: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object"}  # a callable style's own documents
        if self.style is not None:
            schema = envelope_schema(self.style, status, request_id=self.request_id is not None)
        if status == 429 and self.style == "problem" and self.ietf:
            schema["properties"]["type"] = {"const": QUOTA_EXCEEDED}
            schema["required"].append("violated-policies")
            schema["properties"]["violated-policies"] = {
                "type": "array",
                "items": {"type": "string"},
                "description": "The names of the breached limits, as RateLimit-Policy names them.",
            }
        headers = dict(headers or {})
        if self.request_id is not None:
            headers[self.request_id] = {
                "description": "The request's id, as the client sent it or minted.",
                "schema": REQUEST_ID_SCHEMA,
            }
        response: dict[str, Any] = {
            "description": description,
            "content": {self.content_type: {"schema": schema}},
        }
        if headers:
            response["headers"] = headers
        return response

    def validation(self) -> dict[str, Any]:
        return self._response(
            "Bad Request: VALIDATION_ERROR (a parameter or the body fails validation; the "
            "context lists each field's location) or INVALID_JSON (the body is not JSON)",
            400,
        )

    def rate_limited(self) -> dict[str, Any]:
        headers: dict[str, Any] = {"Retry-After": _HEADERS_429["Retry-After"]}
        if self.legacy:
            headers.update(_HEADERS_429)
        if self.ietf:
            headers.update(_IETF_HEADERS)
        return self._response("Too Many Requests: a rate limit is exhausted", 429, headers)

    def unavailable(self) -> dict[str, Any]:
        headers = {"Retry-After": _HEADERS_429["Retry-After"]}
        return self._response(
            "Service Unavailable: maintenance mode, or the rate-limit storage is out", 503, headers
        )

    def any_error(self, statuses: str) -> dict[str, Any]:
        return self._response(f"Error ({statuses}), answered with the error envelope", None)


def _drop_unreferenced(document: dict[str, Any], names: Iterable[str]) -> None:
    schemas = (document.get("components") or {}).get("schemas") or {}
    for name in names:
        if name not in schemas:
            continue
        held = schemas.pop(name)
        if f'"#/components/schemas/{name}"' in json.dumps(document):
            schemas[name] = held  # still referred to (by the app's own responses)
