"""Users and sessions (shared/EXAMPLES.md): login, profile, refresh, token lifetimes and
failed-login limits, over both apps under their real servers.

Lifetimes are driven by ``EXAMPLE_SESSION_TTL``/``EXAMPLE_REFRESH_TTL`` of 0 (a token
expired as soon as it is issued) rather than by sleeping; two servers with different
lifetimes sharing one ``EXAMPLE_DB`` show that each token keeps the expiry it was issued
with, whichever process reads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
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
    error_of,
    example_server,
)
from tests.servers import redis_server, running

pytestmark = pytest.mark.slow


def fill(value: Any, tokens: dict[str, Any]) -> Any:
    """``value`` with ``"{session}"`` and ``"{refresh}"`` replaced by a login's tokens."""
    names = {"session": tokens["session_token"], "refresh": tokens["refresh_token"]}
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: fill(v, tokens) for k, v in value.items()}
    return value


def profile(api: Api, token: str, key: str = "pk_demo") -> httpx.Response:
    return api.get(PROFILE, key=key, headers={"Authorization": f"Bearer {token}"})


def refresh(api: Api, token: str) -> httpx.Response:
    return api.post(REFRESH, key="pk_demo", json={"refreshToken": token})


# -- login -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "password", "name"),
    [("ada@example.com", "lovelace", "Ada"), ("grace@example.com", "hopper", "Grace")],
)
def test_login_answers_a_session(api: Api, email: str, password: str, name: str) -> None:
    tokens = api.login(email, password)
    assert set(tokens) == {"session_token", "refresh_token", "expires_in"}
    assert tokens["expires_in"] == 900
    for token in (tokens["session_token"], tokens["refresh_token"]):
        assert isinstance(token, str)
        assert len(token) >= 32
    assert tokens["session_token"] != tokens["refresh_token"]
    assert api.login(email, password)["session_token"] != tokens["session_token"]
    response = profile(api, tokens["session_token"])
    assert (response.status_code, response.json()) == (200, {"email": email, "name": name})


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"email": "ada@example.com", "password": "hopper"}, 401, "UNAUTHORIZED", None),
        ({"email": "grace@example.com", "password": "lovelace"}, 401, "UNAUTHORIZED", None),
        ({"email": "nobody@example.com", "password": "lovelace"}, 401, "UNAUTHORIZED", None),
        ({"email": "ada@example.com", "password": ""}, 401, "UNAUTHORIZED", None),
        ({"email": "ada@example.com", "password": "lovelace "}, 401, "UNAUTHORIZED", None),
        ({"email": "ada@example.com"}, 400, "VALIDATION_ERROR", "password"),
        ({"password": "lovelace"}, 400, "VALIDATION_ERROR", "email"),
        ({"email": "ada@example.com", "password": 1815}, 400, "VALIDATION_ERROR", "password"),
        ({"email": None, "password": "lovelace"}, 400, "VALIDATION_ERROR", "email"),
        ({"email": ["ada@example.com"], "password": "x"}, 400, "VALIDATION_ERROR", "email"),
        ({"email": "ada@example.com", "password": "\ud800"}, 400, "VALIDATION_ERROR", "password"),
        (["ada@example.com", "lovelace"], 400, "VALIDATION_ERROR", "email"),
        ("ada@example.com", 400, "VALIDATION_ERROR", "email"),
    ],
)
def test_login_refused(api: Api, body: Any, status: int, code: str, field: str | None) -> None:
    response = api.post(LOGIN, key="pk_demo", content=json.dumps(body))  # ASCII: "\ud800"
    answer = error_of(response, status, code)
    if field is None:
        assert answer["message"] == "Invalid credentials"
        assert "context" not in answer
    else:
        assert answer["context"]["field"] == field


# -- profile ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-DreamFactory-Session-Token": "{session}"},
        {"Authorization": "Bearer {session}"},
        {"Authorization": "bearer {session}"},
        {"X-DreamFactory-Session-Token": "{session}", "Authorization": "Bearer nope"},
    ],
    ids=["session-header", "bearer", "bearer-lower-case", "session-header-first"],
)
def test_profile(api: Api, headers: dict[str, str]) -> None:
    response = api.get(PROFILE, key="pk_demo", headers=fill(headers, api.login()))
    assert (response.status_code, response.json()) == (
        200,
        {"email": "ada@example.com", "name": "Ada"},
    )


