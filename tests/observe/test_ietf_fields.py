"""``RateLimit`` and ``RateLimit-Policy`` (API.md §5, ``ietf_headers=True``), read by a
Structured Fields parser over many configurations, and the problem style's 429."""

from __future__ import annotations

from typing import Any

import http_sf
import pytest

from tests.harness import ENDPOINT_ADAPTERS, FakeClock, Harness, Reply
from tests.observe.conftest import MakeObserved

STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"

# name -> (options, path requested, the policy names every response lists, in order)
CONFIGURATIONS: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    "one-default": ({"default_limits": "4/minute"}, "/", ["default"]),
    "default-windows": (
        {"default_limits": "4/minute;20/hour;3/second"},
        "/",
        ["default;w=60", "default;w=3600", "default;w=1"],
    ),
    "same-window-twice": (
        {"default_limits": ["4/minute", "6/minute"]},
        "/",
        ["default;w=60#1", "default;w=60#2"],
    ),
    "path-limits": (
        {"default_limits": "9/minute", "path_limits": {"/": "6/minute", "/r": "3/minute"}},
        "/rid",
        ["default", "path:/", "path:/r"],
    ),
    "odd-path-names": (
        # (ASCII: a WSGI PATH_INFO holds UTF-8 paths as latin-1, see the report of issue 14)
        {
            "path_limits": {
                "/a;w=60": "3/minute",
                "/a": "4/minute;9/hour",
                '/a;w=60/"q"\\': "5/minute",
            }
        },
        '/a;w=60/"q"\\x',
        ["path:/a%3Bw=60", "path:/a;w=60", "path:/a;w=3600", "path:/a%3Bw=60/%22q%22%5C"],
    ),
}
# The endpoint's own limits are named after the endpoint function, which the adapter
# names (``{endpoint}`` below: learnt from the first response, then held to).
ENDPOINT_CONFIGURATIONS: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    "shared-and-endpoint": (
        {"default_limits": "8/minute"},
        "/shared",
        [
            "default",
            "shared:db %22main%22 %5C caf%C3%A9%3Bw=60%232",
            "{endpoint};w=60",
            "{endpoint};w=3600",
        ],
    ),
    "endpoint-with-code": ({"default_limits": "8/minute"}, "/limited", ["default", "{endpoint}"]),
}


def parsed(reply: Reply, field: str) -> list[tuple[str, dict[str, Any]]]:
    """A RateLimit field as a Structured Field List of Strings with parameters."""
    value = reply.header(field)
    assert value is not None, field
    members: Any = http_sf.parse(value.encode("ascii"), tltype="list")
    assert isinstance(members, list)
    result: list[tuple[str, dict[str, Any]]] = []
    for name, params in members:
        assert isinstance(name, str)  # a String, not a Token
        assert all(type(v) is int for v in params.values())
        result.append((name, dict(params)))
    return result


def check_fields(reply: Reply, names: list[str], now: float) -> None:
    """Both IETF fields list ``names``, and the legacy fields describe one of them.

    A 429 this process already knows is answered without evaluating the other limits
    (no storage round trip): it lists the limits that deny, in their order."""
    policies = parsed(reply, "RateLimit-Policy")
    states = parsed(reply, "RateLimit")
    listed = [name for name, _ in policies]
    if reply.status == 429:
        assert listed
        assert listed == [name for name in names if name in listed]
    else:
        assert listed == names
    assert [name for name, _ in states] == listed
    assert len(set(names)) == len(names)
    for (_, policy), (_, state) in zip(policies, states, strict=True):
        assert sorted(policy) == ["q", "w"]
        assert sorted(state) == ["r", "t"]
        assert policy["q"] >= 1
        assert policy["w"] >= 1
        assert 0 <= state["r"] <= policy["q"]
        assert 0 <= state["t"] <= policy["w"]
    limit, remaining, reset = (
        int(reply.headers[f"x-ratelimit-{name}"]) for name in ("limit", "remaining", "reset")
    )
    described = [
        name
        for (name, policy), (_, state) in zip(policies, states, strict=True)
        if policy["q"] == limit and state["r"] == remaining and abs(reset - (now + state["t"])) < 1
    ]
    assert described, (limit, remaining, reset, policies, states)
    if reply.status == 429:
        retry_after = int(reply.headers["retry-after"])
        holding = [state for name, state in states if name in described]
        assert any(state["t"] == retry_after and state["r"] == 0 for state in holding)


