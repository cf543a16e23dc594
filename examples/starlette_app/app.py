"""restfault's example on Starlette: a small DreamFactory-style data API over SQLite.

    python examples/starlette_app/app.py            # or: uvicorn examples.starlette_app.app:app

Settings are environment variables read by ``create_app()``: ``HOST``, ``PORT``,
``RESTFAULT_STYLE``, ``RESTFAULT_STORAGE_URI``, ``RESTFAULT_STRATEGY``,
``RESTFAULT_DEFAULT_LIMITS``, ``RESTFAULT_EMAIL_LIMITS``, ``RESTFAULT_DEBUG`` and
``EXAMPLE_DB``. ``examples/flask_app/app.py`` is the same API on Flask, answering alike.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from restfault import (
    BadRequestException,
    BatchException,
    ConflictResourceException,
    ForbiddenException,
    NotFoundException,
    NotImplementedException,
    RestException,
    UnauthorizedException,
    batch_mode,
    query_param,
    raise_single_error,
    run_batch,
)
from restfault.openapi import with_error_responses
from restfault.starlette import RestFault

KEYS = {"pk_demo": "user", "sk_demo": "admin", "pk_revoked": None}  # key -> role; None: revoked
KEY_SHAPE = re.compile(r"[ps]k_\w+")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
TABLES = {"contacts": ("id", "name", "email")}
SEED = [(1, "Ada", "ada@example.com"), (2, "Grace", "grace@example.com")]
BatchMode = Literal["halt", "continue", "rollback"]
SYSTEM = {"table": [{"name": "contacts"}], "role": [{"name": "admin"}, {"name": "user"}]}
OPENAPI = Path(__file__).resolve().parent.parent / "openapi.json"


# -- settings and the database ---------------------------------------------------------


def setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def environment_options() -> dict[str, Any]:
    """Options whose values come from the environment as text: restfault checks them when
    the app is created (a bad value is a ConfigurationError naming it)."""
    return {
        "style": setting("RESTFAULT_STYLE", "dreamfactory"),
        "strategy": setting("RESTFAULT_STRATEGY", "fixed-window"),
    }


def temporary_db() -> str:
    fd, path = tempfile.mkstemp(prefix="restfault-example-", suffix=".sqlite3")
    os.close(fd)
    atexit.register(Path(path).unlink, missing_ok=True)
    return path


def prepare_db(path: str) -> None:
    """Create and seed the database unless it exists (workers starting together do it once)."""
    with closing(sqlite3.connect(path, timeout=30)) as conn, conn:
        conn.execute("BEGIN IMMEDIATE")  # the write lock: one worker at a time
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'contacts'").fetchone():
            return
        conn.execute(
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " email TEXT NOT NULL UNIQUE)"
        )
        conn.executemany("INSERT INTO contacts VALUES (?, ?, ?)", SEED)


def connect(request: Request) -> closing[sqlite3.Connection]:
    conn = sqlite3.connect(request.app.state.db_path, timeout=30)
    conn.row_factory = sqlite3.Row
    return closing(conn)


# -- keys --------------------------------------------------------------------------------


def api_key(request: Request) -> str | None:
    # A repeated header is one comma-joined value, as WSGI servers pass it to Flask: two
    # keys in one request are no valid key, in both apps.
    for name in ("X-API-Key", "X-DreamFactory-API-Key"):
        if value := ", ".join(request.headers.getlist(name)):
            return value
    return None


def rate_limit_key(request: Request) -> str | None:
    """A live key has a budget of its own; anything else (None) counts against the address."""
    key = api_key(request)
    return key if key is not None and KEYS.get(key) else None


def authorize(request: Request) -> str:
    """The role of the request's API key, or 401."""
    key = api_key(request)
    if key is None:
        raise UnauthorizedException("Send an API key in X-API-Key or X-DreamFactory-API-Key")
    if not KEY_SHAPE.fullmatch(key) or key not in KEYS:
        raise UnauthorizedException("Invalid API key", code="INVALID_TOKEN")
    role = KEYS[key]
    if role is None:
        raise UnauthorizedException("This API key has been revoked", code="TOKEN_REVOKED")
    return role


