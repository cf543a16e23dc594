"""The example API's domain, written once for both apps: settings, keys and plans, users
and sessions, validation, the SQLite database and its translations.

It raises restfault's exceptions and imports no web framework. ``starlette_app/app.py``
and ``flask_app/app.py`` are glue: each reads a request's parts (a header, a path
parameter, the JSON body), calls a method of ``ExampleApi`` and answers what it returns;
restfault turns what it raises into the envelope. shared/EXAMPLES.md is the contract.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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

__all__ = ["ExampleApi", "Settings", "bearer_token", "unique_constraint"]

Role = Literal["admin", "user"]
BatchMode = Literal["halt", "continue", "rollback"]
KEYS: dict[str, Role | None] = {"pk_demo": "user", "sk_demo": "admin", "pk_revoked": None}
KEY_SHAPE = re.compile(r"[ps]k_\w+")
TABLES = {"contacts": ("id", "name", "email")}
CONTACTS = [(1, "Ada", "ada@example.com"), (2, "Grace", "grace@example.com")]
USERS = [("ada@example.com", "Ada", "lovelace"), ("grace@example.com", "Grace", "hopper")]
SYSTEM = {"table": [{"name": "contacts"}], "role": [{"name": "admin"}, {"name": "user"}]}
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
OPENAPI = Path(__file__).resolve().parent / "openapi.json"
# scrypt's cost (16 MiB, ~50 ms a hash); kept in each stored hash, so it can be raised later.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


# -- settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The environment variables of EXAMPLES.md, read once when an app is created."""

    style: str = "dreamfactory"
    storage_uri: str = "memory://"
    strategy: str = "fixed-window"
    default_limits: str = "120/minute"
    admin_limits: str = "1200/minute"
    email_limits: str = "3/minute"
    db_limits: str = "1000/hour"
    login_limits: str = "5/15minutes"
    debug: bool = False
    db_path: str | None = None  # None: a fresh temporary file
    session_ttl: int = 900
    refresh_ttl: int = 86400
    maintenance_file: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """The settings; an unset or empty variable keeps its default."""

        def get(name: str, default: str) -> str:
            return environ.get(name) or default

        return cls(
            style=get("RESTFAULT_STYLE", cls.style),
            storage_uri=get("RESTFAULT_STORAGE_URI", cls.storage_uri),
            strategy=get("RESTFAULT_STRATEGY", cls.strategy),
            default_limits=get("RESTFAULT_DEFAULT_LIMITS", cls.default_limits),
            admin_limits=get("RESTFAULT_ADMIN_LIMITS", cls.admin_limits),
            email_limits=get("RESTFAULT_EMAIL_LIMITS", cls.email_limits),
            db_limits=get("RESTFAULT_DB_LIMITS", cls.db_limits),
            login_limits=get("RESTFAULT_LOGIN_LIMITS", cls.login_limits),
            debug=get("RESTFAULT_DEBUG", "0") == "1",
            db_path=environ.get("EXAMPLE_DB") or None,
            session_ttl=seconds(environ, "EXAMPLE_SESSION_TTL", cls.session_ttl),
            refresh_ttl=seconds(environ, "EXAMPLE_REFRESH_TTL", cls.refresh_ttl),
            maintenance_file=environ.get("EXAMPLE_MAINTENANCE_FILE") or None,
        )

    def text_options(self) -> dict[str, Any]:
        """The restfault options whose values are environment text, typed loosely so that
        restfault checks them when the app is created (a bad one is a ConfigurationError
        naming it) rather than mypy when this file is."""
        return {"style": self.style, "strategy": self.strategy}


def seconds(environ: Mapping[str, str], name: str, default: int) -> int:
    text = (environ.get(name) or "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name}={text!r} must be a whole number of seconds")
    return int(text)


# -- the database ------------------------------------------------------------------------


def temporary_db() -> str:
    fd, path = tempfile.mkstemp(prefix="restfault-example-", suffix=".sqlite3")
    os.close(fd)
    atexit.register(Path(path).unlink, missing_ok=True)
    return path


def prepare_db(path: str) -> None:
    """Create and seed each table unless it exists (workers starting together do it once)."""
    with closing(sqlite3.connect(path, timeout=30)) as conn, conn:
        conn.execute("BEGIN IMMEDIATE")  # the write lock: one worker at a time
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "contacts" not in tables:
            conn.execute(
                "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " email TEXT NOT NULL UNIQUE)"
            )
            conn.executemany("INSERT INTO contacts VALUES (?, ?, ?)", CONTACTS)
        if "users" not in tables:
            conn.execute(
                "CREATE TABLE users (email TEXT PRIMARY KEY, name TEXT NOT NULL,"
                " password TEXT NOT NULL)"
            )
            users = [(email, name, hash_password(pw)) for email, name, pw in USERS]
            conn.executemany("INSERT INTO users VALUES (?, ?, ?)", users)
        # Tokens are stored as their SHA-256 digests: a copy of the database logs no one in.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tokens (digest TEXT PRIMARY KEY, kind TEXT NOT NULL,"
            " email TEXT NOT NULL, expires_at REAL NOT NULL)"
        )


