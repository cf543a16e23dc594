"""One tiny app per adapter for the observability tests (request ids, logs, metrics,
maintenance mode, the IETF fields).

``observed(adapter, **options)`` builds the same app on each of the five adapters —
pure ASGI, pure WSGI, Starlette, FastAPI, Flask — and answers through one ``Reply``
type. A test that takes ``adapter`` runs once per adapter in ``ADAPTERS``; one that only
some adapters have (``.exempt`` endpoints, async callables) narrows it with
``@pytest.mark.parametrize("adapter", ...)``. The routes:

=================  ==============================================================
``/``              200 ``{"ok": true}``
``/rid``           200 ``{"rid": current_request_id()}``
``/batch``         ``run_batch`` over two items, each returning ``current_request_id()``
``/stream``        a streamed body: ``current_request_id()`` in each of two chunks
``/own-id``        200 with the app's own ``X-Request-ID: app-own``
``/text-404``      the app's own ``text/plain`` 404 (converted to the envelope)
``/missing``       raises ``NotFoundException(code="THING_NOT_FOUND")``
``/unavailable``   raises ``ServiceUnavailableException(retry_after=5)``
``/boom``          raises ``RuntimeError``
``/health``        200, ``.exempt`` on the framework adapters
``/limited``       200, ``.limit("2/minute", code="EMAIL_RATE_LIMIT")`` on them
``/shared``        200, ``.shared_limit("4/minute", SHARED_SCOPE)`` on them (and the
                   endpoint's own ``.limit("3/minute;9/hour")``)
=================  ==============================================================

(Written so that it moves onto the shared harness of ``tests/`` as it lands.)
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import restfault.asgi
import restfault.flask
import restfault.starlette
import restfault.wsgi
from restfault import (
    NotFoundException,
    ServiceUnavailableException,
    current_request_id,
    run_batch,
)

ADAPTERS = ("asgi", "wsgi", "starlette", "fastapi", "flask")
ENDPOINT_ADAPTERS = ("starlette", "fastapi", "flask")
ASGI_ADAPTERS = ("asgi", "starlette", "fastapi")
PEER = "192.0.2.10"
# A scope with every character a policy name must escape: quotes, backslash, the
# separators of its own suffixes, non-ASCII.
SHARED_SCOPE = 'db "main" \\ caf\u00e9;w=60#2'


@dataclass
class Reply:
    """A response from any adapter: status, case-insensitive headers, body."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        value: str | None = self.headers.get(name)
        return value


@dataclass
class Observed:
    """One app on one adapter, and its client."""

    adapter: str
    restfault: Any
    send: Callable[[str, str, dict[str, str]], Reply]

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None) -> Reply:
        return self.send(method, path, headers or {})

    def get(self, path: str, *, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def many(self, path: str, n: int, *, headers: dict[str, str] | None = None) -> list[Reply]:
        return [self.get(path, headers=headers) for _ in range(n)]


def _rid() -> dict[str, Any]:
    return {"rid": current_request_id()}


def _batch() -> dict[str, Any]:
    return {"ids": run_batch([1, 2], lambda item: current_request_id())}


def _chunks() -> Iterator[bytes]:
    for i in range(2):
        yield f"{i}:{current_request_id()};".encode()


RAISING: dict[str, Callable[[], BaseException]] = {
    "/missing": lambda: NotFoundException("No such thing", code="THING_NOT_FOUND"),
    "/unavailable": lambda: ServiceUnavailableException(retry_after=5),
    "/boom": lambda: RuntimeError("db_password=hunter2"),
}
JSON_ROUTES: dict[str, Callable[[], Any]] = {
    "/": lambda: {"ok": True},
    "/health": lambda: {"ok": True},
    "/limited": lambda: {"ok": True},
    "/shared": lambda: {"ok": True},
    "/rid": _rid,
    "/batch": _batch,
}


# -- pure ASGI and Starlette/FastAPI ---------------------------------------------------------


async def _asgi_router(scope: Any, receive: Any, send: Any) -> None:
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse

    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    response: Any
    if path in RAISING:
        raise RAISING[path]()
    if path in JSON_ROUTES:
        response = JSONResponse(JSON_ROUTES[path]())
    elif path == "/stream":
        response = StreamingResponse(_achunks(), media_type="text/plain")
    elif path == "/own-id":
        response = JSONResponse({"ok": True}, headers={"X-Request-ID": "app-own"})
    else:
        response = PlainTextResponse("Not Found", status_code=404)
    await response(scope, receive, send)


async def _achunks() -> AsyncIterator[bytes]:
    for chunk in _chunks():
        yield chunk


def _starlette_app(rf: Any, fastapi: bool) -> Any:
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse

    def json_endpoint(path: str, view: Callable[[], Any]) -> Any:
        async def endpoint() -> Any:
            return JSONResponse(view())

        endpoint.__qualname__ = endpoint.__name__ = "observed" + path.replace("/", "_")
        if path == "/health":
            endpoint = rf.exempt(endpoint)
        if path == "/limited":
            endpoint = rf.limit("2/minute", code="EMAIL_RATE_LIMIT")(endpoint)
        if path == "/shared":
            endpoint = rf.shared_limit("4/minute", SHARED_SCOPE)(endpoint)
            endpoint = rf.limit("3/minute;9/hour")(endpoint)
        return endpoint

    def raising(make: Callable[[], BaseException]) -> Any:
        async def endpoint() -> Any:
            raise make()

        return endpoint

    async def stream() -> Any:
        return StreamingResponse(_achunks(), media_type="text/plain")

    async def own_id() -> Any:
        return JSONResponse({"ok": True}, headers={"X-Request-ID": "app-own"})

    async def text_404() -> Any:
        return PlainTextResponse("Not Found", status_code=404)

    table: dict[str, Any] = {p: json_endpoint(p, v) for p, v in JSON_ROUTES.items()}
    table.update({p: raising(make) for p, make in RAISING.items()})
    table.update({"/stream": stream, "/own-id": own_id, "/text-404": text_404})
    if fastapi:
        from fastapi import FastAPI

        app: Any = FastAPI()
        for path, endpoint in table.items():
            app.add_api_route(path, endpoint, methods=["GET", "HEAD"])
    else:
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[Route(p, _request_endpoint(e)) for p, e in table.items()])
    rf.init_app(app)
    return app


