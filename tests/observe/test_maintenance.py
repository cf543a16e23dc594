"""Maintenance mode (API.md §4 ``maintenance``): a 503 ``SERVICE_UNAVAILABLE`` with
``Retry-After`` for every request but exempt endpoints and paths, decided before limits."""

from __future__ import annotations

from typing import Any

import pytest

from restfault import ConfigurationError
from restfault.flask import RestFault as FlaskRestFault
from restfault.wsgi import RestFaultMiddleware as WsgiMiddleware
from tests.harness import ASGI_ADAPTERS, ENDPOINT_ADAPTERS
from tests.observe.conftest import MakeObserved


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [(True, "60"), (120, "120"), (1, "1"), (2.5, "3")],
    ids=["true", "120", "1", "float"],
)
@pytest.mark.parametrize("path", ["/", "/missing", "/boom", "/nowhere"])
def test_maintenance_answers_503_with_retry_after(
    observed: MakeObserved, adapter: str, answer: Any, retry_after: str, path: str
) -> None:
    app = observed(maintenance=lambda request: answer, style="bkend")

    reply = app.get(path)

    assert reply.status == 503
    assert reply.header("retry-after") == retry_after
    assert reply.header("content-type") == "application/json"
    assert reply.json() == {"error": "SERVICE_UNAVAILABLE", "message": "Service Unavailable"}


@pytest.mark.parametrize(
    "answer", [None, False, 0, "", []], ids=["none", "false", "0", "empty", "list"]
)
def test_a_falsy_answer_serves_the_request(
    observed: MakeObserved, adapter: str, answer: Any
) -> None:
    app = observed(maintenance=lambda request: answer)

    assert app.get("/").status == 200
    assert app.get("/missing").status == 404


def test_head_gets_the_503_without_a_body(observed: MakeObserved, adapter: str) -> None:
    reply = observed(maintenance=lambda request: True).request("HEAD", "/")

    assert (reply.status, reply.header("retry-after"), reply.body) == (503, "60", b"")


def test_exempt_paths_keep_answering(observed: MakeObserved, adapter: str) -> None:
    app = observed(maintenance=lambda request: True, exempt_paths=["/rid", "/stream"])

    assert [app.get(p).status for p in ("/rid", "/stream", "/")] == [200, 200, 503]


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_exempt_endpoints_keep_answering(observed: MakeObserved, adapter: str) -> None:
    app = observed(maintenance=lambda request: True)

    assert [app.get(p).status for p in ("/health", "/limited", "/")] == [200, 503, 503]


def test_maintenance_503s_count_against_no_limit(observed: MakeObserved, adapter: str) -> None:
    switch = {"on": True}
    app = observed(maintenance=lambda request: switch["on"], default_limits="2/minute")

    down = app.many("/", 5)
    switch["on"] = False
    up = app.many("/", 3)

    assert [r.status for r in down] == [503] * 5
    assert [r.header("x-ratelimit-remaining") for r in down] == [None] * 5
    assert [r.status for r in up] == [200, 200, 429]
    assert [r.header("x-ratelimit-remaining") for r in up] == ["1", "0", "0"]


def test_the_callable_receives_the_adapter_s_request(observed: MakeObserved, adapter: str) -> None:
    """The framework's request (Starlette, FastAPI, Flask), the scope or the environ."""
    seen: list[str] = []

    def maintenance(request: Any) -> bool:
        seen.append(request.__class__.__name__)  # (Flask's proxy stands for its Request)
        return False

    observed(maintenance=maintenance).get("/")

    expected = {
        "asgi": "dict",
        "wsgi": "dict",
        "starlette": "Request",
        "fastapi": "Request",
        "flask": "Request",
    }
    assert seen == [expected[adapter]]


@pytest.mark.parametrize("adapter", ASGI_ADAPTERS)
def test_an_async_callable_is_awaited(observed: MakeObserved, adapter: str) -> None:
    async def maintenance(request: Any) -> int:
        return 45

    reply = observed(maintenance=maintenance).get("/")

    assert (reply.status, reply.header("retry-after")) == (503, "45")


@pytest.mark.parametrize(
    "answer", [-5, "yes", float("inf"), object()], ids=["negative", "str", "inf", "object"]
)
def test_a_nonsense_answer_is_a_bug_in_the_app(
    observed: MakeObserved, adapter: str, answer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = observed(maintenance=lambda request: answer)

    with caplog.at_level("ERROR", logger="restfault"):
        reply = app.get("/")

    assert reply.status == 500
    [record] = [r for r in caplog.records if r.name == "restfault"]
    assert record.exc_info is not None
    assert "the maintenance callable returned" in str(record.exc_info[1])


@pytest.mark.parametrize(
    "value", [True, "on", 60, {"enabled": True}], ids=["bool", "str", "int", "dict"]
)
def test_a_maintenance_that_is_not_callable_is_refused_at_start(value: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^maintenance=.* must be a callable taking the request$"
    ):
        WsgiMiddleware(lambda environ, start_response: [], maintenance=value)


def test_an_async_maintenance_is_refused_by_the_wsgi_adapters() -> None:
    async def maintenance(request: Any) -> bool:
        return False

    with pytest.raises(ConfigurationError, match="async, but a WSGI adapter cannot await it"):
        FlaskRestFault(maintenance=maintenance)


@pytest.mark.parametrize("adapter", ["starlette", "fastapi"])
def test_a_redirect_the_router_makes_itself_is_in_maintenance_too(
    observed: MakeObserved, adapter: str
) -> None:
    """No endpoint answers ``/rid/`` (Starlette's router redirects it to ``/rid``): it is
    admitted when that response starts, and maintenance mode replaces it."""
    switch = {"on": False}
    app = observed(maintenance=lambda request: switch["on"])
    served = app.get("/rid/")
    switch["on"] = True

    replaced = app.get("/rid/")

    assert (served.status, served.header("location")) == (307, "http://testserver/rid")
    assert (replaced.status, replaced.header("retry-after")) == (503, "60")
    assert replaced.json() == {"error": {"code": 503, "message": "Service Unavailable"}}
