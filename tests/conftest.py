"""App factories shared by the foundation tests.

Every test builds its own tiny app: ``starlette_app`` / ``flask_app`` for one framework,
``harness`` for behaviour both frameworks must share (parametrised over them). A harness
app is written once, in framework-neutral terms — a route is a zero-argument callable
that returns a JSON-able value or raises — and answers through one ``Reply`` type.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from restfault import (
    BadRequestException,
    BatchException,
    ConflictResourceException,
    ForbiddenException,
    InternalServerErrorException,
    InvalidJsonException,
    NotFoundException,
    NotImplementedException,
    RestException,
    ServiceUnavailableException,
    TooManyRequestsException,
    UnauthorizedException,
    render_error,
)

# -- the tables every envelope test walks ------------------------------------------------

# (class, status, code, message) straight from API.md §1.
EXCEPTION_TABLE: list[tuple[type[RestException], int, str, str]] = [
    (RestException, 500, "INTERNAL_SERVER_ERROR", "Internal Server Error"),
    (BadRequestException, 400, "BAD_REQUEST", "Bad Request"),
    (InvalidJsonException, 400, "INVALID_JSON", "Invalid JSON"),
    (BatchException, 400, "BATCH_ERROR", "Batch operation error"),
    (UnauthorizedException, 401, "UNAUTHORIZED", "Unauthorized"),
    (ForbiddenException, 403, "FORBIDDEN", "Forbidden"),
    (NotFoundException, 404, "NOT_FOUND", "Not Found"),
    (ConflictResourceException, 409, "CONFLICT", "Conflict"),
    (TooManyRequestsException, 429, "RATE_LIMIT_EXCEEDED", "Too Many Requests"),
    (InternalServerErrorException, 500, "INTERNAL_SERVER_ERROR", "Internal Server Error"),
    (NotImplementedException, 501, "NOT_IMPLEMENTED", "Not Implemented"),
    (ServiceUnavailableException, 503, "SERVICE_UNAVAILABLE", "Service Unavailable"),
]

BATCH_ERRORS = [
    {"index": 0, "status": 409, "code": "CONFLICT", "message": "Duplicate key value"},
    {"index": 2, "status": 400, "code": "BAD_REQUEST", "message": "Foreign key violation"},
]


@dataclasses.dataclass
class TableGone(NotFoundException):
    """A domain error written as a dataclass: its generated __init__ skips RestException's."""

    table: str = "posts"
    status_code = 410
    code = "TABLE_GONE"
    message = "Table is gone"


@dataclasses.dataclass(frozen=True)
class FrozenTableGone(NotFoundException):
    """The same, frozen: restfault may set no attribute on it the usual way."""

    table: str = "posts"
    status_code = 410
    code = "TABLE_GONE"
    message = "Table is gone"


DATACLASS_EXCEPTIONS = [TableGone, FrozenTableGone]


def make_exception(cls: type[RestException], **kwargs: Any) -> RestException:
    """An instance of ``cls`` with its defaults (BatchException needs its errors)."""
    if cls is BatchException:
        return BatchException(list(BATCH_ERRORS), resource=[None, {"id": 2}, None], **kwargs)
    return cls(**kwargs)


def house_style(exc: RestException, debug: bool) -> tuple[dict[str, Any], str]:
    """A callable style: a house envelope of its own."""
    document: dict[str, Any] = {"status": exc.status_code, "kind": exc.code, "text": exc.message}
    if exc.context is not None:
        document["details"] = exc.context
    return document, "application/vnd.house+json"


STYLES: list[Any] = ["dreamfactory", "bkend", "problem", house_style]
STYLE_IDS = ["dreamfactory", "bkend", "problem", "callable"]


def body_status(style: Any, document: dict[str, Any]) -> int:
    """The status the body of ``style`` states."""
    if style == "dreamfactory":
        return int(document["error"]["code"])
    if style == "bkend":
        # bkend bodies carry the string code only; their status is the response's.
        raise AssertionError("bkend bodies have no status")
    return int(document["status"])


