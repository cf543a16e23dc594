"""One limit shared by many worker processes through redis: uvicorn and gunicorn, 3 workers.

60 concurrent requests against ``20/minute`` must give exactly 20 successes for every
strategy, however the requests are spread over the processes.
"""

from __future__ import annotations

import http.client
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.servers import HOST, Server, gunicorn_server, running, uvicorn_server

from .apps import STRATEGIES
from .conftest import away_from_a_minute_boundary

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SERVERS: dict[str, Callable[..., Server]] = {
    "uvicorn": lambda env: uvicorn_server("tests.limits.apps:asgi_app", env, workers=3),
    "gunicorn": lambda env: gunicorn_server("tests.limits.apps:wsgi_app", env, workers=3),
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def app_server(request: pytest.FixtureRequest, redis_srv: Server) -> Iterator[Server]:
    env = {
        "RF_STORAGE_URI": f"redis://{HOST}:{redis_srv.port}",
        "RF_KEY_PREFIX": f"mp{uuid.uuid4().hex[:12]}",
        "RF_LIMITS": "20/minute",
    }
    with running(SERVERS[request.param](env), timeout=30) as server:
        yield server


def get(port: int, path: str) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_exactly_the_limit_succeeds_across_workers(app_server: Server, strategy: str) -> None:
    away_from_a_minute_boundary(margin=2.0)
    with ThreadPoolExecutor(max_workers=60) as pool:
        replies: list[Any] = list(
            pool.map(lambda _: get(app_server.port, f"/{strategy}/"), range(60))
        )
    counts = Counter(status for status, _ in replies)
    assert counts == {200: 20, 429: 40}, app_server.output()
    for status, headers in replies:
        assert headers["x-ratelimit-limit"] == "20"
        assert (status == 429) == ("retry-after" in headers)
    remaining = sorted(int(h["x-ratelimit-remaining"]) for s, h in replies if s == 200)
    if strategy == "fixed-window":
        assert remaining == list(range(20))  # INCR's answer: every success saw its own count
    else:
        # Moving and sliding windows read their state in a second call, which may already
        # include concurrent hits from the other workers: never more than is left.
        assert all(0 <= r < 20 for r in remaining)
        assert remaining[0] == 0