def unique_constraint(exc: sqlite3.IntegrityError) -> RestException:
    """The database's translation: a UNIQUE violation is the client's 409."""
    return ConflictResourceException(str(exc), code="UNIQUE_CONSTRAINT")


# -- passwords and tokens ----------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate.hex(), digest)


@functools.cache
def unknown_user() -> str:
    """A hash to check a password against in vain, so that "no such user" is no faster."""
    return hash_password(secrets.token_hex(8))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def bearer_token(session_header: str | None, authorization: str | None) -> str | None:
    """The session token of ``X-DreamFactory-Session-Token``, else of ``Authorization:
    Bearer <token>``; None when the request carries none."""
    if session_header:
        return session_header
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# -- validation --------------------------------------------------------------------------


def required_text(document: Any, field: str, *, storable: bool = True) -> str:
    """``document[field]``, a string (``storable``: without lone surrogates), or 400."""
    value = document.get(field) if isinstance(document, dict) else None
    if isinstance(value, str) and not (storable and LONE_SURROGATE.search(value)):
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


def known_table(table: str) -> str:
    if table not in TABLES:  # case-sensitive, as table names are
        raise NotFoundException(f"Table '{table}' not found", code="TABLE_NOT_FOUND")
    return table


def record_filter(table: str, params: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``?filter=field=value`` on a known field → a WHERE clause and its parameter. A
    repeated filter whose values differ is ambiguous: 400 too."""
    text = query_param(params, "filter", code="INVALID_FILTER")
    if text is None:
        return "", []
    field, equals, value = text.partition("=")
    if not equals or field not in TABLES[table]:
        raise BadRequestException(
            f"Invalid filter {text!r}: use field=value with a field of {', '.join(TABLES[table])}",
            code="INVALID_FILTER",
        )
    return f" WHERE {field} = ?", [value]


# -- the API -------------------------------------------------------------------------------


class ExampleApi:
    """Everything the endpoints do, in terms of plain values: keys and tokens as strings,
    bodies as parsed JSON, answers as JSON-able dicts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.temporary = settings.db_path is None
        self.db_path = temporary_db() if settings.db_path is None else settings.db_path
        prepare_db(self.db_path)
        self.openapi = with_error_responses(json.loads(OPENAPI.read_text("utf-8")), settings.style)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.db_path, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            yield conn

    def remove_temporary_db(self) -> None:
        if self.temporary:
            Path(self.db_path).unlink(missing_ok=True)

    # -- keys and plans (restfault calls these through each app's key_func and limits) --

    def authorize(self, key: str | None) -> Role:
        """The role of a request's API key, or 401."""
        if key is None:
            raise UnauthorizedException("Send an API key in X-API-Key or X-DreamFactory-API-Key")
        if not KEY_SHAPE.fullmatch(key) or key not in KEYS:
            raise UnauthorizedException("Invalid API key", code="INVALID_TOKEN")
        role = KEYS[key]
        if role is None:
            raise UnauthorizedException("This API key has been revoked", code="TOKEN_REVOKED")
        return role

    def rate_limit_key(self, key: str | None) -> str | None:
        """A live key has a budget of its own; anything else (None) counts against the
        client's address."""
        return key if key is not None and KEYS.get(key) else None

    def plan_limits(self, key: str | None) -> str:
        """The default limits of a request's plan: a secret (admin) key's, or everyone's."""
        admin = key is not None and KEYS.get(key) == "admin"
        return self.settings.admin_limits if admin else self.settings.default_limits

    def maintenance(self, request: object) -> int | bool:
        """restfault's ``maintenance`` option: while the maintenance file exists, 503 with
        ``Retry-After`` = its content when that is a whole number, else 60."""
        path = self.settings.maintenance_file
        if path is None:
            return False
        try:
            text = Path(path).read_bytes().decode("ascii", "replace").strip()
        except FileNotFoundError:
            return False
        except OSError:  # there, but unreadable (a directory...): still maintenance
            return True
        # 0 would mean "serve" to restfault; the file's presence means maintenance.
        return max(1, int(text)) if text.isascii() and text.isdigit() else True

    # -- contacts ------------------------------------------------------------------------

    def list_records(self, key: str | None, table: str, query: Mapping[str, Any]) -> dict[str, Any]:
        self.authorize(key)
        where, params = record_filter(known_table(table), query)
        with self.connect() as conn:
            rows = conn.execute(f"SELECT * FROM {table}{where} ORDER BY id", params).fetchall()
        return {"resource": [dict(row) for row in rows]}

    def get_record(self, key: str | None, table: str, record_id: str) -> dict[str, Any]:
        self.authorize(key)
        with self.connect() as conn:
            return self._record(conn, known_table(table), record_id)

    def delete_record(self, key: str | None, table: str, record_id: str) -> dict[str, Any]:
        role = self.authorize(key)
        known_table(table)
        if role != "admin":
            raise ForbiddenException(
                "Only admin (sk_) keys delete records", code="PERMISSION_DENIED"
            )
        with self.connect() as conn, conn:
            record = self._record(conn, table, record_id)
            conn.execute(f"DELETE FROM {table} WHERE id = ?", (record["id"],))
        return {"id": record["id"]}

    def batch_mode(self, key: str | None, table: str, params: Mapping[str, Any]) -> BatchMode:
        """What is checked of a batch before its body is read: key, table, mode."""
        self.authorize(key)
        known_table(table)
        return batch_mode(params)

    def create_records(self, body: Any, mode: BatchMode) -> dict[str, Any]:
        """A batch of contacts (``batch_mode`` checked the rest), as restfault's
        ``run_batch`` runs it: halt, continue or rollback."""
        records = resource_list(body)
        with self.connect() as conn:

            def insert(record: Any) -> dict[str, Any]:
                name, email = required_text(record, "name"), required_text(record, "email")
                cursor = conn.execute(
                    "INSERT INTO contacts (name, email) VALUES (?, ?)", (name, email)
                )
                return {"id": cursor.lastrowid}

            try:
                ids = run_batch(records, insert, mode=mode, transaction=lambda: conn)
            except BatchException as exc:
                raise_single_error(exc, len(records))  # one record: its own 400 or 409
        return {"resource": ids}

    @staticmethod
    def _record(conn: sqlite3.Connection, table: str, record_id: str) -> dict[str, Any]:
        row = None
        if record_id.isascii() and record_id.isdigit() and int(record_id) < 2**63:
            row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (int(record_id),)).fetchone()
        if row is None:
            raise NotFoundException(
                f"Record '{record_id}' not found in '{table}'", code="RECORD_NOT_FOUND"
            )
        return dict(row)

    # -- the rest of the data API ----------------------------------------------------------

    def system(self, key: str | None, name: str) -> dict[str, Any]:
        if self.authorize(key) != "admin":
            raise ForbiddenException(
                "System tables need an admin (sk_) key", code="SYSTEM_TABLE_ACCESS"
            )
        return {"resource": SYSTEM.get(name, [])}

    def procedure(self, key: str | None, name: str) -> dict[str, Any]:
        self.authorize(key)
        raise NotImplementedException("Stored procedures are not supported on SQLite")

    def send_email(self, message: Any) -> dict[str, Any]:
        required_text(message, "to")
        required_text(message, "subject")
        return {"queued": True}

    def boom(self, key: str | None) -> dict[str, Any]:
        self.authorize(key)
        raise RuntimeError("database password is hunter2")

    # -- users and sessions ----------------------------------------------------------------

    def login(self, body: Any) -> dict[str, Any]:
        """A session for an email and password: ``session_token`` (``EXAMPLE_SESSION_TTL``)
        and ``refresh_token`` (``EXAMPLE_REFRESH_TTL``)."""
        email, password = required_text(body, "email"), required_text(body, "password")
        with self.connect() as conn:
            row = conn.execute("SELECT password FROM users WHERE email = ?", (email,)).fetchone()
        if not password_matches(password, unknown_user() if row is None else row["password"]):
            raise UnauthorizedException("Invalid credentials")
        ttl = self.settings.session_ttl
        return {
            "session_token": self._issue("session", email, ttl),
            "refresh_token": self._issue("refresh", email, self.settings.refresh_ttl),
            "expires_in": ttl,
        }

    def profile(self, token: str | None) -> dict[str, Any]:
        """The user of a session token."""
        if token is None:
            raise UnauthorizedException(
                "Send a session token in X-DreamFactory-Session-Token or Authorization: Bearer"
            )
        email = self._redeem("session", token)
        with self.connect() as conn:
            row = conn.execute("SELECT email, name FROM users WHERE email = ?", (email,)).fetchone()
        return dict(row)

    def refresh(self, body: Any) -> dict[str, Any]:
        """A new session token for a refresh token (bkend's ``{"refreshToken": ...}``)."""
        email = self._redeem("refresh", required_text(body, "refreshToken", storable=False))
        ttl = self.settings.session_ttl
        return {"accessToken": self._issue("session", email, ttl), "expires_in": ttl}

    def _issue(self, kind: str, email: str, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.connect() as conn, conn:
            conn.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)",
                (token_digest(token), kind, email, now + ttl),
            )
            # Tokens a week past their expiry are of no use even to say TOKEN_EXPIRED.
            conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now - 7 * 86400,))
        return token

    def _redeem(self, kind: str, token: str) -> str:
        """The email of a live token of this kind; 401 INVALID_TOKEN or TOKEN_EXPIRED."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT email, expires_at FROM tokens WHERE digest = ? AND kind = ?",
                (token_digest(token), kind),
            ).fetchone()
        if row is None:
            raise UnauthorizedException(f"Invalid {kind} token", code="INVALID_TOKEN")
        if time.time() >= row["expires_at"]:
            advice = "log in again" if kind == "refresh" else "refresh it at /api/v2/auth/refresh"
            raise UnauthorizedException(
                f"The {kind} token has expired: {advice}", code="TOKEN_EXPIRED"
            )
        return str(row["email"])
