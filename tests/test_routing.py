"""The framework's router decides which endpoint a request reaches, and so whose limits
apply: first full match wins, ``Host``, ``Mount``, mounted Starlette and FastAPI apps,
FastAPI routers; endpoints behind ``functools.wraps`` decorators, class-based views and
endpoints built by one factory keep their own limits (API.md §4)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import HTTPException as FastAPIHTTPException
from flask import Flask
from flask.views import MethodView
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Host, Mount, Route, Router
from starlette.testclient import TestClient

import restfault.flask
import restfault.starlette
from restfault import ConfigurationError, NotFoundException, UnauthorizedException
from tests.harness import FakeClock

Endpoint = Callable[[Request], Any]


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "params": request.path_params})


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator in the usual shape: functools.wraps keeps ``__wrapped__``."""

    @functools.wraps(view)
    async def wrapper(request: Request) -> Any:
        return await view(request)

    return wrapper


def statuses(client: TestClient, path: str, n: int, **kwargs: Any) -> list[int]:
    return [client.get(path, **kwargs).status_code for _ in range(n)]


# -- Starlette: the first full match wins ------------------------------------------------


def test_an_earlier_route_is_never_charged_a_later_routes_limit() -> None:
    rf = restfault.starlette.RestFault()

    @rf.limit("1/minute")
    async def user(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["id"]})

    app = Starlette(routes=[Route("/users/me", ok), Route("/users/{id}", user)])
    rf.init_app(app)
    client = TestClient(app)
    me = [client.get("/users/me") for _ in range(3)]
    assert [r.status_code for r in me] == [200, 200, 200]
    assert all("x-ratelimit-limit" not in r.headers for r in me)
    assert statuses(client, "/users/7", 2) == [200, 429]


def test_a_per_route_key_func_reads_path_params() -> None:
    rf = restfault.starlette.RestFault()

    @rf.limit("1/minute", key_func=lambda request: request.path_params["id"])
    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["id"]})

    app = Starlette(routes=[Route("/items/{id}", item)])
    rf.init_app(app)
    client = TestClient(app)
    assert statuses(client, "/items/1", 2) == [200, 429]
    assert statuses(client, "/items/2", 2) == [200, 429]


