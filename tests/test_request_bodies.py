"""Request bodies (API.md §2): a body the framework cannot parse as JSON is the client's
400 INVALID_JSON; every other JSON error is the server's 500."""

from __future__ import annotations

import json

import flask
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import restfault.flask
import restfault.starlette
from restfault import ConflictResourceException
from tests.harness import BODY_PARSING_ADAPTERS, MakeHarness, error_records

JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize("adapter", BODY_PARSING_ADAPTERS)
@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "test",}',
        b"{'single': 'quotes'}",
        b'{"unclosed": [1, 2}',
        b'{"latin1": "\xe9t\xe9"}',
        b"[" * 20_000,
        b"[" * 20_000 + b"]" * 20_000,
        b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    ],
    ids=[
        "trailing-comma",
        "single-quotes",
        "unclosed",
        "invalid-utf8",
        "deep-open",
        "deep-closed",
        "deep-objects",
    ],
)
def test_invalid_json_body_is_400(
    harness: MakeHarness, body: bytes, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = harness(style="bkend")

    reply = app.post("/echo", content=body, headers=JSON_HEADERS)

    assert reply.status == 400
    document = reply.json()
    assert document["error"] == "INVALID_JSON"
    assert document["message"].startswith("Invalid JSON")
    assert error_records(restfault_log) == []


def test_valid_json_body_passes(harness: MakeHarness) -> None:
    app = harness()

    reply = app.post("/echo", content=b'{"name": "test", "tags": [1, 2]}', headers=JSON_HEADERS)

    assert reply.status == 200
    assert reply.json() == {"received": {"name": "test", "tags": [1, 2]}}


@pytest.mark.parametrize(
    "payload", ["{broken", '{"a": "\\ud800"', "[" * 20_000], ids=["syntax", "unfinished", "deep"]
)
def test_json_errors_elsewhere_stay_500(
    harness: MakeHarness, payload: str, restfault_log: pytest.LogCaptureFixture
) -> None:
    """A JSONDecodeError from an upstream reply or a file is the server's fault, not the
    client's: it must not pass for a 400 INVALID_JSON."""
    app = harness(style="bkend")

    @app.route("/upstream")
    def view() -> object:
        return json.loads(payload)

    reply = app.get("/upstream")

    assert reply.status == 500
    assert reply.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}


# -- an error raised while handling a parse error keeps its own meaning --------------------


class Domain(Exception):
    pass


def _starlette_app(action: str) -> Starlette:
    async def endpoint(request: Request) -> PlainTextResponse:
        try:
            await request.json()
        except ValueError:
            if action == "http422":
                raise HTTPException(422, "payload is not what we need") from None
            if action == "domain":
                raise Domain() from None
            raise RuntimeError("a bug while handling the parse error") from None
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", endpoint, methods=["POST"])])
    rf = restfault.starlette.RestFault(app, style="bkend")
    rf.translate(Domain)(lambda exc: ConflictResourceException(code="DOMAIN"))
    return app


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [
        ("http422", 422, "UNPROCESSABLE_CONTENT"),
        ("domain", 409, "DOMAIN"),
        ("bug", 500, "INTERNAL_SERVER_ERROR"),
    ],
)
def test_starlette_an_exception_raised_while_handling_a_parse_error_keeps_its_meaning(
    action: str, status: int, code: str
) -> None:
    client = TestClient(_starlette_app(action), raise_server_exceptions=False)
    reply = client.post("/", content=b"{not json")
    assert reply.status_code == status
    assert reply.json()["error"] == code


def test_flask_abort_422_after_a_parse_error_stays_422() -> None:
    app = flask.Flask(__name__)
    restfault.flask.RestFault(app, style="bkend")

    @app.post("/")
    def endpoint() -> str:
        try:
            json.loads(flask.request.get_data())
        except ValueError:
            flask.abort(422)
        return "ok"

    reply = app.test_client().post("/", data=b"{not json")
    assert reply.status_code == 422
    assert reply.get_json()["error"] == "UNPROCESSABLE_CONTENT"
    # ...while get_json() on the same body is the client's invalid JSON.
    app2 = flask.Flask(__name__)
    restfault.flask.RestFault(app2, style="bkend")
    app2.post("/")(lambda: flask.request.get_json())
    reply = app2.test_client().post("/", data=b"{x", content_type="application/json")
    assert (reply.status_code, reply.get_json()["error"]) == (400, "INVALID_JSON")
