"""A storage that cannot be reached while the app starts does not keep the app down.

Some clients (sync ``redis+cluster``) connect while being built. restfault treats a
failure there as the start of an outage: the app starts, requests are answered under
``on_storage_error``, and the storage is built again once the retry interval has passed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

import restfault._storage as storage_module
from restfault import ConfigurationError
from tests.harness import MakeHarness
from tests.servers import Server

pytestmark = [pytest.mark.timeout(30), pytest.mark.redis]


@pytest.fixture
def flaky_build(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Building the storage fails with a connection error until ``state['failures']``
    runs out (as a sync redis+cluster client does while its nodes are down)."""
    state = {"failures": 1, "calls": 0}
    for name in ("build_sync_storage", "build_async_storage"):
        real = getattr(storage_module, name)

        def build(settings: Any, real: Callable[[Any], Any] = real) -> Any:
            state["calls"] += 1
            if state["failures"] > 0:
                state["failures"] -= 1
                raise ConnectionError("cluster is down")
            return real(settings)

        monkeypatch.setattr(storage_module, name, build)
    return state


def test_app_starts_and_enforces_limits_in_memory_until_the_storage_is_built(
    flaky_build: dict[str, int],
    rate_limited: MakeHarness,
    redis_srv: Server,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.WARNING, logger="restfault")
    client = rate_limited(
        default_limits="2/minute",
        storage_uri=f"redis://127.0.0.1:{redis_srv.port}",
        key_prefix=f"startup-{time.time()}",
        storage_retry_interval=3600,
    )
    statuses = [client.get("/").status for _ in range(3)]
    assert statuses == [200, 200, 429]  # the fallback enforces the limit meanwhile
    warnings = [r for r in caplog.records if "failed (ConnectionError" in r.getMessage()]
    assert len(warnings) == 1
    assert flaky_build["calls"] == 1  # not rebuilt per request within the retry interval

    # Once the interval has passed, the next request builds the storage and uses it (the
    # fallback's count stays behind: the real storage starts from its own).
    limiter = client.restfault.limiter
    monkeypatch.setattr(limiter.outage, "next_try", 0.0)
    monkeypatch.setattr(limiter.evaluation.denials, "times", {})
    assert client.get("/").status == 200
    assert flaky_build["calls"] == 2
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_a_configuration_error_while_building_is_still_raised(
    monkeypatch: pytest.MonkeyPatch, harness: MakeHarness
) -> None:
    def build(settings: Any) -> Any:
        raise ConfigurationError("storage_uri='redis://x': bad option")

    monkeypatch.setattr(storage_module, "build_sync_storage", build)
    monkeypatch.setattr(storage_module, "build_async_storage", build)
    with pytest.raises(ConfigurationError, match="bad option"):
        harness(default_limits="2/minute", storage_uri="redis://127.0.0.1:1")
