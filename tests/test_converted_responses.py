"""An app's own error responses (text, HTML, none) become the envelope, on every adapter.

The views here return ``Raw`` responses of their own making (``tests.harness.Raw``): a
framework-free app's text/plain 404, a Starlette ``PlainTextResponse``, a Flask view's
``"nope", 404``. restfault keeps their status and headers and replaces the body; JSON
error bodies, successes and redirects pass untouched.
"""

from __future__ import annotations

import gzip

import pytest

from restfault import RestException
from tests.harness import MakeHarness, Raw

CONVERTED = [
    (400, [], "BAD_REQUEST"),
    (401, [("WWW-Authenticate", 'Basic realm="x"')], "UNAUTHORIZED"),
    (404, [("X-Trace", "t-1")], "NOT_FOUND"),
    (405, [("Allow", "GET, HEAD")], "METHOD_NOT_ALLOWED"),
    (410, [("X-Why", "archived")], "GONE"),
    (413, [], "CONTENT_TOO_LARGE"),
    (429, [("Retry-After", "9")], "RATE_LIMIT_EXCEEDED"),
    (500, [], "INTERNAL_SERVER_ERROR"),
    (502, [], "BAD_GATEWAY"),
    (503, [("Retry-After", "120")], "SERVICE_UNAVAILABLE"),
]


@pytest.mark.parametrize(
    ("status", "headers", "code"), CONVERTED, ids=[str(c[0]) for c in CONVERTED]
)
@pytest.mark.parametrize(
    "content_type", ["text/plain; charset=utf-8", "text/html", None], ids=["plain", "html", "none"]
)
# With nothing to admit a request carries no state of restfault's; with a limit it does:
# the two roads convert alike.
@pytest.mark.parametrize("limits", [None, "1000/minute"], ids=["no-limits", "limited"])
def test_non_json_error_response_becomes_the_envelope(
    harness: MakeHarness,
    status: int,
    headers: list[tuple[str, str]],
    code: str,
    content_type: str | None,
    limits: str | None,
) -> None:
    own = [("Content-Type", content_type)] if content_type else []
    own.append(("Content-Length", "9"))  # the app's, for a body it no longer sends
    app = harness(style="bkend", **({"default_limits": limits} if limits else {}))
    app.route("/x")(lambda: Raw(status, own + headers, [b"<p>", b"original", b" page"]))

    reply = app.get("/x")

    assert reply.status == status
    assert reply.content_type == "application/json"
    assert reply.headers.get_list("content-length") == [str(len(reply.body))]
    assert reply.json() == {"error": code, "message": RestException(status_code=status).message}
    assert b"original" not in reply.body
    for name, value in headers:
        assert reply.headers[name] == value


def test_head_of_a_converted_response_has_no_body(harness: MakeHarness) -> None:
    app = harness()
    app.route("/x", methods=["GET", "HEAD"])(
        lambda: Raw(404, [("Content-Type", "text/plain")], [b"x"])
    )

    reply = app.request("HEAD", "/x")

    assert reply.status == 404
    assert reply.content_type == "application/json"
    assert reply.body == b""


@pytest.mark.parametrize("status", [500, 502])
def test_converted_response_drops_headers_of_the_replaced_body(
    harness: MakeHarness, status: int
) -> None:
    page = gzip.compress(b"<html>" + b"x" * 600 + b"</html>")
    headers = [
        ("Content-Type", "text/html"),
        ("Content-Encoding", "gzip"),
        ("Content-Disposition", "inline"),
        ("Vary", "Accept-Encoding"),
    ]
    app = harness()
    app.route("/x")(lambda: Raw(status, headers, [page]))

    reply = app.get("/x")

    assert reply.status == status
    assert "content-encoding" not in reply.headers
    assert "content-disposition" not in reply.headers
    assert reply.headers["vary"] == "Accept-Encoding"
    assert reply.json() == {
        "error": {"code": status, "message": RestException(status_code=status).message}
    }


def test_a_converted_error_keeps_every_challenge(harness: MakeHarness) -> None:
    headers = [
        ("Content-Type", "text/plain"),
        ("WWW-Authenticate", 'Basic realm="api"'),
        ("WWW-Authenticate", 'Bearer realm="api"'),
    ]
    app = harness()
    app.route("/")(lambda: Raw(401, headers, [b"Unauthorized"]))

    reply = app.get("/")

    assert reply.status == 401
    assert reply.json() == {"error": {"code": 401, "message": "Unauthorized"}}
    assert reply.headers["www-authenticate"] == 'Basic realm="api", Bearer realm="api"'


def test_a_converted_error_carries_the_rate_limit_headers(harness: MakeHarness) -> None:
    app = harness(style="bkend", default_limits="10/minute")
    app.route("/legacy")(lambda: Raw(404, [("X-Trace", "abc")], [b"nope"]))

    reply = app.get("/legacy")

    assert reply.status == 404
    assert reply.json() == {"error": "NOT_FOUND", "message": "Not Found"}
    assert reply.headers["x-trace"] == "abc"
    assert reply.headers["x-ratelimit-limit"] == "10"
    assert reply.headers["x-ratelimit-remaining"] == "9"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/problem+json",
        "application/problem+json; charset=utf-8",
        "application/vnd.api+json; charset=utf-8",
    ],
)
def test_json_error_responses_are_untouched(harness: MakeHarness, content_type: str) -> None:
    payload = b'{"own": "error"}'
    app = harness()
    app.route("/x")(lambda: Raw(409, [("Content-Type", content_type)], [payload]))

    reply = app.get("/x")

    assert reply.status == 409
    assert reply.headers["content-type"] == content_type
    assert reply.body == payload


@pytest.mark.parametrize("status", [200, 201, 204, 301, 302, 304, 399])
def test_non_error_responses_are_untouched(harness: MakeHarness, adapter: str, status: int) -> None:
    app = harness()
    app.route("/x")(lambda: Raw(status, [("Content-Type", "text/plain")], [b"a", b"b"]))

    reply = app.get("/x")

    assert reply.status == status
    # werkzeug's Response itself sends no body with a 204 or a 304, and no content
    # headers with a 304 (RFC 9110): that is Flask's doing, not restfault's.
    by_werkzeug = adapter == "flask" and status in (204, 304)
    assert reply.content_type == ("" if by_werkzeug and status == 304 else "text/plain")
    assert reply.body == (b"" if by_werkzeug else b"ab")


def test_conversion_can_be_switched_off(harness: MakeHarness) -> None:
    app = harness(convert_error_responses=False)
    app.route("/x")(lambda: Raw(404, [("Content-Type", "text/plain")], [b"plain"]))

    reply = app.get("/x")

    assert reply.status == 404
    assert reply.content_type == "text/plain"
    assert reply.body == b"plain"
