"""API.md §5 as one contract, checked on every storage and strategy, sync and async.

Backends that disagree on what a header means are a known failure of this field (one
peer's Retry-After differs between its memory and Redis backends): here every storage and
strategy must give the same header values for the same requests.
"""

from __future__ import annotations

import math
import re
import time

import pytest

from tests.harness import ENDPOINT_ADAPTERS, MakeHarness

from .conftest import Backend

RATE_NAMES = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def test_header_contract(rate_limited: MakeHarness, backend: Backend) -> None:
    client = rate_limited(ietf_headers=True, **backend.options(default_limits="4/minute"))
    start = time.time()
    replies = client.many("/", 5)
    end = time.time()
    assert [r.status for r in replies] == [200, 200, 200, 200, 429]

    for reply in replies:
        for name in RATE_NAMES:
            assert re.fullmatch(r"\d+", reply.headers[name]), (name, reply.headers[name])
        limit, remaining, reset = reply.rate()
        assert limit == 4
        # Reset is the window's end as integer epoch seconds: after now, within one window.
        assert math.floor(start) <= reset <= math.ceil(end + 60)
        assert reply.header("ratelimit-policy") == '"default";q=4;w=60'
        ietf = re.fullmatch(r'"default";r=(\d+);t=(\d+)', reply.header("ratelimit") or "")
        assert ietf is not None
        assert int(ietf.group(1)) == remaining
        assert abs(int(ietf.group(2)) - (reset - end)) <= 2

    assert [r.rate()[1] for r in replies] == [3, 2, 1, 0, 0]
    # One window, one end: every response names the same reset (to the second).
    resets = [r.rate()[2] for r in replies]
    assert max(resets) - min(resets) <= 1, resets
    assert all(r.header("retry-after") is None for r in replies[:4])

    denied = replies[4]
    retry_after = denied.header("retry-after")
    assert retry_after is not None
    assert re.fullmatch(r"[1-9]\d*", retry_after)  # whole seconds, at least 1
    # Retry-After and Reset describe the same moment.
    assert int(retry_after) <= 60
    assert abs(int(retry_after) - (denied.rate()[2] - end)) <= 2
    assert denied.json() == {"error": {"code": 429, "message": "Too Many Requests"}}


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_headers_describe_the_limit_with_least_remaining(
    rate_limited: MakeHarness, backend: Backend
) -> None:
    client = rate_limited(**backend.options(default_limits="10/minute"))
    first, second, denied = client.many("/limited", 3)
    assert first.rate()[:2] == (2, 1)
    assert second.rate()[:2] == (2, 0)
    assert denied.status == 429
    assert denied.rate()[:2] == (2, 0)
    assert int(denied.header("retry-after") or "0") >= 1
    # The default budget was charged by the two admitted requests. The third is denied by
    # what this process already knows (the route's limit is spent until its reset): no
    # storage round trip, so nothing is counted for it (API.md §6).
    assert client.get("/").rate()[:2] == (10, 7)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_cost_is_counted_alike(rate_limited: MakeHarness, backend: Backend) -> None:
    client = rate_limited(**backend.options())
    assert client.get("/cost").rate()[:2] == (5, 3)
    assert client.get("/cost").rate()[:2] == (5, 1)
    denied = client.get("/cost")
    assert denied.status == 429
    # A fixed window counts the denied hit too (limits' INCR); the others record nothing.
    assert denied.rate()[1] == (0 if backend.strategy == "fixed-window" else 1)
