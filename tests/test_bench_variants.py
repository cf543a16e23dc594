"""Every benchmarked app answers as ``make bench`` expects it to.

``make bench`` builds each variant and checks its answer before timing it, but nothing in
``make test`` ran that: a variant broken by a change of restfault's internals (one keeps a
``limits`` storage of its own) would only fail in a ten-minute bench run. The peers'
variants are checked when the ``bench`` extra is installed.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench import apps
from bench.inprocess import expected_status, make_driver

PEERS = {"slowapi": "slowapi", "flask-limiter": "flask_limiter"}


def variants() -> Iterator[tuple[str, str, Callable[[], Any]]]:
    for kind, table in (("asgi", apps.asgi_variants()), ("wsgi", apps.wsgi_variants())):
        for name, factory in table.items():
            yield kind, name, factory


@pytest.mark.parametrize(
    ("kind", "name", "factory"), list(variants()), ids=[f"{k}-{n}" for k, n, _ in variants()]
)
def test_every_variant_answers_as_the_bench_expects(
    kind: str, name: str, factory: Callable[[], Any]
) -> None:
    peer = next((module for prefix, module in PEERS.items() if name.startswith(prefix)), None)
    if peer is not None and importlib.util.find_spec(peer) is None:
        pytest.skip(f"{peer} is in the bench extra, not installed here")
    loop = asyncio.new_event_loop() if kind == "asgi" else None
    try:
        driver = make_driver(kind, factory(), loop)
        for _ in range(3):  # as make bench warms up: the 1/day limit is spent
            driver.once()
        response = driver.once()
    finally:
        if loop is not None:
            loop.close()
    assert response.status == expected_status(name)
    limited = any(word in name for word in ("limit", "429", "slowapi"))
    if limited and "noheaders" not in name:
        assert "x-ratelimit-remaining" in response.headers
    if name.endswith("429"):
        assert int(response.headers["retry-after"]) >= 1
    if "-ids" in name:
        assert response.headers.get("x-request-id")
