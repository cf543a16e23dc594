"""One harness over every adapter: a behaviour is written once and runs on each of them.

A test describes a tiny app in framework-neutral terms — a route is a zero-argument
callable that returns a JSON-able value, returns a ``Raw`` response of the app's own, or
raises — and talks to it through one ``Reply`` type. The harness builds that app for one
adapter:

====================  ==================================================================
``asgi``              ``restfault.asgi.RestFaultMiddleware`` around ``AsgiRouter``
``wsgi``              ``restfault.wsgi.RestFaultMiddleware`` around ``WsgiRouter``
``starlette``         ``restfault.starlette.RestFault`` on a Starlette app
``fastapi``           ``restfault.starlette.RestFault`` on a FastAPI app
``flask``             ``restfault.flask.RestFault`` on a Flask app
====================  ==================================================================

The two routers are minimal framework-free apps (a path table, a 404 and a 405 of their
own, in text/plain): what the client sees is what the middleware made of them.

ASGI apps are driven by Starlette's ``TestClient`` (one event loop for the app's life),
WSGI apps by ``serve``, a strict PEP 3333 server stand-in.

Adding an adapter: subclass ``Harness`` (or ``AsgiHarness`` / ``WsgiHarness`` for its
protocol), implement ``build`` and ``http_exception``, add it to ``HARNESSES`` and to the
capability tables below that apply to it. Every test that takes the ``harness`` fixture
then runs on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, TypeAlias, TypeVar

import flask
import httpx
import pytest
from fastapi import Body, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from werkzeug.exceptions import HTTPException as WerkzeugHTTPException
from werkzeug.exceptions import default_exceptions
from werkzeug.test import EnvironBuilder

import restfault.asgi
import restfault.flask
import restfault.starlette
import restfault.wsgi
from restfault import NotFoundException

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Adapter: TypeAlias = (
    restfault.asgi.RestFaultMiddleware
    | restfault.wsgi.RestFaultMiddleware
    | restfault.starlette.RestFault
    | restfault.flask.RestFault
)
EndpointAdapter: TypeAlias = restfault.starlette.RestFault | restfault.flask.RestFault

# -- the capability tables -------------------------------------------------------------------

ADAPTERS = ("asgi", "wsgi", "starlette", "fastapi", "flask")
ASGI_ADAPTERS = ("asgi", "starlette", "fastapi")
WSGI_ADAPTERS = ("wsgi", "flask")
# .limit() and .exempt decorate endpoints: only the framework adapters have endpoints.
ENDPOINT_ADAPTERS = ("starlette", "fastapi", "flask")
# Parsing request bodies (API.md §2's INVALID_JSON) is the frameworks' business; the pure
# middlewares never read a body.
BODY_PARSING_ADAPTERS = ("starlette", "fastapi", "flask")
# Async callables (key_func, cost) are for the ASGI adapters.
ASYNC_ADAPTERS = ASGI_ADAPTERS

PEER = "192.0.2.10"  # every client's address, unless a test says otherwise

# -- what an app is made of ----------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A response the app makes itself: status, headers as given, body in chunks."""

    status: int
    headers: Sequence[tuple[str, str]] = ()
    chunks: Sequence[bytes] = ()


View: TypeAlias = Callable[[], object]
V = TypeVar("V", bound=View)
F = TypeVar("F", bound=Callable[..., Any])
# A key_func or cost callable: it receives the adapter's own request object.
RequestFunc: TypeAlias = Callable[[Any], Any]


@dataclass(frozen=True)
class RouteLimit:
    """One ``.limit()`` on an endpoint — or ``.shared_limit(value, shared)`` when ``shared``
    names a scope — applied by the harness with the adapter's decorator."""

    value: str | RequestFunc
    code: str | None = None
    key_func: RequestFunc | None = None
    cost: int | RequestFunc = 1
    methods: tuple[str, ...] | None = None
    deduct_when: Callable[[int], bool] | None = None
    block_for: float | None = None
    enforce: bool = True
    shared: str | None = None


@dataclass(frozen=True)
class Route:
    path: str
    view: View
    methods: tuple[str, ...]
    limits: tuple[RouteLimit, ...] = ()
    exempt: bool = False


def raising(exc: BaseException) -> View:
    """A view that raises ``exc``."""

    def view() -> object:
        raise exc

    return view


def ok() -> object:
    return {"ok": True}


# -- one reply type for every client -----------------------------------------------------


