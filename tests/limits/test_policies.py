"""Limit policies (API.md §4, §6) through real apps, on every storage and adapter they
apply to: dynamic limits (plans), service budgets (path limits, shared limits), methods,
failure-only counting, penalties, shadow mode, the denial cache, IPv6-aware keys, and
``Retry-After`` when several limits are spent."""

from __future__ import annotations

import logging
import multiprocessing
import time
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

import restfault.flask
import restfault.starlette
from restfault import ConfigurationError
from tests.limits.conftest import Backend, Client, FakeClock, Reply
from tests.limits.test_rate_limits import _count_round_trips, statuses

Make = Any
ROUTED = ("starlette", "flask")
ALL = ("starlette", "flask", "asgi", "wsgi")


def _code(reply: Reply) -> str | None:
    """The string code of a bkend-style envelope (None for a success)."""
    return reply.body.get("error") if reply.status >= 400 and reply.body else None


# -- dynamic limits: plans --------------------------------------------------------------


@pytest.mark.parametrize("framework", ROUTED)
def test_an_endpoint_limit_per_plan(make_client: Make, framework: str, backend: Backend) -> None:
    client = make_client(framework, style="bkend", **backend.options())
    gold = client.many("/plan", 4, headers={"X-Plan": "gold", "X-User": "g"})
    assert statuses(gold) == [200, 200, 200, 429]
    assert gold[0].rate()[:2] == (3, 2)
    # Another peer: its own budget, on the free plan.
    free = make_client(framework, style="bkend", peer="192.0.2.77", **backend.options())
    assert statuses(free.many("/plan", 2, headers={"X-Plan": "free"})) == [200, 429]
    # No plan, no limit (and no rate-limit headers).
    unlimited = client.get("/plan")
    assert unlimited.status == 200
    assert unlimited.header("x-ratelimit-limit") is None


@pytest.mark.parametrize("framework", ALL)
def test_default_limits_per_plan(make_client: Make, framework: str) -> None:
    from tests.limits.conftest import plan_of

    client = make_client(framework, style="bkend", default_limits=plan_of)
    assert statuses(client.many("/", 2, headers={"X-Plan": "free"})) == [200, 429]
    assert client.get("/", headers={"X-Plan": "2/minute"}).rate()[:2] == (2, 1)