def body_message(style: Any, document: dict[str, Any]) -> str:
    if style == "dreamfactory":
        return str(document["error"]["message"])
    if style == "bkend":
        return str(document["message"])
    if style == "problem":
        return str(document["detail"])
    return str(document["text"])


def body_context(style: Any, document: dict[str, Any]) -> Any:
    if style == "dreamfactory":
        return document["error"].get("context")
    if style == "bkend":
        return document.get("context")
    if style == "problem":
        return {k: v for k, v in document.items() if k not in PROBLEM_MEMBERS} or None
    return document.get("details")


PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code", "instance"}


def expected_document(exc: RestException, style: Any) -> Any:
    """What restfault's own renderer says ``exc`` looks like in ``style``."""
    return json.loads(render_error(exc, style=style).body)


# -- one reply type for every client ---------------------------------------------------


@dataclass
class Reply:
    """A response from any test client: status, case-insensitive headers, body."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


def reply_from_httpx(response: httpx.Response) -> Reply:
    return Reply(response.status_code, response.headers, response.content)


def reply_from_werkzeug(response: Any) -> Reply:
    # WSGI header values are Latin-1 str (PEP 3333); httpx would encode str as ASCII.
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    return Reply(response.status_code, httpx.Headers(headers), response.data)


# -- Starlette -----------------------------------------------------------------------------


@pytest.fixture
def starlette_app() -> Callable[..., Any]:
    """``starlette_app(routes, middleware=None, **options) -> (app, restfault)``."""
    from starlette.applications import Starlette

    from restfault.starlette import RestFault

    def make(
        routes: Sequence[Any] = (), *, middleware: Sequence[Any] = (), **options: Any
    ) -> tuple[Any, Any]:
        app = Starlette(routes=list(routes), middleware=list(middleware))
        return app, RestFault(app, **options)

    return make


@pytest.fixture
def flask_app() -> Callable[..., Any]:
    """``flask_app(**options) -> (app, restfault)``; add views with ``app.route``."""
    from flask import Flask

    from restfault.flask import RestFault

    def make(*, config: dict[str, Any] | None = None, **options: Any) -> tuple[Any, Any]:
        app = Flask("restfault_tests")
        app.config.update(config or {})
        return app, RestFault(app, **options)

    return make


# -- the framework-neutral harness ---------------------------------------------------------

View = Callable[[], Any]


class Harness:
    """One app in framework-neutral terms; ``name`` says which framework runs it."""

    name: str

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.routes: list[tuple[str, View, tuple[str, ...]]] = []
        self.restfault: Any = None

    def route(self, path: str, methods: Sequence[str] = ("GET",)) -> Callable[[View], View]:
        def decorator(view: View) -> View:
            self.routes.append((path, view, tuple(methods)))
            return view

        return decorator

    def build(self) -> None:
        raise NotImplementedError

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        raise NotImplementedError

    def http_exception(
        self, status: int, detail: str | None = None, headers: dict[str, str] | None = None
    ) -> Exception:
        """The framework's own HTTPException."""
        raise NotImplementedError

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)


