"""An exception in a streaming body or a background task, under real servers (uvicorn,
gunicorn): never a second response start, never an envelope spliced into a started body.
The client sees the intact response or a truncated, closed connection; the server's log
shows the error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.servers import HOST, Server, gunicorn_server, running, uvicorn_server

from .conftest import raw_request, read_all
from .started_app import FIRST

pytestmark = pytest.mark.slow
FLAVOURS = {
    "starlette": ("uvicorn", "starlette_app"),
    "asgi": ("uvicorn", "asgi_app"),
    "flask": ("gunicorn", "flask_app"),
    "wsgi": ("gunicorn", "wsgi_app"),
}
FIGURES: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module", params=sorted(FLAVOURS))
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, Server]]:
    server_kind, name = FLAVOURS[request.param]
    target = f"tests.reliability.started_app:{name}"
    server = uvicorn_server(target) if server_kind == "uvicorn" else gunicorn_server(target)
    with running(server):
        yield request.param, server


def get(port: int, path: str) -> bytes:
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    return read_all(port, request, timeout=10)


def logged(server: Server, text: str) -> bool:
    """Whether the server's log shows ``text`` (servers log after answering: wait a bit)."""
    deadline = time.monotonic() + 3
    while text not in server.output():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def check_single_start(raw: bytes) -> tuple[bytes, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:200]
    assert raw.count(b"HTTP/1.1 ") == 1, raw  # no second status line
    for leak in (b"hunter2", b"Internal Server Error", b'"error"', b"Traceback"):
        assert leak not in raw, raw
    return head, body


def test_a_failing_stream_is_cut_off(served: tuple[str, Server]) -> None:
    flavour, server = served
    head, body = check_single_start(get(server.port, "/stream"))
    assert FIRST in body
    chunked = b"transfer-encoding: chunked" in head.lower()
    # Cut off: a chunked body never gets its last chunk; a sized one falls short.
    assert not body.endswith(b"0\r\n\r\n") if chunked else b"content-length" not in head.lower()
    assert raw_request(server.port, "GET", "/health").status == 200  # still serving
    assert logged(server, "stream broke: hunter2")  # the server logged it, traceback and all
    FIGURES.setdefault(flavour, {})["/stream"] = "cut off" + (" (chunked)" if chunked else "")


def test_a_stream_failing_before_its_first_chunk(served: tuple[str, Server]) -> None:
    """uvicorn has sent the start: cut off. A WSGI server sends nothing before the first
    non-empty chunk (PEP 3333), so restfault may still answer the 500 envelope, once."""
    flavour, server = served
    raw = get(server.port, "/stream-empty")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert raw.count(b"HTTP/1.1 ") == 1, raw
    for leak in (b"hunter2", b"Traceback"):
        assert leak not in raw, raw
    if raw.startswith(b"HTTP/1.1 500 "):
        assert b"content-type: application/json" in head.lower(), raw
        assert body == b'{"error":{"code":500,"message":"Internal Server Error"}}', raw
        outcome = "500 envelope (nothing was sent yet)"
    else:
        assert raw.startswith(b"HTTP/1.1 200 "), raw
        assert b"part" not in body
        assert not body.endswith(b"0\r\n\r\n")
        outcome = "cut off"
    assert raw_request(server.port, "GET", "/health").status == 200
    assert logged(server, "stream broke: hunter2")
    FIGURES.setdefault(flavour, {})["/stream-empty"] = outcome


def test_a_failing_background_task_leaves_the_response_intact(
    served: tuple[str, Server],
) -> None:
    flavour, server = served
    head, body = check_single_start(get(server.port, "/background"))
    if b"transfer-encoding: chunked" in head.lower():
        assert body.endswith(b"0\r\n\r\n")
        assert b'"ok"' in body
    else:
        assert body.replace(b" ", b"").strip() == b'{"ok":true}', body
    after = raw_request(server.port, "GET", "/health")
    assert after.status == 200
    assert logged(server, "background broke: hunter2")
    FIGURES.setdefault(flavour, {})["/background"] = "intact"
