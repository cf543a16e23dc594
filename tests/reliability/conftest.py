"""Shared parts of the reliability suite: the example apps under their real servers, a raw
HTTP client for what httpx refuses to send, and the checks every error response must pass.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tests.servers import HOST, Server, gunicorn_server, running, uvicorn_server

APPS = ("starlette", "flask")
SECRET = "hunter2"
# Text that would mean an exception or its traceback reached a client.
LEAKS = (
    SECRET,
    "Traceback",
    'File "',
    "RuntimeError",
    "RecursionError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "KeyError",
    "TypeError",
    "AttributeError",
    "OverflowError",
    "sqlite3.",
    "werkzeug",
    "starlette",
)
# The apps' settings: empty values stand for "unset" (the apps' defaults), whatever the
# environment running the tests holds.
BASE_ENV = {
    "RESTFAULT_STYLE": "dreamfactory",
    "RESTFAULT_STORAGE_URI": "",
    "RESTFAULT_STRATEGY": "",
    "RESTFAULT_DEFAULT_LIMITS": "100000/minute",
    "RESTFAULT_EMAIL_LIMITS": "100000/minute",
    "RESTFAULT_DEBUG": "",
    "RESTFAULT_ADMIN_LIMITS": "100000/minute",
    "RESTFAULT_DB_LIMITS": "100000/minute",
    "RESTFAULT_LOGIN_LIMITS": "100000/minute",
    "EXAMPLE_DB": "",
    "EXAMPLE_SESSION_TTL": "",
    "EXAMPLE_REFRESH_TTL": "",
    "EXAMPLE_MAINTENANCE_FILE": "",
}


def example_server(app: str, env: dict[str, str], workers: int = 1) -> Server:
    """The example ``app`` under its real server (uvicorn / gunicorn), not yet started."""
    full = {**BASE_ENV, **env}
    if app == "starlette":
        return uvicorn_server("examples.starlette_app.app:app", full, workers=workers)
    return gunicorn_server("examples.flask_app.app:app", full, workers=workers)


@pytest.fixture(scope="module")
def launch() -> Iterator[Callable[..., Server]]:
    """``launch(app, workers=1, **env)``: the example app running (cached), stopped with the
    module."""
    started: dict[tuple[Any, ...], Server] = {}
    with contextlib.ExitStack() as stack:

        def start(app: str, workers: int = 1, **env: str) -> Server:
            key = (app, workers, tuple(sorted(env.items())))
            if key not in started:
                started[key] = stack.enter_context(running(example_server(app, env, workers)))
            return started[key]

        yield start


# -- a raw HTTP/1.1 client -----------------------------------------------------------------


@dataclass
class Raw:
    """One response read off a socket: status, header pairs (as sent), body, seconds."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float = 0.0

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    port: int,
    method: bytes | str,
    target: bytes | str,
    headers: Sequence[tuple[bytes | str, bytes | str]] = (),
    body: bytes = b"",
    timeout: float = 15.0,
    source: str | None = None,
) -> Raw:
    """Send exactly these bytes (``Content-Length`` added for a body) and read the answer;
    from the loopback address ``source`` (127.0.0.2...: another client) when given."""

    def b(value: bytes | str) -> bytes:
        return value if isinstance(value, bytes) else value.encode("latin-1")

    lines = [b(method) + b" " + b(target) + b" HTTP/1.1", b"Host: " + HOST.encode()]
    lines += [b(k) + b": " + b(v) for k, v in headers]
    if body or b(method) in (b"POST", b"PUT", b"PATCH"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    started = time.monotonic()
    received = read_all(port, data, timeout, source)
    seconds = time.monotonic() - started
    verb = b(method).decode("latin-1")
    if not received:  # reset before a byte of the answer arrived (status 0: no response)
        return Raw(0, [], b"", seconds)
    response = http.client.HTTPResponse(_Replay(received), method=verb)  # type: ignore[arg-type]
    response.begin()
    # For HEAD, whatever follows the head is what the server sent as a body (none, it must).
    content = received.split(b"\r\n\r\n", 1)[1] if verb == "HEAD" else response.read()
    return Raw(response.status, list(response.getheaders()), content, seconds)


class _Replay:
    """Bytes already read, as the socket ``http.client`` parses a response from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, *args: Any, **kwargs: Any) -> io.BytesIO:
        return io.BytesIO(self.data)


def read_all(port: int, data: bytes, timeout: float = 15.0, source: str | None = None) -> bytes:
    """Send ``data`` and read every byte until the server closes the connection."""
    chunks = []
    bound = (source, 0) if source else None
    with socket.create_connection((HOST, port), timeout=timeout, source_address=bound) as sock:
        # A server may answer and close before reading a large body: read what it sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


# -- what every error response must be -----------------------------------------------------


def check_envelope(style: str, response: Raw, head: bool = False) -> dict[str, Any] | None:
    """Fail unless ``response`` (status >= 400) is ``style``'s envelope with its status."""
    status = response.status
    content_type = (response.header("content-type") or "").split(";")[0].strip()
    wanted = "application/problem+json" if style == "problem" else "application/json"
    assert content_type == wanted, (status, response.headers, response.body[:300])
    if head:
        assert response.body == b""
        return None
    document = response.json()
    assert isinstance(document, dict)
    # With request ids on (the example apps), the envelope names the response's own.
    request_id = response.header("x-request-id")
    if style == "dreamfactory":
        error = document["error"]
        assert error["code"] == status
        assert isinstance(error["message"], str)
        assert set(error) <= {"code", "message", "context", "request_id"}
        assert error.get("request_id") == request_id
    elif style == "bkend":
        assert isinstance(document["error"], str)
        assert document["error"].isupper()
        assert isinstance(document["message"], str)
        assert document.get("request_id") == request_id
    else:
        assert document["status"] == status
        assert isinstance(document["code"], str)
        assert isinstance(document["title"], str)
        assert isinstance(document["detail"], str)
        assert document.get("request_id") == request_id
    return document


def check_no_leak(body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in text, (leak, text[:500])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the reliability tests gathered (docs/reliability.md quotes them)."""
    import sys

    found = {
        name.rsplit(".", 1)[-1]: figures
        for name, module in sorted(sys.modules.items())
        if name.startswith("tests.reliability.test_")
        for figures in [getattr(module, "FIGURES", None) or getattr(module, "COUNTS", None)]
        if figures
    }
    if found:
        terminalreporter.section("reliability figures")
        for name, figures in found.items():
            terminalreporter.write_line(f"{name}: {json.dumps(figures, default=str)}")
