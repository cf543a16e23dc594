"""FastAPI: request validation, body parsing, HTTPException, dependencies and routers."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel
from starlette.testclient import TestClient

from restfault import NotFoundException, UnauthorizedException
from restfault.starlette import RestFault
from tests.harness import error_records

SECRET = "s3cr3t-input-value"


class Item(BaseModel):
    name: str
    qty: int


class Order(BaseModel):
    customer: str
    items: list[Item]
    tags: dict[str, int] = {}


def current_user() -> str:
    raise UnauthorizedException(code="TOKEN_EXPIRED")


def build(**options: Any) -> tuple[FastAPI, TestClient]:
    app = FastAPI()

    @app.post("/orders")
    async def create_order(order: Order) -> dict[str, Any]:
        return {"items": len(order.items)}

    @app.get("/search")
    async def search(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        if thing_id == 7:
            raise HTTPException(401, "Token expired", headers={"WWW-Authenticate": "Bearer"})
        raise NotFoundException(f"Thing {thing_id} not found", code="RECORD_NOT_FOUND")

    @app.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        return {"user": user}  # pragma: no cover

    @app.get("/upstream")
    async def upstream() -> dict[str, Any]:
        import json

        return json.loads("{not json from upstream")  # type: ignore[no-any-return]

    @app.get("/bad-response", response_model=Item)
    async def bad_response() -> Any:
        return {"name": SECRET, "qty": "not a number"}

    router = APIRouter(prefix="/v2")

    @router.get("/gone")
    async def gone() -> None:
        raise HTTPException(410)

    app.include_router(router)
    RestFault(app, **options)
    return app, TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client() -> TestClient:
    return build(style="bkend")[1]


def test_validation_error_lists_fields_with_indices(client: TestClient) -> None:
    order = {
        "customer": SECRET,
        "items": [{"name": "ok", "qty": 1}, {"name": "bad", "qty": SECRET}, {"qty": 3}],
        "tags": {"a": SECRET},
    }

    reply = client.post("/orders", json=order)

    assert reply.status_code == 400
    document = reply.json()
    assert document["error"] == "VALIDATION_ERROR"
    assert document["message"] == "Request validation failed"
    errors = document["context"]["errors"]
    assert [(error["loc"], error["type"]) for error in errors] == [
        (["body", "items", 1, "qty"], "int_parsing"),
        (["body", "items", 2, "name"], "missing"),
        (["body", "tags", "a"], "int_parsing"),
    ]
    for error in errors:
        assert set(error) == {"loc", "type", "message"}  # never the client's "input"
    assert SECRET not in reply.text


def test_missing_body_and_query_errors(client: TestClient) -> None:
    reply = client.post("/orders")
    assert reply.status_code == 400
    assert reply.json()["error"] == "VALIDATION_ERROR"
    assert reply.json()["context"]["errors"][0]["loc"] == ["body"]

    reply = client.get("/search", params={"limit": SECRET})
    assert reply.status_code == 400
    assert reply.json()["context"]["errors"][0]["loc"] == ["query", "limit"]
    assert SECRET not in reply.text

    reply = client.get("/search", params={"limit": 1000})
    assert reply.status_code == 400
    assert reply.json()["context"]["errors"][0]["type"] == "less_than_equal"
    assert "1000" not in reply.text

    reply = client.get("/things/not-an-int")
    assert reply.status_code == 400
    assert reply.json()["context"]["errors"][0]["loc"] == ["path", "thing_id"]


@pytest.mark.parametrize("style", ["dreamfactory", "problem"])
def test_validation_error_in_other_styles(style: str) -> None:
    _, client = build(style=style)
    reply = client.post("/orders", json={"customer": "c", "items": [{"name": "x", "qty": "y"}]})
    assert reply.status_code == 400
    document = reply.json()
    if style == "dreamfactory":
        assert document["error"]["code"] == 400
        assert document["error"]["context"]["errors"][0]["loc"] == ["body", "items", 0, "qty"]
    else:
        assert document["code"] == "VALIDATION_ERROR"
        assert document["errors"][0]["loc"] == ["body", "items", 0, "qty"]
        assert reply.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        b'{"customer": "c", "items": [}',
        b"{'customer': 'c'}",
        b'{"customer": "\xff\xfe\xfd", "items": []}',
        b"[" * 20_000,
        b'{"customer":' * 20_000,
    ],
    ids=["syntax", "single-quotes", "invalid-utf8", "deep-open", "deep-objects"],
)
def test_invalid_json_body_is_400_invalid_json(
    client: TestClient, body: bytes, restfault_log: pytest.LogCaptureFixture
) -> None:
    reply = client.post("/orders", content=body, headers={"content-type": "application/json"})

    assert reply.status_code == 400
    assert reply.json()["error"] == "INVALID_JSON"
    assert reply.json()["message"].startswith("Invalid JSON")
    assert error_records(restfault_log) == []


def test_json_error_from_elsewhere_stays_500(client: TestClient) -> None:
    reply = client.get("/upstream")
    assert reply.status_code == 500
    assert reply.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}


def test_response_validation_error_is_a_plain_500(client: TestClient) -> None:
    reply = client.get("/bad-response")
    assert reply.status_code == 500
    assert reply.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}
    assert SECRET not in reply.text


def test_http_exception_and_rest_exception(client: TestClient) -> None:
    reply = client.get("/things/7")
    assert reply.status_code == 401
    assert reply.json() == {"error": "UNAUTHORIZED", "message": "Token expired"}
    assert reply.headers["www-authenticate"] == "Bearer"

    reply = client.get("/things/3")
    assert reply.status_code == 404
    assert reply.json() == {"error": "RECORD_NOT_FOUND", "message": "Thing 3 not found"}

    reply = client.get("/v2/gone")  # from an included APIRouter
    assert reply.status_code == 410
    assert reply.json() == {"error": "GONE", "message": "Gone"}


def test_dependency_raising(client: TestClient) -> None:
    reply = client.get("/me")
    assert reply.status_code == 401
    assert reply.json() == {"error": "TOKEN_EXPIRED", "message": "Unauthorized"}


def test_valid_requests_pass(client: TestClient) -> None:
    reply = client.post("/orders", json={"customer": "c", "items": [{"name": "x", "qty": 2}]})
    assert reply.status_code == 200
    assert reply.json() == {"items": 1}
    assert client.get("/search", params={"limit": 5}).json() == {"limit": 5}


@pytest.mark.parametrize(
    ("detail", "status", "expected"),
    [
        ({"field": "email", "problem": "taken"}, 409, {"field": "email", "problem": "taken"}),
        (["first", "second"], 400, ["first", "second"]),
    ],
)
def test_structured_http_exception_detail_is_the_context(
    detail: Any, status: int, expected: Any
) -> None:
    """FastAPI allows any JSON-able ``detail``: it reaches the client as JSON, never as a
    Python repr in the message."""
    app = FastAPI()

    @app.get("/detail")
    async def structured() -> None:
        raise HTTPException(status, detail=detail)

    RestFault(app, style="bkend")
    reply = TestClient(app).get("/detail")

    assert reply.status_code == status
    document = reply.json()
    assert document["context"] == expected
    assert "'" not in document["message"]


def test_included_routers_keep_their_limits_and_exemptions() -> None:
    app = FastAPI()
    rf = RestFault(app, style="bkend", default_limits="2/minute")
    inner = APIRouter(prefix="/inner")
    router = APIRouter(prefix="/r")

    @router.get("/limited")
    @rf.limit("1/minute", code="ROUTE_LIMIT")
    def limited() -> dict[str, bool]:
        return {"ok": True}

    @rf.exempt
    @inner.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    router.include_router(inner)
    app.include_router(router, prefix="/v1")
    client = TestClient(app)

    first, second = client.get("/v1/r/limited"), client.get("/v1/r/limited")
    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]) == (429, "ROUTE_LIMIT")
    # The exempt endpoint answers whatever the default budget (2/minute) says; the first
    # request spent one of it (the second was denied without counting, API.md §6).
    assert [client.get("/v1/r/inner/health").status_code for _ in range(4)] == [200] * 4
    assert [client.get("/docs").status_code for _ in range(2)] == [200, 429]
