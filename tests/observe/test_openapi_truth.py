"""On FastAPI the generated OpenAPI document tells the truth (API.md §4): no 422, a 400
``VALIDATION_ERROR`` where FastAPI documents its 422, ``4XX``/``5XX`` envelopes on every
operation, a 429 with its headers on every rate-limited one, in the style's schema."""

from __future__ import annotations

import json
from typing import Annotated, Any

import jsonschema
import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.testclient import TestClient

from restfault import NotFoundException
from restfault.openapi import envelope_schema
from restfault.starlette import RestFault

STYLES = ["dreamfactory", "bkend", "problem"]
LEGACY = ["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
IETF = ["RateLimit", "RateLimit-Policy"]
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
# (path, method) of the app below -> whether rate limits apply to it
LIMITED = {
    ("/items/{item_id}", "post"): True,  # default limits
    ("/plain", "get"): True,
    ("/health", "get"): False,  # .exempt
    ("/email", "get"): True,  # .exempt from the defaults, but a limit of its own
    ("/things/{thing_id}", "get"): True,
    ("/boom", "get"): True,
    ("/api/v2/db/search", "get"): True,  # an included router's route
    ("/status", "get"): False,  # exempt_paths
}


class Item(BaseModel):
    name: str
    qty: int


def build(**options: Any) -> FastAPI:
    """An app with every kind of operation: validated or not, limited or exempt, routed
    through an included router."""
    app = FastAPI()
    rf = RestFault(app, **options)

    @app.post("/items/{item_id}")
    async def create(item_id: int, item: Item) -> dict[str, Any]:
        return {"id": item_id}

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/health")
    @rf.exempt
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/email")
    @rf.exempt
    @rf.limit("3/minute", code="EMAIL_RATE_LIMIT")
    async def email() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/things/{thing_id}", responses={404: {"description": "No such thing"}})
    async def thing(thing_id: int) -> dict[str, Any]:
        raise NotFoundException(code="THING_NOT_FOUND")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret")

    @app.get("/status")
    async def status() -> dict[str, bool]:
        return {"ok": True}

    router = APIRouter(prefix="/api/v2/db")

    @router.get("/search")
    async def search(q: Annotated[int, Query(ge=1)] = 1) -> dict[str, int]:
        return {"q": q}

    app.include_router(router)
    return app


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def served(app: FastAPI) -> dict[str, Any]:
    """The document ``/openapi.json`` serves."""
    reply = TestClient(app, client=("198.51.100.1", 1)).get("/openapi.json")
    assert reply.status_code == 200
    document: dict[str, Any] = reply.json()
    return document


def fastapi_own(app: FastAPI) -> dict[str, Any]:
    """What FastAPI documents for the same routes without restfault."""
    return get_openapi(title=app.title, version=app.version, routes=app.routes)


def content_type(style: str) -> str:
    return "application/problem+json" if style == "problem" else "application/json"


@pytest.mark.parametrize("style", STYLES)
def test_no_422_and_a_400_wherever_fastapi_documents_one(style: str) -> None:
    app = build(style=style, default_limits="100/minute", exempt_paths=["/status"])
    own = operations(fastapi_own(app))

    document = served(app)

    assert '"422"' not in json.dumps(document)
    assert "HTTPValidationError" not in json.dumps(document)
    assert "ValidationError" not in document.get("components", {}).get("schemas", {})
    with_422 = {key for key, operation in own.items() if "422" in operation["responses"]}
    assert with_422 == {
        ("/items/{item_id}", "post"),
        ("/things/{thing_id}", "get"),
        ("/api/v2/db/search", "get"),
    }
    for key, operation in operations(document).items():
        responses = operation["responses"]
        assert ("400" in responses) is (key in with_422), key
        if key in with_422:
            assert responses["400"]["content"] == {
                content_type(style): {"schema": envelope_schema(style, 400)}
            }
            assert "VALIDATION_ERROR" in responses["400"]["description"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("ietf", [False, True])
def test_4xx_5xx_on_every_operation_and_a_429_on_every_limited_one(style: str, ietf: bool) -> None:
    app = build(
        style=style, default_limits="100/minute", exempt_paths=["/status"], ietf_headers=ietf
    )

    document = served(app)

    assert set(operations(document)) == set(LIMITED)
    for key, operation in operations(document).items():
        responses = operation["responses"]
        for statuses in ("4XX", "5XX"):
            assert responses[statuses]["content"] == {
                content_type(style): {"schema": envelope_schema(style)}
            }
        assert ("429" in responses) is LIMITED[key], key
        if LIMITED[key]:
            assert list(responses["429"]["headers"]) == LEGACY + (IETF if ietf else [])
            schema = responses["429"]["content"][content_type(style)]["schema"]
            if style == "problem" and ietf:
                assert schema["properties"]["type"] == {"const": QUOTA_EXCEEDED}
                assert "violated-policies" in schema["required"]
            else:
                assert schema == envelope_schema(style, 429)
        assert responses["200"]["description"] == "Successful Response"  # FastAPI's own kept
    assert operations(document)[("/things/{thing_id}", "get")]["responses"]["404"] == {
        "description": "No such thing"
    }


def test_endpoint_limits_alone_make_an_operation_limited() -> None:
    document = served(build())

    limited = {key for key, op in operations(document).items() if "429" in op["responses"]}
    assert limited == {("/email", "get")}


def test_path_limits_make_the_operations_under_their_prefix_limited() -> None:
    document = served(build(path_limits={"/api/v2/db/": "1000/hour"}))

    limited = {key for key, op in operations(document).items() if "429" in op["responses"]}
    assert limited == {("/email", "get"), ("/api/v2/db/search", "get")}


def test_without_legacy_headers_the_429_documents_retry_after_alone() -> None:
    document = served(build(default_limits="100/minute", headers_enabled=False))

    headers = operations(document)[("/plain", "get")]["responses"]["429"]["headers"]
    assert list(headers) == ["Retry-After"]


def test_request_ids_and_maintenance_are_documented() -> None:
    app = build(request_id_header="X-Request-ID", maintenance=lambda request: False)

    document = served(app)

    responses = operations(document)[("/plain", "get")]["responses"]
    assert responses["4XX"]["content"]["application/json"]["schema"] == envelope_schema(
        "dreamfactory", request_id=True
    )
    assert "X-Request-ID" in responses["4XX"]["headers"]
    assert list(responses["503"]["headers"]) == ["Retry-After", "X-Request-ID"]
    assert "503" not in operations(document)[("/health", "get")]["responses"]  # .exempt


def test_a_callable_style_documents_objects() -> None:
    def house(exc: Any, debug: bool) -> tuple[dict[str, Any], str]:
        return {"kind": exc.code}, "application/json"

    document = served(build(style=house, default_limits="1/second"))

    responses = operations(document)[("/items/{item_id}", "post")]["responses"]
    assert responses["400"]["content"] == {"application/json": {"schema": {"type": "object"}}}
    assert set(responses) == {"200", "400", "429", "4XX", "5XX"}


def test_the_document_is_made_once_and_kept_in_openapi_schema() -> None:
    app = build(default_limits="100/minute")

    first = app.openapi()

    assert app.openapi() is first
    assert app.openapi_schema is first
    app.openapi_schema = None  # FastAPI's way to have it generated again
    again = app.openapi()
    assert again is not first
    assert again == first


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("method", "path", "route", "body", "status", "declared"),
    [
        ("POST", "/items/x", "/items/{item_id}", b'{"name": "a", "qty": 1}', 400, "400"),
        ("POST", "/items/1", "/items/{item_id}", b'{"name": "a"', 400, "400"),
        ("GET", "/api/v2/db/search?q=0", "/api/v2/db/search", None, 400, "400"),
        ("GET", "/things/7", "/things/{thing_id}", None, 404, "4XX"),
        ("GET", "/boom", "/boom", None, 500, "5XX"),
        ("GET", "/email", "/email", None, 429, "429"),
    ],
    ids=["validation", "invalid-json", "query", "not-found", "boom", "rate-limited"],
)
def test_real_error_responses_match_the_schema_the_document_declares(
    style: str,
    method: str,
    path: str,
    route: str,
    body: bytes | None,
    status: int,
    declared: str,
) -> None:
    app = build(style=style, request_id_header="X-Request-ID", ietf_headers=True)
    client = TestClient(app, raise_server_exceptions=False)
    operation = served(app)["paths"][route][method.lower()]
    if status == 429:
        for _ in range(3):
            assert client.get(path).status_code == 200

    reply = client.request(method, path, content=body)

    assert reply.status_code == status
    declared_response = operation["responses"][declared]
    assert reply.headers["content-type"] == content_type(style)
    schema = declared_response["content"][content_type(style)]["schema"]
    jsonschema.validate(reply.json(), schema)  # type: ignore[no-untyped-call]
    assert {name.lower() for name in declared_response["headers"]} <= set(reply.headers)
