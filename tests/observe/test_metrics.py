"""OpenTelemetry metrics (API.md §4 ``metrics``), read with the SDK's in-memory reader."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from restfault import ConfigurationError
from restfault.asgi import RestFaultMiddleware as AsgiMiddleware
from restfault.wsgi import RestFaultMiddleware as WsgiMiddleware
from tests.observe.conftest import MakeObserved
from tests.servers import free_port, redis_server, running

Points = dict[tuple[str, frozenset[tuple[str, Any]]], int]

_READER: InMemoryMetricReader | None = None


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """The process's global meter provider, with an in-memory reader (set once: the
    OpenTelemetry API allows one global provider per process)."""
    global _READER
    if _READER is None:
        _READER = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))
    return _READER


def points(reader: InMemoryMetricReader) -> Points:
    """Every data point restfault's meter has recorded so far (cumulative)."""
    found: Points = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            if scope.scope.name != "restfault":
                continue
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, frozenset(dict(point.attributes or {}).items()))
                    found[key] = int(point.value)  # type: ignore[union-attr]
    return found


@pytest.fixture
def recorded(reader: InMemoryMetricReader) -> Callable[[], Points]:
    """What this test recorded: the counters' growth since it began."""
    before = points(reader)

    def grown() -> Points:
        after = points(reader)
        return {
            key: value - before.get(key, 0)
            for key, value in after.items()
            if key[0] != "restfault.storage.fallback" and value != before.get(key, 0)
        }

    return grown


def error(status: int, code: str) -> tuple[str, frozenset[tuple[str, Any]]]:
    return (
        "restfault.errors",
        frozenset({("http.response.status_code", status), ("error.code", code)}),
    )


def decision(policy: str, outcome: str) -> tuple[str, frozenset[tuple[str, Any]]]:
    return (
        "restfault.rate_limit.decisions",
        frozenset({("restfault.limit.policy", policy), ("restfault.limit.outcome", outcome)}),
    )


def test_every_error_response_is_counted_with_its_status_and_code(
    observed: MakeObserved, adapter: str, recorded: Callable[[], Points]
) -> None:
    app = observed(metrics=True)
    for path in ("/", "/missing", "/missing", "/text-404", "/boom", "/unavailable"):
        app.get(path)

    assert recorded() == {
        error(404, "THING_NOT_FOUND"): 2,
        error(404, "NOT_FOUND"): 1,
        error(500, "INTERNAL_SERVER_ERROR"): 1,
        error(503, "SERVICE_UNAVAILABLE"): 1,
    }


def test_the_status_code_attribute_is_an_int(
    observed: MakeObserved, adapter: str, recorded: Callable[[], Points]
) -> None:
    observed(metrics=True).get("/missing")

    [(_, attributes)] = recorded()
    assert dict(attributes)["http.response.status_code"] == 404
    assert type(dict(attributes)["http.response.status_code"]) is int


def test_each_limit_evaluated_is_one_decision_and_every_429_an_error(
    observed: MakeObserved, adapter: str, recorded: Callable[[], Points]
) -> None:
    app = observed(metrics=True, default_limits="2/minute")

    assert [r.status for r in app.many("/", 5)] == [200, 200, 429, 429, 429]

    assert recorded() == {
        decision("default", "allowed"): 2,
        decision("default", "denied"): 3,
        error(429, "RATE_LIMIT_EXCEEDED"): 3,
    }


def test_several_windows_and_shadow_mode(
    observed: MakeObserved, adapter: str, recorded: Callable[[], Points]
) -> None:
    app = observed(metrics=True, default_limits="1/minute;5/hour", enforce=False)

    assert [r.status for r in app.many("/", 3)] == [200, 200, 200]

    assert recorded() == {
        decision("default;w=60", "allowed"): 1,
        decision("default;w=60", "shadow_denied"): 2,
        decision("default;w=3600", "allowed"): 3,
    }


def test_a_maintenance_503_is_an_error_and_no_decision(
    observed: MakeObserved, adapter: str, recorded: Callable[[], Points]
) -> None:
    app = observed(metrics=True, default_limits="2/minute", maintenance=lambda r: True)

    app.many("/", 2)

    assert recorded() == {error(503, "SERVICE_UNAVAILABLE"): 2}


def _fallback(reader: InMemoryMetricReader) -> int:
    gc.collect()  # adapters of earlier tests are no storages of this one
    return points(reader).get(("restfault.storage.fallback", frozenset()), 0)


def _close(limiter: Any) -> None:
    storage = getattr(limiter, "storage", None)
    client = getattr(storage, "storage", None)
    if client is not None:
        client.close()


@pytest.mark.redis
def test_storage_fallback_counts_a_failing_storage_until_it_answers(
    reader: InMemoryMetricReader,
) -> None:
    port = free_port()

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    middleware = WsgiMiddleware(
        app,
        metrics=True,
        default_limits="10/minute",
        storage_uri=f"redis://127.0.0.1:{port}",
        storage_timeout=0.5,
        storage_retry_interval=0.1,
    )
    try:
        from werkzeug.test import Client

        client = Client(middleware)
        assert _fallback(reader) == 0
        assert client.get("/").status_code == 200  # enforced per process meanwhile
        assert _fallback(reader) == 1
        with running(redis_server(port)):
            time.sleep(0.15)  # the retry interval: the real storage is tried again
            assert client.get("/").status_code == 200
            assert _fallback(reader) == 0
    finally:
        _close(middleware.limiter)


def test_metrics_off_imports_no_opentelemetry() -> None:
    """No cost when off: the module is never imported, not even for a flag."""
    code = textwrap.dedent(
        """
        import asyncio, sys
        from restfault.asgi import RestFaultMiddleware

        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        middleware = RestFaultMiddleware(app, default_limits="10/minute")

        async def main():
            async def receive():
                return {"type": "http.request", "body": b""}
            async def send(message):
                pass
            scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
            await middleware(scope, receive, send)

        asyncio.run(main())
        watched = ("opentelemetry", "restfault._metrics")
        print(sorted(m for m in sys.modules if m.startswith(watched)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("middleware", [AsgiMiddleware, WsgiMiddleware])
def test_metrics_without_opentelemetry_is_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, middleware: Any
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed

    with pytest.raises(
        ConfigurationError,
        match=r"^metrics=True needs the OpenTelemetry API: pip install 'restfault\[otel\]'$",
    ):
        middleware(_app, metrics=True)


@pytest.mark.parametrize("value", [1, "yes", None])
def test_metrics_must_be_a_flag(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^metrics=.* must be True or False$"):
        AsgiMiddleware(_app, metrics=value)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """An app that is never called: the options are refused first."""