@dataclass
class Reply:
    """A response from any adapter: status, case-insensitive headers, body."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip()

    def header(self, name: str) -> str | None:
        value: str | None = self.headers.get(name)
        return value

    def rate(self) -> tuple[int, int, int]:
        """(X-RateLimit-Limit, -Remaining, -Reset) as ints."""
        return (
            int(self.headers["x-ratelimit-limit"]),
            int(self.headers["x-ratelimit-remaining"]),
            int(self.headers["x-ratelimit-reset"]),
        )


Headers: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]]

# -- the harness -------------------------------------------------------------------------


class Harness:
    """One app in framework-neutral terms; ``name`` says which adapter runs it."""

    name: ClassVar[str]
    # Whether the adapter has endpoints to decorate (.limit, .exempt), and async callables.
    endpoints: ClassVar[bool] = False
    asynchronous: ClassVar[bool] = False

    def __init__(self, *, peer: str = PEER, **options: Any) -> None:
        self.peer = peer
        self.options = options
        self.routes: list[Route] = []
        self.built = False
        self.stack = contextlib.ExitStack()
        self.restfault: Adapter = self.create(**options)

    def create(self, **options: Any) -> Adapter:
        """The adapter object (a bad option raises ConfigurationError here)."""
        raise NotImplementedError

    def route(
        self,
        path: str,
        methods: Sequence[str] = ("GET",),
        *,
        limits: Sequence[RouteLimit] = (),
        exempt: bool = False,
    ) -> Callable[[V], V]:
        """Add ``view`` at ``path``; ``limits``/``exempt`` need an adapter with endpoints."""
        if (limits or exempt) and not self.endpoints:
            raise AssertionError(f"{self.name} has no endpoints to limit: leave it out")

        def decorator(view: V) -> V:
            self.routes.append(Route(path, view, tuple(methods), tuple(limits), exempt))
            return view

        return decorator

    def build(self) -> None:
        """Make the app from the routes (once, before the first request)."""
        raise NotImplementedError

    def http_exception(
        self, status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Exception:
        """The framework's own HTTPException (Starlette's or werkzeug's for pure apps)."""
        raise NotImplementedError

    def send(self, method: str, path: str, headers: Headers, content: bytes | None) -> Reply:
        raise NotImplementedError

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Headers | None = None,
        content: bytes | None = None,
    ) -> Reply:
        self.ensure_built()
        return self.send(method, path, headers or {}, content)

    def ensure_built(self) -> None:
        if not self.built:
            self.build()
            self.built = True

    def get(self, path: str, *, headers: Headers | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(
        self, path: str, *, headers: Headers | None = None, content: bytes | None = None
    ) -> Reply:
        return self.request("POST", path, headers=headers, content=content)

    def many(self, path: str, n: int, *, headers: Headers | None = None) -> list[Reply]:
        return [self.get(path, headers=headers) for _ in range(n)]

    def endpoint_adapter(self) -> EndpointAdapter:
        """The adapter as one with endpoint decorators (``.limit``, ``.exempt``)."""
        raise AssertionError(f"{self.name} has no endpoint decorators")

    def decorate(self, route: Route, endpoint: F) -> F:
        """``endpoint`` with the route's limits and exemption applied by the adapter."""
        if not (route.limits or route.exempt):
            return endpoint
        adapter = self.endpoint_adapter()
        for limit in route.limits:
            keywords: dict[str, Any] = {
                "code": limit.code,
                "key_func": limit.key_func,
                "cost": limit.cost,
                "methods": limit.methods,
                "deduct_when": limit.deduct_when,
                "block_for": limit.block_for,
                "enforce": limit.enforce,
            }
            if limit.shared is None:
                endpoint = adapter.limit(limit.value, **keywords)(endpoint)
            else:
                endpoint = adapter.shared_limit(limit.value, limit.shared, **keywords)(endpoint)
        if route.exempt:
            endpoint = adapter.exempt(endpoint)
        return endpoint

    def close(self) -> None:
        self.stack.close()


# -- routing for the framework-free apps -----------------------------------------------------


def _pattern(path: str) -> re.Pattern[str]:
    """Starlette's path syntax (``/a/{id}``, ``/a/{rest:path}``) as a regular expression."""
    parts = re.split(r"(\{\w+(?::path)?\})", path)
    regex = "".join(
        (".*" if part.endswith(":path}") else "[^/]+") if part.startswith("{") else re.escape(part)
        for part in parts
    )
    return re.compile(regex, re.DOTALL)


class Router:
    """The routes of a framework-free app: the route for a request, or its own 404/405."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.table = [(_pattern(r.path), r) for r in routes]

    def dispatch(self, method: str, path: str) -> Route | Raw:
        matched = [route for pattern, route in self.table if pattern.fullmatch(path)]
        for route in matched:
            if method in route.methods:
                return route
        if not matched:
            return Raw(404, [("Content-Type", "text/plain")], [b"Not Found"])
        allowed = ", ".join(sorted({m for route in matched for m in route.methods}))
        return Raw(405, [("Content-Type", "text/plain"), ("Allow", allowed)], [b"Nope"])


def json_raw(value: object) -> Raw:
    body = json.dumps(value).encode()
    return Raw(200, [("Content-Type", "application/json")], [body])


def as_raw(result: object) -> Raw:
    return result if isinstance(result, Raw) else json_raw(result)


# -- ASGI ----------------------------------------------------------------------------------


async def send_raw(raw: Raw, send: Send) -> None:
    """``raw`` as ASGI messages: one start, one body message per chunk."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in raw.headers]
    await send({"type": "http.response.start", "status": raw.status, "headers": headers})
    chunks = list(raw.chunks) or [b""]
    for i, chunk in enumerate(chunks):
        more = i < len(chunks) - 1
        await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


class AsgiRouter:
    """A framework-free ASGI app: routes, ``POST /echo``, a text 404 and 405, lifespan."""

    def __init__(self) -> None:
        self.router = Router([])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] == "POST" and scope["path"] == "/echo":
            received = json.loads(await read_body(receive))
            await send_raw(json_raw({"received": received}), send)
            return
        found = self.router.dispatch(scope["method"], scope["path"])
        await send_raw(as_raw(found.view()) if isinstance(found, Route) else found, send)