def _request_endpoint(endpoint: Any) -> Any:
    """A Starlette endpoint (it takes the request) calling ``endpoint``, which restfault
    finds through ``__wrapped__``."""

    @functools.wraps(endpoint)
    async def with_request(request: Any) -> Any:
        return await endpoint()

    return with_request


def _asgi_client(app: Any, restfault: Any, stack: contextlib.ExitStack) -> Callable[..., Reply]:
    from starlette.testclient import TestClient

    client = TestClient(app, client=(PEER, 50000), raise_server_exceptions=False)
    stack.enter_context(client)

    def send(method: str, path: str, headers: dict[str, str]) -> Reply:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        response = client.request(method, path, headers=raw)
        return Reply(
            response.status_code, httpx.Headers(response.headers.multi_items()), response.content
        )

    return send


# -- pure WSGI and Flask -----------------------------------------------------------------------


def _wsgi_router(environ: Any, start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path in RAISING:
        raise RAISING[path]()
    if path in JSON_ROUTES:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(JSON_ROUTES[path]()).encode()]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _chunks()
    if path == "/own-id":
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("X-Request-ID", "app-own")]
        )
        return [b'{"ok": true}']
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"Not Found"]


def _flask_app(rf: Any) -> Any:
    from flask import Flask, Response, jsonify

    app = Flask("observed")

    def add(path: str, view: Callable[[], Any]) -> None:
        def endpoint() -> Any:
            return jsonify(view())

        endpoint.__qualname__ = endpoint.__name__ = "observed" + path.replace("/", "_")
        if path == "/health":
            endpoint = rf.exempt(endpoint)
        if path == "/limited":
            endpoint = rf.limit("2/minute", code="EMAIL_RATE_LIMIT")(endpoint)
        if path == "/shared":
            endpoint = rf.shared_limit("4/minute", SHARED_SCOPE)(endpoint)
            endpoint = rf.limit("3/minute;9/hour")(endpoint)
        app.add_url_rule(path, endpoint.__name__, endpoint)

    for path, view in JSON_ROUTES.items():
        add(path, view)
    for path, make in RAISING.items():
        app.add_url_rule(path, "raising" + path.replace("/", "_"), _raiser(make))
    app.add_url_rule("/stream", "stream", lambda: Response(_chunks(), mimetype="text/plain"))
    app.add_url_rule("/own-id", "own_id", lambda: ({"ok": True}, 200, {"X-Request-ID": "app-own"}))
    app.add_url_rule(
        "/text-404", "text_404", lambda: ("Not Found", 404, {"Content-Type": "text/plain"})
    )
    rf.init_app(app)
    return app


def _raiser(make: Callable[[], BaseException]) -> Callable[[], Any]:
    def view() -> Any:
        raise make()

    return view


def _wsgi_client(app: Any) -> Callable[..., Reply]:
    from werkzeug.test import Client

    client = Client(app)

    def send(method: str, path: str, headers: dict[str, str]) -> Reply:
        response = client.open(
            path, method=method, headers=headers, environ_base={"REMOTE_ADDR": PEER}
        )
        try:
            return Reply(
                response.status_code, httpx.Headers(list(response.headers.items())), response.data
            )
        finally:
            response.close()

    return send


def build(adapter: str, stack: contextlib.ExitStack, **options: Any) -> Observed:
    if adapter == "asgi":
        middleware = restfault.asgi.RestFaultMiddleware(_asgi_router, **options)
        return Observed(adapter, middleware, _asgi_client(middleware, middleware, stack))
    if adapter == "wsgi":
        wsgi = restfault.wsgi.RestFaultMiddleware(_wsgi_router, **options)
        return Observed(adapter, wsgi, _wsgi_client(wsgi))
    if adapter in ("starlette", "fastapi"):
        rf = restfault.starlette.RestFault(**options)
        app = _starlette_app(rf, fastapi=adapter == "fastapi")
        return Observed(adapter, rf, _asgi_client(app, rf, stack))
    rf = restfault.flask.RestFault(**options)
    return Observed(adapter, rf, _wsgi_client(_flask_app(rf)))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``adapter`` runs over every adapter unless a test narrows it."""
    if "adapter" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        names = names.split(",") if isinstance(names, str) else names
        if "adapter" in [n.strip() for n in names]:
            return
    metafunc.parametrize("adapter", ADAPTERS)


@pytest.fixture
def observed() -> Iterator[Callable[..., Observed]]:
    """``observed(adapter, **options) -> Observed``: the app above on ``adapter``."""
    with contextlib.ExitStack() as stack:

        def make(adapter: str, **options: Any) -> Observed:
            return build(adapter, stack, **options)

        yield make


class FakeClock:
    """``time.time`` under the test's control (limits' memory storage and restfault read it)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(1_800_000_000.25)
    monkeypatch.setattr(time, "time", fake)
    return fake
