"""Rate limits through real apps: every adapter, every storage and strategy where it matters."""

from __future__ import annotations

import importlib.util
import math
import threading
from typing import Any

import pytest
import redis

from restfault import ConfigurationError

from .conftest import STRATEGIES, Backend, FakeClock, Reply, by_user, by_user_async

Make = Any  # the make_client fixture's factory


def statuses(replies: list[Reply]) -> list[int]:
    return [reply.status for reply in replies]


def test_default_limits_then_429_on_every_storage(
    make_client: Make, framework: str, backend: Backend
) -> None:
    client = make_client(framework, **backend.options(default_limits="3/minute"))
    replies = client.many("/", 4)
    assert statuses(replies) == [200, 200, 200, 429]
    assert [r.rate()[:2] for r in replies] == [(3, 2), (3, 1), (3, 0), (3, 0)]
    assert all(r.header("retry-after") is None for r in replies[:3])
    denied = replies[3]
    assert 1 <= int(denied.header("retry-after") or "0") <= 60
    assert denied.body == {"error": {"code": 429, "message": "Too Many Requests"}}


def test_default_limits_list_and_least_remaining(make_client: Make, framework: str) -> None:
    client = make_client(framework, default_limits=["10/hour", "2/minute"])
    first, second, third = client.many("/", 3)
    assert first.rate()[:2] == (2, 1)
    assert second.rate()[:2] == (2, 0)
    assert third.status == 429
    assert third.rate()[:2] == (2, 0)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_route_limit_with_its_own_code(make_client: Make, framework: str, backend: Backend) -> None:
    client = make_client(framework, style="bkend", **backend.options(default_limits="100/minute"))
    replies = client.many("/limited", 3)
    assert statuses(replies) == [200, 200, 429]
    assert replies[0].rate()[:2] == (2, 1)  # the route's limit: the least remaining
    assert replies[2].body["error"] == "EMAIL_RATE_LIMIT"
    # The default budget was charged by the admitted requests (the denied one is answered
    # without a storage round trip, API.md §6), and other routes are not limited by the
    # route's.
    index = client.get("/")
    assert index.status == 200
    assert index.rate()[:2] == (100, 97)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_route_limit_counts_on_top_of_defaults(make_client: Make, framework: str) -> None:
    client = make_client(framework, default_limits="3/minute")
    assert statuses(client.many("/limited", 2)) == [200, 200]
    assert client.get("/").rate()[:2] == (3, 0)
    denied = client.get("/")
    assert denied.status == 429
    assert denied.body["error"]["code"] == 429
    # A denial by the defaults carries the default code, not the route's.
    assert client.get("/limited").status == 429


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_route_limit_without_defaults(make_client: Make, framework: str) -> None:
    client = make_client(framework)
    assert client.get("/").header("x-ratelimit-limit") is None
    assert client.get("/limited").rate()[:2] == (2, 1)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_cost_int(make_client: Make, framework: str) -> None:
    client = make_client(framework)
    replies = client.many("/cost", 3)
    assert statuses(replies) == [200, 200, 429]
    # A fixed window counts a denied hit too (limits' INCR), so nothing is left after it.
    assert [r.rate()[1] for r in replies] == [3, 1, 0]


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_cost_callable_of_the_request(make_client: Make, framework: str) -> None:
    client = make_client(framework)
    assert client.get("/costfn", headers={"X-Cost": "4"}).rate()[:2] == (5, 1)
    assert client.get("/costfn", headers={"X-Cost": "2"}).status == 429
    last = client.get("/costfn", headers={"X-Cost": "1"})
    assert (last.status, last.rate()[:2]) == (429, (5, 0))  # the denied hit was counted


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_denied_costly_hit_is_not_counted_by_a_moving_window(
    make_client: Make, framework: str
) -> None:
    client = make_client(framework, strategy="moving-window")
    assert client.get("/costfn", headers={"X-Cost": "4"}).rate()[:2] == (5, 1)
    assert client.get("/costfn", headers={"X-Cost": "2"}).status == 429
    assert client.get("/costfn", headers={"X-Cost": "1"}).rate()[:2] == (5, 0)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_exempt_endpoint(make_client: Make, framework: str) -> None:
    client = make_client(framework, default_limits="1/minute")
    for reply in client.many("/exempt", 3):
        assert reply.status == 200
        assert reply.header("x-ratelimit-limit") is None
    assert statuses(client.many("/", 2)) == [200, 429]
    assert client.get("/exempt").status == 200