class StarletteHarness(Harness):
    name = "starlette"

    def __init__(self, *, cors: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.cors = cors
        self.client: Any = None

    def build(self) -> None:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.middleware.cors import CORSMiddleware
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route
        from starlette.testclient import TestClient

        from restfault.starlette import RestFault

        def endpoint_for(view: View) -> Any:
            async def endpoint(request: Request) -> JSONResponse:
                return JSONResponse(view())

            endpoint.__qualname__ = f"harness.{view.__name__}"
            return endpoint

        async def echo(request: Request) -> JSONResponse:
            return JSONResponse({"received": await request.json()})

        routes = [Route(p, endpoint_for(v), methods=list(m)) for p, v, m in self.routes]
        routes.append(Route("/echo", echo, methods=["POST"]))
        middleware = []
        if self.cors == "constructor":
            middleware.append(Middleware(CORSMiddleware, allow_origins=["*"]))
        app = Starlette(routes=routes, middleware=middleware)
        self.restfault = RestFault(app, **self.options)
        if self.cors == "after":
            app.add_middleware(CORSMiddleware, allow_origins=["*"])
        self.client = TestClient(app, raise_server_exceptions=False)

    def http_exception(
        self, status: int, detail: str | None = None, headers: dict[str, str] | None = None
    ) -> Exception:
        from starlette.exceptions import HTTPException

        return HTTPException(status, detail, headers)

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        if self.client is None:
            self.build()
        return reply_from_httpx(self.client.request(method, path, **kwargs))


class FlaskHarness(Harness):
    name = "flask"

    def __init__(self, *, config: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.config = config or {}
        self.client: Any = None

    def build(self) -> None:
        from flask import Flask, jsonify, request

        from restfault.flask import RestFault

        app = Flask("restfault_harness")
        app.config.update(self.config)
        self.restfault = RestFault(app, **self.options)
        for path, view, methods in self.routes:
            app.add_url_rule(
                _flask_rule(path), endpoint=path, view_func=_flask_view(view), methods=list(methods)
            )

        @app.post("/echo")
        def echo() -> Any:
            return jsonify({"received": request.get_json()})

        self.client = app.test_client()

    def http_exception(
        self, status: int, detail: str | None = None, headers: dict[str, str] | None = None
    ) -> Exception:
        from werkzeug.exceptions import HTTPException, default_exceptions

        base: type[HTTPException] = default_exceptions[status]
        extra = list((headers or {}).items())

        class WithHeaders(base):  # type: ignore[valid-type,misc]
            def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
                return [*super().get_headers(*args, **kwargs), *extra]

        return WithHeaders(description=detail)

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        if self.client is None:
            self.build()
        if "content" in kwargs:
            kwargs["data"] = kwargs.pop("content")
        return reply_from_werkzeug(self.client.open(path, method=method, **kwargs))


def _flask_rule(path: str) -> str:
    """Starlette's path syntax (``/a/{rest:path}``) in Flask's (``/a/<path:rest>``)."""
    path = re.sub(r"\{(\w+):(\w+)\}", r"<\2:\1>", path)
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def _flask_view(view: View) -> Callable[..., Any]:
    from flask import jsonify

    def flask_view(**_: Any) -> Any:
        return jsonify(view())

    flask_view.__name__ = view.__name__
    return flask_view


HARNESSES = {"starlette": StarletteHarness, "flask": FlaskHarness}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Callable[..., Harness]:
    """``harness(**options) -> Harness`` for each framework in turn."""
    cls = HARNESSES[request.param]

    def make(**options: Any) -> Harness:
        return cls(**options)

    return make


# -- raw ASGI --------------------------------------------------------------------------------


def http_scope(
    path: str, method: str = "GET", headers: Sequence[tuple[bytes, bytes]] = ()
) -> dict[str, Any]:
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
    app: Any, scope: dict[str, Any], body: bytes = b""
) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Call ``app`` once: the messages it sent, and the exception that escaped it."""
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:  # the client stays connected until the app is done
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        asyncio.run(app(scope, receive, send))
    except Exception as exc:
        return sent, exc
    return sent, None


def starts(sent: list[dict[str, Any]]) -> list[int]:
    """The statuses of every ``http.response.start`` sent."""
    return [m["status"] for m in sent if m["type"] == "http.response.start"]


def start_headers(sent: list[dict[str, Any]]) -> httpx.Headers:
    """The headers of the (first) response start."""
    start = next(m for m in sent if m["type"] == "http.response.start")
    return httpx.Headers([(bytes(k), bytes(v)) for k, v in start.get("headers", [])])


def body_of(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


# -- logs ----------------------------------------------------------------------------------


@pytest.fixture
def restfault_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, capturing the ``restfault`` logger from DEBUG up."""
    with caplog.at_level(logging.DEBUG, logger="restfault"):
        yield caplog


def restfault_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "restfault"]
