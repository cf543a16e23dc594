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
from restfault import ConfigurationError, UnauthorizedException
from tests.harness import (
    ENDPOINT_ADAPTERS,
    WSGI_ADAPTERS,
    FakeClock,
    Harness,
    MakeHarness,
    Reply,
    RouteLimit,
    by_user_async,
    header_of,
    ok,
    raising,
)
from tests.limits.conftest import Backend
from tests.limits.test_rate_limits import _count_round_trips, statuses

PLANS = {"gold": "3/minute", "free": "1/minute"}


def plan_of(request: Any) -> str | None:
    """A dynamic limit: the plan named by the X-Plan header; no header, no limit."""
    plan = header_of(request, "x-plan")
    return PLANS.get(plan, plan) if plan else None


async def plan_of_async(request: Any) -> str | None:
    return plan_of(request)


def failed(status: int) -> bool:
    return status == 401


def _code(reply: Reply) -> str | None:
    """The string code of a bkend-style envelope (None for a success)."""
    if reply.status < 400 or not reply.body:
        return None
    code: str = reply.json()["error"]
    return code


def policies(app: Harness) -> Harness:
    """The routes of the policy tests, on an adapter with endpoints."""
    login = RouteLimit("2/minute", shared="login", deduct_when=failed, code="LOGIN_RATE_LIMIT")
    app.route("/login/wrong", ["POST"], limits=[login])(raising(UnauthorizedException()))
    app.route("/login/right", ["POST"], limits=[login])(ok)
    service = RouteLimit("3/minute", shared="svc", code="SERVICE_LIMIT")
    app.route("/shared-a", limits=[service])(ok)
    app.route("/shared-b", limits=[service])(ok)
    app.route("/posts", ["GET", "POST"], limits=[RouteLimit("1/minute", methods=("POST",))])(ok)
    blocked = RouteLimit("2/minute", block_for=300, code="BLOCKED")
    app.route("/blocked", limits=[blocked])(ok)
    dynamic = plan_of_async if app.asynchronous else plan_of
    app.route("/plan", limits=[RouteLimit(dynamic)])(ok)
    app.route("/shadow", limits=[RouteLimit("1/minute", enforce=False)])(ok)
    return app


# -- dynamic limits: plans --------------------------------------------------------------


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_an_endpoint_limit_per_plan(rate_limited: MakeHarness, backend: Backend) -> None:
    app = policies(rate_limited(style="bkend", **backend.options()))
    gold = app.many("/plan", 4, headers={"X-Plan": "gold"})
    assert statuses(gold) == [200, 200, 200, 429]
    assert gold[0].rate()[:2] == (3, 2)
    app.peer = "192.0.2.77"  # another client: its own budget, on the free plan
    assert statuses(app.many("/plan", 2, headers={"X-Plan": "free"})) == [200, 429]
    # No plan, no limit (and no rate-limit headers).
    unlimited = app.get("/plan")
    assert unlimited.status == 200
    assert unlimited.header("x-ratelimit-limit") is None


def test_default_limits_per_plan(rate_limited: MakeHarness) -> None:
    app = rate_limited(style="bkend", default_limits=plan_of)
    assert statuses(app.many("/", 2, headers={"X-Plan": "free"})) == [200, 429]
    assert app.get("/", headers={"X-Plan": "2/minute"}).rate()[:2] == (2, 1)