def test_exempt_paths(make_client: Make, framework: str) -> None:
    client = make_client(framework, default_limits="1/minute", exempt_paths=["/health"])
    assert statuses(client.many("/health", 3)) == [200, 200, 200]
    assert client.get("/health").header("x-ratelimit-limit") is None
    assert statuses(client.many("/", 2)) == [200, 429]
    assert client.get("/health").status == 200


def test_default_key_func(make_client: Make, framework: str) -> None:
    client = make_client(framework, default_limits="2/minute", key_func=by_user)
    assert statuses(client.many("/", 3, headers={"X-User": "ann"})) == [200, 200, 429]
    assert client.get("/", headers={"X-User": "bob"}).status == 200
    # None from key_func means the client address: a budget of its own.
    assert client.get("/").rate()[:2] == (2, 1)


@pytest.mark.parametrize("framework", ["starlette", "asgi"])
def test_default_key_func_async(make_client: Make, framework: str) -> None:
    client = make_client(framework, default_limits="2/minute", key_func=by_user_async)
    assert statuses(client.many("/", 3, headers={"X-User": "ann"})) == [200, 200, 429]
    assert client.get("/", headers={"X-User": "bob"}).status == 200


@pytest.mark.parametrize(
    ("framework", "path"),
    [("starlette", "/keyed"), ("flask", "/keyed"), ("starlette", "/keyed-async")],
)
def test_route_key_func(make_client: Make, framework: str, path: str) -> None:
    client = make_client(framework)
    assert statuses(client.many(path, 3, headers={"X-User": "ann"})) == [200, 200, 429]
    assert client.get(path, headers={"X-User": "bob"}).status == 200


def test_headers_on_error_responses(make_client: Make, framework: str) -> None:
    client = make_client(framework, default_limits="5/minute")
    reply = client.get("/boom")
    assert reply.status == 404
    assert reply.body == {"error": {"code": 404, "message": "no such thing"}}
    assert reply.rate()[:2] == (5, 4)
    assert reply.header("retry-after") is None


@pytest.mark.parametrize(
    ("style", "content_type", "body"),
    [
        (
            "dreamfactory",
            "application/json",
            {"error": {"code": 429, "message": "Too Many Requests"}},
        ),
        (
            "bkend",
            "application/json",
            {"error": "RATE_LIMIT_EXCEEDED", "message": "Too Many Requests"},
        ),
        (
            "problem",
            "application/problem+json",
            {
                "type": "about:blank",
                "title": "Too Many Requests",
                "status": 429,
                "detail": "Too Many Requests",
                "code": "RATE_LIMIT_EXCEEDED",
            },
        ),
    ],
)
def test_429_envelope_in_each_style(
    make_client: Make, framework: str, style: str, content_type: str, body: Any
) -> None:
    client = make_client(framework, default_limits="1/minute", style=style)
    denied = client.many("/", 2)[1]
    assert denied.status == 429
    assert denied.header("content-type").startswith(content_type)  # type: ignore[union-attr]
    assert denied.body == body
    assert int(denied.header("retry-after") or "0") >= 1


def test_ietf_headers(make_client: Make, framework: str, clock: FakeClock) -> None:
    client = make_client(framework, default_limits="2/minute", ietf_headers=True)
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


def test_headers_disabled(make_client: Make, framework: str) -> None:
    client = make_client(framework, default_limits="1/minute", headers_enabled=False)
    ok, denied = client.many("/", 2)
    assert ok.status == 200
    assert denied.status == 429
    for reply in (ok, denied):
        assert not any(name.startswith(("x-ratelimit", "ratelimit")) for name in reply.headers)
    assert denied.header("retry-after") is not None  # a 429 still says when to come back