class RawResponse(Response):
    """A Starlette response that sends a ``Raw`` exactly as given."""

    def __init__(self, raw: Raw) -> None:
        super().__init__(status_code=raw.status)
        self.raw = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_raw(self.raw, send)


def _header_list(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


class AsgiHarness(Harness):
    """Any ASGI adapter: driven by one Starlette ``TestClient`` for the app's life."""

    name = "asgi"
    asynchronous = True

    def create(self, **options: Any) -> Adapter:
        self.router = AsgiRouter()
        return restfault.asgi.RestFaultMiddleware(self.router, **options)

    def build(self) -> None:
        self.router.router = Router(self.routes)

    def app(self) -> ASGIApp:
        """The app a server would run."""
        assert isinstance(self.restfault, restfault.asgi.RestFaultMiddleware)
        return self.restfault

    @property
    def asgi_app(self) -> ASGIApp:
        """The app a server would run, built."""
        self.ensure_built()
        return self.app()

    def http_exception(
        self, status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Exception:
        from starlette.exceptions import HTTPException

        return HTTPException(status, detail, dict(headers) if headers else None)

    def send(self, method: str, path: str, headers: Headers, content: bytes | None) -> Reply:
        response = self.client.request(method, path, headers=_header_list(headers), content=content)
        # (TestClient's response may be httpx2's: its headers are copied into httpx's)
        return Reply(
            response.status_code, httpx.Headers(response.headers.multi_items()), response.content
        )

    @property
    def client(self) -> TestClient:
        """The app's TestClient for the current ``peer``, opened on first use (lifespan
        started, one event loop per client)."""
        client = self._clients.get(self.peer)
        if client is None:
            client = TestClient(
                self.app(),
                client=(self.peer, 50000),
                raise_server_exceptions=False,
                follow_redirects=False,
            )
            self.stack.enter_context(client)
            portal = client.portal
            assert portal is not None
            # Closed while the client's loop still runs: limits.aio pools are loop-bound.
            self.stack.callback(portal.call, aclose_storage, self.restfault)
            self._clients[self.peer] = client
        return client

    @property
    def _clients(self) -> dict[str, TestClient]:
        clients: dict[str, TestClient] = self.__dict__.setdefault("_test_clients", {})
        return clients


class StarletteHarness(AsgiHarness):
    name = "starlette"
    endpoints = True

    def create(self, **options: Any) -> Adapter:
        self.framework_app: Starlette | None = None
        return restfault.starlette.RestFault(**options)

    def endpoint_adapter(self) -> restfault.starlette.RestFault:
        assert isinstance(self.restfault, restfault.starlette.RestFault)
        return self.restfault

    def endpoint(self, route: Route) -> Callable[[Request], Any]:
        view = route.view

        async def endpoint(request: Request) -> Response:
            return RawResponse(as_raw(view()))

        endpoint.__name__ = view.__name__
        # Endpoint limits are named after the endpoint: one name per route.
        endpoint.__qualname__ = f"harness.{view.__name__}[{route.path}]"
        return self.decorate(route, endpoint)

    def build(self) -> None:
        async def echo(request: Request) -> JSONResponse:
            return JSONResponse({"received": await request.json()})

        routes = [
            StarletteRoute(r.path, self.endpoint(r), methods=list(r.methods)) for r in self.routes
        ]
        routes.append(StarletteRoute("/echo", echo, methods=["POST"]))
        self.framework_app = Starlette(routes=routes)
        self.endpoint_adapter().init_app(self.framework_app)

    def app(self) -> ASGIApp:
        assert self.framework_app is not None
        return self.framework_app


class FastAPIHarness(StarletteHarness):
    name = "fastapi"

    def build(self) -> None:
        app = FastAPI()
        for route in self.routes:
            app.add_api_route(route.path, self.endpoint(route), methods=list(route.methods))

        async def echo(payload: Annotated[Any, Body()]) -> dict[str, Any]:
            return {"received": payload}

        app.add_api_route("/echo", echo, methods=["POST"])
        self.framework_app = app
        self.endpoint_adapter().init_app(app)

    def http_exception(
        self, status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Exception:
        from fastapi import HTTPException

        return HTTPException(status, detail, dict(headers) if headers else None)


# -- WSGI ----------------------------------------------------------------------------------


@dataclass
class Exchange:
    """What a strict WSGI server saw of one request."""

    calls: list[tuple[str, list[tuple[str, str]], object]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    closed: bool = False

    @property
    def status(self) -> int:
        return int(self.calls[-1][0].split(" ", 1)[0])

    @property
    def headers(self) -> httpx.Headers:
        return httpx.Headers(self.calls[-1][1])

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def serve(
    app: WSGIApplication,
    path: str = "/",
    method: str = "GET",
    *,
    raw_path: str | None = None,
    headers: Headers = (),
    content: bytes | None = None,
    peer: str = PEER,
) -> Exchange:
    """Run one request the way PEP 3333 says a server must.

    ``raw_path`` puts a path into ``PATH_INFO`` as it is (control characters included),
    where a client would have had to encode it.
    """
    environ = EnvironBuilder(
        path=path,
        method=method,
        headers=_header_list(headers),
        data=content,
        environ_base={"REMOTE_ADDR": peer},
    ).get_environ()
    if raw_path is not None:
        environ["PATH_INFO"] = raw_path
    exchange = Exchange()
    headers_sent = False

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None:
            if headers_sent:
                raise exc_info[1].with_traceback(exc_info[2])
        elif exchange.calls:
            raise AssertionError("start_response called again without exc_info")
        for name, value in response_headers:
            assert "\n" not in value, (name, value)
            assert "\r" not in value, (name, value)
        exchange.calls.append((status, list(response_headers), exc_info))
        return exchange.chunks.append

    try:
        result = app(environ, start_response)
        try:
            for chunk in result:
                if chunk:
                    headers_sent = True
                exchange.chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
                exchange.closed = True
    except Exception as exc:
        exchange.error = exc
    return exchange


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase.upper()}"
    except ValueError:
        return f"{status} UNKNOWN"


class WsgiRouter:
    """A framework-free WSGI app: routes, ``POST /echo``, a text 404 and 405."""

    def __init__(self) -> None:
        self.router = Router([])

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        # PEP 3333: the path's bytes as latin-1 text; routes are written in UTF-8.
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        if method == "POST" and path == "/echo":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            raw = json_raw({"received": json.loads(body)})
        else:
            found = self.router.dispatch(method, path)
            raw = as_raw(found.view()) if isinstance(found, Route) else found
        start_response(_status_line(raw.status), list(raw.headers))
        return list(raw.chunks)


class WsgiHarness(Harness):
    """Any WSGI adapter: driven by ``serve``, the strict PEP 3333 server stand-in."""

    name = "wsgi"

    def create(self, **options: Any) -> Adapter:
        self.router = WsgiRouter()
        middleware = restfault.wsgi.RestFaultMiddleware(self.router, **options)
        self.stack.callback(close_storage, middleware)
        return middleware

    def build(self) -> None:
        self.router.router = Router(self.routes)

    def app(self) -> WSGIApplication:
        """The app a server would run."""
        assert isinstance(self.restfault, restfault.wsgi.RestFaultMiddleware)
        return self.restfault

    @property
    def wsgi_app(self) -> WSGIApplication:
        """The app a server would run, built."""
        self.ensure_built()
        return self.app()

    def http_exception(
        self, status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Exception:
        return werkzeug_exception(status, detail, headers)

    def send(self, method: str, path: str, headers: Headers, content: bytes | None) -> Reply:
        exchange = serve(self.app(), path, method, headers=headers, content=content, peer=self.peer)
        if exchange.error is not None:
            raise exchange.error
        return Reply(exchange.status, exchange.headers, exchange.body)


def werkzeug_exception(
    status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
) -> Exception:
    """werkzeug's HTTPException for ``status``, sending ``headers`` too."""
    base: type[WerkzeugHTTPException] = default_exceptions[status]
    extra = list((headers or {}).items())

    class WithHeaders(base):  # type: ignore[valid-type,misc]  # a base chosen at run time
        def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
            return [*super().get_headers(*args, **kwargs), *extra]

    exc: Exception = WithHeaders(description=detail)
    return exc


class FlaskHarness(WsgiHarness):
    name = "flask"
    endpoints = True

    def create(self, **options: Any) -> Adapter:
        self.framework_app: flask.Flask | None = None
        extension = restfault.flask.RestFault(**options)
        self.stack.callback(close_storage, extension)
        return extension

    def endpoint_adapter(self) -> restfault.flask.RestFault:
        assert isinstance(self.restfault, restfault.flask.RestFault)
        return self.restfault

    def build(self) -> None:
        app = flask.Flask("restfault_harness")
        self.endpoint_adapter().init_app(app)
        for route in self.routes:
            rule = flask_rule(route.path)
            view = self.decorate(route, flask_view(route.view, rule))
            app.add_url_rule(rule, endpoint=route.path, view_func=view, methods=list(route.methods))

        def echo() -> flask.Response:
            return flask.jsonify({"received": flask.request.get_json()})

        app.add_url_rule("/echo", view_func=echo, methods=["POST"])
        self.framework_app = app

    def app(self) -> WSGIApplication:
        assert self.framework_app is not None
        return self.framework_app


def flask_rule(path: str) -> str:
    """Starlette's path syntax (``/a/{rest:path}``) in Flask's (``/a/<path:rest>``)."""
    path = re.sub(r"\{(\w+):(\w+)\}", r"<\2:\1>", path)
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def flask_view(view: View, rule: str) -> Callable[..., flask.Response]:
    def flask_view(**_: object) -> flask.Response:
        # The view runs in its own request's context (key_func and cost read it too).
        assert flask.request.url_rule is not None
        assert flask.request.url_rule.rule == rule
        result = view()
        if isinstance(result, Raw):
            return flask.Response(
                list(result.chunks), status=result.status, headers=list(result.headers)
            )
        return flask.jsonify(result)

    flask_view.__name__ = view.__name__
    return flask_view


class MakeHarness(Protocol):
    """The ``harness`` fixture: ``harness(peer=PEER, **options) -> Harness``."""

    def __call__(self, *, peer: str = PEER, **options: Any) -> Harness: ...


def parametrized_by_mark(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether a test parametrizes ``name`` itself (narrowing a table the hooks would add)."""
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        names = names.split(",") if isinstance(names, str) else names
        if name in [n.strip() for n in names]:
            return True
    return False


HARNESSES: dict[str, type[Harness]] = {
    "asgi": AsgiHarness,
    "wsgi": WsgiHarness,
    "starlette": StarletteHarness,
    "fastapi": FastAPIHarness,
    "flask": FlaskHarness,
}
assert tuple(HARNESSES) == ADAPTERS


# -- the rate-limit app every limit test shares --------------------------------------------


def header_of(request: Any, name: str) -> str | None:
    """A request header from any adapter's request: Request, flask.request, scope, environ."""
    headers = getattr(request, "headers", None)
    if headers is not None:
        value = headers.get(name)
        return None if value is None else str(value)
    if "headers" in request:  # ASGI scope
        wanted = name.lower().encode()
        return next((v.decode() for k, v in request["headers"] if k == wanted), None)
    value = request.get("HTTP_" + name.upper().replace("-", "_"))
    return None if value is None else str(value)


def by_user(request: Any) -> str | None:
    return header_of(request, "x-user")


async def by_user_async(request: Any) -> str | None:
    return header_of(request, "x-user")


def cost_from_header(request: Any) -> int:
    return int(header_of(request, "x-cost") or "1")


def add_rate_limit_routes(app: Harness) -> Harness:
    """``/``, ``/health`` and ``/boom`` (a 404 THING_NOT_FOUND) on every adapter; where
    endpoints exist, ``/limited`` (2/minute, EMAIL_RATE_LIMIT), ``/cost`` (5/minute, cost
    2), ``/costfn`` (cost from X-Cost), ``/keyed`` (keyed by X-User), ``/exempt``, and on
    async adapters ``/keyed-async``."""
    app.route("/")(ok)
    app.route("/health")(ok)
    app.route("/boom")(raising(NotFoundException("no such thing", code="THING_NOT_FOUND")))
    if not app.endpoints:
        return app
    app.route("/limited", limits=[RouteLimit("2/minute", code="EMAIL_RATE_LIMIT")])(ok)
    app.route("/cost", limits=[RouteLimit("5/minute", cost=2)])(ok)
    app.route("/costfn", limits=[RouteLimit("5/minute", cost=cost_from_header)])(ok)
    app.route("/keyed", limits=[RouteLimit("2/minute", key_func=by_user)])(ok)
    app.route("/exempt", exempt=True)(ok)
    if app.asynchronous:
        app.route("/keyed-async", limits=[RouteLimit("2/minute", key_func=by_user_async)])(ok)
    return app


# -- closing storages (filterwarnings=error: an unclosed socket fails a later test) --------
# No public API closes an adapter's storage: these reach into ``.limiter`` (private).


def _clients(holder: object) -> list[Any]:
    """The redis clients a limits storage (or its bridge) holds: master, replica, sentinels."""
    clients = [getattr(holder, name, None) for name in ("storage", "storage_replica")]
    sentinel = getattr(holder, "sentinel", None)
    clients += list(getattr(sentinel, "sentinels", ()))
    return [c for c in clients if c is not None]


async def aclose_storage(adapter: object) -> None:
    storage = getattr(getattr(adapter, "limiter", None), "storage", None)
    bridge = getattr(storage, "bridge", None)
    for client in _clients(bridge):
        if hasattr(client, "aclose"):  # redis.asyncio
            await client.aclose()
    memcachio = getattr(bridge, "_storage", None)
    if memcachio is not None:
        memcachio.connection_pool.close()


def close_storage(adapter: object) -> None:
    storage = getattr(getattr(adapter, "limiter", None), "storage", None)
    for client in _clients(storage):
        close = getattr(client, "close", None)
        if callable(close):
            close()


# -- logs and time ---------------------------------------------------------------------------


def restfault_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "restfault"]


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The ``restfault`` logger's records at ERROR and above."""
    return [r for r in restfault_records(caplog) if r.levelno >= logging.ERROR]


class FakeClock:
    """``time.time`` under the test's control (limits' memory storage and restfault read it)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- raw ASGI: driving an app message by message -------------------------------------------


def http_scope(
    path: str, method: str = "GET", headers: Sequence[tuple[bytes, bytes]] = ()
) -> Scope:
    """An HTTP scope as a server would build it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


def asgi_call(
    app: ASGIApp, scope: Scope, body: bytes = b""
) -> tuple[list[Message], BaseException | None]:
    """Call ``app`` once: the messages it sent, and the exception that escaped it."""
    sent: list[Message] = []
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if requested:  # the client stays connected until the app is done
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        await app(scope, receive, send)

    try:
        asyncio.run(run())
    except Exception as exc:
        return sent, exc
    return sent, None


def starts(sent: list[Message]) -> list[int]:
    """The statuses of every ``http.response.start`` sent."""
    return [m["status"] for m in sent if m["type"] == "http.response.start"]


def start_headers(sent: list[Message]) -> httpx.Headers:
    """The headers of the (first) response start."""
    start = next(m for m in sent if m["type"] == "http.response.start")
    return httpx.Headers([(bytes(k), bytes(v)) for k, v in start.get("headers", [])])


def body_of(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
