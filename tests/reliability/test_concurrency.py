"""Limits stay exact under concurrency in one process, and the in-process storage's memory
stays bounded as keys come and go.

- WSGI: 200 threads at once through a Flask app (the sync limiter, threads racing);
- ASGI: 200 tasks at once (``asyncio.gather``) through a Starlette app over
  ``httpx.ASGITransport``;

each against ``50/minute``, on the memory storage and a real Redis, for every strategy:
exactly 50 pass.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from flask import Flask
from flask import Request as FlaskRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import restfault.flask
import restfault.starlette
from restfault._expiry import ExpiryCache
from tests.servers import HOST, Server, redis_server, running

STRATEGIES = ["fixed-window", "moving-window", "sliding-window-counter"]
REQUESTS, LIMIT = 200, 50
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[Server]:
    with running(redis_server()) as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    """storage_uri (and, for Redis, a storage_timeout that 200 calls at once on two CPUs
    fit in: past it the fallback would count, by design, which is not what is tested)."""
    if request.param == "memory":
        return {"storage_uri": "memory://"}
    server = request.getfixturevalue("redis_srv")
    return {"storage_uri": f"redis://{HOST}:{server.port}", "storage_timeout": 5.0}


def by_header(name: str) -> Callable[[Request | FlaskRequest], str | None]:
    """A key_func reading one request header (a Starlette or a Flask request)."""

    def key(request: Request | FlaskRequest) -> str | None:
        return request.headers.get(name)

    return key


def flask_app(**options: Any) -> tuple[Flask, restfault.flask.RestFault]:
    app = Flask("reliability")
    extension = restfault.flask.RestFault(app, key_prefix=f"c{uuid.uuid4().hex[:10]}", **options)

    @app.get("/")
    def index() -> dict[str, bool]:
        return {"ok": True}

    return app, extension


def starlette_app(**options: Any) -> tuple[Starlette, restfault.starlette.RestFault]:
    async def index(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/", index)])
    prefix = f"c{uuid.uuid4().hex[:10]}"
    return app, restfault.starlette.RestFault(app, key_prefix=prefix, **options)


def redis_pool(limiter: Any) -> Any:
    """The redis-py pool behind a limiter's storage, if any (to close it: test hygiene)."""
    storage = limiter.storage
    client = getattr(getattr(storage, "bridge", None), "storage", None) or getattr(
        storage, "storage", None
    )
    return getattr(client, "connection_pool", None)


def check_exact(name: str, statuses: Counter[int], remaining: list[str], strategy: str) -> None:
    FIGURES[name] = dict(statuses)
    assert statuses == {200: LIMIT, 429: REQUESTS - LIMIT}, statuses
    if strategy == "fixed-window":  # one counter: each pass saw its own count
        assert sorted(map(int, remaining)) == list(range(LIMIT))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_threads_through_flask(storage: dict[str, Any], strategy: str) -> None:
    app, extension = flask_app(default_limits=f"{LIMIT}/minute", strategy=strategy, **storage)
    start = threading.Barrier(REQUESTS)

    def one(_: int) -> tuple[int, str | None]:
        client = app.test_client()
        start.wait(10)  # every thread at the line, then all at once
        response = client.get("/")
        return response.status_code, response.headers.get("X-RateLimit-Remaining")

    with ThreadPoolExecutor(REQUESTS) as pool:
        results = list(pool.map(one, range(REQUESTS)))
    connections = redis_pool(extension.limiter)
    if connections is not None:
        connections.disconnect()
    statuses = Counter(status for status, _ in results)
    remaining = [str(r) for status, r in results if status == 200]
    check_exact(
        f"flask {storage['storage_uri'].split(':')[0]} {strategy}", statuses, remaining, strategy
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_tasks_through_starlette(storage: dict[str, Any], strategy: str) -> None:
    app, extension = starlette_app(default_limits=f"{LIMIT}/minute", strategy=strategy, **storage)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*(client.get("/") for _ in range(REQUESTS)))
        connections = redis_pool(extension.limiter)
        if connections is not None:
            await connections.disconnect()
        return responses

    responses = asyncio.run(run())
    statuses = Counter(r.status_code for r in responses)
    remaining = [r.headers["X-RateLimit-Remaining"] for r in responses if r.status_code == 200]
    check_exact(
        f"starlette {storage['storage_uri'].split(':')[0]} {strategy}",
        statuses,
        remaining,
        strategy,
    )


# -- memory stays bounded ---------------------------------------------------------------

KEYS = 2000


class Clock:
    """``time.time`` under the test's control."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def stored(storage: Any) -> dict[str, int]:
    """The sizes of everything the in-process storage keeps per key."""
    sizes: dict[str, int] = storage.sizes()
    return sizes


def settle(storage: Any, clock: Clock) -> dict[str, int]:
    """Sizes once limits' moving-window sweeper (a 10 ms timer thread) has run."""
    deadline = time.monotonic() + 2
    sizes = stored(storage)
    while sum(sizes.values()) > 8 and time.monotonic() < deadline:
        threading.Event().wait(0.02)
        sizes = stored(storage)
    return sizes


