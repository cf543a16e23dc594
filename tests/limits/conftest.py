"""Fixtures for the rate-limit tests: real storages, every strategy, every adapter.

``backend`` is this suite's ``@all_storage``: a test that takes it runs once per storage
(memory, a real redis-server, a real memcached) and strategy the storage supports.
``make_client`` builds a tiny app for one adapter (Starlette, Flask, pure ASGI or pure
WSGI) with restfault's options and answers through a uniform test client.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client as WerkzeugClient

import restfault.asgi
import restfault.flask
import restfault.starlette
import restfault.wsgi
from restfault import NotFoundException
from tests.servers import Server, memcached_server, redis_server, running

STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")
STORAGES = ("memory", "redis", "memcached")
FRAMEWORKS = ("starlette", "flask", "asgi", "wsgi")
# memcached has no list type, so limits offers no moving window on it.
UNSUPPORTED = {("memcached", "moving-window")}


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[Server]:
    with running(redis_server()) as server:
        yield server


@pytest.fixture(scope="module")
def memcached_srv() -> Iterator[Server]:
    with running(memcached_server()) as server:
        yield server


@dataclass(frozen=True)
class Backend:
    """One storage and strategy under test, with options that isolate this test's keys."""

    kind: str
    strategy: str
    uri: str
    key_prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:12]}")

    def options(self, **extra: Any) -> dict[str, Any]:
        return {
            "storage_uri": self.uri,
            "strategy": self.strategy,
            "key_prefix": self.key_prefix,
            # Generous: a loaded CI machine must not turn a slow answer into a fallback.
            "storage_timeout": 2.0,
            **extra,
        }


def backend_params() -> list[Any]:
    marks = {"redis": [pytest.mark.redis], "memcached": [pytest.mark.memcached]}
    return [
        pytest.param((kind, strategy), id=f"{kind}-{strategy}", marks=marks.get(kind, []))
        for kind in STORAGES
        for strategy in STRATEGIES
        if (kind, strategy) not in UNSUPPORTED
    ]


