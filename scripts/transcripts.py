"""Print real request/response transcripts of the example apps, for the README.

    .venv/bin/python scripts/transcripts.py > docs/transcripts.md

Starts the Starlette example under uvicorn and the Flask example under gunicorn on free
loopback ports (once per configuration), sends each request to both, and prints the
Starlette answer, curl-style, noting whether Flask answered the same.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SHOWN_HEADERS = (
    "content-type",
    "allow",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-request-id",
)
# Headers that may differ between the servers without the apps disagreeing.
COMPARED_HEADERS = ("content-type", "allow", "retry-after", "x-ratelimit-limit")
# Values each server makes up: the same answer may hold different ones.
RANDOM = ("session_token", "refresh_token", "accessToken", "request_id")

# method, path, headers, body; "{session_token}" and the like in a header or the body
# stand for that value of the server's latest answer that held one.
Request = tuple[str, str, dict[str, str], str | None]


@dataclass
class Wait:
    """A pause between two requests (a token's lifetime running out)."""

    seconds: float
    why: str


Step = Request | Wait


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: str, env: dict[str, str]) -> Iterator[str]:
    """The example ``app`` under its real server; yields its base URL."""
    port = free_port()
    if app == "starlette":
        argv = ["-m", "uvicorn", "examples.starlette_app.app:app", "--port", str(port)]
        argv += ["--host", HOST, "--log-level", "critical"]
    else:
        argv = ["-m", "gunicorn", "examples.flask_app.app:app", "--bind", f"{HOST}:{port}"]
        argv += ["--log-level", "critical"]
    process = subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**os.environ, "EXAMPLE_DB": "", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/api/v2/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{app} did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def curl(method: str, path: str, headers: dict[str, str], body: str | None) -> str:
    parts = ["curl -i"]
    if method != "GET" and body is None:
        parts.append(f"-X {method}")
    parts.append(f"'http://localhost:8000{path}'")
    parts += [f"-H '{name}: {value}'" for name, value in headers.items()]
    if body is not None:
        parts.append(f"-d '{body}'")
    return "$ " + " ".join(parts)


def shown(response: httpx.Response) -> str:
    lines = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
    lines += [
        f"{name}: {response.headers[name]}" for name in SHOWN_HEADERS if name in response.headers
    ]
    lines.append("")
    lines.append(response.text.rstrip("\n"))
    return "\n".join(lines)


def filled(text: str, values: dict[str, Any]) -> str:
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", str(value))
    return text


