"""Fixtures every test may take: the harness over the adapters, logs and a controlled clock.

``harness(**options)`` builds a tiny app (``tests/harness.py``) for the ``adapter`` under
test. A test that takes it runs once per adapter in ``ADAPTERS``; a behaviour that only
some adapters have narrows the table visibly, e.g.
``@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import (
    ADAPTERS,
    HARNESSES,
    PEER,
    FakeClock,
    Harness,
    MakeHarness,
    add_rate_limit_routes,
    parametrized_by_mark,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``adapter`` runs over every adapter unless a test narrows it."""
    if "adapter" in metafunc.fixturenames and not parametrized_by_mark(metafunc, "adapter"):
        metafunc.parametrize("adapter", ADAPTERS, indirect=True)


@pytest.fixture
def adapter(request: pytest.FixtureRequest) -> str:
    """The adapter under test: one of ``tests.harness.ADAPTERS``."""
    return str(request.param)


@pytest.fixture
def harness(adapter: str) -> Iterator[MakeHarness]:
    """``harness(peer=PEER, **options) -> Harness``: an empty app for ``adapter``."""
    made: list[Harness] = []

    def make(*, peer: str = PEER, **options: Any) -> Harness:
        app = HARNESSES[adapter](peer=peer, **options)
        made.append(app)
        return app

    yield make
    for app in reversed(made):
        app.close()


@pytest.fixture
def rate_limited(harness: MakeHarness) -> MakeHarness:
    """``rate_limited(peer=PEER, **options)``: the app of ``add_rate_limit_routes``."""

    def make(*, peer: str = PEER, **options: Any) -> Harness:
        return add_rate_limit_routes(harness(peer=peer, **options))

    return make


# -- logs ----------------------------------------------------------------------------------


@pytest.fixture
def restfault_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, capturing the ``restfault`` logger from DEBUG up."""
    with caplog.at_level(logging.DEBUG, logger="restfault"):
        yield caplog


# -- time ----------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(1_800_000_000.25)
    monkeypatch.setattr(time, "time", fake)
    return fake
