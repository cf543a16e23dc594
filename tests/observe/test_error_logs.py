"""One structured record per error response on the ``restfault`` logger (API.md §7)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import restfault.asgi
import restfault.wsgi
from tests.harness import ENDPOINT_ADAPTERS, FakeClock, asgi_call, http_scope, serve
from tests.observe.conftest import MakeObserved, by_user

ID = "X-Request-ID"


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    """The ``restfault`` logger's records (DEBUG and up) so far."""
    caplog.set_level(logging.DEBUG, logger="restfault")
    return lambda: [r for r in caplog.records if r.name == "restfault"]


def data(record: logging.LogRecord) -> dict[str, Any]:
    """The record's ``restfault`` dict, ``duration_ms`` checked and left out."""
    found: dict[str, Any] = dict(record.restfault)  # type: ignore[attr-defined]
    duration = found.pop("duration_ms")
    assert isinstance(duration, float)
    assert duration >= 0
    return found


# path -> status, code, level, the exception whose traceback the record carries
ERRORS = [
    ("/missing", 404, "THING_NOT_FOUND", logging.INFO, None),
    ("/text-404", 404, "NOT_FOUND", logging.INFO, None),
    ("/nowhere", 404, "NOT_FOUND", logging.INFO, None),
    ("/unavailable", 503, "SERVICE_UNAVAILABLE", logging.ERROR, "ServiceUnavailableException"),
    ("/boom", 500, "INTERNAL_SERVER_ERROR", logging.ERROR, "RuntimeError"),
]


@pytest.mark.parametrize(("path", "status", "code", "level", "raised"), ERRORS)
def test_each_error_response_is_logged_once_with_its_facts(
    observed: MakeObserved,
    adapter: str,
    records: Callable[[], list[logging.LogRecord]],
    path: str,
    status: int,
    code: str,
    level: int,
    raised: str | None,
) -> None:
    app = observed(request_id_header=ID)

    reply = app.get(path, headers={ID: "req-1"})

    assert reply.status == status
    [record] = records()
    assert record.levelno == level
    assert data(record) == {
        "method": "GET",
        "path": path,
        "status": status,
        "code": code,
        "request_id": "req-1",
    }
    if raised is None:
        assert record.exc_info is None
    else:
        assert record.exc_info is not None
        assert record.exc_info[0] is not None
        assert record.exc_info[0].__name__ == raised
    message = record.getMessage()
    assert f"GET {path}" in message
    assert f"{status} {code}" in message
    assert message.endswith("(request req-1)")


def test_an_unexpected_exception_says_unhandled(
    observed: MakeObserved, adapter: str, records: Callable[[], list[logging.LogRecord]]
) -> None:
    observed().get("/boom")

    [record] = records()
    assert record.getMessage() == (
        "restfault: unhandled RuntimeError on GET /boom; answered 500 INTERNAL_SERVER_ERROR"
    )
    assert data(record)["request_id"] is None  # request ids are off


@pytest.mark.parametrize("path", ["/", "/stream", "/rid"])
def test_successful_responses_are_not_logged(
    observed: MakeObserved, adapter: str, records: Callable[[], list[logging.LogRecord]], path: str
) -> None:
    observed(request_id_header=ID, default_limits="100/minute").get(path)

    assert records() == []


def test_a_flood_of_429s_writes_one_line_per_client_until_the_reset(
    observed: MakeObserved,
    adapter: str,
    records: Callable[[], list[logging.LogRecord]],
    clock: FakeClock,
) -> None:
    app = observed(default_limits="1/minute", key_func=by_user)
    for user in ("ann", "bob"):
        app.get("/", headers={"X-User": user})

    for _ in range(5):
        for user in ("ann", "bob"):
            assert app.get("/", headers={"X-User": user}).status == 429
    first = records()
    clock.advance(61)
    app.get("/", headers={"X-User": "ann"})  # a new window: allowed, then denied again
    app.many("/", 3, headers={"X-User": "ann"})

    assert [r.levelno for r in first] == [logging.INFO, logging.INFO]
    assert [data(r) for r in records()] == [
        {
            "method": "GET",
            "path": "/",
            "status": 429,
            "code": "RATE_LIMIT_EXCEEDED",
            "request_id": None,
            "limit": "default",
        }
    ] * 3
    assert records()[0].getMessage() == (
        "restfault: GET / answered 429 RATE_LIMIT_EXCEEDED: limit default "
        "(once per client until its reset)"
    )


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_a_429_names_its_limit_as_rate_limit_policy_does(
    observed: MakeObserved, adapter: str, records: Callable[[], list[logging.LogRecord]]
) -> None:
    app = observed(ietf_headers=True)
    app.many("/limited", 2)

    reply = app.get("/limited")

    assert reply.status == 429
    [record] = records()
    assert data(record)["code"] == "EMAIL_RATE_LIMIT"
    name = data(record)["limit"]
    assert reply.header("ratelimit-policy") == f'"{name}";q=2;w=60'


