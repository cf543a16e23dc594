"""Code shaped like a restfault user's, checked by ``mypy --strict`` in ``make test``.

Every public entry point is used as the README teaches, decorators applied with ``@``:
nothing here may come out untyped (``Any``) or need an ignore. The lines marked
``# type: ignore[...]`` are mistakes the types must catch: with ``warn_unused_ignores``
(part of ``--strict``), an ignore that is not needed — a mistake the types let through —
fails the run.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI
from flask import Blueprint, Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import restfault.asgi
import restfault.flask
import restfault.starlette
import restfault.wsgi
from restfault import (
    BatchException,
    ConflictResourceException,
    ErrorResponse,
    NotFoundException,
    RestException,
    TooManyRequestsException,
    arun_batch,
    batch_mode,
    current_request_id,
    raise_single_error,
    render_error,
    run_batch,
)
from restfault.client import Client, Retry, raise_for_error
from restfault.openapi import envelope_schema, error_responses, with_error_responses

# -- Starlette ------------------------------------------------------------------------------

rf = restfault.starlette.RestFault(
    style="bkend",
    default_limits="120/minute",
    path_limits={"/api/v2/db/": "1000/hour"},
    strategy="moving-window",
    trusted_proxies=["10.0.0.0/8"],
    ipv6_subnet=56,
    exempt_paths=["/health"],
)


def plan(request: Request) -> str | None:
    return "1200/minute" if request.headers.get("x-api-key", "").startswith("sk_") else None


@rf.limit("3/minute", code="EMAIL_RATE_LIMIT", methods=["POST"])
async def send_email(request: Request) -> JSONResponse:
    return JSONResponse({"queued": True}, status_code=202)


@rf.limit("5/15minutes", deduct_when=lambda status: status == 401, block_for=900)
async def login(request: Request) -> JSONResponse:
    return JSONResponse({"session_token": "..."})


@rf.shared_limit(plan, "db", enforce=False)
async def tables(request: Request) -> JSONResponse:
    raise NotFoundException("Table 'posts' not found", code="TABLE_NOT_FOUND")


@rf.exempt
async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


@rf.translate(sqlite3.IntegrityError)
def unique(exc: sqlite3.IntegrityError) -> ConflictResourceException:
    return ConflictResourceException(str(exc), code="UNIQUE_CONSTRAINT")


# The decorated functions keep their types.
email_endpoint: JSONResponse = asyncio.run(send_email(Request({"type": "http"})))
conflict: ConflictResourceException = unique(sqlite3.IntegrityError("dup"))

app = Starlette(routes=[Route("/email", send_email, methods=["POST"]), Route("/health", health)])
rf.init_app(app)

# Mistakes the types catch where they are written.
restfault.starlette.RestFault(app, stlye="bkend")  # type: ignore[call-arg]
restfault.starlette.RestFault(app, strategy="leaky-bucket")  # type: ignore[arg-type]
restfault.starlette.RestFault(app, debug="yes")  # type: ignore[arg-type]

# -- FastAPI --------------------------------------------------------------------------------

api = FastAPI()
restfault.starlette.RestFault(api, default_limits=["100/minute", "1000/hour"], metrics=False)


@api.get("/items/{item_id}")
@rf.limit("10/minute", key_func=lambda request: request.path_params["item_id"])
async def read_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


# -- Flask ----------------------------------------------------------------------------------

flask_rf = restfault.flask.RestFault(style="problem", request_id_header="X-Request-ID")
flask_app = Flask(__name__)
flask_rf.init_app(flask_app)
admin = flask_rf.exempt(Blueprint("admin", __name__))


@flask_app.post("/email")
@flask_rf.limit("3/minute", code="EMAIL_RATE_LIMIT")
def flask_email() -> tuple[dict[str, bool], int]:
    return {"queued": True}, 202


# -- the pure middlewares --------------------------------------------------------------------


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    return None


asgi = restfault.asgi.RestFaultMiddleware(asgi_app, default_limits="100/minute")
wsgi = restfault.wsgi.RestFaultMiddleware(flask_app.wsgi_app, on_storage_error="deny")

# -- rendering, batches, OpenAPI -----------------------------------------------------------

rendered: ErrorResponse = render_error(TooManyRequestsException(retry_after=30), style="problem")
status: int = rendered.status


@contextmanager
def transaction() -> Iterator[None]:
    yield


def insert(record: dict[str, str]) -> int:
    return len(record)


try:
    ids: list[int] = run_batch(
        [{"name": "Ada"}], insert, mode=batch_mode({}), transaction=transaction
    )
except BatchException as exc:
    raise_single_error(exc, 1)


async def ainsert(record: dict[str, str]) -> int:
    return len(record)


async_ids: list[int] = asyncio.run(arun_batch([{"name": "Ada"}], ainsert, mode="continue"))
schema: dict[str, object] = envelope_schema("bkend", 404)
responses = error_responses(404, 429, style="problem")
document = with_error_responses({"paths": {}}, "dreamfactory")

# -- request ids, maintenance mode, metrics ------------------------------------------------


async def down_for_maintenance(request: Request) -> int | bool:
    return 120 if request.headers.get("x-maintenance") else False


observed = restfault.starlette.RestFault(
    request_id_header="X-Request-ID", maintenance=down_for_maintenance, metrics=True
)
request_id: str | None = current_request_id()
with_id: dict[str, object] = envelope_schema("problem", 429, request_id=True)

# -- the client -----------------------------------------------------------------------------

retry = Retry(attempts=5, budget=30.0, sleep=lambda seconds: None)
with Client(retry=retry, base_url="http://127.0.0.1:8000") as client:
    try:
        response: httpx.Response = client.get("/api/v2/db/_table/contacts")
    except NotFoundException as missing:
        code: str = missing.code
    except RestException as other:
        status_code: int = other.status_code
raise_for_error(httpx.Response(200))