@pytest.mark.parametrize("framework", ["flask", "starlette"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_memory_shrinks_when_keys_expire(
    monkeypatch: pytest.MonkeyPatch, framework: str, strategy: str
) -> None:
    """KEYS clients once each, on 1-second windows; two seconds later one more request: what
    the storage keeps shrinks back to that request's few keys."""
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    options = {"default_limits": "5/second", "strategy": strategy, "key_func": by_header("x-key")}
    if framework == "flask":
        app, extension = flask_app(**options)
        client = app.test_client()

        def send(key: str) -> int:
            return client.get("/", headers={"X-Key": key}).status_code

        storage = extension.limiter.local
        run: Callable[[list[str]], Coroutine[object, object, list[int]]] | None = None
    else:
        sapp, sextension = starlette_app(**options)
        storage = sextension.limiter.local

        async def many(keys: list[str]) -> list[int]:
            transport = httpx.ASGITransport(app=sapp)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return [(await client.get("/", headers={"X-Key": k})).status_code for k in keys]

        run = many

    def send_all(keys: list[str]) -> list[int]:
        if run is not None:
            return list(asyncio.run(run(keys)))
        return [send(k) for k in keys]

    assert set(send_all([f"client-{i}" for i in range(KEYS)])) == {200}
    full = stored(storage)
    assert max(full["counters"], full["windows"]) >= KEYS
    clock.now += 2.5  # every window is over
    assert send_all(["late"]) == [200]
    after = settle(storage, clock)
    FIGURES[f"memory {framework} {strategy}"] = {"full": full, "after": after}
    assert all(size <= 3 for size in after.values()), after


# How a client's kept plan is found: by the connection's address when that alone decides
# the plan; by limits and client key when the path or X-Forwarded-For does too.
KEPT_BY: dict[str, dict[str, Any]] = {
    "peer": {"default_limits": "2/minute"},
    "path limits": {"path_limits": {"/": "2/minute"}},
    "forwarded": {"default_limits": "2/minute", "trusted_proxies": ["127.0.0.1/32"]},
}


@pytest.mark.parametrize("kept_by", list(KEPT_BY))
@pytest.mark.parametrize("framework", ["flask", "starlette"])
def test_many_clients_keep_their_own_budgets_in_bounded_memory(
    framework: str, kept_by: str
) -> None:
    """More clients than restfault keeps plans for (each client's is made once and kept,
    all forgotten when the table is full): each still has its own budget, the first one
    included once thousands came after it, and what is kept stays bounded."""
    clients = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(5000)]
    forwarded = kept_by == "forwarded"

    def peer_and_headers(client: str) -> tuple[str, list[tuple[str, str]]]:
        if forwarded:  # every request through one trusted proxy
            return "127.0.0.1", [("X-Forwarded-For", client)]
        return client, []

    if framework == "flask":
        app, flask_extension = flask_app(**KEPT_BY[kept_by])
        core = flask_extension.core

        def get(client: str) -> int:
            peer, headers = peer_and_headers(client)
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/",
                "SERVER_NAME": "t",
                "SERVER_PORT": "80",
                "wsgi.url_scheme": "http",
                "REMOTE_ADDR": peer,
                "wsgi.input": io.BytesIO(b""),
            }
            for name, value in headers:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
            statuses: list[int] = []

            def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
                statuses.append(int(status[:3]))
                return lambda data: None

            body = app(environ, start_response)
            b"".join(body)
            getattr(body, "close", lambda: None)()
            return statuses[0]

        statuses = [get(client) for client in clients]
    else:
        sapp, starlette_extension = starlette_app(**KEPT_BY[kept_by])
        core = starlette_extension.core

        async def all_of(clients: list[str]) -> list[int]:
            statuses: list[int] = []
            for client in clients:
                peer, headers = peer_and_headers(client)
                scope = {
                    "type": "http",
                    "method": "GET",
                    "path": "/",
                    "raw_path": b"/",
                    "root_path": "",
                    "scheme": "http",
                    "query_string": b"",
                    "headers": [(b"host", b"t")]
                    + [(k.lower().encode(), v.encode()) for k, v in headers],
                    "client": (peer, 5000),
                    "server": ("t", 80),
                    "http_version": "1.1",
                    "asgi": {"version": "3.0"},
                }

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": b"", "more_body": False}

                async def send(message: MutableMapping[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        statuses.append(message["status"])

                await sapp(scope, receive, send)
            return statuses

        def get(client: str) -> int:
            return asyncio.run(all_of([client]))[0]

        statuses = asyncio.run(all_of(clients))
    assert set(statuses) == {200}
    assert [get(clients[0]), get(clients[0])] == [200, 429]  # its second and third request
    assert get(clients[-1]) == 200
    assert len(core._plans) <= 4096


def test_expiry_cache_is_bounded() -> None:
    cache = ExpiryCache(limit=1000)
    now = 1000.0
    for i in range(10_000):
        cache.set(f"k{i}", now + 1, now)
        assert len(cache) <= 1000
        now += 0.01  # windows end as the keys come: stale ends are swept first
