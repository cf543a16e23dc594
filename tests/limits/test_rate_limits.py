"""Rate limits through real apps: every adapter, every storage and strategy where it matters.

Apps come from ``rate_limited`` (``tests.harness.add_rate_limit_routes``); a behaviour of
endpoint limits (``.limit``, ``.exempt``) runs on the adapters that have endpoints.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis

from restfault import ConfigurationError, TooManyRequestsException
from tests.harness import (
    ADAPTERS,
    ASYNC_ADAPTERS,
    ENDPOINT_ADAPTERS,
    FakeClock,
    MakeHarness,
    Reply,
    by_user,
    by_user_async,
)
from tests.servers import Server
from tests.tables import STYLE_IDS, STYLES, StyleOption, content_type_of, expected_document

from .conftest import STRATEGIES, Backend


def statuses(replies: list[Reply]) -> list[int]:
    return [reply.status for reply in replies]


def test_default_limits_then_429_on_every_storage(
    rate_limited: MakeHarness, backend: Backend
) -> None:
    client = rate_limited(**backend.options(default_limits="3/minute"))
    replies = client.many("/", 4)
    assert statuses(replies) == [200, 200, 200, 429]
    assert [r.rate()[:2] for r in replies] == [(3, 2), (3, 1), (3, 0), (3, 0)]
    assert all(r.header("retry-after") is None for r in replies[:3])
    denied = replies[3]
    assert 1 <= int(denied.header("retry-after") or "0") <= 60
    assert denied.json() == {"error": {"code": 429, "message": "Too Many Requests"}}


def test_default_limits_list_and_least_remaining(rate_limited: MakeHarness) -> None:
    client = rate_limited(default_limits=["10/hour", "2/minute"])
    first, second, third = client.many("/", 3)
    assert first.rate()[:2] == (2, 1)
    assert second.rate()[:2] == (2, 0)
    assert third.status == 429
    assert third.rate()[:2] == (2, 0)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_route_limit_with_its_own_code(rate_limited: MakeHarness, backend: Backend) -> None:
    client = rate_limited(style="bkend", **backend.options(default_limits="100/minute"))
    replies = client.many("/limited", 3)
    assert statuses(replies) == [200, 200, 429]
    assert replies[0].rate()[:2] == (2, 1)  # the route's limit: the least remaining
    assert replies[2].json() == {"error": "EMAIL_RATE_LIMIT", "message": "Too Many Requests"}
    # The default budget was charged by the admitted requests (the denied one is answered
    # without a storage round trip, API.md §6), and other routes are not limited by the
    # route's.
    index = client.get("/")
    assert index.status == 200
    assert index.rate()[:2] == (100, 97)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_route_limit_counts_on_top_of_defaults(rate_limited: MakeHarness) -> None:
    client = rate_limited(default_limits="3/minute", style="bkend")
    assert statuses(client.many("/limited", 2)) == [200, 200]
    assert client.get("/").rate()[:2] == (3, 0)
    by_defaults = {"error": "RATE_LIMIT_EXCEEDED", "message": "Too Many Requests"}
    denied = client.get("/")
    assert (denied.status, denied.json()) == (429, by_defaults)
    # A denial by the defaults carries the default code, not the route's.
    denied = client.get("/limited")
    assert (denied.status, denied.json()) == (429, by_defaults)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_route_limit_without_defaults(rate_limited: MakeHarness) -> None:
    client = rate_limited()
    assert client.get("/").header("x-ratelimit-limit") is None
    assert client.get("/limited").rate()[:2] == (2, 1)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_cost_int(rate_limited: MakeHarness) -> None:
    client = rate_limited()
    replies = client.many("/cost", 3)
    assert statuses(replies) == [200, 200, 429]
    # A fixed window counts a denied hit too (limits' INCR), so nothing is left after it.
    assert [r.rate()[1] for r in replies] == [3, 1, 0]


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_cost_callable_of_the_request(rate_limited: MakeHarness) -> None:
    client = rate_limited()
    assert client.get("/costfn", headers={"X-Cost": "4"}).rate()[:2] == (5, 1)
    assert client.get("/costfn", headers={"X-Cost": "2"}).status == 429
    last = client.get("/costfn", headers={"X-Cost": "1"})
    assert (last.status, last.rate()[:2]) == (429, (5, 0))  # the denied hit was counted


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_denied_costly_hit_is_not_counted_by_a_moving_window(rate_limited: MakeHarness) -> None:
    client = rate_limited(strategy="moving-window")
    assert client.get("/costfn", headers={"X-Cost": "4"}).rate()[:2] == (5, 1)
    assert client.get("/costfn", headers={"X-Cost": "2"}).status == 429
    assert client.get("/costfn", headers={"X-Cost": "1"}).rate()[:2] == (5, 0)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_exempt_endpoint(rate_limited: MakeHarness) -> None:
    client = rate_limited(default_limits="1/minute")
    for reply in client.many("/exempt", 3):
        assert reply.status == 200
        assert reply.header("x-ratelimit-limit") is None
    assert statuses(client.many("/", 2)) == [200, 429]
    assert client.get("/exempt").status == 200


def test_exempt_paths(rate_limited: MakeHarness) -> None:
    client = rate_limited(default_limits="1/minute", exempt_paths=["/health"])
    assert statuses(client.many("/health", 3)) == [200, 200, 200]
    assert client.get("/health").header("x-ratelimit-limit") is None
    assert statuses(client.many("/", 2)) == [200, 429]
    assert client.get("/health").status == 200


def test_default_key_func(rate_limited: MakeHarness) -> None:
    client = rate_limited(default_limits="2/minute", key_func=by_user)
    assert statuses(client.many("/", 3, headers={"X-User": "ann"})) == [200, 200, 429]
    assert client.get("/", headers={"X-User": "bob"}).status == 200
    # None from key_func means the client address: a budget of its own.
    assert client.get("/").rate()[:2] == (2, 1)


@pytest.mark.parametrize("adapter", ASYNC_ADAPTERS)
def test_default_key_func_async(rate_limited: MakeHarness) -> None:
    client = rate_limited(default_limits="2/minute", key_func=by_user_async)
    assert statuses(client.many("/", 3, headers={"X-User": "ann"})) == [200, 200, 429]
    assert client.get("/", headers={"X-User": "bob"}).status == 200


@pytest.mark.parametrize(
    ("adapter", "path"),
    [(adapter, "/keyed") for adapter in ENDPOINT_ADAPTERS]
    + [(adapter, "/keyed-async") for adapter in ENDPOINT_ADAPTERS if adapter in ASYNC_ADAPTERS],
)
def test_route_key_func(rate_limited: MakeHarness, path: str) -> None:
    client = rate_limited()
    assert statuses(client.many(path, 3, headers={"X-User": "ann"})) == [200, 200, 429]
    assert client.get(path, headers={"X-User": "bob"}).status == 200


def test_headers_on_error_responses(rate_limited: MakeHarness) -> None:
    client = rate_limited(default_limits="5/minute")
    reply = client.get("/boom")
    assert reply.status == 404
    assert reply.json() == {"error": {"code": 404, "message": "no such thing"}}
    assert reply.rate()[:2] == (5, 4)
    assert reply.header("retry-after") is None


BODIES_429: dict[str, Any] = {
    "dreamfactory": {"error": {"code": 429, "message": "Too Many Requests"}},
    "bkend": {"error": "RATE_LIMIT_EXCEEDED", "message": "Too Many Requests"},
    "problem": {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Too Many Requests",
        "code": "RATE_LIMIT_EXCEEDED",
    },
}


@pytest.mark.parametrize("style", STYLES, ids=STYLE_IDS)
def test_429_is_the_envelope_in_each_style(
    rate_limited: MakeHarness, style: StyleOption, clock: FakeClock
) -> None:
    client = rate_limited(default_limits="2/minute", style=style)
    assert statuses(client.many("/", 2)) == [200, 200]
    denied = client.get("/")
    assert denied.status == 429
    assert denied.content_type == content_type_of(style)
    assert denied.json() == expected_document(TooManyRequestsException(), style)
    if isinstance(style, str):
        assert denied.json() == BODIES_429[style]
    assert denied.header("retry-after") == "60"  # the window opened at the first request
    assert denied.header("x-ratelimit-limit") == "2"
    assert denied.header("x-ratelimit-remaining") == "0"


def test_ietf_headers(rate_limited: MakeHarness, clock: FakeClock) -> None:
    client = rate_limited(default_limits="2/minute", ietf_headers=True)
    first, second = client.many("/", 2)
    assert first.header("ratelimit-policy") == '"default";q=2;w=60'
    assert first.header("ratelimit") == '"default";r=1;t=60'
    assert first.rate() == (2, 1, math.ceil(clock.now + 60))
    assert second.header("ratelimit") == '"default";r=0;t=60'
    clock.advance(15)
    denied = client.get("/")
    assert denied.status == 429
    assert denied.header("ratelimit-policy") == '"default";q=2;w=60'
    assert denied.header("ratelimit") == '"default";r=0;t=45'
    assert denied.header("retry-after") == "45"


def test_headers_disabled(rate_limited: MakeHarness, clock: FakeClock) -> None:
    client = rate_limited(default_limits="1/minute", headers_enabled=False)
    ok, denied = client.many("/", 2)
    assert ok.status == 200
    assert denied.status == 429
    for reply in (ok, denied):
        assert not any(name.startswith(("x-ratelimit", "ratelimit")) for name in reply.headers)
    assert denied.header("retry-after") == "60"  # a 429 still says when to come back


def test_headers_disabled_ietf_only(rate_limited: MakeHarness) -> None:
    client = rate_limited(default_limits="1/minute", headers_enabled=False, ietf_headers=True)
    reply = client.get("/")
    assert reply.header("x-ratelimit-limit") is None
    assert reply.header("ratelimit") == '"default";r=0;t=60'


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_window_passes_under_a_controlled_clock(
    rate_limited: MakeHarness, strategy: str, clock: FakeClock
) -> None:
    client = rate_limited(default_limits="2/minute", strategy=strategy)
    assert statuses(client.many("/", 3)) == [200, 200, 429]
    clock.advance(121)  # past the window (and past the sliding counter's previous window)
    reply = client.get("/")
    assert reply.status == 200
    assert reply.rate()[1] == 1


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
def test_reset_and_retry_after_are_exact(
    rate_limited: MakeHarness, strategy: str, clock: FakeClock
) -> None:
    client = rate_limited(default_limits="2/minute", strategy=strategy)
    start = clock.now
    assert client.get("/").rate() == (2, 1, math.ceil(start + 60))
    clock.advance(20.5)
    assert client.get("/").rate() == (2, 0, math.ceil(start + 60))
    clock.advance(10)
    denied = client.get("/")
    assert denied.rate() == (2, 0, math.ceil(start + 60))
    assert denied.header("retry-after") == str(math.ceil(start + 60 - clock.now))


# -- client keys and proxies ------------------------------------------------------------


def test_forwarded_for_from_an_untrusted_peer_is_ignored(rate_limited: MakeHarness) -> None:
    client = rate_limited(peer="203.0.113.9", default_limits="2/minute")
    replies = [client.get("/", headers={"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(3)]
    assert statuses(replies) == [200, 200, 429]


def test_forwarded_for_from_a_peer_outside_trusted_proxies_is_ignored(
    rate_limited: MakeHarness,
) -> None:
    client = rate_limited(
        peer="203.0.113.9", default_limits="2/minute", trusted_proxies=["10.0.0.0/8"]
    )
    replies = [client.get("/", headers={"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(3)]
    assert statuses(replies) == [200, 200, 429]


def test_trusted_proxy_chain_is_read_right_to_left(rate_limited: MakeHarness) -> None:
    client = rate_limited(
        peer="10.0.0.5", default_limits="2/minute", trusted_proxies=["10.0.0.0/8"]
    )
    chain = {"X-Forwarded-For": "198.51.100.1, 10.0.0.9"}
    assert statuses(client.many("/", 2, headers=chain)) == [200, 200]
    # A client prepending addresses of its own does not get a new budget.
    spoofed = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1, 10.0.0.9"}
    assert client.get("/", headers=spoofed).status == 429
    other = {"X-Forwarded-For": "198.51.100.2,10.0.0.9"}
    assert client.get("/", headers=other).status == 200
    # The proxy itself, without the header, is one more client.
    assert client.get("/").status == 200


def test_every_x_forwarded_for_line_is_read_right_to_left(rate_limited: MakeHarness) -> None:
    client = rate_limited(
        peer="10.0.0.2", default_limits="1/minute", trusted_proxies=["10.0.0.0/8"]
    )
    replies = [
        # the client's own line first, the proxy's line (the real client) after it
        client.get("/", headers=[("X-Forwarded-For", fake), ("X-Forwarded-For", "203.0.113.7")])
        for fake in ("1.1.1.1", "2.2.2.2", "3.3.3.3")
    ]
    assert statuses(replies) == [200, 429, 429]


# -- redis specifics --------------------------------------------------------------------


@pytest.mark.redis
def test_strategy_is_part_of_the_storage_key(rate_limited: MakeHarness, redis_srv: Server) -> None:
    shared = Backend("redis", "fixed-window", f"redis://127.0.0.1:{redis_srv.port}")
    fixed = rate_limited(**shared.options(default_limits="2/minute"))
    assert statuses(fixed.many("/", 3)) == [200, 200, 429]
    for strategy in ("moving-window", "sliding-window-counter"):
        other = rate_limited(**shared.options(default_limits="2/minute", strategy=strategy))
        assert other.get("/").status == 200  # never reads the fixed window's counter
    with redis.Redis(port=redis_srv.port) as client:
        keys = sorted(k.decode() for k in client.keys(f"*{shared.key_prefix}*"))
    assert any("/fixed-window/" in k for k in keys)
    assert any("/moving-window/" in k for k in keys)
    assert any("/sliding-window-counter/" in k for k in keys)


def _count_round_trips(port: int, action: Callable[[], object]) -> int:
    """Commands clients sent (not those a Lua script ran) while ``action`` ran."""
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    with redis.Redis(port=port) as watcher, redis.Redis(port=port) as marker:

        def watch() -> None:
            with watcher.monitor() as monitor:
                ready.set()
                while True:
                    command = monitor.next_command()
                    if command["command"] == "ECHO restfault-end":
                        return
                    seen.append(command)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        assert ready.wait(5)
        marker.echo("restfault-start")
        action()
        marker.echo("restfault-end")
        thread.join(5)
    started = next(i for i, c in enumerate(seen) if c["command"] == "ECHO restfault-start")
    return sum(1 for c in seen[started + 1 :] if c.get("client_type") != "lua")


@pytest.mark.redis
@pytest.mark.parametrize(
    ("strategy", "expected"), list(zip(STRATEGIES, (1, 2, 2), strict=True)), ids=STRATEGIES
)
def test_round_trips_per_request(
    rate_limited: MakeHarness, redis_srv: Server, strategy: str, expected: int
) -> None:
    backend = Backend("redis", strategy, f"redis://127.0.0.1:{redis_srv.port}")
    client = rate_limited(**backend.options(default_limits="100/minute"))
    client.many("/", 2)  # load the Lua scripts, open the connection, learn the window's end
    assert _count_round_trips(redis_srv.port, lambda: client.many("/", 5)) == 5 * expected


# -- configuration errors -----------------------------------------------------------------

# The memcached driver each adapter needs: the async one for ASGI, the sync one for WSGI.
MEMCACHED_DRIVERS = {
    adapter: "memcachio" if adapter in ASYNC_ADAPTERS else "pymemcache" for adapter in ADAPTERS
}


def test_missing_driver_names_the_extra(
    harness: MakeHarness, adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = MEMCACHED_DRIVERS[adapter]
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == driver else real(name, *a)
    )
    with pytest.raises(ConfigurationError, match=r"restfault\[memcached\]") as info:
        harness(storage_uri="memcached://127.0.0.1:1")
    assert driver in str(info.value)