def _parametrized_by_mark(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        names = names.split(",") if isinstance(names, str) else names
        if name in [n.strip() for n in names]:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``backend`` and ``framework`` run over all their values unless a test narrows them."""
    if "backend" in metafunc.fixturenames and not _parametrized_by_mark(metafunc, "backend"):
        metafunc.parametrize("backend", backend_params(), indirect=True)
    if "framework" in metafunc.fixturenames and not _parametrized_by_mark(metafunc, "framework"):
        metafunc.parametrize("framework", FRAMEWORKS, indirect=True)


def uri_for(kind: str, request: pytest.FixtureRequest) -> str:
    if kind == "redis":
        return f"redis://127.0.0.1:{request.getfixturevalue('redis_srv').port}"
    if kind == "memcached":
        return f"memcached://127.0.0.1:{request.getfixturevalue('memcached_srv').port}"
    return "memory://"


def away_from_a_minute_boundary(margin: float = 1.0) -> None:
    """Wait out the last ``margin`` seconds of a clock-aligned minute.

    The sliding-window counter of the memory and memcached storages aligns its windows to
    the clock: a test straddling a boundary would see the previous window's weighted count.
    """
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    kind, strategy = request.param
    backend = Backend(kind, strategy, uri_for(kind, request))
    if strategy == "sliding-window-counter":
        away_from_a_minute_boundary()
    return backend


@pytest.fixture
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- closing storages (filterwarnings=error: an unclosed socket fails a later test) ------


def _clients(holder: Any) -> list[Any]:
    """The redis clients a limits storage (or its bridge) holds: master, replica, sentinels."""
    clients = [getattr(holder, name, None) for name in ("storage", "storage_replica")]
    sentinel = getattr(holder, "sentinel", None)
    clients += list(getattr(sentinel, "sentinels", ()))
    return [c for c in clients if c is not None]


async def aclose_storage(storage: Any) -> None:
    bridge = getattr(storage, "bridge", None)
    for client in _clients(bridge):
        if hasattr(client, "aclose"):  # redis.asyncio
            await client.aclose()
    memcachio = getattr(bridge, "_storage", None)
    if memcachio is not None:
        memcachio.connection_pool.close()


def close_storage(storage: Any) -> None:
    for client in _clients(storage):
        close = getattr(client, "close", None)
        if callable(close):
            close()


# -- one uniform client over four adapters ----------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def rate(self) -> tuple[int, int, int]:
        """(X-RateLimit-Limit, -Remaining, -Reset) as ints."""
        return (
            int(self.headers["x-ratelimit-limit"]),
            int(self.headers["x-ratelimit-remaining"]),
            int(self.headers["x-ratelimit-reset"]),
        )


@dataclass
class Client:
    framework: str
    request: Callable[..., Reply]  # request(method, path, headers=None)
    limiter: Any
    # The same app, reached from another client address.
    from_peer: Callable[[str], Client] = field(repr=False, default=lambda peer: NotImplemented)

    def get(self, path: str, *, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, *, headers: dict[str, str] | None = None) -> Reply:
        return self.request("POST", path, headers=headers)

    def many(self, path: str, n: int, **kwargs: Any) -> list[Reply]:
        return [self.get(path, **kwargs) for _ in range(n)]


def _header_of(request: Any, name: str) -> str | None:
    """A request header from any adapter's request: Request, flask.request, scope, environ."""
    headers = getattr(request, "headers", None)
    if headers is not None:
        return headers.get(name)  # type: ignore[no-any-return]
    if "headers" in request:  # ASGI scope
        wanted = name.lower().encode()
        return next((v.decode() for k, v in request["headers"] if k == wanted), None)
    return request.get("HTTP_" + name.upper().replace("-", "_"))  # type: ignore[no-any-return]


def by_user(request: Any) -> str | None:
    return _header_of(request, "x-user")


async def by_user_async(request: Any) -> str | None:
    return _header_of(request, "x-user")


def cost_from_header(request: Any) -> int:
    return int(_header_of(request, "x-cost") or "1")


PLANS = {"gold": "3/minute", "free": "1/minute"}


def plan_of(request: Any) -> str | None:
    """A dynamic limit: the plan named by the X-Plan header; no header, no limit."""
    plan = _header_of(request, "x-plan")
    return PLANS.get(plan, plan) if plan else None


async def plan_of_async(request: Any) -> str | None:
    return plan_of(request)


def failed(status: int) -> bool:
    return status == 401


def login_status(request: Any) -> int:
    return 200 if _header_of(request, "x-password") == "right" else 401


def _starlette(options: dict[str, Any], stack: contextlib.ExitStack, peer: str) -> Client:
    rf = restfault.starlette.RestFault(**options)

    async def index(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("2/minute", code="EMAIL_RATE_LIMIT")
    async def limited(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("5/minute", cost=2)
    async def cost(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("5/minute", cost=cost_from_header)
    async def costfn(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("2/minute", key_func=by_user)
    async def keyed(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("2/minute", key_func=by_user_async)
    async def keyed_async(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.exempt
    async def exempt(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def boom(request: Any) -> JSONResponse:
        raise NotFoundException("no such thing", code="THING_NOT_FOUND")

    @rf.limit("2/minute", deduct_when=failed, code="LOGIN_RATE_LIMIT")
    async def login(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True}, status_code=login_status(request))

    @rf.shared_limit("3/minute", "svc", code="SERVICE_LIMIT")
    async def shared_a(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.shared_limit("3/minute", "svc", code="SERVICE_LIMIT")
    async def shared_b(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("1/minute", methods=["POST"])
    async def posts(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("2/minute", block_for=300, code="BLOCKED")
    async def blocked(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit(plan_of_async)
    async def plan(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("1/minute", enforce=False)
    async def shadow(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/login", login, methods=["GET", "POST"]),
            Route("/shared-a", shared_a),
            Route("/shared-b", shared_b),
            Route("/posts", posts, methods=["GET", "POST"]),
            Route("/blocked", blocked),
            Route("/plan", plan),
            Route("/shadow", shadow),
            Route("/", index),
            Route("/health", index),
            Route("/limited", limited),
            Route("/cost", cost),
            Route("/costfn", costfn),
            Route("/keyed", keyed),
            Route("/keyed-async", keyed_async),
            Route("/exempt", exempt),
            Route("/boom", boom),
        ]
    )
    rf.init_app(app)
    return _asgi_client(app, rf.limiter, "starlette", stack, peer)


def _asgi(options: dict[str, Any], stack: contextlib.ExitStack, peer: str) -> Client:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/boom":
            raise NotFoundException("no such thing", code="THING_NOT_FOUND")
        await JSONResponse({"ok": True})(scope, receive, send)

    middleware = restfault.asgi.RestFaultMiddleware(app, **options)
    return _asgi_client(middleware, middleware.limiter, "asgi", stack, peer)


def _asgi_client(
    app: Any, limiter: Any, name: str, stack: contextlib.ExitStack, peer: str
) -> Client:
    # One TestClient (one event loop) for the app's life: limits.aio pools are loop-bound.
    client = TestClient(app, client=(peer, 50000), raise_server_exceptions=False)
    stack.enter_context(client)
    if not getattr(app, "restfault_closing", False):
        stack.callback(lambda: client.portal.call(aclose_storage, limiter.storage))

    def request(method: str, path: str, *, headers: dict[str, str] | None = None) -> Reply:
        response = client.request(method, path, headers=headers or {})
        body = response.json() if response.content else None
        return Reply(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, body
        )

    def from_peer(other: str) -> Client:
        app.restfault_closing = True  # closed once, by the first client
        return _asgi_client(app, limiter, name, stack, other)

    return Client(name, request, limiter, from_peer)


def _flask(options: dict[str, Any], stack: contextlib.ExitStack, peer: str) -> Client:
    app = Flask(__name__)
    rf = restfault.flask.RestFault(**options)

    @app.get("/")
    @app.get("/health")
    def index() -> Any:
        return {"ok": True}

    @app.get("/limited")
    @rf.limit("2/minute", code="EMAIL_RATE_LIMIT")
    def limited() -> Any:
        return {"ok": True}

    @app.get("/cost")
    @rf.limit("5/minute", cost=2)
    def cost() -> Any:
        return {"ok": True}

    @app.get("/costfn")
    @rf.limit("5/minute", cost=cost_from_header)
    def costfn() -> Any:
        return {"ok": True}

    @app.get("/keyed")
    @rf.limit("2/minute", key_func=by_user)
    def keyed() -> Any:
        assert flask_request.path == "/keyed"
        return {"ok": True}

    @app.get("/exempt")
    @rf.exempt
    def exempt() -> Any:
        return {"ok": True}

    @app.get("/boom")
    def boom() -> Any:
        raise NotFoundException("no such thing", code="THING_NOT_FOUND")

    @app.route("/login", methods=["GET", "POST"])
    @rf.limit("2/minute", deduct_when=failed, code="LOGIN_RATE_LIMIT")
    def login() -> Any:
        return {"ok": True}, login_status(flask_request)

    @app.get("/shared-a")
    @rf.shared_limit("3/minute", "svc", code="SERVICE_LIMIT")
    def shared_a() -> Any:
        return {"ok": True}

    @app.get("/shared-b")
    @rf.shared_limit("3/minute", "svc", code="SERVICE_LIMIT")
    def shared_b() -> Any:
        return {"ok": True}

    @app.route("/posts", methods=["GET", "POST"])
    @rf.limit("1/minute", methods=["POST"])
    def posts() -> Any:
        return {"ok": True}

    @app.get("/blocked")
    @rf.limit("2/minute", block_for=300, code="BLOCKED")
    def blocked() -> Any:
        return {"ok": True}

    @app.get("/plan")
    @rf.limit(plan_of)
    def plan() -> Any:
        return {"ok": True}

    @app.get("/shadow")
    @rf.limit("1/minute", enforce=False)
    def shadow() -> Any:
        return {"ok": True}

    rf.init_app(app)
    return _wsgi_client(app, rf.limiter, "flask", stack, peer)


def _wsgi(options: dict[str, Any], stack: contextlib.ExitStack, peer: str) -> Client:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise NotFoundException("no such thing", code="THING_NOT_FOUND")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true}']

    middleware = restfault.wsgi.RestFaultMiddleware(app, **options)
    return _wsgi_client(middleware, middleware.limiter, "wsgi", stack, peer)


def _wsgi_client(
    app: Any, limiter: Any, name: str, stack: contextlib.ExitStack, peer: str
) -> Client:
    client = WerkzeugClient(app)
    stack.callback(close_storage, limiter.storage)

    def request(method: str, path: str, *, headers: dict[str, str] | None = None) -> Reply:
        response = client.open(
            path, method=method, headers=headers or {}, environ_base={"REMOTE_ADDR": peer}
        )
        try:
            body = response.get_json(silent=True)
            return Reply(response.status_code, {k.lower(): v for k, v in response.headers}, body)
        finally:
            response.close()

    return Client(
        name, request, limiter, lambda other: _wsgi_client(app, limiter, name, stack, other)
    )


BUILDERS = {"starlette": _starlette, "flask": _flask, "asgi": _asgi, "wsgi": _wsgi}


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    """``make_client(framework, peer="10.1.2.3", **options)``: a tiny app and its client."""
    with contextlib.ExitStack() as stack:

        def make(framework: str, *, peer: str = "192.0.2.10", **options: Any) -> Client:
            return BUILDERS[framework](options, stack, peer)

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
