"""An async storage client belongs to one event loop; apps meet several (FastAPI's
documented module-level ``TestClient(app)`` runs each request in a new loop, a test suite
runs a loop per test). Every loop gets a working client: no false outage, one count."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

import restfault.asgi
import restfault.starlette
from tests.limits.conftest import Backend

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_a_test_client_without_a_context_runs_every_request_on_redis(
    redis_srv: Any, strategy: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = Backend("redis", strategy, f"redis://127.0.0.1:{redis_srv.port}")
    app = FastAPI()

    @app.get("/")
    async def index() -> dict[str, bool]:
        return {"ok": True}

    restfault.starlette.RestFault(app, **backend.options(default_limits="3/minute"))
    client = TestClient(app)  # no `with`: a new event loop per request
    with caplog.at_level(logging.WARNING, logger="restfault"):
        replies = [client.get("/") for _ in range(4)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in replies] == ["2", "1", "0", "0"]
    assert not [r for r in caplog.records if "failed" in r.getMessage()]  # no false outage


def test_a_new_event_loop_per_run_shares_one_count(redis_srv: Any) -> None:
    backend = Backend("redis", "fixed-window", f"redis://127.0.0.1:{redis_srv.port}")

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = restfault.asgi.RestFaultMiddleware(ok, **backend.options(default_limits="2/minute"))

    async def one_request() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/")).status_code

    assert [asyncio.run(one_request()) for _ in range(3)] == [200, 200, 429]
