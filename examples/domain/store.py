"""What the example API keeps and checks: keys, users, tokens, the SQLite database, and
the validation of what clients send."""

from __future__ import annotations

import atexit
import functools
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import tempfile
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any, Literal

from restfault import (
    BadRequestException,
    ConflictResourceException,
    NotFoundException,
    RestException,
    query_param,
)

Role = Literal["admin", "user"]
BatchMode = Literal["halt", "continue", "rollback"]
KEYS: dict[str, Role | None] = {"pk_demo": "user", "sk_demo": "admin", "pk_revoked": None}
KEY_SHAPE = re.compile(r"[ps]k_\w+")
TABLES = {"contacts": ("id", "name", "email")}
CONTACTS = [(1, "Ada", "ada@example.com"), (2, "Grace", "grace@example.com")]
USERS = [("ada@example.com", "Ada", "lovelace"), ("grace@example.com", "Grace", "hopper")]
SYSTEM = {"table": [{"name": "contacts"}], "role": [{"name": "admin"}, {"name": "user"}]}
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
OPENAPI = Path(__file__).resolve().parent.parent / "openapi.json"
# scrypt's cost (16 MiB, ~50 ms a hash); kept in each stored hash, so it can be raised later.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


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
