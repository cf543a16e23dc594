"""shared/EXAMPLES.md, over HTTP, against both example apps under their real servers.

Every test runs once per app (the ``app_name`` fixture); most use the bkend-style server
(``api``), where the string code sits in ``error``. Records a test writes carry an email
of its own, so the tests do not depend on each other's data.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import re
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.examples.apps import (
    APPS,
    LOGIN,
    PROFILE,
    REFRESH,
    TABLE,
    Api,
    Factory,
    envelope,
    error_of,
    example_server,
)
from tests.servers import Server, redis_server, running

pytestmark = pytest.mark.slow

ADA = {"id": 1, "name": "Ada", "email": "ada@example.com"}
GRACE = {"id": 2, "name": "Grace", "email": "grace@example.com"}

# Every endpoint but health, with a method it answers.
KEYED_ENDPOINTS = [
    ("GET", TABLE),
    ("POST", TABLE),
    ("GET", f"{TABLE}/1"),
    ("DELETE", f"{TABLE}/1"),
    ("GET", "/api/v2/system/role"),
    ("GET", "/api/v2/db/_proc/top_contacts"),
    ("POST", "/api/v2/email"),
    ("GET", "/api/v2/boom"),
    ("POST", LOGIN),
    ("GET", PROFILE),
    ("POST", REFRESH),
]


def email() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.com"


def stored(api: Api, address: str) -> list[dict[str, Any]]:
    response = api.get(TABLE, key="pk_demo", params={"filter": f"email={address}"})
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["resource"]
    return records


def post_batch(api: Api, records: list[Any], **params: str) -> httpx.Response:
    return api.post(TABLE, key="sk_demo", json={"resource": records}, params=params)


# -- keys ----------------------------------------------------------------------------------


def test_health_needs_no_key_and_is_exempt_from_limits(api: Api) -> None:
    response = api.get("/api/v2/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert not [name for name in response.headers if name.lower().startswith("x-ratelimit")]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "UNAUTHORIZED"),
        ({"X-API-Key": "letmein"}, 401, "INVALID_TOKEN"),
        ({"X-API-Key": "pk_unknown"}, 401, "INVALID_TOKEN"),
        ({"X-DreamFactory-API-Key": "sk_"}, 401, "INVALID_TOKEN"),
        ({"X-API-Key": "pk_revoked"}, 401, "TOKEN_REVOKED"),
        ({"X-DreamFactory-API-Key": "pk_revoked"}, 401, "TOKEN_REVOKED"),
        ({"X-API-Key": "pk_demo"}, 200, None),
        ({"X-DreamFactory-API-Key": "sk_demo"}, 200, None),
    ],
)
def test_keys(api: Api, headers: dict[str, str], status: int, code: str | None) -> None:
    response = api.get(TABLE, headers=headers)
    if code is None:
        assert response.status_code == status, response.text
    else:
        error_of(response, status, code)


@pytest.mark.parametrize(("method", "path"), KEYED_ENDPOINTS)
def test_every_endpoint_but_health_needs_a_key(api: Api, method: str, path: str) -> None:
    error_of(api.request(method, path, json={}), 401, "UNAUTHORIZED")


# -- tables, filters, records ---------------------------------------------------------------


def test_table_starts_with_the_two_seed_records(api: Api) -> None:
    response = api.get(TABLE, key="pk_demo")
    assert response.status_code == 200
    assert response.json()["resource"][:2] == [ADA, GRACE]


@pytest.mark.parametrize("table", ["Contacts", "CONTACTS", "posts", "sqlite_master"])
def test_unknown_tables_are_not_found_and_names_are_case_sensitive(api: Api, table: str) -> None:
    path = f"/api/v2/db/_table/{table}"
    body = error_of(api.get(path, key="sk_demo"), 404, "TABLE_NOT_FOUND")
    assert table in body["message"]
    error_of(api.get(f"{path}/1", key="sk_demo"), 404, "TABLE_NOT_FOUND")
    error_of(api.delete(f"{path}/1", key="sk_demo"), 404, "TABLE_NOT_FOUND")
    response = api.post(path, key="sk_demo", json={"resource": [{"name": "X", "email": email()}]})
    error_of(response, 404, "TABLE_NOT_FOUND")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email=ada@example.com", [ADA]),
        ("name=Grace", [GRACE]),
        ("id=2", [GRACE]),
        ("email=nobody@example.com", []),
        ("name=ada", []),  # values match exactly
    ],
)
def test_filter(api: Api, text: str, expected: list[dict[str, Any]]) -> None:
    response = api.get(TABLE, key="pk_demo", params={"filter": text})
    assert response.status_code == 200, response.text
    assert response.json() == {"resource": expected}


@pytest.mark.parametrize(
    "text", ["phone=1", "Email=ada@example.com", "email", "", "email>ada", "=ada", "1=1"]
)
def test_invalid_filter(api: Api, text: str) -> None:
    error_of(api.get(TABLE, key="pk_demo", params={"filter": text}), 400, "INVALID_FILTER")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("filter=email%3Dada%40example.com&filter=email%3Dada%40example.com", [ADA]),
        ("filter=email%3Dada%40example.com&filter=email%3Dgrace%40example.com", None),
        ("filter=email%3Dgrace%40example.com&filter=email%3Dada%40example.com", None),
        ("filter=email%3Dada%40example.com&filter=", None),
    ],
    ids=["same-twice", "ada-then-grace", "grace-then-ada", "then-empty"],
)
def test_a_repeated_filter_must_agree(
    api: Api, query: str, expected: list[dict[str, Any]] | None
) -> None:
    # Starlette would take the last value and Flask the first: both apps refuse instead.
    response = api.get(f"{TABLE}?{query}", key="pk_demo")
    if expected is not None:
        assert (response.status_code, response.json()) == (200, {"resource": expected})
        return
    body = error_of(response, 400, "INVALID_FILTER")
    assert body == {
        "error": "INVALID_FILTER",
        "message": "Query parameter 'filter' is repeated with different values; send it once",
        "context": {"parameter": "filter"},
    }


def test_get_record(api: Api) -> None:
    response = api.get(f"{TABLE}/1", key="pk_demo")
    assert response.status_code == 200
    assert response.json() == ADA


@pytest.mark.parametrize("record_id", ["999999", "0", "abc", "1.5", "99999999999999999999999"])
def test_record_not_found(api: Api, record_id: str) -> None:
    error_of(api.get(f"{TABLE}/{record_id}", key="pk_demo"), 404, "RECORD_NOT_FOUND")


def test_only_admin_keys_delete(api: Api) -> None:
    address = email()
    created = post_batch(api, [{"name": "Temp", "email": address}])
    assert created.status_code == 201, created.text
    record_id = created.json()["resource"][0]["id"]
    path = f"{TABLE}/{record_id}"

    error_of(api.delete(path, key="pk_demo"), 403, "PERMISSION_DENIED")
    assert stored(api, address) == [{"id": record_id, "name": "Temp", "email": address}]

    response = api.delete(path, key="sk_demo")
    assert response.status_code == 200
    assert response.json() == {"id": record_id}
    assert stored(api, address) == []
    error_of(api.get(path, key="sk_demo"), 404, "RECORD_NOT_FOUND")
    error_of(api.delete(path, key="sk_demo"), 404, "RECORD_NOT_FOUND")


def test_system_tables_need_an_admin_key(api: Api) -> None:
    error_of(api.get("/api/v2/system/role", key="pk_demo"), 403, "SYSTEM_TABLE_ACCESS")
    response = api.get("/api/v2/system/role", key="sk_demo")
    assert response.status_code == 200
    assert isinstance(response.json()["resource"], list)


# -- routing and server errors ------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/api/v2/nope", "/api/v2/health/", "/api//v2/health", f"{TABLE}/1/extra"]
)
def test_unknown_path(api: Api, path: str) -> None:
    body = error_of(api.get(path, key="sk_demo"), 404, "NOT_FOUND")
    assert body["message"] == "Not Found"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", TABLE, "GET, HEAD, POST"),
        ("PATCH", f"{TABLE}/1", "DELETE, GET, HEAD"),
        ("DELETE", "/api/v2/health", "GET, HEAD"),
        ("GET", "/api/v2/email", "POST"),
        ("OPTIONS", "/api/v2/boom", "GET, HEAD"),
    ],
)
def test_method_not_allowed(api: Api, method: str, path: str, allow: str) -> None:
    response = api.request(method, path, key="sk_demo")
    body = error_of(response, 405, "METHOD_NOT_ALLOWED")
    assert body["message"] == "Method Not Allowed"
    assert response.headers["allow"] == allow


def test_procedures_are_not_implemented(api: Api) -> None:
    error_of(api.get("/api/v2/db/_proc/top_contacts", key="pk_demo"), 501, "NOT_IMPLEMENTED")


def test_boom_hides_the_exception_without_debug(api: Api) -> None:
    response = api.get("/api/v2/boom", key="pk_demo")
    body = error_of(response, 500, "INTERNAL_SERVER_ERROR")
    assert body == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text


# -- request bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"{", b"", b"{'resource': []}", b"\xff\xfe", b"[1,]"])
@pytest.mark.parametrize("path", [TABLE, "/api/v2/email", LOGIN, REFRESH])
def test_invalid_json(api: Api, path: str, content: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    response = api.post(path, key="pk_demo", content=content, headers=headers)
    body = error_of(response, 400, "INVALID_JSON")
    assert body["message"].startswith("Invalid JSON")


def test_json_is_read_whatever_the_content_type(api: Api) -> None:
    content = json.dumps({"to": "ada@example.com", "subject": "hi"})
    response = api.post("/api/v2/email", key="pk_demo", content=content)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "document", [{}, [], "resource", {"resource": []}, {"resource": {}}, {"resource": "x"}]
)
def test_a_batch_needs_a_resource_list(api: Api, document: Any) -> None:
    body = error_of(api.post(TABLE, key="pk_demo", json=document), 400, "VALIDATION_ERROR")
    assert body["context"]["field"] == "resource"


def test_email_is_queued_and_validated(api: Api) -> None:
    response = api.post("/api/v2/email", key="pk_demo", json={"to": "a@b.c", "subject": "Hi"})
    assert response.status_code == 202
    assert response.json() == {"queued": True}
    response = api.post("/api/v2/email", key="pk_demo", json={"to": "a@b.c"})
    body = error_of(response, 400, "VALIDATION_ERROR")
    assert body["context"]["field"] == "subject"


# -- batches -------------------------------------------------------------------------------


def test_batch_all_succeed(api: Api) -> None:
    addresses = [email(), email()]
    response = post_batch(api, [{"name": "One", "email": a} for a in addresses])
    assert response.status_code == 201, response.text
    ids = [item["id"] for item in response.json()["resource"]]
    assert len(ids) == 2
    for record_id, address in zip(ids, addresses, strict=True):
        assert stored(api, address) == [{"id": record_id, "name": "One", "email": address}]


def test_batch_halts_at_the_first_failure_by_default(api: Api) -> None:
    first, third = email(), email()
    records = [
        {"name": "First", "email": first},
        {"name": "Dup", "email": "ada@example.com"},
        {"name": "Third", "email": third},
    ]
    body = error_of(post_batch(api, records), 400, "BATCH_ERROR")
    errors = body["context"]["errors"]
    assert [(e["index"], e["status"], e["code"]) for e in errors] == [(1, 409, "UNIQUE_CONSTRAINT")]
    kept = stored(api, first)
    assert len(kept) == 1
    assert body["context"]["resource"] == [{"id": kept[0]["id"]}, None]
    assert stored(api, third) == []


def test_batch_continue_keeps_every_good_record(api: Api) -> None:
    first, again, last = email(), email(), email()
    records = [
        {"name": "First", "email": first},
        {"email": email()},
        {"name": "Again", "email": first},  # a duplicate of a record earlier in the batch
        {"name": 7, "email": again},
        {"name": "Last", "email": last},
    ]
    body = error_of(post_batch(api, records, **{"continue": "true"}), 400, "BATCH_ERROR")
    errors = body["context"]["errors"]
    assert [(e["index"], e["status"], e["code"]) for e in errors] == [
        (1, 400, "VALIDATION_ERROR"),
        (2, 409, "UNIQUE_CONSTRAINT"),
        (3, 400, "VALIDATION_ERROR"),
    ]
    assert errors[0]["context"]["field"] == "name"
    assert errors[2]["context"]["field"] == "name"
    resource = body["context"]["resource"]
    assert resource[1:4] == [None, None, None]
    assert [resource[0], resource[4]] == [{"id": stored(api, a)[0]["id"]} for a in (first, last)]
    assert stored(api, again) == []


def test_batch_rollback_keeps_nothing(api: Api) -> None:
    first, second = email(), email()
    records = [
        {"name": "First", "email": first},
        {"name": "Second", "email": second},
        {"name": "Dup", "email": "grace@example.com"},
    ]
    body = error_of(post_batch(api, records, rollback="true"), 400, "BATCH_ERROR")
    context = body["context"]
    assert [(e["index"], e["code"]) for e in context["errors"]] == [(2, "UNIQUE_CONSTRAINT")]
    assert context["rolled_back"] is True
    assert "resource" not in context
    assert stored(api, first) == []
    assert stored(api, second) == []


def test_batch_rollback_commits_when_all_succeed(api: Api) -> None:
    address = email()
    response = post_batch(api, [{"name": "Kept", "email": address}], rollback="1")
    assert response.status_code == 201
    assert len(stored(api, address)) == 1


def test_continue_and_rollback_together_is_a_bad_request(api: Api) -> None:
    address = email()
    records = [{"name": "X", "email": address}]
    response = post_batch(api, records, **{"continue": "true", "rollback": "true"})
    body = error_of(response, 400, "BAD_REQUEST")
    assert "continue" in body["message"]
    assert "rollback" in body["message"]
    assert stored(api, address) == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("rollback=true&rollback=false", "rollback"),
        ("rollback=false&rollback=true", "rollback"),
        ("continue=true&continue=false", "continue"),
        ("continue=1&rollback=0&rollback=1", "rollback"),
    ],
)
def test_a_repeated_batch_flag_must_agree(api: Api, query: str, parameter: str) -> None:
    # Starlette would take the last value and Flask the first, so one app would keep the
    # good record and the other roll it back: both refuse the batch instead.
    address = email()
    records = [{"name": "Kept?", "email": address}, {"name": "No email"}]
    response = api.post(f"{TABLE}?{query}", key="sk_demo", json={"resource": records})
    body = error_of(response, 400, "BAD_REQUEST")
    assert body == {
        "error": "BAD_REQUEST",
        "message": f"Query parameter '{parameter}' is repeated with different values; send it once",
        "context": {"parameter": parameter},
    }
    assert stored(api, address) == []


def test_a_repeated_batch_flag_that_agrees_is_one_flag(api: Api) -> None:
    address = email()
    records = [{"name": "Rolled back", "email": address}, {"name": "No email"}]
    response = api.post(
        f"{TABLE}?rollback=true&rollback=1", key="sk_demo", json={"resource": records}
    )
    body = error_of(response, 400, "BATCH_ERROR")
    assert body["context"]["rolled_back"] is True
    assert stored(api, address) == []


@pytest.mark.parametrize("params", [{}, {"continue": "true"}, {"rollback": "true"}])
def test_a_single_record_batch_answers_with_its_own_error(api: Api, params: dict[str, str]) -> None:
    response = post_batch(api, [{"name": "Ada again", "email": "ada@example.com"}], **params)
    body = error_of(response, 409, "UNIQUE_CONSTRAINT")
    assert "email" in body["message"]
    response = post_batch(api, [{"name": "No email"}], **params)
    body = error_of(response, 400, "VALIDATION_ERROR")
    assert body["context"] == {"field": "email", "error": body["context"]["error"]}


# -- styles and debug -----------------------------------------------------------------------

# Every setting at its default (the dreamfactory style, 120/minute, 3/minute), but debug on.
DEFAULTS = {
    "RESTFAULT_STYLE": "",
    "RESTFAULT_DEFAULT_LIMITS": "",
    "RESTFAULT_EMAIL_LIMITS": "",
    "RESTFAULT_DEBUG": "1",
}


def test_dreamfactory_style_is_the_default(example: Factory) -> None:
    api = example(**DEFAULTS)
    response = api.get("/api/v2/db/_table/Contacts", key="pk_demo")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert envelope(response) == {"error": {"code": 404, "message": "Table 'Contacts' not found"}}

    records = [{"name": "Dup", "email": "ada@example.com"}, {"name": "X"}]
    response = post_batch(api, records, **{"continue": "true"})
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (400, 400)
    assert error["message"] == "Batch operation error"
    assert [e["index"] for e in error["context"]["errors"]] == [0, 1]
    assert error["context"]["resource"] == [None, None]


def test_problem_style(example: Factory) -> None:
    api = example(RESTFAULT_STYLE="problem")
    response = api.get("/api/v2/db/_table/Contacts", key="pk_demo")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert envelope(response) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Table 'Contacts' not found",
        "code": "TABLE_NOT_FOUND",
    }
    records = [{"name": "A", "email": email()}, {"name": "Dup", "email": "ada@example.com"}]
    response = post_batch(api, records, rollback="true")
    problem = response.json()
    assert (response.status_code, problem["status"], problem["code"]) == (400, 400, "BATCH_ERROR")
    assert [e["index"] for e in problem["errors"]] == [1]  # an extension member
    assert problem["rolled_back"] is True

    response = api.get("/api/v2/boom", key="pk_demo")
    assert response.status_code == 500
    assert response.json()["code"] == "INTERNAL_SERVER_ERROR"
    assert "hunter2" not in response.text


def test_debug_shows_the_exception(example: Factory) -> None:
    api = example(**DEFAULTS)
    response = api.get("/api/v2/boom", key="pk_demo")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == 500
    assert error["message"] == "Internal Server Error"
    debug = error["context"]["debug"]
    assert debug["type"] == "builtins.RuntimeError"
    assert debug["message"] == "database password is hunter2"
    assert debug["traceback"]


def test_default_limits_apply_unless_configured(example: Factory) -> None:
    api = example(**DEFAULTS)
    response = api.get(TABLE, key="pk_demo")
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit"] == "120"
    assert "retry-after" not in response.headers


# -- rate limits ----------------------------------------------------------------------------

LIMITED = {"RESTFAULT_DEFAULT_LIMITS": "6/minute", "RESTFAULT_EMAIL_LIMITS": ""}


def retry_after(response: httpx.Response) -> int:
    value = int(response.headers["retry-after"])
    assert 1 <= value <= 60
    return value


def test_email_limit_has_its_own_code(example: Factory) -> None:
    api = example(**LIMITED)
    message = {"to": "ada@example.com", "subject": "Hi"}
    for remaining in (2, 1, 0):  # RESTFAULT_EMAIL_LIMITS defaults to 3/minute
        response = api.post("/api/v2/email", key="sk_demo", json=message)
        assert response.status_code == 202, response.text
        assert response.headers["x-ratelimit-remaining"] == str(remaining)
    response = api.post("/api/v2/email", key="sk_demo", json=message)
    error_of(response, 429, "EMAIL_RATE_LIMIT")
    retry_after(response)
    assert response.headers["x-ratelimit-limit"] == "3"
    assert response.headers["x-ratelimit-remaining"] == "0"


def test_default_limits_per_key_then_per_address(example: Factory) -> None:
    api = example(**LIMITED)
    for _ in range(6):
        assert api.get(TABLE, key="pk_demo").status_code == 200
    response = api.get(TABLE, key="pk_demo")
    error_of(response, 429, "RATE_LIMIT_EXCEEDED")
    retry_after(response)
    assert response.headers["x-ratelimit-remaining"] == "0"

    # Requests without a valid key share the client address's budget, checked before the key.
    for headers in [{}, {"X-API-Key": "nope"}, {"X-API-Key": "pk_revoked"}] * 2:
        response = api.get(TABLE, headers=headers)
        assert response.status_code == 401, response.text
    for headers in [{}, {"X-API-Key": "pk_revoked"}, {"X-DreamFactory-API-Key": "sk_x"}]:
        error_of(api.get(TABLE, headers=headers), 429, "RATE_LIMIT_EXCEEDED")

    # sk_demo has a budget of its own; health is exempt.
    assert api.get(TABLE, key="sk_demo").status_code == 200
    assert api.get("/api/v2/health").status_code == 200


# -- the two frameworks agree ----------------------------------------------------------------

SAME_ANSWERS = [
    ("GET", "/api/v2/health", None, None),
    ("GET", "/api/v2/openapi.json", None, None),
    ("GET", f"{TABLE}?filter=email=ada@example.com", "pk_demo", None),
    ("GET", f"{TABLE}?filter=bogus", "pk_demo", None),
    ("GET", f"{TABLE}/2", "pk_demo", None),
    ("GET", f"{TABLE}/77", "pk_demo", None),
    ("GET", "/api/v2/db/_table/Contacts", "pk_demo", None),
    ("DELETE", f"{TABLE}/1", "pk_demo", None),
    ("GET", "/api/v2/system/table", "sk_demo", None),
    ("GET", "/api/v2/system/table", "pk_demo", None),
    ("GET", "/api/v2/db/_proc/x", "pk_demo", None),
    ("GET", "/api/v2/boom", "pk_demo", None),
    ("GET", "/api/v2/boom", "pk_revoked", None),
    ("GET", "/api/v2/boom", None, None),
    ("GET", "/nowhere", None, None),
    ("GET", "/api/v2/db/nowhere", "pk_demo", None),
    ("PUT", TABLE, "pk_demo", None),
    ("POST", TABLE, "pk_demo", b"{not json"),
    ("POST", TABLE, "pk_demo", b'{"resource": []}'),
    ("POST", TABLE, "pk_demo", b'{"resource": [{"name": "A", "email": "ada@example.com"}]}'),
    ("POST", f"{TABLE}?rollback=true", "pk_demo", b'{"resource": [{"name": "A"}, {"x": 1}]}'),
    ("POST", f"{TABLE}?rollback=1&continue=1", "pk_demo", b'{"resource": [{}]}'),
    ("POST", f"{TABLE}?rollback=true&rollback=false", "pk_demo", b'{"resource": [{}]}'),
    ("GET", f"{TABLE}?filter=id=1&filter=id=2", "pk_demo", None),
    ("POST", "/api/v2/email", "pk_demo", b'{"to": 5}'),
    ("POST", LOGIN, "pk_demo", b'{"email": "ada@example.com", "password": "hopper"}'),
    ("POST", LOGIN, "pk_demo", b'{"email": "nobody@example.com", "password": "x"}'),
    ("POST", LOGIN, "pk_demo", b'{"email": "ada@example.com"}'),
    ("POST", LOGIN, "pk_demo", b'{"email": "ada@example.com", "password": "\\ud800"}'),
    ("POST", LOGIN, "pk_demo", b"{not json"),
    ("POST", LOGIN, None, b"{}"),
    ("GET", LOGIN, "pk_demo", None),
    ("GET", PROFILE, "pk_demo", None),
    ("GET", PROFILE, None, None),
    ("POST", REFRESH, "pk_demo", b'{"refreshToken": "nope"}'),
    ("POST", REFRESH, "pk_demo", b'{"refresh_token": "nope"}'),
    ("POST", REFRESH, "pk_demo", b"[]"),
    ("DELETE", REFRESH, "pk_demo", None),
]
# Flask ends its JSON with a newline (content-length); the budgets left depend on the tests
# run; the tokens are random.
VARYING_HEADERS = {
    "date",
    "server",
    "connection",
    "content-length",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
}
RANDOM = ("session_token", "refresh_token", "accessToken", "request_id", "x-request-id")


def answer_of(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """What must be alike: status, JSON body and stable headers, random values masked (the
    tokens; request ids minted for a request that sent none)."""

    def masked(items: Any) -> dict[str, Any]:
        return {k: "<random>" if k in RANDOM and isinstance(v, str) else v for k, v in items}

    body = response.json()
    if isinstance(body, dict):
        body = masked(body.items())
    headers = masked((k, v) for k, v in response.headers.items() if k not in VARYING_HEADERS)
    return response.status_code, body, headers


def test_both_apps_give_the_same_answers(example_servers: Any) -> None:
    starlette, flask = (example_servers(app) for app in APPS)
    for number, (method, path, key, content) in enumerate(SAME_ANSWERS):
        headers = {"X-Request-ID": f"same-answers-{number}"}
        responses = [
            api.request(method, path, key=key, content=content, headers=headers)
            for api in (starlette, flask)
        ]
        answers = [answer_of(response) for response in responses]
        assert answers[0] == answers[1], (method, path)
        # a request id the client sent comes back alike (or not at all, before issue 14)
        echoed = {response.headers.get("x-request-id") for response in responses}
        assert echoed in ({None}, {f"same-answers-{number}"}), echoed


@pytest.mark.parametrize(
    "env",
    [{}, {"EXAMPLE_SESSION_TTL": "0"}, {"EXAMPLE_REFRESH_TTL": "0"}],
    ids=["lasting", "session-expired", "refresh-expired"],
)
def test_both_apps_walk_a_session_alike(example_servers: Any, env: dict[str, str]) -> None:
    walks = []
    for app in APPS:
        api = example_servers(app, **env)
        tokens = api.login()
        session, refresh = tokens["session_token"], tokens["refresh_token"]
        steps = [
            api.get(PROFILE, key="pk_demo", headers={"Authorization": f"Bearer {session}"}),
            api.get(PROFILE, key="pk_demo", token=refresh),
            api.post(REFRESH, key="pk_demo", json={"refreshToken": refresh}),
            api.post(REFRESH, key="pk_demo", json={"refreshToken": session}),
        ]
        if steps[2].status_code == 200:
            steps.append(api.get(PROFILE, key="pk_demo", token=steps[2].json()["accessToken"]))
        walks.append([answer_of(response) for response in steps])
    assert walks[0] == walks[1]


# -- several workers sharing redis and one database -------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("app", APPS)
def test_workers_share_the_default_limit_and_the_database(app: str, tmp_path: Path) -> None:
    with running(redis_server()) as redis:
        env = {
            "RESTFAULT_STORAGE_URI": f"redis://127.0.0.1:{redis.port}",
            "RESTFAULT_DEFAULT_LIMITS": "10/minute",
            "RESTFAULT_STYLE": "bkend",
            "EXAMPLE_DB": str(tmp_path / "shared.sqlite3"),
        }
        workers = 2 if app == "starlette" else 3
        server = example_server(app, env, workers=workers)
        if app == "flask":
            # Each worker process serves at most 4 requests and is then replaced, so the 13
            # requests below meet at least 4 processes, each with memory of its own: only
            # Redis and SQLite can carry the count and the record from one to the next.
            # The access log names each request's process.
            server.argv += ["--max-requests", "4", "--access-logfile", "-"]
            server.argv += ["--access-logformat", "pid=%(p)s %(m)s %(U)s %(s)s"]
        with running(server, timeout=30):
            url = f"http://127.0.0.1:{server.port}"
            address = email()

            def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
                # A connection of its own each time, so that every worker gets requests.
                headers = {"X-API-Key": "pk_demo", "Connection": "close"}
                return httpx.request(method, url + path, headers=headers, timeout=10, **kwargs)

            created = call("POST", TABLE, json={"resource": [{"name": "W", "email": address}]})
            assert created.status_code == 201, created.text
            with ThreadPoolExecutor(max_workers=6) as pool:
                responses = list(
                    pool.map(
                        lambda _: call("GET", TABLE, params={"filter": f"email={address}"}),
                        range(12),
                    )
                )
            ok = [r for r in responses if r.status_code == 200]
            limited = [r for r in responses if r.status_code == 429]
            assert (len(ok), len(limited)) == (9, 3), [r.status_code for r in responses]
            assert all(len(r.json()["resource"]) == 1 for r in ok)  # every worker sees it
            for response in limited:
                assert response.json()["error"] == "RATE_LIMIT_EXCEEDED"
                retry_after(response)
            if app == "flask":
                assert len(set(worker_pids(server, TABLE, 13))) >= 4, server.output()


def worker_pids(server: Server, path: str, count: int) -> list[str]:
    """The pids in the access log of the first ``count`` requests to ``path``. A worker
    writes its line after the response has gone, so this waits (a bounded time) for them."""
    deadline = time.monotonic() + 10
    while True:
        served = re.findall(r"pid=<?(\d+)>? \w+ (\S+)", server.output())
        pids = [pid for pid, logged in served if logged == path]
        if len(pids) >= count or time.monotonic() > deadline:
            return pids[:count]
        time.sleep(0.05)


# -- EXAMPLE_DB ------------------------------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
def test_example_db_is_created_and_seeded_only_when_missing(
    app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module(f"examples.{app}_app.app")
    path = tmp_path / "example.sqlite3"
    monkeypatch.setenv("EXAMPLE_DB", str(path))
    module.create_app()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("SELECT id, name, email FROM contacts").fetchall() == [
            tuple(ADA.values()),
            tuple(GRACE.values()),
        ]
        conn.execute("DELETE FROM contacts WHERE id = 2")
    module.create_app()  # the file exists: used as it is, not seeded again
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT id FROM contacts").fetchall() == [(1,)]


@pytest.mark.parametrize("app", APPS)
def test_passwords_and_tokens_are_stored_as_hashes(
    app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    module = importlib.import_module(f"examples.{app}_app.app")
    path = tmp_path / "example.sqlite3"
    monkeypatch.setenv("EXAMPLE_DB", str(path))
    created = module.create_app()
    login = {"email": "ada@example.com", "password": "lovelace"}
    headers = {"X-API-Key": "pk_demo"}
    if app == "starlette":
        tokens = TestClient(created).post(LOGIN, json=login, headers=headers).json()
    else:
        tokens = created.test_client().post(LOGIN, json=login, headers=headers).get_json()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        users = dict(conn.execute("SELECT email, password FROM users").fetchall())
        stored_tokens = conn.execute("SELECT digest, kind FROM tokens").fetchall()
    assert set(users) == {"ada@example.com", "grace@example.com"}
    for stored, password in zip(users.values(), ("lovelace", "hopper"), strict=True):
        assert password not in stored
        *cost, salt, digest = stored.split("$")
        assert cost == ["scrypt", "16384", "8", "1"]
        assert (len(bytes.fromhex(salt)), len(bytes.fromhex(digest))) == (16, 64)
    assert len({stored.split("$")[4] for stored in users.values()}) == 2  # salted
    assert sorted(stored_tokens, key=lambda row: row[1]) == [
        (hashlib.sha256(tokens["refresh_token"].encode()).hexdigest(), "refresh"),
        (hashlib.sha256(tokens["session_token"].encode()).hexdigest(), "session"),
    ]


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize(
    ("name", "value"),
    [("EXAMPLE_SESSION_TTL", "15m"), ("EXAMPLE_REFRESH_TTL", "-1"), ("EXAMPLE_SESSION_TTL", "1.5")],
)
def test_a_lifetime_is_a_whole_number_of_seconds(
    app: str, name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module(f"examples.{app}_app.app")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name}='{re.escape(value)}' must be a whole number"):
        module.create_app()