def test_a_maintenance_503_is_logged_at_info(
    observed: MakeObserved, adapter: str, records: Callable[[], list[logging.LogRecord]]
) -> None:
    app = observed(maintenance=lambda request: True, request_id_header=ID)

    app.get("/", headers={ID: "m-1"})

    [record] = records()
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert data(record) == {
        "method": "GET",
        "path": "/",
        "status": 503,
        "code": "SERVICE_UNAVAILABLE",
        "request_id": "m-1",
    }
    assert record.getMessage() == (
        "restfault: maintenance: GET / answered 503 SERVICE_UNAVAILABLE (request m-1)"
    )


def test_the_path_is_escaped_against_log_forging(
    observed: MakeObserved, adapter: str, records: Callable[[], list[logging.LogRecord]]
) -> None:
    app = observed()

    reply = app.get("/nowhere%0D%0AINJECTED%1B%5B31m%E2%80%A8x")

    assert reply.status == 404
    [record] = records()
    assert data(record)["path"] == "/nowhere\\x0d\\x0aINJECTED\\x1b[31m\\u2028x"
    assert not any(ch in record.getMessage() for ch in "\r\n\x1b\u2028")


SECRETS = {"Authorization": "Bearer s3cr3t", "Cookie": "session=c00kie", "X-API-Key": "pk_k3y"}


def test_no_header_value_and_no_body_is_logged(
    observed: MakeObserved, adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger
    app = observed(default_limits="1/minute", request_id_header=ID)
    for path in ("/boom", "/missing", "/", "/"):
        app.request("GET", path, headers=SECRETS)

    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "unhandled RuntimeError on GET /boom" in logged
    for value in SECRETS.values():
        assert value not in logged
    assert "hunter2" not in "".join(r.getMessage() for r in caplog.records)


def test_python_json_logger_renders_the_record_without_parsing(
    observed: MakeObserved, adapter: str
) -> None:
    """What the README shows: the ``restfault`` dict becomes a JSON object of the line."""
    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("restfault")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        observed(request_id_header=ID).get("/missing", headers={ID: "req-9"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    [line] = stream.getvalue().splitlines()
    document = json.loads(line)
    duration = document["restfault"].pop("duration_ms")
    assert isinstance(duration, float)
    assert document == {
        "levelname": "INFO",
        "name": "restfault",
        "message": (
            "restfault: NotFoundException on GET /missing; answered 404 THING_NOT_FOUND "
            "(request req-9)"
        ),
        "restfault": {
            "method": "GET",
            "path": "/missing",
            "status": 404,
            "code": "THING_NOT_FOUND",
            "request_id": "req-9",
        },
    }


def test_a_shadow_mode_warning_carries_the_request_id(
    observed: MakeObserved, adapter: str, records: Callable[[], list[logging.LogRecord]]
) -> None:
    app = observed(enforce=False, default_limits="1/minute", request_id_header=ID)
    app.get("/", headers={ID: "s-1"})

    assert app.get("/", headers={ID: "s-2"}).status == 200

    [warning] = records()
    assert warning.levelno == logging.WARNING
    assert "shadow mode" in warning.getMessage()
    assert warning.request_id == "s-2"  # type: ignore[attr-defined]


def test_a_failure_after_the_response_started_carries_the_request_id(
    records: Callable[[], list[logging.LogRecord]],
) -> None:
    """Not an error response (it cannot be answered any more), but logged with the id."""

    def wsgi_app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first chunk"
        raise RuntimeError("broken stream")

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        raise RuntimeError("broken stream")

    wsgi = restfault.wsgi.RestFaultMiddleware(wsgi_app, request_id_header=ID)
    asgi = restfault.asgi.RestFaultMiddleware(asgi_app, request_id_header=ID)
    exchange = serve(wsgi, "/", headers={ID: "w-1"})
    _, error = asgi_call(asgi, http_scope("/", headers=[(b"x-request-id", b"a-1")]))

    assert isinstance(exchange.error, RuntimeError)
    assert isinstance(error, RuntimeError)
    assert [(r.levelno, r.request_id) for r in records()] == [  # type: ignore[attr-defined]
        (logging.ERROR, "w-1"),
        (logging.ERROR, "a-1"),
    ]