def test_a_callable_returning_no_limit_string_is_a_logged_500(
    rate_limited: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    app = rate_limited(style="bkend", default_limits=plan_of)
    with caplog.at_level(logging.ERROR, logger="restfault"):
        reply = app.get("/", headers={"X-Plan": "lots"})
    assert (reply.status, _code(reply)) == (500, "INTERNAL_SERVER_ERROR")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("'lots'" in str(r.exc_info[1]) for r in errors if r.exc_info)


# -- service budgets --------------------------------------------------------------------


def test_path_limits_are_one_budget_per_prefix(rate_limited: MakeHarness, backend: Backend) -> None:
    app = rate_limited(
        style="bkend", **backend.options(path_limits={"/he": "3/minute", "/": "10/minute"})
    )
    replies = [app.get(p) for p in ("/health", "/health", "/health", "/health")]
    assert statuses(replies) == [200, 200, 200, 429]
    # Overlapping prefixes are separate budgets that all count: "/" saw the three
    # admitted requests (the fourth was refused first, without counting).
    assert app.get("/").rate()[:2] == (10, 6)
    # Unrouted paths count too: a 404 under a prefix is a request to that service.
    assert app.get("/nowhere").status == 404
    assert app.get("/").rate()[:2] == (10, 4)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_path_limits_spare_exempt_endpoints(rate_limited: MakeHarness) -> None:
    app = rate_limited(path_limits={"/": "1/minute"})
    assert statuses(app.many("/exempt", 3)) == [200, 200, 200]
    assert statuses(app.many("/", 2)) == [200, 429]


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_shared_limit_is_one_budget_over_its_endpoints(
    rate_limited: MakeHarness, backend: Backend
) -> None:
    app = policies(rate_limited(style="bkend", **backend.options()))
    replies = [app.get(p) for p in ("/shared-a", "/shared-b", "/shared-a", "/shared-b")]
    assert statuses(replies) == [200, 200, 200, 429]
    assert _code(replies[3]) == "SERVICE_LIMIT"


@pytest.mark.parametrize("cls", [restfault.starlette.RestFault, restfault.flask.RestFault])
def test_a_shared_scope_declared_twice_differently_is_refused(cls: Any) -> None:
    rf = cls()
    rf.shared_limit("3/minute", "svc")
    rf.shared_limit("3/minute", "svc")  # the same declaration: fine
    with pytest.raises(ConfigurationError, match="'svc' is declared again"):
        rf.shared_limit("4/minute", "svc")
    with pytest.raises(ConfigurationError, match="'svc' is declared again"):
        rf.shared_limit("3/minute", "svc", code="OTHER")


# -- keywords ---------------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_methods_narrow_a_limit(rate_limited: MakeHarness) -> None:
    app = policies(rate_limited())
    gets = app.many("/posts", 3)
    assert statuses(gets) == [200, 200, 200]
    assert all(r.header("x-ratelimit-limit") is None for r in gets)  # not reported either
    assert [app.post("/posts").status for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_failed_logins_only_are_counted(rate_limited: MakeHarness, backend: Backend) -> None:
    app = policies(rate_limited(style="bkend", **backend.options()))
    # Successful logins never count.
    assert statuses([app.post("/login/right") for _ in range(4)]) == [200] * 4
    first, second = (app.post("/login/wrong") for _ in range(2))
    assert (first.status, second.status) == (401, 401)
    assert first.rate()[:2] == (2, 2)  # what has been counted so far: none before it
    assert second.rate()[:2] == (2, 1)
    # Two failures spent the budget: refused now, even with the right password.
    denied = app.post("/login/right")
    assert (denied.status, _code(denied)) == (429, "LOGIN_RATE_LIMIT")
    assert int(denied.header("retry-after") or 0) >= 1


def broken_predicate(status: int) -> bool:
    raise LookupError("no such status table")


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_a_failing_deduct_when_is_logged_and_counts_nothing(
    rate_limited: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the app's predicate never turns a response into a 500: the response is the
    app's, the failure is logged with its traceback, and the limit is not counted."""
    app = rate_limited(style="bkend")
    limit = RouteLimit("1/minute", deduct_when=broken_predicate)
    app.route("/login/buggy", ["POST"], limits=[limit])(raising(UnauthorizedException()))
    with caplog.at_level(logging.ERROR, logger="restfault"):
        replies = [app.post("/login/buggy") for _ in range(3)]
    assert statuses(replies) == [401, 401, 401]  # never counted, so never refused
    failures = [r for r in caplog.records if "the deduct_when of" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.exc_info and isinstance(r.exc_info[1], LookupError) for r in failures)


@pytest.mark.redis
@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_block_for_is_a_penalty_every_process_agrees_on(
    rate_limited: MakeHarness, redis_srv: Any
) -> None:
    shared = Backend("redis", "fixed-window", f"redis://127.0.0.1:{redis_srv.port}")
    one = policies(rate_limited(style="bkend", **shared.options()))
    other = policies(rate_limited(style="bkend", **shared.options()))  # another process
    replies = one.many("/blocked", 3)
    assert statuses(replies) == [200, 200, 429]
    assert _code(replies[2]) == "BLOCKED"
    assert 295 <= int(replies[2].header("retry-after") or 0) <= 300  # the block, not the window
    denied = other.get("/blocked")
    assert (denied.status, _code(denied)) == (429, "BLOCKED")
    assert 290 <= int(denied.header("retry-after") or 0) <= 300


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_a_block_outlasts_the_window_and_requests_do_not_extend_it(
    rate_limited: MakeHarness, clock: FakeClock
) -> None:
    app = policies(rate_limited(style="bkend"))
    assert statuses(app.many("/blocked", 3)) == [200, 200, 429]
    clock.advance(100)  # the window is over, the block is not
    denied = app.get("/blocked")
    assert (denied.status, denied.header("retry-after")) == (429, "200")
    clock.advance(199)
    assert app.get("/blocked").header("retry-after") == "1"
    clock.advance(1)
    assert app.get("/blocked").status == 200


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_shadow_limits_count_log_and_never_deny(
    rate_limited: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    app = policies(rate_limited())
    with caplog.at_level(logging.WARNING, logger="restfault"):
        replies = app.many("/shadow", 3)
    assert statuses(replies) == [200, 200, 200]
    assert [r.rate()[:2] for r in replies] == [(1, 0), (1, 0), (1, 0)]
    assert all(r.header("retry-after") is None for r in replies)
    lines = [r for r in caplog.records if "shadow mode" in r.getMessage()]
    assert len(lines) == 1  # once per key and limit until its reset
    assert lines[0].levelno == logging.WARNING


def test_enforce_false_puts_every_limit_in_shadow_mode(
    rate_limited: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    app = rate_limited(default_limits="1/minute", enforce=False)
    with caplog.at_level(logging.WARNING, logger="restfault"):
        assert statuses(app.many("/", 3)) == [200, 200, 200]
    assert sum("shadow mode" in r.getMessage() for r in caplog.records) == 1


# -- the denial cache -------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_a_denied_key_costs_no_storage_command(
    rate_limited: MakeHarness, redis_srv: Any, strategy: str
) -> None:
    backend = Backend("redis", strategy, f"redis://127.0.0.1:{redis_srv.port}")
    app = rate_limited(**backend.options(default_limits="2/minute"))
    assert statuses(app.many("/", 3)) == [200, 200, 429]
    assert _count_round_trips(redis_srv.port, lambda: app.many("/", 5)) == 0


# -- several spent limits ---------------------------------------------------------------


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
    rate_limited: MakeHarness, backend: Backend
) -> None:
    app = rate_limited(**backend.options(default_limits=["1/minute", "1/hour"]))
    start = time.time()
    assert app.get("/").status == 200
    denied = app.get("/")
    end = time.time()
    assert denied.status == 429
    # Not 60 s: the hour limit is spent too, and holds the request longest.
    assert 3500 <= int(denied.header("retry-after") or 0) <= 3600
    limit, remaining, reset = denied.rate()
    assert (limit, remaining) == (1, 0)
    # (the first hit may land in the second after ``start``: its reset is rounded up)
    assert start + 3500 <= reset <= end + 3601


@pytest.mark.redis
def test_retry_after_holds_for_a_process_that_did_not_see_the_first_request(
    rate_limited: MakeHarness, redis_srv: Any
) -> None:
    shared = Backend("redis", "fixed-window", f"redis://127.0.0.1:{redis_srv.port}")
    one = rate_limited(**shared.options(default_limits=["1/minute", "1/hour"]))
    other = rate_limited(**shared.options(default_limits=["1/minute", "1/hour"]))
    assert one.get("/").status == 200
    denied = other.get("/")
    assert denied.status == 429
    assert 3500 <= int(denied.header("retry-after") or 0) <= 3600


@pytest.mark.parametrize("cls", [restfault.starlette.RestFault, restfault.flask.RestFault])
def test_a_cost_no_window_allows_is_refused_at_start_up(cls: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"cost=5 is more than 3 per 1 minute allows"):
        cls().limit("3/minute;100/hour", cost=5)(lambda request: None)


# -- keys: IPv6 subnets, IPv4-mapped addresses, trusted proxies ----------------------------


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
    rate_limited: MakeHarness, first: str, second: str, subnet: int | None, shared: bool
) -> None:
    app = rate_limited(peer=first, default_limits="1/minute", ipv6_subnet=subnet)
    assert app.get("/").status == 200
    app.peer = second
    assert app.get("/").status == (429 if shared else 200)


def test_a_dual_stack_proxy_address_is_still_trusted(rate_limited: MakeHarness) -> None:
    app = rate_limited(
        peer="::ffff:10.0.0.5", default_limits="1/minute", trusted_proxies=["10.0.0.0/8"]
    )
    assert app.get("/", headers={"X-Forwarded-For": "198.51.100.1"}).status == 200
    # Another client behind the same proxy has its own budget.
    assert app.get("/", headers={"X-Forwarded-For": "198.51.100.2"}).status == 200
    assert app.get("/", headers={"X-Forwarded-For": "198.51.100.1"}).status == 429


# -- misconfiguration warnings ----------------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture, needle: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "restfault" and r.levelno == logging.WARNING and needle in r.getMessage()
    ]


def test_forwarded_headers_without_trusted_proxies_are_warned_about_once(
    rate_limited: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    app = rate_limited(default_limits="100/minute")
    with caplog.at_level(logging.WARNING, logger="restfault"):
        app.get("/")
        assert not warnings_of(caplog, "trusted_proxies is empty")
        for _ in range(3):
            app.get("/", headers={"X-Forwarded-For": "198.51.100.1"})
        app.get("/", headers={"Forwarded": "for=198.51.100.1"})
    assert len(warnings_of(caplog, "trusted_proxies is empty")) == 1


def test_trusted_proxies_covering_everyone_are_warned_about(
    rate_limited: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="restfault"):
        rate_limited(trusted_proxies=["10.0.0.0/8", "0.0.0.0/0"])
    assert len(warnings_of(caplog, "covers every address")) == 1


def test_memory_storage_under_several_workers_is_warned_about(
    rate_limited: MakeHarness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = rate_limited(default_limits="100/minute")
    # The signs a server gives: a spawned worker's parent (uvicorn --workers) for ASGI,
    # wsgi.multiprocess for WSGI (gunicorn -w 2 and more).
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    real_environ = EnvironBuilder.get_environ

    def multiprocess_environ(builder: EnvironBuilder) -> Any:
        return {**real_environ(builder), "wsgi.multiprocess": True}

    monkeypatch.setattr(EnvironBuilder, "get_environ", multiprocess_environ)
    with caplog.at_level(logging.WARNING, logger="restfault"):
        app.get("/")
        app.get("/")
    assert len(warnings_of(caplog, "several worker processes")) == 1


# -- bad input --------------------------------------------------------------------------

BAD_KEYWORDS = [
    ({"methods": ["GETT"]}, r"names no HTTP method \(GETT unknown\)"),
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


@pytest.mark.parametrize("cls", [restfault.starlette.RestFault, restfault.flask.RestFault])
@pytest.mark.parametrize(("keywords", "message"), BAD_KEYWORDS)
def test_bad_limit_keywords_are_named(cls: Any, keywords: dict[str, Any], message: str) -> None:
    rf = cls()
    with pytest.raises(ConfigurationError, match=message):
        rf.limit("1/minute", **keywords)
    with pytest.raises(ConfigurationError, match=message):
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


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_policy_options_are_named(
    harness: MakeHarness, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        harness(**options)


@pytest.mark.parametrize("adapter", WSGI_ADAPTERS)
def test_async_callables_are_refused_by_wsgi_adapters(harness: MakeHarness) -> None:
    with pytest.raises(ConfigurationError, match=r"key_func=.* is async, but a WSGI adapter"):
        harness(key_func=by_user_async)
    with pytest.raises(ConfigurationError, match=r"default_limits=.* is async"):
        harness(default_limits=plan_of_async)
    with pytest.raises(ConfigurationError, match="is async, but a WSGI adapter"):
        restfault.flask.RestFault().limit("1/minute", key_func=by_user_async)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
@pytest.mark.parametrize("cost", [lambda request: 0, lambda request: "2"], ids=["zero", "text"])
def test_a_cost_callable_returning_no_positive_int_is_a_logged_500(
    rate_limited: MakeHarness, cost: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = rate_limited(style="bkend")
    app.route("/odd", limits=[RouteLimit("5/minute", cost=cost)])(ok)
    with caplog.at_level(logging.ERROR, logger="restfault"):
        reply = app.get("/odd")
    assert (reply.status, _code(reply)) == (500, "INTERNAL_SERVER_ERROR")
    assert [r.levelno for r in caplog.records if r.name == "restfault"] == [logging.ERROR]


@pytest.mark.parametrize("adapter", WSGI_ADAPTERS)
def test_an_awaitable_where_nothing_can_await_it_is_a_logged_500(
    rate_limited: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A key_func that returns a coroutine (a lambda around an ``async def``) slips past
    the start-up check; a WSGI adapter answers 500 rather than key everyone apart."""

    async def key() -> str:
        return "k"  # pragma: no cover

    app = rate_limited(style="bkend", default_limits="5/minute", key_func=lambda r: key())
    with caplog.at_level(logging.ERROR, logger="restfault"):
        reply = app.get("/")
    assert (reply.status, _code(reply)) == (500, "INTERNAL_SERVER_ERROR")
    assert "make the callable sync" in caplog.text


def test_a_builtin_key_func_without_a_signature_is_trusted(rate_limited: MakeHarness) -> None:
    import operator

    app = rate_limited(default_limits="1/minute", key_func=operator.attrgetter("__class__"))
    assert statuses(app.many("/", 2)) == [200, 429]


@pytest.mark.parametrize("cls", [restfault.starlette.RestFault, restfault.flask.RestFault])
def test_a_limit_needs_a_value_and_a_shared_limit_a_scope(cls: Any) -> None:
    rf = cls()
    with pytest.raises(ConfigurationError, match=r"limit\(\) needs a limit"):
        rf.limit(None)
    for scope in ("", None, 3):
        with pytest.raises(ConfigurationError, match=r"scope=.* must be a non-empty string"):
            rf.shared_limit("1/minute", scope)


def test_path_limits_and_exempt_paths_match_non_ascii_paths(rate_limited: MakeHarness) -> None:
    """PEP 3333 hands a path's bytes over as latin-1 text; limits are written in UTF-8."""
    app = rate_limited(
        default_limits="1/minute",
        path_limits={"/café/": "1/minute"},
        exempt_paths=["/santé"],
    )
    app.route("/café/menu")(ok)
    app.route("/santé")(ok)
    assert statuses(app.many("/santé", 3)) == [200, 200, 200]
    assert app.get("/café/menu").status == 200
    denied = app.get("/café/menu")
    assert denied.status == 429
    assert denied.rate()[0] == 1


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_a_limit_key_func_returning_none_keys_by_the_client_address(
    rate_limited: MakeHarness,
) -> None:
    """The option's key_func keys requests by user; the login limit, by address whatever
    the user (a None from its key_func), as failed-login limits are."""

    def by_address(request: Any) -> None:
        return None

    app = rate_limited(key_func=lambda request: header_of(request, "x-user"))
    app.route("/signin", limits=[RouteLimit("2/minute", key_func=by_address)])(ok)
    replies = [app.get("/signin", headers={"X-User": user}) for user in ("a", "b", "c")]
    assert statuses(replies) == [200, 200, 429]
    app.peer = "192.0.2.99"  # another address: a budget of its own
    assert app.get("/signin", headers={"X-User": "a"}).status == 200