# -- request parts -----------------------------------------------------------------------


def known_table(request: Request) -> str:
    table: str = request.path_params["table"]
    if table not in TABLES:  # case-sensitive, as table names are
        raise NotFoundException(f"Table '{table}' not found", code="TABLE_NOT_FOUND")
    return table


def record_filter(table: str, text: str | None) -> tuple[str, list[str]]:
    """``field=value`` on a known field → a WHERE clause and its parameter."""
    if text is None:
        return "", []
    field, equals, value = text.partition("=")
    if not equals or field not in TABLES[table]:
        raise BadRequestException(
            f"Invalid filter {text!r}: use field=value with a field of {', '.join(TABLES[table])}",
            code="INVALID_FILTER",
        )
    return f" WHERE {field} = ?", [value]


def fetch_record(conn: sqlite3.Connection, table: str, record_id: str) -> dict[str, Any]:
    row = None
    if record_id.isascii() and record_id.isdigit() and int(record_id) < 2**63:
        row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (int(record_id),)).fetchone()
    if row is None:
        raise NotFoundException(
            f"Record '{record_id}' not found in '{table}'", code="RECORD_NOT_FOUND"
        )
    return dict(row)


def required_text(document: Any, field: str) -> str:
    value = document.get(field) if isinstance(document, dict) else None
    if isinstance(value, str) and not LONE_SURROGATE.search(value):
        return value
    if value is None:
        error = "is required"
    elif isinstance(value, str):  # a lone "\ud800" escape: valid JSON, not storable text
        error = "must be valid Unicode text"
    else:
        error = "must be a string"
    raise BadRequestException(
        f"'{field}' {error}", code="VALIDATION_ERROR", context={"field": field, "error": error}
    )


def resource_list(body: Any) -> list[Any]:
    records = body.get("resource") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        error = "must be a non-empty list of records"
        raise BadRequestException(
            f"'resource' {error}",
            code="VALIDATION_ERROR",
            context={"field": "resource", "error": error},
        )
    return records


def insert_contacts(db_path: str, records: list[Any], mode: BatchMode) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db_path, timeout=30)) as conn:

        def insert(record: Any) -> dict[str, Any]:
            name, email = required_text(record, "name"), required_text(record, "email")
            cursor = conn.execute("INSERT INTO contacts (name, email) VALUES (?, ?)", (name, email))
            return {"id": cursor.lastrowid}

        try:
            return run_batch(records, insert, mode=mode, transaction=lambda: conn)
        except BatchException as exc:
            raise_single_error(exc, len(records))  # one record: its own 400 or 409


# -- translations ------------------------------------------------------------------------


def unique_constraint(exc: sqlite3.IntegrityError) -> RestException:
    return ConflictResourceException(str(exc), code="UNIQUE_CONSTRAINT")


def http_error(exc: HTTPException) -> RestException:
    """Starlette's routing errors, with ``Allow`` sorted: Starlette lists a set's order."""
    headers = dict(exc.headers or {})
    if "Allow" in headers:
        headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
    return RestException(exc.detail, status_code=exc.status_code, headers=headers)


# -- the OpenAPI document ----------------------------------------------------------------


def openapi_document(style: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API (examples/openapi.json, shared by both apps),
    its errors filled in as restfault's envelopes in ``style``."""
    return with_error_responses(json.loads(OPENAPI.read_text("utf-8")), style)


# -- endpoints ---------------------------------------------------------------------------


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.openapi)


def list_records(request: Request) -> JSONResponse:
    authorize(request)
    table = known_table(request)
    # A repeated ?filter= whose values differ is ambiguous: 400, as in the Flask app.
    text = query_param(request.query_params, "filter", code="INVALID_FILTER")
    where, params = record_filter(table, text)
    with connect(request) as conn:
        rows = conn.execute(f"SELECT * FROM {table}{where} ORDER BY id", params).fetchall()
    return JSONResponse({"resource": [dict(row) for row in rows]})


