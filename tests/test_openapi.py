"""The published schemas describe exactly what the renderer sends."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from restfault import (
    BatchException,
    ConfigurationError,
    NotFoundException,
    RestException,
    TooManyRequestsException,
    render_error,
)
from restfault.openapi import envelope_schema, error_responses
from restfault.starlette import RestFault
from tests.tables import STYLE_NAMES, StyleName

STYLES = STYLE_NAMES
RATE_LIMIT_HEADERS = {
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
}


def validate(instance: object, schema: Mapping[str, Any]) -> None:
    """``jsonschema.validate``, which jsonschema leaves unannotated."""
    jsonschema.validate(instance, schema)  # type: ignore[no-untyped-call]


EXCEPTIONS: list[BaseException] = [
    NotFoundException("Table 'posts' not found", code="TABLE_NOT_FOUND"),
    TooManyRequestsException(retry_after=3),
    BatchException([{"index": 0, "message": "Duplicate"}], resource=[None]),
    RestException(status_code=418),
    RuntimeError("secret"),
]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("debug", [False, True])
def test_every_rendered_envelope_matches_its_schema(
    style: StyleName, exc: BaseException, debug: bool
) -> None:
    rendered = render_error(exc, style=style, debug=debug)
    body = json.loads(rendered.body)
    validate(body, envelope_schema(style))
    validate(body, envelope_schema(style, rendered.status))


@pytest.mark.parametrize("style", ["dreamfactory", "problem"])
def test_a_status_schema_rejects_another_status(style: StyleName) -> None:
    body = json.loads(render_error(NotFoundException(), style=style).body)
    with pytest.raises(jsonschema.ValidationError):
        validate(body, envelope_schema(style, 409))


def test_error_responses_for_fastapi() -> None:
    app = FastAPI()
    RestFault(app, style="problem")

    @app.get("/items/{item_id}", responses=error_responses(404, 429, style="problem"))
    async def read_item(item_id: int) -> dict[str, Any]:
        raise NotFoundException(code="RECORD_NOT_FOUND")

    document = TestClient(app).get("/openapi.json").json()
    responses = document["paths"]["/items/{item_id}"]["get"]["responses"]
    assert responses["404"]["content"]["application/problem+json"]["schema"]["properties"][
        "status"
    ] == {
        "type": "integer",
        "const": 404,
    }
    assert set(responses["429"]["headers"]) == RATE_LIMIT_HEADERS
    answer = TestClient(app).get("/items/1")
    validate(answer.json(), responses["404"]["content"]["application/problem+json"]["schema"])


def test_default_ranges_and_bad_input() -> None:
    assert set(error_responses()) == {"4XX", "5XX"}
    with pytest.raises(ConfigurationError, match="not an error status"):
        error_responses(200)
    with pytest.raises(ConfigurationError, match="style='xml'"):
        envelope_schema("xml")


def test_with_error_responses_fills_in_marked_operations() -> None:
    from restfault.openapi import with_error_responses

    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "paths": {
            "/items/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True}],
                "get": {
                    "responses": {"200": {"description": "OK"}, "404": {"description": "mine"}},
                    "x-restfault-errors": [404, 429],
                },
                "delete": {"responses": {"204": {"description": "gone"}}},
            }
        },
    }
    filled = with_error_responses(spec, style="bkend")
    get = filled["paths"]["/items/{id}"]["get"]
    assert "x-restfault-errors" not in get
    assert get["responses"]["404"] == {"description": "mine"}  # the document's own is kept
    assert set(get["responses"]) == {"200", "404", "429", "4XX", "5XX"}
    assert set(get["responses"]["429"]["headers"]) == RATE_LIMIT_HEADERS
    assert filled["paths"]["/items/{id}"]["delete"] == {
        "responses": {"204": {"description": "gone"}}
    }
    assert spec["paths"]["/items/{id}"]["get"]["x-restfault-errors"] == [404, 429]  # not mutated
