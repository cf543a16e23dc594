"""Request ids (shared/EXAMPLES.md, API.md §4 ``request_id_header``): both apps send
``X-Request-ID`` on every response, reuse the client's when it is 1-128 visible ASCII
characters, and put it in every error envelope as ``request_id``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.examples.apps import LOGIN, TABLE, Api, Factory, needs_request_ids

pytestmark = [pytest.mark.slow, needs_request_ids]

MINTED = re.compile(r"[\x21-\x7e]{1,128}")
LIMITED = {"RESTFAULT_EMAIL_LIMITS": "1/minute"}


@pytest.mark.parametrize(
    ("method", "path", "key", "body", "status"),
    [
        ("GET", "/api/v2/health", None, None, 200),
        ("GET", TABLE, "pk_demo", None, 200),
        ("GET", "/api/v2/db/_table/Contacts", "pk_demo", None, 404),
        ("GET", TABLE, None, None, 401),
        ("POST", TABLE, "pk_demo", b"{", 400),
        ("PUT", TABLE, "pk_demo", None, 405),
        ("GET", "/nowhere", None, None, 404),
        ("POST", LOGIN, "pk_demo", b'{"email": "ada@example.com", "password": "x"}', 401),
        ("GET", "/api/v2/boom", "pk_demo", None, 500),
    ],
)
def test_every_response_carries_a_request_id(
    api: Api, method: str, path: str, key: str | None, body: bytes | None, status: int
) -> None:
    ids = set()
    for _ in range(2):
        response = api.request(method, path, key=key, content=body)
        assert response.status_code == status
        request_id = response.headers["x-request-id"]
        assert MINTED.fullmatch(request_id)
        if status >= 400:
            assert response.json()["request_id"] == request_id
        ids.add(request_id)
    assert len(ids) == 2  # minted afresh for each request


def test_a_429_carries_its_request_id(example: Factory) -> None:
    api = example(**LIMITED)
    message = {"to": "ada@example.com", "subject": "Hi"}
    headers = {"X-Request-ID": "email-429"}
    for status in (202, 429):
        response = api.post("/api/v2/email", key="pk_demo", json=message, headers=headers)
        assert response.status_code == status
        assert response.headers["x-request-id"] == "email-429"
    assert response.json()["request_id"] == "email-429"


@pytest.mark.parametrize(
    ("sent", "reused"),
    [
        ("4bf92f3577b34da6", True),
        ("a" * 128, True),
        ("!~{}[]:;<>", True),
        ("a" * 129, False),
        ("two words", False),
        ("", False),
        ("tab\tbed", False),
        ("caf\xe9", False),
    ],
)
def test_a_valid_request_id_is_reused(api: Api, sent: str, reused: bool) -> None:
    headers = {"X-Request-ID": sent.encode("latin-1")}
    response = api.get("/api/v2/db/_table/Contacts", key="pk_demo", headers=headers)
    request_id = response.headers["x-request-id"]
    assert (request_id == sent) is reused
    assert MINTED.fullmatch(request_id)
    assert response.json()["request_id"] == request_id


@pytest.mark.parametrize(
    ("style", "where"),
    [
        ("dreamfactory", lambda body: body["error"]["request_id"]),
        ("problem", lambda body: body["request_id"]),
    ],
)
def test_the_request_id_in_each_style(example: Factory, style: str, where: Any) -> None:
    api = example(RESTFAULT_STYLE=style)
    headers = {"X-Request-ID": f"style-{style}"}
    response = api.get("/api/v2/db/_table/Contacts", key="pk_demo", headers=headers)
    assert response.status_code == 404
    assert where(response.json()) == f"style-{style}"