async def records_endpoint(request: Request) -> Response:
    # One route per path, so that a 405 lists every method the path has in Allow.
    if request.method == "POST":
        return await create_records(request)
    return await run_in_threadpool(list_records, request)


async def record_endpoint(request: Request) -> Response:
    endpoint = delete_record if request.method == "DELETE" else get_record
    return await run_in_threadpool(endpoint, request)


async def create_records(request: Request) -> JSONResponse:
    authorize(request)
    known_table(request)
    mode = batch_mode(request.query_params)
    records = resource_list(await request.json())
    ids = await run_in_threadpool(insert_contacts, request.app.state.db_path, records, mode)
    return JSONResponse({"resource": ids}, status_code=201)


def get_record(request: Request) -> JSONResponse:
    authorize(request)
    table = known_table(request)
    with connect(request) as conn:
        return JSONResponse(fetch_record(conn, table, request.path_params["id"]))


def delete_record(request: Request) -> JSONResponse:
    role = authorize(request)
    table = known_table(request)
    if role != "admin":
        raise ForbiddenException("Only admin (sk_) keys delete records", code="PERMISSION_DENIED")
    with connect(request) as conn, conn:
        record = fetch_record(conn, table, request.path_params["id"])
        conn.execute(f"DELETE FROM {table} WHERE id = ?", (record["id"],))
    return JSONResponse({"id": record["id"]})


def system(request: Request) -> JSONResponse:
    if authorize(request) != "admin":
        raise ForbiddenException(
            "System tables need an admin (sk_) key", code="SYSTEM_TABLE_ACCESS"
        )
    return JSONResponse({"resource": SYSTEM.get(request.path_params["name"], [])})


def procedure(request: Request) -> JSONResponse:
    authorize(request)
    raise NotImplementedException("Stored procedures are not supported on SQLite")


async def send_email(request: Request) -> JSONResponse:
    authorize(request)
    message = await request.json()
    required_text(message, "to")
    required_text(message, "subject")
    return JSONResponse({"queued": True}, status_code=202)


def boom(request: Request) -> JSONResponse:
    authorize(request)
    raise RuntimeError("database password is hunter2")


def create_app() -> Starlette:
    """The app, configured from the environment."""
    temporary = not os.environ.get("EXAMPLE_DB")
    db_path = temporary_db() if temporary else os.environ["EXAMPLE_DB"]
    prepare_db(db_path)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if temporary:  # uvicorn ends by re-raising SIGTERM, so atexit may never run
            await run_in_threadpool(Path(db_path).unlink, missing_ok=True)

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/api/v2/health", health),
            Route("/api/v2/openapi.json", openapi),
            Route("/api/v2/db/_table/{table}", records_endpoint, methods=["GET", "POST"]),
            Route("/api/v2/db/_table/{table}/{id}", record_endpoint, methods=["GET", "DELETE"]),
            Route("/api/v2/system/{name}", system),
            Route("/api/v2/db/_proc/{name}", procedure),
            Route("/api/v2/email", send_email, methods=["POST"]),
            Route("/api/v2/boom", boom),
        ],
    )
    app.router.redirect_slashes = False  # /api/v2/health/ is a 404, as in Flask
    app.state.db_path = db_path
    app.state.openapi = openapi_document(setting("RESTFAULT_STYLE", "dreamfactory"))
    restfault = RestFault(
        app,
        **environment_options(),
        debug=setting("RESTFAULT_DEBUG", "0") == "1",
        default_limits=setting("RESTFAULT_DEFAULT_LIMITS", "120/minute"),
        storage_uri=setting("RESTFAULT_STORAGE_URI", "memory://"),
        key_func=rate_limit_key,
    )
    restfault.exempt(health)
    restfault.exempt(openapi)
    restfault.limit(setting("RESTFAULT_EMAIL_LIMITS", "3/minute"), code="EMAIL_RATE_LIMIT")(
        send_email
    )
    restfault.translate(sqlite3.IntegrityError)(unique_constraint)
    restfault.translate(HTTPException)(http_error)
    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host=setting("HOST", "127.0.0.1"), port=int(setting("PORT", "8000")))
