"""Request ids (API.md §4 ``request_id_header``, §7): reused or minted, echoed on every
response, placed in every envelope, and ``current_request_id()`` inside the request."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

import restfault
import restfault.asgi
import restfault.flask
import restfault.starlette
import restfault.wsgi
from restfault import RestException, current_request_id
from tests.harness import (
    AsgiHarness,
    WsgiHarness,
    asgi_call,
    body_of,
    http_scope,
    serve,
    start_headers,
)
from tests.observe.conftest import MakeObserved

HEX_ID = re.compile(r"[0-9a-f]{32}")
ID = "X-Request-ID"

# path -> status, for every kind of response: the app's own, restfault's envelopes (a
# raised exception, a converted text response, an unexpected error, routing), its 429.
RESPONSES = [
    ("/", 200),
    ("/stream", 200),
    ("/missing", 404),
    ("/text-404", 404),
    ("/unavailable", 503),
    ("/boom", 500),
    ("/nowhere", 404),
]


@pytest.mark.parametrize(("path", "status"), RESPONSES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_valid_incoming_id_is_echoed_on_every_response(
    observed: MakeObserved, adapter: str, path: str, status: int, method: str
) -> None:
    app = observed(request_id_header=ID)

    reply = app.request(method, path, headers={ID: "req-42~!"})

    assert reply.status == status
    assert reply.headers.get_list(ID) == ["req-42~!"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_429_and_maintenance_503_carry_the_id(
    observed: MakeObserved, adapter: str, method: str
) -> None:
    limited = observed(request_id_header=ID, default_limits="1/minute")
    limited.request(method, "/", headers={ID: "first"})
    denied = limited.request(method, "/", headers={ID: "second"})
    down = observed(request_id_header=ID, maintenance=lambda request: 30)
    unavailable = down.request(method, "/", headers={ID: "third"})

    assert (denied.status, denied.headers.get_list(ID)) == (429, ["second"])
    assert (unavailable.status, unavailable.headers.get_list(ID)) == (503, ["third"])
    if method == "GET":
        assert denied.json()["error"]["request_id"] == "second"
        assert unavailable.json()["error"]["request_id"] == "third"


@pytest.mark.parametrize(
    "incoming",
    [
        "",
        "has space",
        "tab\there",
        "x" * 129,
        "quote\x7f",  # DEL is not visible
    ],
    ids=["empty", "space", "tab", "129-chars", "del"],
)
def test_an_invalid_incoming_id_is_replaced_by_a_minted_one(
    observed: MakeObserved, adapter: str, incoming: str
) -> None:
    app = observed(request_id_header=ID)

    reply = app.get("/rid", headers={ID: incoming})

    minted = reply.header(ID)
    assert minted is not None
    assert HEX_ID.fullmatch(minted)
    assert reply.json() == {"rid": minted}


def test_a_non_ascii_incoming_id_is_replaced(observed: MakeObserved, adapter: str) -> None:
    """Sent as the latin-1 bytes a client may put on the wire (test clients refuse them)."""
    app = observed(request_id_header=ID)
    app.ensure_built()
    if isinstance(app, AsgiHarness):
        headers = [(b"x-request-id", "caf\u00e9".encode("latin-1"))]
        sent, _ = asgi_call(app.asgi_app, http_scope("/rid", headers=headers))
        minted, body = start_headers(sent)["x-request-id"], body_of(sent)
    else:
        assert isinstance(app, WsgiHarness)
        exchange = serve(app.wsgi_app, "/rid", headers={ID: "caf\u00e9"})
        minted, body = exchange.headers["x-request-id"], exchange.body

    assert HEX_ID.fullmatch(minted)
    assert json.loads(body) == {"rid": minted}


@pytest.mark.parametrize("incoming", ["a", "!", "~" * 128, "0123-abcd_EF.gh:ij/kl"])
def test_the_boundaries_of_a_valid_id_are_kept(
    observed: MakeObserved, adapter: str, incoming: str
) -> None:
    reply = observed(request_id_header=ID).get("/rid", headers={ID: incoming})

    assert reply.header(ID) == incoming
    assert reply.json() == {"rid": incoming}


def test_minted_ids_are_unique(observed: MakeObserved, adapter: str) -> None:
    app = observed(request_id_header="Request-Id")

    ids = [reply.header("Request-Id") for reply in app.many("/", 50)]

    assert len(set(ids)) == 50
    assert all(i is not None and HEX_ID.fullmatch(i) for i in ids)


def test_the_app_s_own_id_header_is_not_duplicated(observed: MakeObserved, adapter: str) -> None:
    app = observed(request_id_header=ID)

    reply = app.get("/own-id", headers={ID: "client-id"})

    assert reply.headers.get_list(ID) == ["app-own"]


def test_ids_are_off_by_default(observed: MakeObserved, adapter: str) -> None:
    app = observed()

    replies = [app.get(p, headers={ID: "req-1"}) for p in ("/rid", "/missing", "/boom")]

    assert [r.header(ID) for r in replies] == [None, None, None]
    assert replies[0].json() == {"rid": None}
    assert "request_id" not in replies[1].json()["error"]


# -- the envelope -----------------------------------------------------------------------------


def _style_callable(exc: RestException, debug: bool) -> tuple[dict[str, Any], str]:
    return {"kind": exc.code, "trace": current_request_id()}, "application/vnd.house+json"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (
            "dreamfactory",
            {"error": {"code": 404, "message": "No such thing", "request_id": "req-7"}},
        ),
        (
            "bkend",
            {"error": "THING_NOT_FOUND", "message": "No such thing", "request_id": "req-7"},
        ),
        (
            "problem",
            {
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": "No such thing",
                "code": "THING_NOT_FOUND",
                "request_id": "req-7",
            },
        ),
        (_style_callable, {"kind": "THING_NOT_FOUND", "trace": "req-7"}),
    ],
    ids=["dreamfactory", "bkend", "problem", "callable"],
)
def test_the_envelope_carries_the_id_where_each_style_places_it(
    observed: MakeObserved, adapter: str, style: Any, expected: dict[str, Any]
) -> None:
    app = observed(request_id_header=ID, style=style)

    reply = app.get("/missing", headers={ID: "req-7"})

    assert reply.json() == expected


@pytest.mark.parametrize("style", ["dreamfactory", "bkend", "problem"])
def test_a_500_names_the_id_that_its_log_record_carries(
    observed: MakeObserved, adapter: str, style: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = observed(request_id_header=ID, style=style)

    with caplog.at_level("ERROR", logger="restfault"):
        reply = app.get("/boom")

    document = reply.json()
    request_id = (
        document["error"]["request_id"] if style == "dreamfactory" else document["request_id"]
    )
    assert reply.header(ID) == request_id
    [record] = [r for r in caplog.records if r.name == "restfault"]
    assert record.restfault["request_id"] == request_id  # type: ignore[attr-defined]
    assert b"hunter2" not in reply.body


@pytest.mark.parametrize("style", ["dreamfactory", "bkend", "problem", _style_callable])
def test_every_429_of_a_flood_carries_its_own_id(
    observed: MakeObserved, adapter: str, style: Any
) -> None:
    """The 429 is rendered once per code and each request's id spliced in."""
    app = observed(request_id_header=ID, style=style, default_limits="1/minute")
    app.get("/")

    replies = [app.get("/", headers={ID: f'flood-{i}\\"'}) for i in range(3)]

    for i, reply in enumerate(replies):
        assert reply.status == 429
        assert reply.header(ID) == f'flood-{i}\\"'
        assert int(reply.headers["content-length"]) == len(reply.body)
        document = reply.json()
        found = (
            document.get("trace")
            or document.get("request_id")
            or document.get("error", {}).get("request_id")
        )
        assert found == f'flood-{i}\\"'