def test_headers_disabled_ietf_only(make_client: Make, framework: str) -> None:
    client = make_client(
        framework, default_limits="1/minute", headers_enabled=False, ietf_headers=True
    )
    reply = client.get("/")
    assert reply.header("x-ratelimit-limit") is None
    assert reply.header("ratelimit") == '"default";r=0;t=60'


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_window_passes_under_a_controlled_clock(
    make_client: Make, framework: str, strategy: str, clock: FakeClock
) -> None:
    client = make_client(framework, default_limits="2/minute", strategy=strategy)
    assert statuses(client.many("/", 3)) == [200, 200, 429]
    clock.advance(121)  # past the window (and past the sliding counter's previous window)
    reply = client.get("/")
    assert reply.status == 200
    assert reply.rate()[1] == 1


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
def test_reset_and_retry_after_are_exact(
    make_client: Make, framework: str, strategy: str, clock: FakeClock
) -> None:
    client = make_client(framework, default_limits="2/minute", strategy=strategy)
    start = clock.now
    assert client.get("/").rate() == (2, 1, math.ceil(start + 60))
    clock.advance(20.5)
    assert client.get("/").rate() == (2, 0, math.ceil(start + 60))
    clock.advance(10)
    denied = client.get("/")
    assert denied.rate() == (2, 0, math.ceil(start + 60))
    assert denied.header("retry-after") == str(math.ceil(start + 60 - clock.now))


# -- client keys and proxies ------------------------------------------------------------


def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_client: Make, framework: str) -> None:
    client = make_client(framework, peer="203.0.113.9", default_limits="2/minute")
    replies = [client.get("/", headers={"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(3)]
    assert statuses(replies) == [200, 200, 429]


def test_forwarded_for_from_a_peer_outside_trusted_proxies_is_ignored(
    make_client: Make, framework: str
) -> None:
    client = make_client(
        framework, peer="203.0.113.9", default_limits="2/minute", trusted_proxies=["10.0.0.0/8"]
    )
    replies = [client.get("/", headers={"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(3)]
    assert statuses(replies) == [200, 200, 429]


def test_trusted_proxy_chain_is_read_right_to_left(make_client: Make, framework: str) -> None:
    client = make_client(
        framework, peer="10.0.0.5", default_limits="2/minute", trusted_proxies=["10.0.0.0/8"]
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


# -- redis specifics --------------------------------------------------------------------


@pytest.mark.redis
def test_strategy_is_part_of_the_storage_key(make_client: Make, redis_srv: Any) -> None:
    shared = Backend("redis", "fixed-window", f"redis://127.0.0.1:{redis_srv.port}")
    fixed = make_client("flask", **shared.options(default_limits="2/minute"))
    assert statuses(fixed.many("/", 3)) == [200, 200, 429]
    for strategy in ("moving-window", "sliding-window-counter"):
        other = make_client("flask", **shared.options(default_limits="2/minute", strategy=strategy))
        assert other.get("/").status == 200  # never reads the fixed window's counter
    with redis.Redis(port=redis_srv.port) as client:
        keys = sorted(k.decode() for k in client.keys(f"*{shared.key_prefix}*"))
    assert any("/fixed-window/" in k for k in keys)
    assert any("/moving-window/" in k for k in keys)
    assert any("/sliding-window-counter/" in k for k in keys)


def _count_round_trips(port: int, action: Any) -> int:
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
    ("framework", "strategy", "expected"),
    [
        (framework, strategy, expected)
        for framework in ("starlette", "flask")
        for strategy, expected in zip(STRATEGIES, (1, 2, 2), strict=True)
    ],
)
def test_round_trips_per_request(
    make_client: Make, redis_srv: Any, framework: str, strategy: str, expected: int
) -> None:
    backend = Backend("redis", strategy, f"redis://127.0.0.1:{redis_srv.port}")
    client = make_client(framework, **backend.options(default_limits="100/minute"))
    client.many("/", 2)  # load the Lua scripts, open the connection, learn the window's end
    assert _count_round_trips(redis_srv.port, lambda: client.many("/", 5)) == 5 * expected


# -- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("framework", "driver"), [("starlette", "memcachio"), ("flask", "pymemcache")]
)
def test_missing_driver_names_the_extra(
    make_client: Make, framework: str, driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == driver else real(name, *a)
    )
    with pytest.raises(ConfigurationError, match=r"restfault\[memcached\]") as info:
        make_client(framework, storage_uri="memcached://127.0.0.1:1")
    assert driver in str(info.value)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_moving_window_on_memcached_is_refused(make_client: Make, framework: str) -> None:
    with pytest.raises(ConfigurationError, match="moving-window"):
        make_client(framework, storage_uri="memcached://127.0.0.1:1", strategy="moving-window")


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_bad_limit_string_is_named(make_client: Make, framework: str) -> None:
    with pytest.raises(ConfigurationError, match="'100/fortnight'"):
        make_client(framework, default_limits="100/fortnight")
