"""Tiny apps whose responses fail after they have started (tests/reliability only).

Each serves ``/stream`` (a body that fails after its first chunk), ``/stream-empty`` (fails
before any chunk, after the start), ``/background`` (a complete response whose background
task or close callback fails) and ``/health``; four flavours: Starlette and pure ASGI (for
uvicorn), Flask and pure WSGI (for gunicorn).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING

from flask import Flask, Response, jsonify
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import restfault.asgi
import restfault.flask
import restfault.starlette
import restfault.wsgi

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

FIRST = b'{"part": 1}\n'
LIMITS = "100000/minute"


def fail(where: str) -> None:
    raise RuntimeError(f"{where} broke: hunter2")


# -- Starlette ---------------------------------------------------------------------------


async def chunks(first: bool) -> AsyncIterator[bytes]:
    if first:
        yield FIRST
        await asyncio.sleep(0.05)
    fail("stream")
    yield b"never"


async def stream(request: Request) -> StreamingResponse:
    return StreamingResponse(chunks(True), media_type="application/x-ndjson")


async def stream_empty(request: Request) -> StreamingResponse:
    return StreamingResponse(chunks(False), media_type="application/x-ndjson")


async def background(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, background=BackgroundTask(fail, "background"))


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


starlette_app = Starlette(
    routes=[
        Route("/stream", stream),
        Route("/stream-empty", stream_empty),
        Route("/background", background),
        Route("/health", health),
    ]
)
restfault.starlette.RestFault(starlette_app, default_limits=LIMITS)


# -- pure ASGI -------------------------------------------------------------------------------


async def raw_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    headers = [(b"content-type", b"application/json")]
    if path == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"status": "ok"}'})
        return
    if path == "/background":
        body = b'{"ok": true}'
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        fail("background")
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/stream":
        await send({"type": "http.response.body", "body": FIRST, "more_body": True})
        await asyncio.sleep(0.05)
    fail("stream")


asgi_app = restfault.asgi.RestFaultMiddleware(raw_asgi, default_limits=LIMITS)


# -- Flask -------------------------------------------------------------------------------------

flask_app = Flask(__name__)
restfault.flask.RestFault(flask_app, default_limits=LIMITS)


def lines(first: bool) -> Iterator[bytes]:
    if first:
        yield FIRST
    fail("stream")
    yield b"never"


@flask_app.get("/stream")
def flask_stream() -> Response:
    return Response(lines(True), mimetype="application/x-ndjson")


@flask_app.get("/stream-empty")
def flask_stream_empty() -> Response:
    return Response(lines(False), mimetype="application/x-ndjson")


@flask_app.get("/background")
def flask_background() -> Response:
    response = jsonify(ok=True)
    response.call_on_close(lambda: fail("background"))
    return response


@flask_app.get("/health")
def flask_health() -> dict[str, str]:
    return {"status": "ok"}


# -- pure WSGI -------------------------------------------------------------------------------


class _Closing:
    """A complete body whose close() fails, as a WSGI app's cleanup might."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"ok": true}'

    def close(self) -> None:
        fail("background")


def raw_wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    start_response("200 OK", [("Content-Type", "application/json")])
    if path == "/health":
        return [b'{"status": "ok"}']
    if path == "/background":
        return _Closing()
    return lines(path == "/stream")


wsgi_app = restfault.wsgi.RestFaultMiddleware(raw_wsgi, default_limits=LIMITS)
