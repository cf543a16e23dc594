"""restfault's example on Flask: a small DreamFactory-style data API over SQLite.

    python examples/flask_app/app.py                # or: gunicorn examples.flask_app.app:app

Settings are environment variables read by ``create_app()``: ``HOST``, ``PORT``,
``RESTFAULT_STYLE``, ``RESTFAULT_STORAGE_URI``, ``RESTFAULT_STRATEGY``,
``RESTFAULT_DEFAULT_LIMITS``, ``RESTFAULT_EMAIL_LIMITS``, ``RESTFAULT_DEBUG`` and
``EXAMPLE_DB``. ``examples/starlette_app/app.py`` is the same API on Starlette, answering
alike.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Request, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, MethodNotAllowed

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
from restfault.flask import RestFault
from restfault.openapi import with_error_responses

KEYS = {"pk_demo": "user", "sk_demo": "admin", "pk_revoked": None}  # key -> role; None: revoked
KEY_SHAPE = re.compile(r"[ps]k_\w+")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
TABLES = {"contacts": ("id", "name", "email")}
SEED = [(1, "Ada", "ada@example.com"), (2, "Grace", "grace@example.com")]
SYSTEM = {"table": [{"name": "contacts"}], "role": [{"name": "admin"}, {"name": "user"}]}
OPENAPI = Path(__file__).resolve().parent.parent / "openapi.json"

api = Blueprint("api", __name__, url_prefix="/api/v2")


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


def connect() -> closing[sqlite3.Connection]:
    conn = sqlite3.connect(current_app.config["EXAMPLE_DB"], timeout=30)
    conn.row_factory = sqlite3.Row
    return closing(conn)


class JSONProvider(DefaultJSONProvider):
    sort_keys = False  # records keep their columns' order
    ensure_ascii = False


# -- keys --------------------------------------------------------------------------------


def api_key(req: Request) -> str | None:
    return req.headers.get("X-API-Key") or req.headers.get("X-DreamFactory-API-Key")


def rate_limit_key(req: Request) -> str | None:
    """A live key has a budget of its own; anything else (None) counts against the address."""
    key = api_key(req)
    return key if key is not None and KEYS.get(key) else None


def authorize() -> str:
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


def known_table(table: str) -> str:
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


# -- translations ------------------------------------------------------------------------


def unique_constraint(exc: sqlite3.IntegrityError) -> RestException:
    return ConflictResourceException(str(exc), code="UNIQUE_CONSTRAINT")


def http_error(exc: HTTPException) -> RestException:
    """werkzeug's routing errors as Starlette words them (the reason phrase), Allow sorted."""
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return RestException(status_code=exc.code or 500, headers=headers)


# -- the OpenAPI document ----------------------------------------------------------------


def openapi_document(style: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API (examples/openapi.json, shared by both apps),
    its errors filled in as restfault's envelopes in ``style``."""
    return with_error_responses(json.loads(OPENAPI.read_text("utf-8")), style)


# -- views -------------------------------------------------------------------------------


@api.get("/health")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@api.get("/openapi.json")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = current_app.config["OPENAPI"]
    return document


@api.get("/db/_table/<table>")
def list_records(table: str) -> dict[str, Any]:
    authorize()
    known_table(table)
    # A repeated ?filter= whose values differ is ambiguous: 400, as in the Starlette app.
    text = query_param(request.args, "filter", code="INVALID_FILTER")
    where, params = record_filter(table, text)
    with connect() as conn:
        rows = conn.execute(f"SELECT * FROM {table}{where} ORDER BY id", params).fetchall()
    return {"resource": [dict(row) for row in rows]}


@api.post("/db/_table/<table>")
def create_records(table: str) -> tuple[dict[str, Any], int]:
    authorize()
    known_table(table)
    mode = batch_mode(request.args)
    records = resource_list(request.get_json(force=True))  # JSON whatever the Content-Type
    with connect() as conn:

        def insert(record: Any) -> dict[str, Any]:
            name, email = required_text(record, "name"), required_text(record, "email")
            cursor = conn.execute("INSERT INTO contacts (name, email) VALUES (?, ?)", (name, email))
            return {"id": cursor.lastrowid}

        try:
            ids = run_batch(records, insert, mode=mode, transaction=lambda: conn)
        except BatchException as exc:
            raise_single_error(exc, len(records))  # one record: its own 400 or 409
    return {"resource": ids}, 201


@api.get("/db/_table/<table>/<id>")
def get_record(table: str, id: str) -> dict[str, Any]:
    authorize()
    known_table(table)
    with connect() as conn:
        return fetch_record(conn, table, id)


@api.delete("/db/_table/<table>/<id>")
def delete_record(table: str, id: str) -> dict[str, Any]:
    role = authorize()
    known_table(table)
    if role != "admin":
        raise ForbiddenException("Only admin (sk_) keys delete records", code="PERMISSION_DENIED")
    with connect() as conn, conn:
        record = fetch_record(conn, table, id)
        conn.execute(f"DELETE FROM {table} WHERE id = ?", (record["id"],))
    return {"id": record["id"]}


@api.get("/system/<name>")
def system(name: str) -> dict[str, Any]:
    if authorize() != "admin":
        raise ForbiddenException(
            "System tables need an admin (sk_) key", code="SYSTEM_TABLE_ACCESS"
        )
    return {"resource": SYSTEM.get(name, [])}


@api.get("/db/_proc/<name>")
def procedure(name: str) -> dict[str, Any]:
    authorize()
    raise NotImplementedException("Stored procedures are not supported on SQLite")


@api.post("/email")
def send_email() -> tuple[dict[str, Any], int]:
    authorize()
    message = request.get_json(force=True)
    required_text(message, "to")
    required_text(message, "subject")
    return {"queued": True}, 202


@api.get("/boom")
def boom() -> dict[str, Any]:
    authorize()
    raise RuntimeError("database password is hunter2")


def create_app() -> Flask:
    """The app, configured from the environment."""
    app = Flask(__name__, static_folder=None)
    app.json = JSONProvider(app)
    app.config["EXAMPLE_DB"] = os.environ.get("EXAMPLE_DB") or temporary_db()
    prepare_db(app.config["EXAMPLE_DB"])
    app.config["OPENAPI"] = openapi_document(setting("RESTFAULT_STYLE", "dreamfactory"))
    # Answer as the Starlette app does: no automatic OPTIONS, and /api//v2 is a 404
    # rather than a redirect.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False
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
    app.register_blueprint(api)
    return app


app = create_app()

if __name__ == "__main__":
    app.run(host=setting("HOST", "127.0.0.1"), port=int(setting("PORT", "5000")))