def masked(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with its random values (at any depth: the dreamfactory style nests the
    request id in ``error``) replaced by ``"<random>"``."""
    return {
        k: "<random>" if k in RANDOM else masked(v) if isinstance(v, dict) else v
        for k, v in document.items()
    }


def answer(response: httpx.Response) -> tuple[int, object, list[str | None]]:
    body = json.loads(response.content) if response.content else None
    if isinstance(body, dict):
        body = masked(body)
    return response.status_code, body, [response.headers.get(h) for h in COMPARED_HEADERS]


def section(title: str, env: dict[str, str], steps: list[Step], setting: str | None = None) -> None:
    setting = setting or ", ".join(f"`{k}={v}`" for k, v in env.items())
    print(f"## {title}\n\n{setting or 'every setting at its default'}\n")
    with serving("starlette", env) as starlette_url, serving("flask", env) as flask_url:
        # what each server's answers held so far: its own tokens
        remembered: list[dict[str, Any]] = [{}, {}]
        for step in steps:
            if isinstance(step, Wait):
                print(f"*({step.why}: {step.seconds:g} seconds later)*\n")
                time.sleep(step.seconds)
                continue
            method, path, headers, body = step
            sent: list[tuple[dict[str, str], str | None]] = []
            replies = []
            for url, values in zip((starlette_url, flask_url), remembered, strict=True):
                sent_headers = {k: filled(v, values) for k, v in headers.items()}
                if body is not None:
                    sent_headers["Content-Type"] = "application/json"
                content = filled(body, values) if body is not None else None
                sent.append((sent_headers, content))
                reply = httpx.request(method, url + path, headers=sent_headers, content=content)
                replies.append(reply)
                if reply.headers.get("content-type") == "application/json":
                    document = reply.json()
                    if isinstance(document, dict):
                        values.update({k: v for k, v in document.items() if k in RANDOM})
            same = answer(replies[0]) == answer(replies[1])
            print("```console")
            print(curl(method, path, *sent[0]))
            print(shown(replies[0]))
            print("```")
            if same:
                print("Flask (gunicorn) answers the same.\n")
            else:
                print("Flask (gunicorn) answers differently:\n")
                print(f"```console\n{shown(replies[1])}\n```\n")


USER = {"X-API-Key": "pk_demo"}
ADMIN = {"X-API-Key": "sk_demo"}
TABLE = "/api/v2/db/_table/contacts"


def main() -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print("# Transcripts of the example apps\n")
    print(
        f"Generated by `scripts/transcripts.py` on {stamp}: real requests to "
        "`examples/starlette_app` under uvicorn, each also sent to `examples/flask_app` under "
        "gunicorn. Do not edit by hand; run "
        "`.venv/bin/python scripts/transcripts.py > docs/transcripts.md`.\n"
    )
    section(
        "The data API (dreamfactory style)",
        {},
        [
            ("GET", "/api/v2/health", {}, None),
            ("GET", TABLE, USER, None),
            ("GET", f"{TABLE}?filter=email=ada@example.com", USER, None),
            ("GET", f"{TABLE}?filter=phone=555", USER, None),
            ("GET", "/api/v2/db/_table/Contacts", USER, None),
            ("GET", f"{TABLE}/42", USER, None),
            ("GET", TABLE, {}, None),
            ("GET", TABLE, {"X-DreamFactory-API-Key": "pk_revoked"}, None),
            ("DELETE", f"{TABLE}/2", USER, None),
            ("DELETE", f"{TABLE}/2", ADMIN, None),
            ("GET", "/api/v2/system/role", USER, None),
            ("GET", "/api/v2/db/_proc/top_contacts", USER, None),
            ("PUT", TABLE, USER, None),
            ("GET", "/api/v2/nowhere", USER, None),
            ("GET", "/api/v2/boom", USER, None),
        ],
    )
    section(
        "Batches and request bodies (bkend style)",
        {"RESTFAULT_STYLE": "bkend"},
        [
            ("POST", TABLE, USER, '{"resource": [{"name": "Alan", "email": "alan@example.com"}]}'),
            (
                "POST",
                TABLE,
                USER,
                '{"resource": [{"name": "Edsger", "email": "edsger@example.com"}, '
                '{"name": "Ada", "email": "ada@example.com"}, {"name": "Barbara"}]}',
            ),
            (
                "POST",
                f"{TABLE}?continue=true",
                USER,
                '{"resource": [{"name": "Ada", "email": "ada@example.com"}, {"name": "Barbara"}, '
                '{"name": "Donald", "email": "donald@example.com"}]}',
            ),
            (
                "POST",
                f"{TABLE}?rollback=true",
                USER,
                '{"resource": [{"name": "Niklaus", "email": "niklaus@example.com"}, '
                '{"name": "Grace", "email": "grace@example.com"}]}',
            ),
            ("GET", f"{TABLE}?filter=name=Niklaus", USER, None),
            ("POST", f"{TABLE}?continue=true&rollback=true", USER, '{"resource": [{}]}'),
            ("POST", TABLE, USER, '{"resource": [{"name": "Ada", "email": "ada@example.com"}]}'),
            ("POST", TABLE, USER, '{"resource": [}'),
            ("POST", TABLE, USER, '{"records": []}'),
        ],
    )
    email = '{"to": "ada@example.com", "subject": "Hi"}'
    section(
        "Rate limits and the problem style",
        {
            "RESTFAULT_STYLE": "problem",
            "RESTFAULT_DEFAULT_LIMITS": "3/minute",
            "RESTFAULT_ADMIN_LIMITS": "10/minute",
            "RESTFAULT_EMAIL_LIMITS": "2/minute",
        },
        [
            ("POST", "/api/v2/email", USER, email),
            ("POST", "/api/v2/email", USER, email),
            ("POST", "/api/v2/email", USER, email),
            ("GET", TABLE, USER, None),
            ("GET", TABLE, {}, None),
            ("GET", TABLE, {"X-API-Key": "sk_nope"}, None),
            ("GET", TABLE, {"X-API-Key": "pk_revoked"}, None),
            ("GET", TABLE, {}, None),
            ("GET", TABLE, ADMIN, None),
        ],
    )
    ada = '{"email": "ada@example.com", "password": "lovelace"}'
    wrong = '{"email": "ada@example.com", "password": "hopper"}'
    bearer = {**USER, "Authorization": "Bearer {session_token}"}
    refreshed = {**USER, "Authorization": "Bearer {accessToken}"}
    section(
        "Users and sessions (bkend style)",
        {
            "RESTFAULT_STYLE": "bkend",
            "EXAMPLE_SESSION_TTL": "2",
            "RESTFAULT_LOGIN_LIMITS": "2/15minutes",
        },
        [
            ("POST", "/api/v2/user/session", USER, ada),
            ("GET", "/api/v2/user/profile", bearer, None),
            Wait(2.5, "the session token's 2 seconds run out"),
            ("GET", "/api/v2/user/profile", bearer, None),
            ("POST", "/api/v2/auth/refresh", USER, '{"refreshToken": "{refresh_token}"}'),
            ("GET", "/api/v2/user/profile", refreshed, None),
            ("GET", "/api/v2/user/profile", {**USER, "X-DreamFactory-Session-Token": "x"}, None),
            ("POST", "/api/v2/user/session", USER, wrong),
            ("POST", "/api/v2/user/session", USER, wrong),
            ("POST", "/api/v2/user/session", USER, ada),
        ],
    )
    with tempfile.TemporaryDirectory() as directory:
        flag = Path(directory, "maintenance")
        flag.write_text("120\n")
        section(
            "Maintenance",
            {"EXAMPLE_MAINTENANCE_FILE": str(flag)},
            [
                ("GET", "/api/v2/health", {}, None),
                ("GET", TABLE, USER, None),
                ("POST", "/api/v2/user/session", USER, ada),
            ],
            setting="`EXAMPLE_MAINTENANCE_FILE` names a file that holds `120`",
        )
    section(
        "Debug on (never in production)",
        {"RESTFAULT_DEBUG": "1"},
        [("GET", "/api/v2/boom", USER, None)],
    )


if __name__ == "__main__":
    main()
