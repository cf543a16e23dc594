"""Fixtures for the rate-limit tests: real storages and every strategy.

``backend`` is this suite's ``@all_storage``: a test that takes it runs once per storage
(memory, a real redis-server, a real memcached) and strategy the storage supports. Apps
come from the ``harness`` and ``rate_limited`` fixtures (``tests/conftest.py``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.harness import parametrized_by_mark
from tests.servers import Server, memcached_server, redis_server, running

STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")
STORAGES = ("memory", "redis", "memcached")
# memcached has no list type, so limits offers no moving window on it.
UNSUPPORTED = {("memcached", "moving-window")}


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[Server]:
    with running(redis_server()) as server:
        yield server


@pytest.fixture(scope="module")
def memcached_srv() -> Iterator[Server]:
    with running(memcached_server()) as server:
        yield server


@dataclass(frozen=True)
class Backend:
    """One storage and strategy under test, with options that isolate this test's keys."""

    kind: str
    strategy: str
    uri: str
    key_prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:12]}")

    def options(self, **extra: Any) -> dict[str, Any]:
        return {
            "storage_uri": self.uri,
            "strategy": self.strategy,
            "key_prefix": self.key_prefix,
            # Generous: a loaded CI machine must not turn a slow answer into a fallback.
            "storage_timeout": 2.0,
            **extra,
        }


def backend_params() -> list[Any]:
    marks = {"redis": [pytest.mark.redis], "memcached": [pytest.mark.memcached]}
    return [
        pytest.param((kind, strategy), id=f"{kind}-{strategy}", marks=marks.get(kind, []))
        for kind in STORAGES
        for strategy in STRATEGIES
        if (kind, strategy) not in UNSUPPORTED
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``backend`` runs over every storage and strategy unless a test narrows it."""
    if "backend" in metafunc.fixturenames and not parametrized_by_mark(metafunc, "backend"):
        metafunc.parametrize("backend", backend_params(), indirect=True)


def uri_for(kind: str, request: pytest.FixtureRequest) -> str:
    if kind == "redis":
        return f"redis://127.0.0.1:{request.getfixturevalue('redis_srv').port}"
    if kind == "memcached":
        return f"memcached://127.0.0.1:{request.getfixturevalue('memcached_srv').port}"
    return "memory://"


def away_from_a_minute_boundary(margin: float = 1.0) -> None:
    """Wait out the last ``margin`` seconds of a clock-aligned minute.

    The sliding-window counter of the memory and memcached storages aligns its windows to
    the clock: a test straddling a boundary would see the previous window's weighted count.
    """
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    kind, strategy = request.param
    backend = Backend(kind, strategy, uri_for(kind, request))
    if strategy == "sliding-window-counter":
        away_from_a_minute_boundary()
    return backend
