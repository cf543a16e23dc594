"""The observability tests' app (request ids, logs, metrics, maintenance mode, the IETF
fields), on the shared harness: ``observed(**options)`` is ``harness(**options)`` with the
routes below, for the ``adapter`` under test.

=================  ==============================================================
``/``              200 ``{"ok": true}``
``/rid``           200 ``{"rid": current_request_id()}``
``/batch``         ``run_batch`` over two items, each returning ``current_request_id()``
``/stream``        two chunks, each with ``current_request_id()``
``/own-id``        200 with the app's own ``X-Request-ID: app-own``
``/text-404``      the app's own ``text/plain`` 404 (converted to the envelope)
``/missing``       raises ``NotFoundException(code="THING_NOT_FOUND")``
``/unavailable``   raises ``ServiceUnavailableException(retry_after=5)``
``/boom``          raises ``RuntimeError``
``/health``        200, ``.exempt`` where endpoints exist
``/limited``       200, ``.limit("2/minute", code="EMAIL_RATE_LIMIT")`` there
``/shared``        200, ``.shared_limit("4/minute", SHARED_SCOPE)`` and
                   ``.limit("3/minute;9/hour")`` there
=================  ==============================================================

Every route answers GET and HEAD.
"""

from __future__ import annotations

from typing import Any, Protocol

import pytest

from restfault import (
    NotFoundException,
    ServiceUnavailableException,
    current_request_id,
    run_batch,
)
from tests.harness import Harness, MakeHarness, Raw, RouteLimit, ok, raising

# A scope with every character a policy name must escape: quotes, backslash, the
# separators of its own suffixes, non-ASCII.
SHARED_SCOPE = 'db "main" \\ caf\u00e9;w=60#2'
BOTH = ("GET", "HEAD")


def rid() -> object:
    return {"rid": current_request_id()}


def batch() -> object:
    return {"ids": run_batch([1, 2], lambda item: current_request_id())}


def stream() -> object:
    chunks = [f"{i}:{current_request_id()};".encode() for i in range(2)]
    return Raw(200, [("Content-Type", "text/plain")], chunks)


def own_id() -> object:
    headers = [("Content-Type", "application/json"), ("X-Request-ID", "app-own")]
    return Raw(200, headers, [b'{"ok": true}'])


def text_404() -> object:
    return Raw(404, [("Content-Type", "text/plain")], [b"Not Found"])


def add_observed_routes(app: Harness) -> Harness:
    """The routes of the module docstring."""
    app.route("/", BOTH)(ok)
    app.route("/rid", BOTH)(rid)
    app.route("/batch", BOTH)(batch)
    app.route("/stream", BOTH)(stream)
    app.route("/own-id", BOTH)(own_id)
    app.route("/text-404", BOTH)(text_404)
    app.route("/missing", BOTH)(raising(NotFoundException("No such thing", code="THING_NOT_FOUND")))
    app.route("/unavailable", BOTH)(raising(ServiceUnavailableException(retry_after=5)))
    app.route("/boom", BOTH)(raising(RuntimeError("db_password=hunter2")))
    endpoints = app.endpoints
    app.route("/health", BOTH, exempt=endpoints)(ok)
    limited = [RouteLimit("2/minute", code="EMAIL_RATE_LIMIT")] if endpoints else []
    app.route("/limited", BOTH, limits=limited)(ok)
    shared = [RouteLimit("4/minute", shared=SHARED_SCOPE), RouteLimit("3/minute;9/hour")]
    app.route("/shared", BOTH, limits=shared if endpoints else [])(ok)
    return app


class MakeObserved(Protocol):
    def __call__(self, **options: Any) -> Harness: ...


@pytest.fixture
def observed(harness: MakeHarness) -> MakeObserved:
    """``observed(**options)``: the app above on the adapter under test."""

    def make(**options: Any) -> Harness:
        return add_observed_routes(harness(**options))

    return make


def by_user(request: Any) -> str | None:
    """A key_func for every adapter's request object: the X-User header."""
    from tests.harness import header_of

    return header_of(request, "x-user")
