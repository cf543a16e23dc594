"""restfault's example on Starlette: the data API of ``examples/domain/``.

    python examples/starlette_app/app.py            # or: uvicorn examples.starlette_app.app:app

Settings are the environment variables of shared/EXAMPLES.md, read by ``create_app()``
(``examples/domain/``'s ``Settings``); ``HOST`` and ``PORT`` say where running the file
listens. ``examples/flask_app/app.py`` is the same API on Flask, answering alike.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

if not __package__:  # run as a file: import `examples` as from the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.domain import ExampleApi, Settings, bearer_token, unique_constraint
from restfault import RestException
from restfault.starlette import RestFault

# -- reading requests ----------------------------------------------------------------------


def header(request: Request, name: str) -> str | None:
    # A repeated header is one comma-joined value, as WSGI servers pass it to Flask: two
    # keys (or tokens) in one request are no valid key, in both apps.
    return ", ".join(request.headers.getlist(name)) or None


def api_key(request: Request) -> str | None:
    return header(request, "X-API-Key") or header(request, "X-DreamFactory-API-Key")


def session_token(request: Request) -> str | None:
    session = header(request, "X-DreamFactory-Session-Token")
    return bearer_token(session, header(request, "Authorization"))


def by_client_address(request: Request) -> None:
    """Keys a limit by the client's address whatever the API key: restfault keys a request
    whose key_func returns None by its address (trusted proxies and IPv6 subnets applied)."""
    return


# -- parity: settings that exist only so that both apps answer byte for byte alike ---------


def same_answers_as_flask(app: Starlette, restfault: RestFault) -> None:
    app.router.redirect_slashes = False  # /api/v2/health/ is a 404, as in Flask

    @restfault.translate(HTTPException)
    def http_error(exc: HTTPException) -> RestException:
        """Starlette's routing errors with ``Allow`` sorted (Starlette lists a set's order)."""
        headers = dict(exc.headers or {})
        if "Allow" in headers:
            headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
        return RestException(exc.detail, status_code=exc.status_code, headers=headers)


# -- the app -------------------------------------------------------------------------------


def create_app() -> Starlette:
    """The app, configured from the environment."""
    settings = Settings.from_environment()
    api = ExampleApi(settings)
    restfault = RestFault(
        **settings.text_options(),
        debug=settings.debug,
        storage_uri=settings.storage_uri,
        key_func=lambda request: api.rate_limit_key(api_key(request)),
        default_limits=lambda request: api.plan_limits(api_key(request)),
        path_limits={"/api/v2/db/": settings.db_limits},
        maintenance=api.maintenance,
        request_id_header="X-Request-ID",
    )
    restfault.translate(sqlite3.IntegrityError)(unique_constraint)

    @restfault.exempt
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(api.openapi)

    async def records(request: Request) -> Response:
        # One route per path, so that a 405 lists every method the path has in Allow.
        key, table = api_key(request), request.path_params["table"]
        if request.method == "GET":
            query = request.query_params
            return JSONResponse(await run_in_threadpool(api.list_records, key, table, query))
        mode = api.batch_mode(key, table, request.query_params)  # before the body is read
        body = await request.json()
        return JSONResponse(await run_in_threadpool(api.create_records, body, mode), 201)

    def record(request: Request) -> JSONResponse:  # sync: Starlette runs it in a thread
        action = api.delete_record if request.method == "DELETE" else api.get_record
        params = request.path_params
        return JSONResponse(action(api_key(request), params["table"], params["id"]))

    def system(request: Request) -> JSONResponse:
        return JSONResponse(api.system(api_key(request), request.path_params["name"]))

    def procedure(request: Request) -> JSONResponse:
        return JSONResponse(api.procedure(api_key(request), request.path_params["name"]))

    @restfault.limit(settings.email_limits, code="EMAIL_RATE_LIMIT")
    async def send_email(request: Request) -> JSONResponse:
        api.authorize(api_key(request))
        return JSONResponse(api.send_email(await request.json()), 202)

    def boom(request: Request) -> JSONResponse:
        return JSONResponse(api.boom(api_key(request)))

    @restfault.limit(
        settings.login_limits,
        code="LOGIN_RATE_LIMIT",
        key_func=by_client_address,
        deduct_when=lambda status: status == 401,  # failed logins only
    )
    async def login(request: Request) -> JSONResponse:
        api.authorize(api_key(request))
        return JSONResponse(await run_in_threadpool(api.login, await request.json()))

    def profile(request: Request) -> JSONResponse:
        api.authorize(api_key(request))
        return JSONResponse(api.profile(session_token(request)))

    async def refresh(request: Request) -> JSONResponse:
        api.authorize(api_key(request))
        return JSONResponse(await run_in_threadpool(api.refresh, await request.json()))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # uvicorn ends by re-raising SIGTERM, so atexit may never run
        await run_in_threadpool(api.remove_temporary_db)

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/api/v2/health", health),
            Route("/api/v2/openapi.json", openapi),
            Route("/api/v2/db/_table/{table}", records, methods=["GET", "POST"]),
            Route("/api/v2/db/_table/{table}/{id}", record, methods=["GET", "DELETE"]),
            Route("/api/v2/system/{name}", system),
            Route("/api/v2/db/_proc/{name}", procedure),
            Route("/api/v2/email", send_email, methods=["POST"]),
            Route("/api/v2/boom", boom),
            Route("/api/v2/user/session", login, methods=["POST"]),
            Route("/api/v2/user/profile", profile),
            Route("/api/v2/auth/refresh", refresh, methods=["POST"]),
        ],
    )
    restfault.init_app(app)
    same_answers_as_flask(app, restfault)
    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn

    host, port = os.environ.get("HOST") or "127.0.0.1", int(os.environ.get("PORT") or 8000)
    uvicorn.run(app, host=host, port=port)