def run(app: Harness, path: str, names: list[str], clock: FakeClock) -> list[int]:
    statuses = []
    for _ in range(12):
        reply = app.get(path)
        check_fields(reply, names, clock.now)
        statuses.append(reply.status)
        clock.advance(0.125)
    return statuses


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("configuration", sorted(CONFIGURATIONS))
def test_the_fields_are_structured_and_agree_with_the_legacy_ones(
    observed: MakeObserved, adapter: str, strategy: str, configuration: str, clock: FakeClock
) -> None:
    options, path, names = CONFIGURATIONS[configuration]
    app = observed(ietf_headers=True, strategy=strategy, **options)

    statuses = run(app, path, names, clock)

    assert 429 in statuses


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("configuration", sorted(ENDPOINT_CONFIGURATIONS))
@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_shared_and_endpoint_limits_are_policies_of_their_own(
    observed: MakeObserved, adapter: str, strategy: str, configuration: str, clock: FakeClock
) -> None:
    options, path, patterns = ENDPOINT_CONFIGURATIONS[configuration]
    app = observed(ietf_headers=True, strategy=strategy, **options)
    last = parsed(app.get(path), "RateLimit-Policy")[-1][0]
    endpoint = last.removesuffix(";w=3600")
    names = [pattern.format(endpoint=endpoint) for pattern in patterns]

    statuses = run(app, path, names, clock)

    assert 429 in statuses


def test_without_ietf_headers_only_the_legacy_fields_are_sent(
    observed: MakeObserved, adapter: str
) -> None:
    reply = observed(default_limits="4/minute").get("/")

    assert reply.header("ratelimit") is None
    assert reply.header("ratelimit-policy") is None
    assert reply.header("x-ratelimit-limit") == "4"


# -- the problem style's 429 ------------------------------------------------------------------


def test_a_problem_429_is_quota_exceeded_and_lists_the_violated_policies(
    observed: MakeObserved, adapter: str, clock: FakeClock
) -> None:
    app = observed(
        style="problem",
        ietf_headers=True,
        default_limits="5/minute",
        path_limits={"/r": "1/minute"},
        request_id_header="X-Request-ID",
    )
    first = app.get("/rid")

    second = app.get("/rid", headers={"X-Request-ID": "req-2"})

    assert first.status == 200
    assert second.status == 429
    assert second.json() == {
        "type": QUOTA_EXCEEDED,
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Too Many Requests",
        "code": "RATE_LIMIT_EXCEEDED",
        "violated-policies": ["path:/r"],
        "request_id": "req-2",
    }


def test_every_breached_limit_is_a_violated_policy(
    observed: MakeObserved, adapter: str, clock: FakeClock
) -> None:
    app = observed(
        style="problem",
        ietf_headers=True,
        default_limits="1/minute;5/second",
        path_limits={"/r": "1/minute"},
    )
    app.get("/rid")

    reply = app.get("/rid")

    assert reply.status == 429
    violated = reply.json()["violated-policies"]
    assert violated == ["default;w=60", "path:/r"]
    states = dict(parsed(reply, "RateLimit"))
    assert all(states[name]["r"] == 0 for name in violated)
    assert int(reply.headers["retry-after"]) == max(states[n]["t"] for n in violated) == 60


@pytest.mark.parametrize("style", ["dreamfactory", "bkend"])
def test_other_styles_keep_their_429(observed: MakeObserved, adapter: str, style: str) -> None:
    app = observed(style=style, ietf_headers=True, default_limits="1/minute")
    app.get("/")

    reply = app.get("/")

    assert reply.status == 429
    assert "violated-policies" not in reply.body.decode()


def test_a_problem_429_without_ietf_headers_is_about_blank(
    observed: MakeObserved, adapter: str
) -> None:
    app = observed(style="problem", default_limits="1/minute")
    app.get("/")

    document = app.get("/").json()

    assert document["type"] == "about:blank"
    assert "violated-policies" not in document
