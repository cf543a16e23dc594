"""The pure parts of issue 14, at their edges: the kept 429s, policy names, the metrics'
attribute cache, the OpenAPI rewrite of a hand-written document, the logged WSGI path."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from restfault._denial import Denials
from restfault._fastapi_openapi import truthful_openapi
from restfault._limiting import RateLimitDecision, Verdict, policy_name
from restfault._render import Renderer
from restfault._wsgi import Exchange
from restfault.asgi import RestFaultMiddleware
from restfault.wsgi import RestFaultMiddleware as WsgiMiddleware
from tests.observe.conftest import MakeObserved


def denied(code: str | None = None, policy: str = "default") -> Verdict:
    decision = RateLimitDecision(False, 1, 0, 2e9, 60, code=code, policy=policy, key="k")
    return Verdict([decision], decision, denied=True)


def test_a_kept_429_takes_each_request_s_id_without_rendering_again() -> None:
    denials = Denials(Renderer("bkend"), ietf=False, with_ids=True)

    first = denials.denial(denied(), "a", 0.0)
    second = denials.denial(denied(), 'b"\\', 0.0)

    assert json.loads(first.body) == {
        "error": "RATE_LIMIT_EXCEEDED",
        "message": "Too Many Requests",
        "request_id": "a",
    }
    assert json.loads(second.body)["request_id"] == 'b"\\'
    assert dict(second.headers)["Content-Length"] == str(len(second.body))
    assert (b"content-length", str(len(second.body)).encode()) in second.raw_headers
    assert (
        denials.denial(denied(), None, 0.0).body
        == json.dumps(
            {"error": "RATE_LIMIT_EXCEEDED", "message": "Too Many Requests"}, separators=(",", ":")
        ).encode()
    )


def test_a_code_that_holds_the_placeholder_is_rendered_without_an_id() -> None:
    """A body the placeholder cannot be found in once is never spliced: no id, no harm."""
    denials = Denials(Renderer("bkend"), ietf=False, with_ids=True)

    denial = denials.denial(denied(code="\x00restfault-request-id\x00"), "req-1", 0.0)

    assert b"req-1" not in denial.body
    assert json.loads(denial.body)["error"] == "\x00restfault-request-id\x00"


def test_the_kept_429s_are_bounded() -> None:
    denials = Denials(Renderer("bkend"), ietf=False, with_ids=False)

    bodies = [denials.denial(denied(code=f"CODE_{i}"), None, 0.0).body for i in range(300)]

    assert json.loads(bodies[-1])["error"] == "CODE_299"
    assert denials.denial(denied(code="CODE_299"), None, 0.0).body == bodies[-1]


@pytest.mark.parametrize(
    ("scope", "name"),
    [
        ("default", "default"),
        ("path:/api/v2/db/", "path:/api/v2/db/"),
        ("path:/caf\u00e9/", "path:/caf%C3%A9/"),
        ("shared:a;w=60#2", "shared:a%3Bw=60%232"),
        ('shared:"q"\\%', "shared:%22q%22%5C%25"),
        ("shared:tab\there", "shared:tab%09here"),
    ],
)
def test_policy_names_are_printable_ascii_and_distinct(scope: str, name: str) -> None:
    assert policy_name(scope) == name


def test_the_metrics_attribute_sets_are_bounded(reader_free_metrics: Any) -> None:
    metrics = reader_free_metrics()
    decisions = [
        RateLimitDecision(True, 5, 4, 2e9, 60, policy=f"p{i}", key="k") for i in range(4200)
    ]

    metrics.decided(Verdict(decisions, decisions[0]))

    assert len(metrics._outcomes) == 4096


@pytest.fixture
def reader_free_metrics() -> Callable[[], Any]:
    from restfault._metrics import Metrics

    return Metrics


def test_the_openapi_rewrite_of_a_hand_written_document() -> None:
    """Path-level members are no operations; a schema the app's own responses still use is
    kept; a document without components gets none."""
    core = RestFaultMiddleware(_never_called, style="bkend").core
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "paths": {
            "/a": {
                "parameters": [{"name": "x", "in": "query"}],
                "get": {
                    "responses": {
                        "200": {"description": "OK"},
                        "409": {
                            "description": "Conflict",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ValidationError"}
                                }
                            },
                        },
                        "422": {"description": "Validation Error"},
                    }
                },
            },
            "/b": {"post": {}},
        },
        "components": {"schemas": {"ValidationError": {"type": "object"}}},
    }

    result = truthful_openapi(document, core, [])

    assert result["paths"]["/a"]["parameters"] == [{"name": "x", "in": "query"}]
    assert sorted(result["paths"]["/a"]["get"]["responses"]) == ["200", "400", "409", "4XX", "5XX"]
    assert sorted(result["paths"]["/b"]["post"]["responses"]) == ["4XX", "5XX"]
    assert result["components"]["schemas"] == {"ValidationError": {"type": "object"}}
    assert "422" in document["paths"]["/a"]["get"]["responses"]  # the input is left alone
    assert "components" not in truthful_openapi({"paths": {}}, core, [])


@pytest.mark.parametrize("adapter", ["wsgi", "flask"])
def test_a_utf8_wsgi_path_is_logged_decoded(
    observed: MakeObserved, adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PEP 3333 holds a path's bytes as latin-1 characters: UTF-8 is decoded for the log."""
    with caplog.at_level("INFO", logger="restfault"):
        observed().get("/caf%C3%A9")

    [record] = [r for r in caplog.records if r.name == "restfault"]
    assert record.restfault["path"] == "/caf\u00e9"  # type: ignore[attr-defined]


def test_a_wsgi_path_that_is_no_utf8_is_logged_as_its_bytes() -> None:
    core = WsgiMiddleware(lambda environ, start_response: []).core

    exchange = Exchange(core, {"PATH_INFO": "/caf\xe9"}, lambda *args: None)

    assert exchange.logged_path() == "/caf\xe9"


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    """An app only there to make an adapter."""


def test_the_logged_limit_is_the_reported_one_when_it_refused_else_the_first_refusing() -> None:
    from restfault._observe import breached_limit

    hour = RateLimitDecision(True, 5, 0, 3600.0, 3600, policy="hour", key="h")  # spent
    minute = RateLimitDecision(False, 1, 0, 60.0, 60, policy="minute", key="m")
    second = RateLimitDecision(False, 1, 0, 1.0, 1, policy="second", key="s")

    assert breached_limit(Verdict([hour, minute, second], hour, denied=True)) is minute
    assert breached_limit(Verdict([minute, second], second, denied=True)) is second
    assert breached_limit(Verdict([hour], hour)) is hour
    assert breached_limit(Verdict([], None)) is None


def test_a_verdict_without_a_limit_writes_no_429_line(caplog: pytest.LogCaptureFixture) -> None:
    from restfault._observe import PlainFacts, Reporter

    with caplog.at_level("INFO", logger="restfault"):
        Reporter(None).denied(PlainFacts("GET", "/"), Verdict([], None), "X", 0.0)

    assert caplog.records == []


def test_the_kept_429s_with_ids_are_bounded() -> None:
    denials = Denials(Renderer("bkend"), ietf=False, with_ids=True)

    bodies = [denials.denial(denied(code=f"CODE_{i}"), "r", 0.0).body for i in range(300)]

    assert json.loads(bodies[-1]) == {
        "error": "CODE_299",
        "message": "Too Many Requests",
        "request_id": "r",
    }