@pytest.mark.parametrize(
    ("key", "headers", "code"),
    [
        ("pk_demo", {}, "UNAUTHORIZED"),
        ("pk_demo", {"Authorization": "Basic YWRhOmxvdmVsYWNl"}, "UNAUTHORIZED"),
        ("pk_demo", {"Authorization": "Bearer"}, "UNAUTHORIZED"),
        ("pk_demo", {"X-DreamFactory-Session-Token": ""}, "UNAUTHORIZED"),
        ("pk_demo", {"Authorization": "Bearer nope"}, "INVALID_TOKEN"),
        ("pk_demo", {"X-DreamFactory-Session-Token": "nope"}, "INVALID_TOKEN"),
        ("pk_demo", {"Authorization": "Bearer {session}x"}, "INVALID_TOKEN"),
        # a refresh token is no session token
        ("pk_demo", {"X-DreamFactory-Session-Token": "{refresh}"}, "INVALID_TOKEN"),
        # a session token identifies a user, never replaces the key
        (None, {"Authorization": "Bearer {session}"}, "UNAUTHORIZED"),
        ("pk_revoked", {"Authorization": "Bearer {session}"}, "TOKEN_REVOKED"),
        ("pk_nope", {"Authorization": "Bearer {session}"}, "INVALID_TOKEN"),
    ],
)
def test_profile_refused(api: Api, key: str | None, headers: dict[str, str], code: str) -> None:
    tokens = api.login()
    answer = error_of(api.get(PROFILE, key=key, headers=fill(headers, tokens)), 401, code)
    assert tokens["session_token"] not in answer["message"]


# -- refresh ---------------------------------------------------------------------------------


def test_refresh_issues_a_new_session_token(api: Api) -> None:
    tokens = api.login("grace@example.com", "hopper")
    response = refresh(api, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"accessToken", "expires_in"}
    assert answer["expires_in"] == 900
    assert answer["accessToken"] not in (tokens["session_token"], tokens["refresh_token"])
    grace = {"email": "grace@example.com", "name": "Grace"}
    # the new token works, the earlier one still does, and the refresh token stays usable
    for token in (answer["accessToken"], tokens["session_token"]):
        assert profile(api, token).json() == grace
    again = refresh(api, tokens["refresh_token"])
    assert again.status_code == 200
    assert again.json()["accessToken"] != answer["accessToken"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "VALIDATION_ERROR"),
        ({"refreshToken": None}, 400, "VALIDATION_ERROR"),
        ({"refreshToken": 5}, 400, "VALIDATION_ERROR"),
        ({"refreshToken": ["{refresh}"]}, 400, "VALIDATION_ERROR"),
        ({"refresh_token": "{refresh}"}, 400, "VALIDATION_ERROR"),  # bkend's name: refreshToken
        (["{refresh}"], 400, "VALIDATION_ERROR"),
        ({"refreshToken": "nope"}, 401, "INVALID_TOKEN"),
        ({"refreshToken": ""}, 401, "INVALID_TOKEN"),
        ({"refreshToken": "\ud800"}, 401, "INVALID_TOKEN"),
        ({"refreshToken": "{session}"}, 401, "INVALID_TOKEN"),  # a session token is not one
    ],
)
def test_refresh_refused(api: Api, body: Any, status: int, code: str) -> None:
    response = api.post(REFRESH, key="pk_demo", content=json.dumps(fill(body, api.login())))
    answer = error_of(response, status, code)
    if status == 400:
        assert answer["context"]["field"] == "refreshToken"


# -- lifetimes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("sessions") / "shared.sqlite3")


def test_tokens_keep_the_expiry_they_were_issued_with(example: Factory, shared_db: str) -> None:
    brief = example(EXAMPLE_DB=shared_db, EXAMPLE_SESSION_TTL="0", EXAMPLE_REFRESH_TTL="0")
    lasting = example(EXAMPLE_DB=shared_db)
    ada = {"email": "ada@example.com", "name": "Ada"}

    expired = brief.login()
    assert expired["expires_in"] == 0
    kept = lasting.login()
    for api in (brief, lasting):
        body = error_of(profile(api, expired["session_token"]), 401, "TOKEN_EXPIRED")
        assert "refresh" in body["message"]
        error_of(refresh(api, expired["refresh_token"]), 401, "TOKEN_EXPIRED")
        assert profile(api, kept["session_token"]).json() == ada

    # An expired session, a live refresh token: a new session token, as long as the
    # refreshing process's EXAMPLE_SESSION_TTL says.
    short = refresh(brief, kept["refresh_token"]).json()
    long = refresh(lasting, kept["refresh_token"]).json()
    assert (short["expires_in"], long["expires_in"]) == (0, 900)
    for api in (brief, lasting):
        error_of(profile(api, short["accessToken"]), 401, "TOKEN_EXPIRED")
        assert profile(api, long["accessToken"]).json() == ada


