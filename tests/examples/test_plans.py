"""Limits per plan and per service (shared/EXAMPLES.md, "Keys" and the settings): the
default limits follow the key's plan (``RESTFAULT_ADMIN_LIMITS`` for a valid secret key),
and every ``/api/v2/db/`` request of a client key shares one budget
(``RESTFAULT_DB_LIMITS``), over both apps under their real servers.
"""

from __future__ import annotations

import pytest

from tests.examples.apps import TABLE, Factory, error_of

pytestmark = pytest.mark.slow

PLANS = {"RESTFAULT_DEFAULT_LIMITS": "3/minute", "RESTFAULT_ADMIN_LIMITS": "5/minute"}


@pytest.mark.parametrize(
    ("headers", "allowed", "status"),
    [
        ({"X-API-Key": "sk_demo"}, 5, 200),  # a valid secret key: the admin plan
        ({"X-DreamFactory-API-Key": "pk_demo"}, 3, 403),  # a publishable key: the default
        ({"X-API-Key": "sk_revoked"}, 3, 401),  # no valid key: the default, per address
    ],
    ids=["secret-key", "publishable-key", "no-valid-key"],
)
def test_default_limits_follow_the_plan(
    example: Factory, headers: dict[str, str], allowed: int, status: int
) -> None:
    api = example(**PLANS)
    path = "/api/v2/system/role"  # outside /api/v2/db/: the plan's limit alone
    for remaining in reversed(range(allowed)):
        response = api.get(path, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["x-ratelimit-limit"] == str(allowed)
        assert response.headers["x-ratelimit-remaining"] == str(remaining)
    response = api.get(path, headers=headers)
    error_of(response, 429, "RATE_LIMIT_EXCEEDED")
    assert response.headers["x-ratelimit-limit"] == str(allowed)


SERVICE = {"RESTFAULT_DB_LIMITS": "4/minute"}


def test_db_requests_share_one_budget_per_key(example: Factory) -> None:
    api = example(**SERVICE)
    requests = [
        ("GET", TABLE, 200),
        ("GET", f"{TABLE}/1", 200),
        ("GET", "/api/v2/db/_table/Contacts", 404),
        ("GET", "/api/v2/db/_proc/top_contacts", 501),
    ]
    for remaining, (method, path, status) in zip((3, 2, 1, 0), requests, strict=True):
        response = api.request(method, path, key="sk_demo")
        assert response.status_code == status, response.text
        assert response.headers["x-ratelimit-limit"] == "4"
        assert response.headers["x-ratelimit-remaining"] == str(remaining)
    # Spent for every /api/v2/db/ request of that key, routed or not...
    for method, path in [("GET", TABLE), ("POST", TABLE), ("GET", "/api/v2/db/nowhere")]:
        response = api.request(method, path, key="sk_demo", json={"resource": [{}]})
        error_of(response, 429, "RATE_LIMIT_EXCEEDED")
        assert 1 <= int(response.headers["retry-after"]) <= 60
    # ...and for no other path, nor any other key.
    response = api.get("/api/v2/system/role", key="sk_demo")
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit"] == "10000"
    response = api.get(TABLE, key="pk_demo")
    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining"] == "3"
