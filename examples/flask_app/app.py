"""restfault's example on Flask: the data API of ``examples/domain/``.

    python examples/flask_app/app.py                # or: gunicorn examples.flask_app.app:app

Settings are the environment variables of shared/EXAMPLES.md, read by ``create_app()``
(``examples/domain/``'s ``Settings``); ``HOST`` and ``PORT`` say where running the file
listens. ``examples/starlette_app/app.py`` is the same API on Starlette, answering alike.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: import `examples` as from the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flask import Flask, Request, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from examples.domain import ExampleApi, Settings, bearer_token, unique_constraint
from restfault import RestException
from restfault.flask import RestFault

Answer = tuple[dict[str, Any], int]

# -- reading requests ----------------------------------------------------------------------


def api_key(req: Request) -> str | None:
    return req.headers.get("X-API-Key") or req.headers.get("X-DreamFactory-API-Key")


def session_token(req: Request) -> str | None:
    session = req.headers.get("X-DreamFactory-Session-Token")
    return bearer_token(session, req.headers.get("Authorization"))


def by_client_address(req: Request) -> None:
    """Keys a limit by the client's address whatever the API key: restfault keys a request
    whose key_func returns None by its address (trusted proxies and IPv6 subnets applied)."""
    return


# -- parity: settings that exist only so that both apps answer byte for byte alike ---------


class JSONProvider(DefaultJSONProvider):
    sort_keys = False  # records keep their columns' order
    ensure_ascii = False


def same_answers_as_starlette(app: Flask, restfault: RestFault) -> None:
    app.json = JSONProvider(app)
    # No automatic OPTIONS, and /api//v2 is a 404 rather than a redirect.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False

    @restfault.translate(HTTPException)
    def http_error(exc: HTTPException) -> RestException:
        """werkzeug's routing errors as Starlette words them (the reason phrase), Allow sorted."""
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return RestException(status_code=exc.code or 500, headers=headers)


# -- the app -------------------------------------------------------------------------------


def create_app() -> Flask:
    """The app, configured from the environment."""
    settings = Settings.from_environment()
    api = ExampleApi(settings)
    app = Flask(__name__, static_folder=None)
    restfault = RestFault(
        **settings.text_options(),
        debug=settings.debug,
        storage_uri=settings.storage_uri,
        key_func=lambda req: api.rate_limit_key(api_key(req)),
        default_limits=lambda req: api.plan_limits(api_key(req)),
        path_limits={"/api/v2/db/": settings.db_limits},
        maintenance=api.maintenance,
        request_id_header="X-Request-ID",
    )
    restfault.translate(sqlite3.IntegrityError)(unique_constraint)
    same_answers_as_starlette(app, restfault)

    @app.get("/api/v2/health")
    @restfault.exempt
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/api/v2/openapi.json")
    def openapi() -> dict[str, Any]:
        return api.openapi

    @app.get("/api/v2/db/_table/<table>")
    def list_records(table: str) -> dict[str, Any]:
        return api.list_records(api_key(request), table, request.args)

    @app.post("/api/v2/db/_table/<table>")
    def create_records(table: str) -> Answer:
        mode = api.batch_mode(api_key(request), table, request.args)  # before the body is read
        return api.create_records(request.get_json(force=True), mode), 201

    @app.get("/api/v2/db/_table/<table>/<id>")
    def get_record(table: str, id: str) -> dict[str, Any]:
        return api.get_record(api_key(request), table, id)

    @app.delete("/api/v2/db/_table/<table>/<id>")
    def delete_record(table: str, id: str) -> dict[str, Any]:
        return api.delete_record(api_key(request), table, id)

    @app.get("/api/v2/system/<name>")
    def system(name: str) -> dict[str, Any]:
        return api.system(api_key(request), name)

    @app.get("/api/v2/db/_proc/<name>")
    def procedure(name: str) -> dict[str, Any]:
        return api.procedure(api_key(request), name)

    @app.post("/api/v2/email")
    @restfault.limit(settings.email_limits, code="EMAIL_RATE_LIMIT")
    def send_email() -> Answer:
        api.authorize(api_key(request))
        return api.send_email(request.get_json(force=True)), 202  # JSON whatever the type

    @app.get("/api/v2/boom")
    def boom() -> dict[str, Any]:
        return api.boom(api_key(request))

    @app.post("/api/v2/user/session")
    @restfault.limit(
        settings.login_limits,
        code="LOGIN_RATE_LIMIT",
        key_func=by_client_address,
        deduct_when=lambda status: status == 401,  # failed logins only
    )
    def login() -> dict[str, Any]:
        api.authorize(api_key(request))
        return api.login(request.get_json(force=True))

    @app.get("/api/v2/user/profile")
    def profile() -> dict[str, Any]:
        api.authorize(api_key(request))
        return api.profile(session_token(request))

    @app.post("/api/v2/auth/refresh")
    def refresh() -> dict[str, Any]:
        api.authorize(api_key(request))
        return api.refresh(request.get_json(force=True))

    restfault.init_app(app)
    return app


app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST") or "127.0.0.1", port=int(os.environ.get("PORT") or 5000))