# -- failed logins -----------------------------------------------------------------------------

LOGIN_LIMITED = {"RESTFAULT_LOGIN_LIMITS": "3/minute"}
WRONG = {"email": "ada@example.com", "password": "hopper"}
RIGHT = {"email": "ada@example.com", "password": "lovelace"}


def retry_after(response: httpx.Response) -> int:
    value = int(response.headers["retry-after"])
    assert 1 <= value <= 60
    return value


def test_failed_logins_are_limited_per_client_address(example: Factory) -> None:
    api = example(**LOGIN_LIMITED)
    # Successes and 400s do not count, only 401s, whichever the reason.
    for _ in range(3):
        assert api.post(LOGIN, key="pk_demo", json=RIGHT).status_code == 200
        error_of(api.post(LOGIN, key="pk_demo", json={}), 400, "VALIDATION_ERROR")
    error_of(api.post(LOGIN, key="pk_demo", json=WRONG), 401, "UNAUTHORIZED")
    error_of(api.post(LOGIN, key="sk_demo", json=WRONG), 401, "UNAUTHORIZED")
    error_of(api.post(LOGIN, json=RIGHT), 401, "UNAUTHORIZED")  # no API key

    # The budget is spent: even the right password waits, whatever the key.
    for key in ("pk_demo", "sk_demo", None):
        response = api.post(LOGIN, key=key, json=RIGHT)
        error_of(response, 429, "LOGIN_RATE_LIMIT")
        retry_after(response)
        assert response.headers["x-ratelimit-limit"] == "3"
        assert response.headers["x-ratelimit-remaining"] == "0"

    # Another client address has a budget of its own; other endpoints are not concerned.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=api.base_url, transport=transport, timeout=10) as other:
        response = other.post(LOGIN, headers={"X-API-Key": "pk_demo"}, json=RIGHT)
        assert response.status_code == 200, response.text
    assert api.get(TABLE, key="pk_demo").status_code == 200


# -- several workers sharing the database and redis --------------------------------------------


@pytest.fixture(params=APPS)
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """(base URL, server) of an app with several workers sharing EXAMPLE_DB and Redis."""
    app = str(request.param)
    with running(redis_server()) as redis:
        env = {
            "RESTFAULT_STORAGE_URI": f"redis://127.0.0.1:{redis.port}",
            "RESTFAULT_STYLE": "bkend",
            "RESTFAULT_LOGIN_LIMITS": "3/minute",
            "EXAMPLE_DB": str(tmp_path / "shared.sqlite3"),
        }
        server = example_server(app, env, workers=2 if app == "starlette" else 3)
        if app == "flask":  # log each request's worker pid, to see that several served
            server.argv += ["--access-logfile", "-", "--access-logformat", "pid=%(p)s"]
        with running(server, timeout=30):
            yield f"http://127.0.0.1:{server.port}", server


@pytest.mark.redis
def test_workers_share_sessions_and_failed_logins(workers: tuple[str, Any]) -> None:
    url, server = workers

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A connection of its own each time, so that every worker gets requests.
        headers = {"X-API-Key": "pk_demo", "Connection": "close", **kwargs.pop("headers", {})}
        return httpx.request(method, url + path, headers=headers, timeout=10, **kwargs)

    tokens = call("POST", LOGIN, json=RIGHT).json()
    bearer = {"Authorization": f"Bearer {tokens['session_token']}"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: call("GET", PROFILE, headers=bearer), range(12)))
        refreshed = list(
            pool.map(
                lambda _: call("POST", REFRESH, json={"refreshToken": tokens["refresh_token"]}),
                range(6),
            )
        )
    assert [r.status_code for r in answers] == [200] * 12
    assert [r.status_code for r in refreshed] == [200] * 6
    for response in refreshed:
        token = response.json()["accessToken"]
        assert call("GET", PROFILE, headers={"Authorization": f"Bearer {token}"}).json() == {
            "email": "ada@example.com",
            "name": "Ada",
        }

    # One failed-login budget per address, whichever worker answers.
    statuses = [call("POST", LOGIN, json=WRONG).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    if "pid=" in server.output():
        assert len(set(re.findall(r"pid=<?(\d+)", server.output()))) > 1