@pytest.mark.parametrize("framework", ALL)
def test_a_callable_returning_no_limit_string_is_a_logged_500(
    make_client: Make, framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.limits.conftest import plan_of

    client = make_client(framework, style="bkend", default_limits=plan_of)
    with caplog.at_level(logging.ERROR, logger="restfault"):
        reply = client.get("/", headers={"X-Plan": "lots"})
    assert (reply.status, _code(reply)) == (500, "INTERNAL_SERVER_ERROR")
    assert any("'lots'" in r.getMessage() or "'lots'" in str(r.exc_info) for r in caplog.records)


# -- service budgets --------------------------------------------------------------------


@pytest.mark.parametrize("framework", ALL)
def test_path_limits_are_one_budget_per_prefix(
    make_client: Make, framework: str, backend: Backend
) -> None:
    client = make_client(
        framework,
        style="bkend",
        **backend.options(path_limits={"/shared": "3/minute", "/": "10/minute"}),
    )
    replies = [client.get(p) for p in ("/shared-a", "/shared-b", "/shared-a", "/shared-b")]
    assert statuses(replies) == [200, 200, 200, 429]
    # Overlapping prefixes are separate budgets that all count: "/" saw the three
    # admitted requests (the fourth was refused first, without counting).
    assert client.get("/").rate()[:2] == (10, 6)


@pytest.mark.parametrize("framework", ROUTED)
def test_path_limits_spare_exempt_endpoints(make_client: Make, framework: str) -> None:
    client = make_client(framework, path_limits={"/": "1/minute"})
    assert statuses(client.many("/exempt", 3)) == [200, 200, 200]
    assert statuses(client.many("/", 2)) == [200, 429]


@pytest.mark.parametrize("framework", ROUTED)
def test_shared_limit_is_one_budget_over_its_endpoints(
    make_client: Make, framework: str, backend: Backend
) -> None:
    client = make_client(framework, style="bkend", **backend.options())
    replies = [client.get(p) for p in ("/shared-a", "/shared-b", "/shared-a", "/shared-b")]
    assert statuses(replies) == [200, 200, 200, 429]
    assert _code(replies[3]) == "SERVICE_LIMIT"


@pytest.mark.parametrize("adapter", [restfault.starlette.RestFault, restfault.flask.RestFault])
def test_a_shared_scope_declared_twice_differently_is_refused(adapter: Any) -> None:
    rf = adapter()
    rf.shared_limit("3/minute", "svc")
    rf.shared_limit("3/minute", "svc")  # the same declaration: fine
    with pytest.raises(ConfigurationError, match="'svc' is declared again"):
        rf.shared_limit("4/minute", "svc")
    with pytest.raises(ConfigurationError, match="'svc' is declared again"):
        rf.shared_limit("3/minute", "svc", code="OTHER")


# -- keywords ---------------------------------------------------------------------------


@pytest.mark.parametrize("framework", ROUTED)
def test_methods_narrow_a_limit(make_client: Make, framework: str) -> None:
    client = make_client(framework)
    gets = client.many("/posts", 3)
    assert statuses(gets) == [200, 200, 200]
    assert all(r.header("x-ratelimit-limit") is None for r in gets)  # not reported either
    assert [client.post("/posts").status for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("framework", ROUTED)
def test_failed_logins_only_are_counted(
    make_client: Make, framework: str, backend: Backend
) -> None:
    client = make_client(framework, style="bkend", **backend.options())
    right, wrong = {"X-Password": "right"}, {"X-Password": "wrong"}
    # Successful logins never count.
    assert statuses([client.post("/login", headers=right) for _ in range(4)]) == [200] * 4
    first, second = (client.post("/login", headers=wrong) for _ in range(2))
    assert (first.status, second.status) == (401, 401)
    assert first.rate()[:2] == (2, 2)  # what has been counted so far: none before it
    assert second.rate()[:2] == (2, 1)
    # Two failures spent the budget: refused now, even with the right password.
    denied = client.post("/login", headers=right)
    assert (denied.status, _code(denied)) == (429, "LOGIN_RATE_LIMIT")
    assert int(denied.header("retry-after") or 0) >= 1


@pytest.mark.redis
@pytest.mark.parametrize("framework", ROUTED)
def test_block_for_is_a_penalty_every_process_agrees_on(
    make_client: Make, framework: str, redis_srv: Any
) -> None:
    shared = Backend("redis", "fixed-window", f"redis://127.0.0.1:{redis_srv.port}")
    one = make_client(framework, style="bkend", **shared.options())
    other = make_client(framework, style="bkend", **shared.options())  # another process
    replies = one.many("/blocked", 3)
    assert statuses(replies) == [200, 200, 429]
    assert _code(replies[2]) == "BLOCKED"
    assert 295 <= int(replies[2].header("retry-after") or 0) <= 300  # the block, not the window
    denied = other.get("/blocked")
    assert (denied.status, _code(denied)) == (429, "BLOCKED")
    assert 290 <= int(denied.header("retry-after") or 0) <= 300


@pytest.mark.parametrize("framework", ROUTED)
def test_a_block_outlasts_the_window_and_requests_do_not_extend_it(
    make_client: Make, framework: str, clock: FakeClock
) -> None:
    client = make_client(framework, style="bkend")
    assert statuses(client.many("/blocked", 3)) == [200, 200, 429]
    clock.advance(100)  # the window is over, the block is not
    denied = client.get("/blocked")
    assert (denied.status, denied.header("retry-after")) == (429, "200")
    clock.advance(199)
    assert client.get("/blocked").header("retry-after") == "1"
    clock.advance(1)
    assert client.get("/blocked").status == 200


@pytest.mark.parametrize("framework", ROUTED)
def test_shadow_limits_count_log_and_never_deny(
    make_client: Make, framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(framework)
    with caplog.at_level(logging.WARNING, logger="restfault"):
        replies = client.many("/shadow", 3)
    assert statuses(replies) == [200, 200, 200]
    assert [r.rate()[:2] for r in replies] == [(1, 0), (1, 0), (1, 0)]
    assert all(r.header("retry-after") is None for r in replies)
    lines = [r for r in caplog.records if "shadow mode" in r.getMessage()]
    assert len(lines) == 1  # once per key and limit until its reset
    assert lines[0].levelno == logging.WARNING


@pytest.mark.parametrize("framework", ALL)
def test_enforce_false_puts_every_limit_in_shadow_mode(
    make_client: Make, framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(framework, default_limits="1/minute", enforce=False)
    with caplog.at_level(logging.WARNING, logger="restfault"):
        assert statuses(client.many("/", 3)) == [200, 200, 200]
    assert sum("shadow mode" in r.getMessage() for r in caplog.records) == 1


# -- the denial cache -------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("framework", ALL)
@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_a_denied_key_costs_no_storage_command(
    make_client: Make, redis_srv: Any, framework: str, strategy: str
) -> None:
    backend = Backend("redis", strategy, f"redis://127.0.0.1:{redis_srv.port}")
    client = make_client(framework, **backend.options(default_limits="2/minute"))
    assert statuses(client.many("/", 3)) == [200, 200, 429]
    trips = _count_round_trips(redis_srv.port, lambda: client.many("/", 5))
    assert trips == 0


# -- several spent limits ---------------------------------------------------------------


@pytest.mark.parametrize("framework", ALL)
@pytest.mark.parametrize(
    "backend",
    [  # windows that end a window after their first hit (a sliding counter's do not)
        (kind, strategy)
        for kind in ("memory", "redis", "memcached")
        for strategy in ("fixed-window", "moving-window")
        if (kind, strategy) != ("memcached", "moving-window")
    ],
    indirect=True,
)
def test_retry_after_names_when_the_request_would_really_pass(
    make_client: Make, framework: str, backend: Backend
) -> None:
    client = make_client(framework, **backend.options(default_limits=["1/minute", "1/hour"]))
    start = time.time()
    assert client.get("/").status == 200
    denied = client.get("/")
    assert denied.status == 429
    # Not 60 s: the hour limit is spent too, and holds the request longest.
    assert 3500 <= int(denied.header("retry-after") or 0) <= 3600
    limit, remaining, reset = denied.rate()
    assert (limit, remaining) == (1, 0)
    assert start + 3500 <= reset <= start + 3601


@pytest.mark.redis
@pytest.mark.parametrize("framework", ALL)
def test_retry_after_holds_for_a_process_that_did_not_see_the_first_request(
    make_client: Make, framework: str, redis_srv: Any
) -> None:
    shared = Backend("redis", "fixed-window", f"redis://127.0.0.1:{redis_srv.port}")
    one = make_client(framework, **shared.options(default_limits=["1/minute", "1/hour"]))
    other = make_client(framework, **shared.options(default_limits=["1/minute", "1/hour"]))
    assert one.get("/").status == 200
    denied = other.get("/")
    assert denied.status == 429
    assert 3500 <= int(denied.header("retry-after") or 0) <= 3600


@pytest.mark.parametrize("framework", ROUTED)
def test_a_cost_no_window_allows_is_refused_at_start_up(framework: str) -> None:
    rf = (
        restfault.starlette.RestFault if framework == "starlette" else restfault.flask.RestFault
    )()
    with pytest.raises(ConfigurationError, match=r"cost=5 is more than 3 per 1 minute allows"):
        rf.limit("3/minute;100/hour", cost=5)(lambda request: None)


# -- keys: IPv6 subnets, IPv4-mapped addresses, trusted proxies ----------------------------


@pytest.mark.parametrize("framework", ALL)
@pytest.mark.parametrize(
    ("first", "second", "subnet", "shared"),
    [
        ("2001:db8:1:100::1", "2001:db8:1:1ff::9", 56, True),  # one /56: one budget
        ("2001:db8:1:100::1", "2001:db8:1:200::1", 56, False),
        ("2001:db8:1:100::1", "2001:db8:1:100::2", None, False),  # whole addresses
        ("2001:db8:1:100::1", "2001:db8:1:100::2", 64, True),
        ("::ffff:192.0.2.1", "192.0.2.1", 56, True),  # IPv4-mapped is its IPv4 address
    ],
)
def test_ipv6_clients_are_keyed_by_subnet(
    make_client: Make, framework: str, first: str, second: str, subnet: int | None, shared: bool
) -> None:
    one = make_client(framework, peer=first, default_limits="1/minute", ipv6_subnet=subnet)
    other = one.from_peer(second)
    assert one.get("/").status == 200
    assert other.get("/").status == (429 if shared else 200)


@pytest.mark.parametrize("framework", ALL)
def test_a_dual_stack_proxy_address_is_still_trusted(make_client: Make, framework: str) -> None:
    client = make_client(
        framework, peer="::ffff:10.0.0.5", default_limits="1/minute", trusted_proxies=["10.0.0.0/8"]
    )
    assert client.get("/", headers={"X-Forwarded-For": "198.51.100.1"}).status == 200
    # Another client behind the same proxy has its own budget.
    assert client.get("/", headers={"X-Forwarded-For": "198.51.100.2"}).status == 200
    assert client.get("/", headers={"X-Forwarded-For": "198.51.100.1"}).status == 429


# -- misconfiguration warnings ----------------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture, needle: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "restfault" and r.levelno == logging.WARNING and needle in r.getMessage()
    ]


@pytest.mark.parametrize("framework", ALL)
def test_forwarded_headers_without_trusted_proxies_are_warned_about_once(
    make_client: Make, framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(framework, default_limits="100/minute")
    with caplog.at_level(logging.WARNING, logger="restfault"):
        client.get("/")
        assert not warnings_of(caplog, "trusted_proxies is empty")
        for _ in range(3):
            client.get("/", headers={"X-Forwarded-For": "198.51.100.1"})
        client.get("/", headers={"Forwarded": "for=198.51.100.1"})
    assert len(warnings_of(caplog, "trusted_proxies is empty")) == 1


@pytest.mark.parametrize("framework", ALL)
def test_trusted_proxies_covering_everyone_are_warned_about(
    make_client: Make, framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="restfault"):
        make_client(framework, trusted_proxies=["10.0.0.0/8", "0.0.0.0/0"])
    assert len(warnings_of(caplog, "covers every address")) == 1


@pytest.mark.parametrize("framework", ALL)
def test_memory_storage_under_several_workers_is_warned_about(
    make_client: Make, framework: str, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    client: Client = make_client(framework, default_limits="100/minute")
    # The signs a server gives: a spawned worker's parent (uvicorn --workers) for ASGI,
    # wsgi.multiprocess for WSGI (gunicorn -w 2 and more).
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    real_environ = EnvironBuilder.get_environ

    def multiprocess_environ(builder: EnvironBuilder) -> Any:
        return {**real_environ(builder), "wsgi.multiprocess": True}

    monkeypatch.setattr(EnvironBuilder, "get_environ", multiprocess_environ)
    with caplog.at_level(logging.WARNING, logger="restfault"):
        client.get("/")
        client.get("/")
    assert len(warnings_of(caplog, "several worker processes")) == 1


# -- bad input --------------------------------------------------------------------------

BAD_KEYWORDS = [
    ({"methods": ["GETT"]}, "names no HTTP method (GETT unknown)"),
    ({"methods": "POST"}, "must be an iterable of HTTP methods"),
    ({"methods": []}, "names no HTTP method"),
    ({"block_for": 0}, "block_for=0 must be a positive number of seconds"),
    ({"block_for": -5}, "block_for=-5 must be"),
    ({"block_for": True}, "block_for=True must be"),
    ({"deduct_when": "401"}, "deduct_when='401' must be a callable taking the status code"),
    ({"deduct_when": lambda: True}, "must be a callable taking the status code"),
    ({"enforce": "no"}, "enforce='no' must be True or False"),
    ({"cost": 0}, "cost=0 must be a positive int"),
    ({"code": ""}, "code='' must be a non-empty string"),
]


@pytest.mark.parametrize("adapter", [restfault.starlette.RestFault, restfault.flask.RestFault])
@pytest.mark.parametrize(("keywords", "message"), BAD_KEYWORDS)
def test_bad_limit_keywords_are_named(adapter: Any, keywords: dict[str, Any], message: str) -> None:
    rf = adapter()
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rf.limit("1/minute", **keywords)
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rf.shared_limit("1/minute", "scope", **keywords)


BAD_OPTIONS = [
    ({"ipv6_subnet": 31}, "ipv6_subnet=31 must be a prefix length from 32 to 64"),
    ({"ipv6_subnet": 65}, "ipv6_subnet=65 must be"),
    ({"ipv6_subnet": True}, "ipv6_subnet=True must be"),
    ({"ipv6_subnet": "56"}, "ipv6_subnet='56' must be"),
    ({"path_limits": {"api/": "1/minute"}}, "the key 'api/' must be a path prefix"),
    ({"path_limits": ["/api/"]}, "path_limits=\\['/api/'\\] must be a mapping"),
    ({"path_limits": {"/api/": "lots"}}, "path_limits\\['/api/'\\]: 'lots' is not a rate limit"),
    ({"enforce": 0}, "enforce=0 must be True or False"),
    ({"default_limits": lambda: None}, "must be a callable taking the request"),
]


@pytest.mark.parametrize("framework", ALL)
@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_policy_options_are_named(
    make_client: Make, framework: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_client(framework, **options)


@pytest.mark.parametrize("framework", ["flask", "wsgi"])
def test_async_callables_are_refused_by_wsgi_adapters(make_client: Make, framework: str) -> None:
    from tests.limits.conftest import by_user_async, plan_of_async

    with pytest.raises(ConfigurationError, match=r"key_func=.* is async, but a WSGI adapter"):
        make_client(framework, key_func=by_user_async)
    with pytest.raises(ConfigurationError, match=r"default_limits=.* is async"):
        make_client(framework, default_limits=plan_of_async)
    rf = restfault.flask.RestFault()
    with pytest.raises(ConfigurationError, match="is async, but a WSGI adapter"):
        rf.limit("1/minute", key_func=by_user_async)
