"""``ExampleApi``: every endpoint's work, framework-free; the apps are glue around it."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from restfault import (
    BatchException,
    ForbiddenException,
    NotFoundException,
    NotImplementedException,
    UnauthorizedException,
    batch_mode,
    raise_single_error,
    run_batch,
)
from restfault.openapi import with_error_responses

from .settings import Settings
from .store import (
    KEY_SHAPE,
    KEYS,
    OPENAPI,
    SYSTEM,
    BatchMode,
    Role,
    known_table,
    password_matches,
    prepare_db,
    record_filter,
    required_text,
    resource_list,
    temporary_db,
    token_digest,
    unknown_user,
)

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
