"""Security promises: an untrusted X-Forwarded-For is ignored; API keys, Authorization and
cookies never reach a log; control characters in paths cannot forge log lines or headers;
debug is off by default and says so loudly when on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from starlette.testclient import TestClient

from tests.servers import Server, running

from .conftest import example_server, raw_request, read_all

SECRETS = {
    "X-API-Key": "sk_demo",
    "Authorization": "Bearer tok-AUTH-SECRET-123",
    "Cookie": "session=COOKIE-SECRET-456",
}
FORGED = "restfault: FORGED line"
HOSTILE_PATHS = [
    "/nope%0A" + FORGED.replace(" ", "%20"),
    "/nope%0D%0AX-Injected:%20yes",
    "/api/v2/db/_table/x%0D%0AX-Injected:%20yes",
    "/nope%E2%80%A8" + FORGED.replace(" ", "%20"),  # U+2028, a line break to some viewers
    "/nope%1B%5B31mred",  # an ANSI escape
]
FIGURES: dict[str, Any] = {}


def env_for(**extra: str) -> dict[str, str]:
    return {"RESTFAULT_DEFAULT_LIMITS": "5/minute", **extra}


# -- X-Forwarded-For ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("app", ["starlette", "flask"])
def test_an_untrusted_forwarded_for_does_not_buy_a_new_budget(app: str) -> None:
    server = example_server(app, env_for())
    if app == "starlette":
        # uvicorn itself believes X-Forwarded-For from 127.0.0.1 (--forwarded-allow-ips'
        # default) and rewrites the client address before restfault sees it: the test
        # client is on loopback, so that is switched off to test restfault's own rule.
        server.argv.append("--no-proxy-headers")
    with running(server):
        statuses = [
            raw_request(
                server.port,
                "GET",
                "/api/v2/db/_table/contacts",
                [(b"X-Forwarded-For", f"203.0.113.{i}, 10.0.0.{i}".encode())],
            ).status
            for i in range(8)
        ]
    FIGURES[f"xff {app}"] = statuses
    assert statuses == [401] * 5 + [429] * 3


# -- nothing secret in the logs ------------------------------------------------------------


@pytest.fixture
def example_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """``example_client(app, **env)``: a test client of a freshly created example app."""
    clients: list[Any] = []

    def make(app: str, **env: str) -> Any:
        limits = {"RESTFAULT_DEFAULT_LIMITS": "5/minute", "RESTFAULT_ADMIN_LIMITS": "5/minute"}
        for name, value in {**limits, **env}.items():
            monkeypatch.setenv(name, value)
        if app == "starlette":
            from examples.starlette_app.app import create_app as create_starlette

            client: Any = TestClient(create_starlette(), raise_server_exceptions=False)
            client.__enter__()
            clients.append(client)
            return client
        from examples.flask_app.app import create_app as create_flask

        return create_flask().test_client()

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def send(client: Any, method: str, path: str, **kwargs: Any) -> tuple[int, bytes, Any]:
    if isinstance(client, FlaskClient):
        if "content" in kwargs:
            kwargs["data"] = kwargs.pop("content")
        response = client.open(path, method=method, **kwargs)
        return response.status_code, response.data, response.headers
    response = client.request(method, path, **kwargs)
    return response.status_code, response.content, response.headers


@pytest.mark.parametrize("app", ["starlette", "flask"])
def test_keys_authorization_and_cookies_never_reach_the_log(
    example_client: Callable[..., Any], caplog: pytest.LogCaptureFixture, app: str
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, restfault's debug lines included
    client = example_client(app, RESTFAULT_DEBUG="")
    for method, path, body in [
        ("GET", "/api/v2/boom", None),  # an unexpected exception, logged with its traceback
        ("GET", "/nope", None),  # routing 404: a translated exception, logged at debug
        ("PUT", "/api/v2/health", None),  # 405
        ("POST", "/api/v2/email", b"{not json"),
        ("GET", "/api/v2/db/_table/contacts", None),
    ] + [("GET", "/api/v2/db/_table/contacts", None)] * 6:  # and 429s
        send(client, method, path, headers=SECRETS, content=body)
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "unhandled RuntimeError on GET /api/v2/boom" in text  # the log did capture
    for value in SECRETS.values():
        assert value not in text
    assert "AUTH-SECRET" not in text
    assert "COOKIE-SECRET" not in text


@pytest.mark.slow
@pytest.mark.parametrize("app", ["starlette", "flask"])
def test_the_servers_log_holds_no_secret_either(app: str) -> None:
    with running(example_server(app, env_for(RESTFAULT_DEBUG="1"))) as server:
        for path in ["/api/v2/boom", "/nope", "/api/v2/db/_table/contacts"] * 3:
            raw_request(server.port, "GET", path, list(SECRETS.items()))
        log = server.output()
    assert "unhandled RuntimeError on GET /api/v2/boom" in log
    for value in SECRETS.values():
        assert value not in log


# -- control characters --------------------------------------------------------------------


@pytest.mark.parametrize("app", ["starlette", "flask"])
def test_control_characters_cannot_forge_log_lines(
    example_client: Callable[..., Any], caplog: pytest.LogCaptureFixture, app: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="restfault")
    client = example_client(app, RESTFAULT_DEFAULT_LIMITS="1000/minute")
    for path in HOSTILE_PATHS:
        status, _, headers = send(client, "GET", path, headers={"X-API-Key": "sk_demo"})
        assert status == 404
        assert "X-Injected" not in headers
    records = [r for r in caplog.records if r.name == "restfault"]
    assert records, "the 404s were logged at debug"
    for record in records:
        message = record.getMessage()
        assert not any(ch in message for ch in "\r\n\u2028\u2029\x1b"), repr(message)
    FIGURES[f"log lines {app}"] = len(records)


@pytest.mark.slow
@pytest.mark.parametrize("app", ["starlette", "flask"])
def test_control_characters_cannot_forge_headers(app: str) -> None:
    with running(example_server(app, env_for(RESTFAULT_DEFAULT_LIMITS="1000/minute"))) as s:
        for path in HOSTILE_PATHS:
            request = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: sk_demo\r\n"
            raw = read_all(s.port, (request + "Connection: close\r\n\r\n").encode())
            head = raw.partition(b"\r\n\r\n")[0]
            assert raw.startswith(b"HTTP/1.1 404 "), raw[:200]
            assert b"X-Injected" not in head
            assert all(b"FORGED" not in line for line in head.split(b"\r\n")), head


# -- debug -----------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["starlette", "flask"])
def test_debug_is_off_by_default_and_warns_when_on(
    example_client: Callable[..., Any], caplog: pytest.LogCaptureFixture, app: str
) -> None:
    caplog.set_level(logging.WARNING, logger="restfault")
    quiet = example_client(app, RESTFAULT_DEBUG="")
    status, body, _ = send(quiet, "GET", "/api/v2/boom", headers={"X-API-Key": "sk_demo"})
    assert status == 500
    assert b"hunter2" not in body
    assert b"Traceback" not in body
    assert not any("debug=True" in r.getMessage() for r in caplog.records)

    loud = example_client(app, RESTFAULT_DEBUG="1")
    warnings = [r for r in caplog.records if "debug=True" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    status, body, _ = send(loud, "GET", "/api/v2/boom", headers={"X-API-Key": "sk_demo"})
    assert status == 500
    assert b"hunter2" in body  # debug shows the exception, as documented


@pytest.mark.slow
def test_debug_warning_reaches_a_real_servers_log(launch: Callable[..., Server]) -> None:
    for app in ("starlette", "flask"):
        server = launch(app, RESTFAULT_DEBUG="1")
        assert raw_request(server.port, "GET", "/api/v2/health").status == 200
        assert "never enable it in production" in server.output()