# -- current_request_id() ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/rid", "/batch", "/stream"])
def test_current_request_id_inside_the_app_run_batch_and_a_streamed_body(
    observed: MakeObserved, adapter: str, path: str
) -> None:
    app = observed(request_id_header=ID)

    reply = app.get(path, headers={ID: "inside"})

    expected: dict[str, bytes] = {
        "/rid": b'{"rid":"inside"}',
        "/batch": b'{"ids":["inside","inside"]}',
        "/stream": b"0:inside;1:inside;",
    }
    assert reply.body.replace(b" ", b"").rstrip(b"\n") == expected[path]


def test_current_request_id_is_none_outside_a_request(observed: MakeObserved, adapter: str) -> None:
    app = observed(request_id_header=ID)
    app.get("/rid")

    assert restfault.current_request_id() is None


def test_an_app_mounted_inside_another_restfault_keeps_the_outer_id() -> None:
    """One request, one id: the inner adapter reuses the id the outer one gave it."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route
    from starlette.testclient import TestClient

    from restfault.starlette import RestFault

    async def rid(request: Any) -> JSONResponse:
        return JSONResponse({"rid": current_request_id()})

    inner = Starlette(routes=[Route("/rid", rid)])
    RestFault(inner, request_id_header=ID)
    outer = Starlette(routes=[Mount("/v2", app=inner)])
    RestFault(outer, request_id_header=ID)

    reply = TestClient(outer).get("/v2/rid")

    assert reply.headers.get_list(ID) == [reply.json()["rid"]]
    assert HEX_ID.fullmatch(reply.json()["rid"])


def test_the_context_variable_is_reset_after_each_request() -> None:
    """Two requests on one event loop: the second never sees the first's id."""
    from restfault.asgi import RestFaultMiddleware

    seen: list[str | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_request_id())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = RestFaultMiddleware(app, request_id_header=ID)

    async def two_requests() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            pass

        for incoming in (b"one", b"two"):
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/",
                "headers": [(b"x-request-id", incoming)],
            }
            await middleware(scope, receive, send)
        seen.append(current_request_id())

    asyncio.run(two_requests())

    assert seen == ["one", "two", None]


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", "X Request", "X-Request-ID\r\nX-Evil: 1", "X-Réquest", "X-Request:", 42, b"X-Request-ID"],
    ids=["empty", "space", "crlf", "non-ascii", "colon", "int", "bytes"],
)
@pytest.mark.parametrize(
    "adapter_class",
    [
        restfault.asgi.RestFaultMiddleware,
        restfault.wsgi.RestFaultMiddleware,
        restfault.starlette.RestFault,
        restfault.flask.RestFault,
    ],
    ids=["asgi", "wsgi", "starlette", "flask"],
)
def test_a_request_id_header_that_is_no_header_name_is_refused_at_start(
    adapter_class: Any, name: Any
) -> None:
    arguments = (
        []
        if adapter_class in (restfault.starlette.RestFault, restfault.flask.RestFault)
        else [None]
    )
    with pytest.raises(
        restfault.ConfigurationError,
        match=r"^request_id_header=.* is not a header name; use a name such as 'X-Request-ID', "
        r"or None to turn request ids off$",
    ):
        adapter_class(*arguments, request_id_header=name)


def test_a_lazily_streamed_wsgi_body_sees_the_id_while_each_chunk_is_made() -> None:
    """A WSGI server iterates the body after the app returned: the id is current again
    while each chunk is produced, and only then (pure WSGI and Flask)."""
    import flask

    seen_between: list[str | None] = []

    def chunks() -> Iterator[bytes]:
        for i in range(3):
            yield f"{i}:{current_request_id()};".encode()

    def wsgi_app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return chunks()

    flask_app = flask.Flask("streamed")
    restfault.flask.RestFault(flask_app, request_id_header=ID)
    flask_app.add_url_rule("/", "stream", lambda: flask.Response(chunks()))
    middleware = restfault.wsgi.RestFaultMiddleware(wsgi_app, request_id_header=ID)

    for app in (middleware, flask_app):
        environ = EnvironBuilder(path="/", headers=[(ID, "lazy")]).get_environ()
        body = app(environ, _start_response)
        produced = []
        for chunk in body:
            produced.append(chunk)
            seen_between.append(current_request_id())
        getattr(body, "close", lambda: None)()

        assert b"".join(produced) == b"0:lazy;1:lazy;2:lazy;"
    assert seen_between == [None] * 6


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None