def test_endpoints_under_host_keep_their_limits_and_exemptions() -> None:
    rf = restfault.starlette.RestFault(default_limits="1/minute")

    @rf.limit("2/minute", code="API_LIMIT")
    async def limited(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.exempt
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    api = Router(routes=[Route("/limited", limited), Route("/health", health)])
    app = Starlette(routes=[Host("api.example.com", app=api)])
    rf.init_app(app)
    client = TestClient(app, base_url="http://api.example.com")
    assert statuses(client, "/health", 3) == [200, 200, 200]
    replies = [client.get("/limited") for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 429]
    assert replies[0].headers["x-ratelimit-limit"] == "1"  # the default, least remaining


def test_class_based_endpoints_keep_their_methods_limits() -> None:
    rf = restfault.starlette.RestFault()

    class Things(HTTPEndpoint):
        async def get(self, request: Request) -> JSONResponse:
            return JSONResponse({"ok": True})

        @rf.limit("1/minute")
        async def post(self, request: Request) -> JSONResponse:
            return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/things", Things)])
    rf.init_app(app)
    client = TestClient(app)
    assert statuses(client, "/things", 3) == [200, 200, 200]
    assert [client.post("/things").status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("order", ["limit inside", "limit outside"])
def test_a_wrapped_endpoint_keeps_its_limit(order: str) -> None:
    rf = restfault.starlette.RestFault()

    async def secret(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    if order == "limit inside":
        endpoint = login_required(rf.limit("1/minute")(secret))
    else:
        endpoint = rf.limit("1/minute")(login_required(secret))
    app = Starlette(routes=[Route("/secret", endpoint)])
    rf.init_app(app)
    assert statuses(TestClient(app), "/secret", 2) == [200, 429]


def test_endpoints_built_by_one_factory_keep_their_own_budgets() -> None:
    rf = restfault.starlette.RestFault()

    def make_endpoint(name: str) -> Endpoint:
        @rf.limit("1/minute")
        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse({"name": name})

        return endpoint

    app = Starlette(routes=[Route("/a", make_endpoint("a")), Route("/b", make_endpoint("b"))])
    rf.init_app(app)
    client = TestClient(app)
    assert statuses(client, "/a", 2) == [200, 429]
    assert statuses(client, "/b", 2) == [200, 429]


def test_a_limit_no_route_leads_to_is_logged_once_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rf = restfault.starlette.RestFault()

    async def routed(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @rf.limit("1/minute")
    async def orphan(request: Request) -> JSONResponse:  # never given to a route
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/", login_required(routed))])
    rf.init_app(app)
    client = TestClient(app)
    with caplog.at_level(logging.WARNING, logger="restfault"):
        assert statuses(client, "/", 3) == [200, 200, 200]
    lines = [r.getMessage() for r in caplog.records if "no route of the app" in r.getMessage()]
    assert len(lines) == 1
    assert "orphan" in lines[0]


# -- mounted sub-apps ------------------------------------------------------------------


class Item(BaseModel):
    name: str
    price: float


def fastapi_sub_app() -> FastAPI:
    sub = FastAPI()

    @sub.get("/teapot")
    async def teapot() -> None:
        raise FastAPIHTTPException(418, "short and stout")

    @sub.get("/missing")
    async def missing() -> None:
        raise NotFoundException("no such record", code="RECORD_NOT_FOUND")

    @sub.post("/items")
    async def create(item: Item) -> Item:
        return item

    return sub


def test_a_mounted_fastapi_app_answers_as_its_routes_would_in_the_parent() -> None:
    app = FastAPI()
    rf = restfault.starlette.RestFault(app, style="bkend", default_limits="100/minute")
    app.mount("/sub", fastapi_sub_app())
    client = TestClient(app)

    teapot = client.get("/sub/teapot")
    assert (teapot.status_code, teapot.json()) == (
        418,
        {"error": "I_M_A_TEAPOT", "message": "short and stout"},
    )
    assert teapot.headers["x-ratelimit-limit"] == "100"  # the parent's limits apply
    missing = client.get("/sub/missing")
    assert (missing.status_code, missing.json()["error"]) == (404, "RECORD_NOT_FOUND")
    nowhere = client.get("/sub/nowhere")
    assert (nowhere.status_code, nowhere.json()["error"]) == (404, "NOT_FOUND")
    invalid = client.post("/sub/items", json={"name": "x", "price": "lots"})
    assert (invalid.status_code, invalid.json()["error"]) == (400, "VALIDATION_ERROR")
    assert invalid.json()["context"]["errors"][0]["loc"] == ["body", "price"]
    broken = client.post(
        "/sub/items", content=b"{bad", headers={"Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "INVALID_JSON")
    assert rf is app.state.restfault


def test_a_mounted_starlette_apps_routes_carry_their_limits() -> None:
    rf = restfault.starlette.RestFault(style="bkend")

    @rf.limit("1/minute", code="SUB_LIMIT")
    async def limited(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    sub = Starlette(routes=[Route("/limited", limited)])
    app = Starlette(routes=[Mount("/v2", app=sub)])
    rf.init_app(app)
    client = TestClient(app)
    replies = [client.get("/v2/limited") for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 429]
    assert replies[1].json()["error"] == "SUB_LIMIT"


# -- Starlette's own errors ------------------------------------------------------------


def test_the_app_wide_body_limit_answers_the_envelope() -> None:
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])], max_body_size=10)
    restfault.starlette.RestFault(app, style="bkend")
    client = TestClient(app)
    assert client.post("/echo", content=b"x" * 10).text == "10"
    reply = client.post("/echo", content=b"x" * 11)
    assert reply.status_code == 413
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"error": "CONTENT_TOO_LARGE", "message": "Content Too Large"}


def test_exempt_paths_are_app_paths_behind_a_root_path() -> None:
    app = Starlette(routes=[Route("/health", ok), Route("/data", ok)])
    restfault.starlette.RestFault(app, default_limits="1/minute", exempt_paths=["/health"])
    client = TestClient(app, root_path="/api")  # as behind `uvicorn --root-path /api`
    assert statuses(client, "/api/health", 3) == [200, 200, 200]
    assert statuses(client, "/api/data", 2) == [200, 429]


# -- Flask -------------------------------------------------------------------------------


def test_flask_method_views_and_wrapped_views_keep_their_limits() -> None:
    app = Flask(__name__)
    rf = restfault.flask.RestFault(app)

    def wrapped(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return view(*args, **kwargs)

        return wrapper

    class Things(MethodView):
        def get(self) -> Any:
            return {"ok": True}

        @rf.limit("1/minute")
        def post(self) -> Any:
            return {"ok": True}

    @app.get("/secret")
    @wrapped
    @rf.limit("1/minute")
    def secret() -> Any:
        return {"ok": True}

    app.add_url_rule("/things", view_func=Things.as_view("things"))
    client = app.test_client()
    assert [client.get("/things").status_code for _ in range(3)] == [200, 200, 200]
    assert [client.post("/things").status_code for _ in range(2)] == [200, 429]
    assert [client.get("/secret").status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("debug", [False, True])
def test_an_error_escaping_after_request_is_the_envelope(
    debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    restfault.flask.RestFault(app, style="bkend", debug=debug)

    @app.get("/")
    def index() -> Any:
        return {"ok": True}

    @app.after_request
    def broken(response: Any) -> Any:
        raise RuntimeError("after_request went wrong")

    with caplog.at_level(logging.ERROR, logger="restfault"):
        reply = app.test_client().get("/")
    assert reply.status_code == 500
    document = reply.get_json()
    assert (document["error"], document["message"]) == (
        "INTERNAL_SERVER_ERROR",
        "Internal Server Error",
    )
    if debug:
        assert document["context"]["debug"]["type"] == "builtins.RuntimeError"
    else:
        assert "context" not in document
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


# -- requests no endpoint takes, and what can go wrong at start-up ------------------------


def test_a_routing_404_counts_and_is_refused_like_any_request() -> None:
    app = Starlette(routes=[Route("/", ok)])
    restfault.starlette.RestFault(app, style="bkend", default_limits="2/minute")
    client = TestClient(app)
    replies = [client.get("/nowhere") for _ in range(3)]
    assert [r.status_code for r in replies] == [404, 404, 429]
    assert replies[2].json() == {"error": "RATE_LIMIT_EXCEEDED", "message": "Too Many Requests"}
    assert replies[1].headers["x-ratelimit-remaining"] == "0"


def _late_limit_app(
    kind: str, options: dict[str, Any]
) -> tuple[Callable[[str], Any], Any, Callable[..., Any]]:
    """An app with no endpoint limit, its adapter and the endpoint a limit is put on later."""
    if kind == "flask":
        flask_app = Flask("restfault_tests")
        flask_rf = restfault.flask.RestFault(flask_app, **options)

        @flask_app.get("/things")
        def view() -> dict[str, Any]:
            return {"things": []}

        return flask_app.test_client().get, flask_rf, view

    async def things(request: Request) -> JSONResponse:
        return JSONResponse({"things": []})

    if kind == "fastapi":
        fastapi_app = FastAPI()
        fastapi_app.get("/things")(things)
        app: Starlette = fastapi_app
    elif kind == "mounted":
        app = Starlette(routes=[Mount("/", routes=[Route("/things", things)])])
    else:
        app = Starlette(routes=[Route("/things", things)])
    return TestClient(app).get, restfault.starlette.RestFault(app, **options), things


@pytest.mark.parametrize("defaults", [None, "100/minute"], ids=["no-limits", "default-limits"])
@pytest.mark.parametrize("kind", ["starlette", "mounted", "fastapi", "flask"])
def test_a_limit_declared_after_the_app_served_still_applies(
    kind: str, defaults: str | None, clock: FakeClock
) -> None:
    """With nothing to decide, or only default limits (decided before routing), a request
    reaches its endpoint as if restfault were not there (no dispatch point, no request
    hook); a limit declared later takes effect at the next request, and an exemption then
    leaves the endpoint's own limit in force."""
    get, rf, endpoint = _late_limit_app(kind, {"default_limits": defaults} if defaults else {})
    assert [get("/things").status_code for _ in range(3)] == [200, 200, 200]
    rf.limit("1/minute")(endpoint)
    replies = [get("/things") for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 429]
    assert replies[1].headers["retry-after"] == "60"
    assert replies[1].headers["x-ratelimit-remaining"] == "0"
    rf.exempt(endpoint)
    assert get("/things").status_code == 429  # its own limit still holds


def test_init_app_after_the_app_served_is_refused() -> None:
    app = Starlette(routes=[Route("/", ok)])
    TestClient(app).get("/")
    with pytest.raises(ConfigurationError, match="must run before the app serves"):
        restfault.starlette.RestFault(app)


def test_a_sub_app_that_served_before_its_parent_keeps_its_own_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sub = Starlette(routes=[Route("/", ok)])
    TestClient(sub).get("/")  # served on its own first
    app = Starlette(routes=[Mount("/sub", app=sub)])
    restfault.starlette.RestFault(app)
    with caplog.at_level(logging.WARNING, logger="restfault"):
        assert TestClient(app).get("/sub/").status_code == 200
    assert any("already served requests" in r.getMessage() for r in caplog.records)


def test_flask_warns_about_a_limit_no_view_leads_to(caplog: pytest.LogCaptureFixture) -> None:
    app = Flask(__name__)
    rf = restfault.flask.RestFault(app)

    @rf.limit("1/minute")
    def orphan() -> Any:  # never registered as a view
        return {"ok": True}  # pragma: no cover

    app.add_url_rule("/", "index", lambda: {"ok": True})
    with caplog.at_level(logging.WARNING, logger="restfault"):
        client = app.test_client()
        assert [client.get("/").status_code for _ in range(2)] == [200, 200]
    lines = [r.getMessage() for r in caplog.records if "no view of the app" in r.getMessage()]
    assert len(lines) == 1
    assert "orphan" in lines[0]


def test_a_flask_blueprint_exemption_keeps_its_views_own_limits() -> None:
    from flask import Blueprint

    app = Flask(__name__)
    rf = restfault.flask.RestFault(app, default_limits="1/minute")
    admin = rf.exempt(Blueprint("admin", __name__))

    @admin.get("/stats")
    @rf.limit("2/minute")
    def stats() -> Any:
        return {"ok": True}

    @admin.get("/free")
    def free() -> Any:
        return {"ok": True}

    app.register_blueprint(admin, url_prefix="/admin")
    client = app.test_client()
    assert [client.get("/admin/free").status_code for _ in range(3)] == [200, 200, 200]
    assert [client.get("/admin/stats").status_code for _ in range(3)] == [200, 200, 429]


def test_flask_limits_apply_when_the_wsgi_app_is_replaced_after_init_app() -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = Flask(__name__)
    restfault.flask.RestFault(app, default_limits="1/minute")
    app.add_url_rule("/", "index", lambda: {"ok": True})
    app.wsgi_app = ProxyFix(app.wsgi_app)  # type: ignore[method-assign]
    client = app.test_client()
    assert [client.get("/").status_code for _ in range(2)] == [200, 429]
    # Even Flask's own wsgi_app put back, without restfault's wrapper: the hooks still limit.
    other = Flask(__name__)
    restfault.flask.RestFault(other, default_limits="1/minute")
    other.add_url_rule("/", "index", lambda: {"ok": True})
    other.wsgi_app = functools.partial(Flask.wsgi_app, other)  # type: ignore[method-assign]
    client = other.test_client()
    assert [client.get("/").status_code for _ in range(2)] == [200, 429]


class _Guard:
    """Middleware of the app's own, inside restfault: answers 401 without a token."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (b"x-token", b"t") not in scope["headers"]:
            await PlainTextResponse("no token", status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _RaisingGuard(_Guard):
    """The same guard, raising restfault's 401 instead of answering its own."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (b"x-token", b"t") not in scope["headers"]:
            raise UnauthorizedException("no token")
        await self.app(scope, receive, send)


def _guarded(app: Any) -> Any:
    from starlette.middleware import Middleware

    return Middleware(app)


@pytest.mark.parametrize(
    ("routes", "path", "guarded"),
    [
        pytest.param(lambda: [Route("/thing", ok)], "/thing", False, id="plain-route"),
        pytest.param(lambda: [Route("/c", Counter)], "/c", False, id="class-endpoint"),
        pytest.param(
            lambda: [Mount("/sub", routes=[Route("/thing", ok)])], "/sub/thing", False, id="mount"
        ),
        pytest.param(
            lambda: [Route("/thing", ok, middleware=[_guarded(_Guard)])],
            "/thing",
            True,
            id="route-middleware",
        ),
        pytest.param(
            lambda: [Route("/thing", ok, middleware=[_guarded(_RaisingGuard)])],
            "/thing",
            True,
            id="route-middleware-raising",
        ),
        pytest.param(
            lambda: [
                Mount(
                    "/sub",
                    app=Starlette(routes=[Route("/thing", ok)], middleware=[_guarded(_Guard)]),
                )
            ],
            "/sub/thing",
            True,
            id="mounted-app-middleware",
        ),
    ],
)
def test_every_route_layout_counts_and_refuses_alike(
    routes: Callable[[], list[Any]], path: str, guarded: bool
) -> None:
    """With default limits only, nothing the router finds changes the decision: a request
    is decided before routing when nothing of the app's lies between restfault and the
    endpoint, else where the router hands it over (middleware on a route or a mounted
    app runs first). Either way every request counts — one the app's own middleware
    answers or raises an error for too, as a routing 404 does — and the 429 is the same."""
    app = Starlette(routes=routes())
    restfault.starlette.RestFault(app, default_limits="2/minute")
    client = TestClient(app)
    replies = [client.get(path) for _ in range(3)]
    assert [r.status_code for r in replies] == ([401, 401, 429] if guarded else [200, 200, 429])
    if guarded:  # the guard's own text 401, or the one it raised: the envelope either way
        assert replies[0].json()["error"]["code"] == 401
        assert replies[0].headers["x-ratelimit-remaining"] == "1"
    assert statuses(client, path, 2, headers={"X-Token": "t"}) == [429, 429]
    limited = client.get(path, headers={"X-Token": "t"})
    assert limited.json()["error"]["code"] == 429
    assert limited.headers["retry-after"] == "60"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert client.get("/nowhere").status_code == 429  # a routing 404 counts too


class Counter(HTTPEndpoint):
    async def get(self, request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})
