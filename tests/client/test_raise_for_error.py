"""``raise_for_error``: error responses of any style, and of none, become the §1 exceptions,
for httpx, httpx2 and requests responses alike."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
import requests

from restfault import (
    BadRequestException,
    BatchException,
    ConflictResourceException,
    ForbiddenException,
    InternalServerErrorException,
    InvalidJsonException,
    NotFoundException,
    RestException,
    ServiceUnavailableException,
    TooManyRequestsException,
    UnauthorizedException,
)
from restfault._render import Renderer
from restfault.client import raise_for_error
from tests.client.conftest import Reply, reply, script_headers
from tests.tables import EXCEPTION_TABLE, STYLE_NAMES, StyleName, make_exception

STYLES: list[StyleName] = STYLE_NAMES
JSON = {"Content_Type": "application/json"}
PROBLEM = {"Content_Type": "application/problem+json"}
DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
SEVEN_SECONDS_LATER = "Wed, 21 Oct 2015 07:28:07 GMT"
PROXY_PAGE = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body>\n</html>"
DF_BATCH = {
    "error": {
        "code": 400,
        "message": "Batch operation error",
        "context": {"errors": [{"index": 1, "message": "Duplicate key value"}]},
    }
}


def body(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False)


# reply -> (class, code, message, context, retry_after)
Expected = tuple[type[RestException], str, str, Any, int | None]
BODIES: dict[str, tuple[Reply, Expected]] = {
    "dreamfactory: the class's default code": (
        reply(
            404, body({"error": {"code": 404, "message": "No table", "context": {"t": 1}}}), **JSON
        ),
        (NotFoundException, "NOT_FOUND", "No table", {"t": 1}, None),
    ),
    "dreamfactory: a batch, by its shape": (
        reply(400, body(DF_BATCH), **JSON),
        (
            BatchException,
            "BATCH_ERROR",
            "Batch operation error",
            DF_BATCH["error"]["context"],
            None,
        ),
    ),
    "dreamfactory: invalid JSON, by its message": (
        reply(400, body({"error": {"code": 400, "message": "Invalid JSON: Syntax error"}}), **JSON),
        (InvalidJsonException, "INVALID_JSON", "Invalid JSON: Syntax error", None, None),
    ),
    "bkend: non-ASCII message in UTF-8": (
        reply(
            409,
            body({"error": "UNIQUE_CONSTRAINT", "message": "déjà pris", "context": [1]}),
            **JSON,
        ),
        (ConflictResourceException, "UNIQUE_CONSTRAINT", "déjà pris", [1], None),
    ),
    "bkend: INVALID_JSON": (
        reply(400, body({"error": "INVALID_JSON", "message": "Invalid JSON: x"}), **JSON),
        (InvalidJsonException, "INVALID_JSON", "Invalid JSON: x", None, None),
    ),
    "bkend: malformed Retry-After": (
        reply(
            429, body({"error": "RATE_LIMIT_EXCEEDED", "message": "Later"}), Retry_After="x", **JSON
        ),
        (TooManyRequestsException, "RATE_LIMIT_EXCEEDED", "Later", None, None),
    ),
    "problem: extension members are the context": (
        reply(
            429,
            body(
                {
                    "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
                    "title": "Too Many Requests",
                    "status": 429,
                    "detail": "Slow down",
                    "instance": "/api/v2/email",
                    "code": "EMAIL_RATE_LIMIT",
                    "violated-policies": ["email"],
                }
            ),
            Retry_After="5",
            **PROBLEM,
        ),
        (
            TooManyRequestsException,
            "EMAIL_RATE_LIMIT",
            "Slow down",
            {"violated-policies": ["email"]},
            5,
        ),
    ),
    "problem: HTTP-date Retry-After, from Date": (
        reply(
            503,
            body({"title": "Service Unavailable", "status": 503}),
            Retry_After=SEVEN_SECONDS_LATER,
            Date=DATE,
            **PROBLEM,
        ),
        (ServiceUnavailableException, "SERVICE_UNAVAILABLE", "Service Unavailable", None, 7),
    ),
    "FastAPI's default body reads as a problem": (
        reply(404, body({"detail": "Not Found"}), **JSON),
        (NotFoundException, "NOT_FOUND", "Not Found", None, None),
    ),
    "a proxy's HTML 502": (
        reply(502, PROXY_PAGE + "\n", Content_Type="text/html"),
        (RestException, "BAD_GATEWAY", PROXY_PAGE, None, None),
    ),
    "text 500": (
        reply(500, "upstream timed out\n", Content_Type="text/plain; charset=utf-8"),
        (InternalServerErrorException, "INTERNAL_SERVER_ERROR", "upstream timed out", None, None),
    ),
    "empty 503": (
        reply(503),
        (ServiceUnavailableException, "SERVICE_UNAVAILABLE", "Service Unavailable", None, None),
    ),
    "empty 422, a status without a class": (
        reply(422),
        (RestException, "UNPROCESSABLE_CONTENT", "Unprocessable Content", None, None),
    ),
    "blank 401": (
        reply(401, " \r\n "),
        (UnauthorizedException, "UNAUTHORIZED", "Unauthorized", None, None),
    ),
    "truncated JSON": (
        reply(400, '{"error": "BAD', **JSON),
        (BadRequestException, "BAD_REQUEST", '{"error": "BAD', None, None),
    ),
    "JSON in no style": (
        reply(403, '{"message": "nope"}', **JSON),
        (ForbiddenException, "FORBIDDEN", '{"message": "nope"}', None, None),
    ),
    "a JSON list": (
        reply(404, "[1, 2]", **JSON),
        (NotFoundException, "NOT_FOUND", "[1, 2]", None, None),
    ),
}


def _fetch_with(library: str) -> Callable[[str, dict[str, str]], Any]:
    """``fetch(url, headers)`` with ``library``, raising nothing for error statuses."""
    if library == "requests":
        return lambda url, headers: requests.get(url, headers=headers, timeout=10)
    module: ModuleType = httpx if library == "httpx" else pytest.importorskip(library)
    return lambda url, headers: module.get(url, headers=headers, timeout=10)


@pytest.fixture(params=["httpx", "httpx2", "requests"])
def fetch(request: pytest.FixtureRequest) -> Callable[[str, dict[str, str]], Any]:
    return _fetch_with(str(request.param))


@pytest.mark.parametrize(("sent", "expected"), BODIES.values(), ids=BODIES.keys())
def test_error_responses_raise_their_class(
    fetch: Callable[[str, dict[str, str]], Any], scripted_url: str, sent: Reply, expected: Expected
) -> None:
    response = fetch(scripted_url, script_headers(sent))
    cls, code, message, context, retry_after = expected
    with pytest.raises(cls) as raised:
        raise_for_error(response)
    exc = raised.value
    assert type(exc) is cls
    assert (exc.status_code, exc.code, exc.message) == (sent[0], code, message)
    assert exc.context == context
    assert getattr(exc, "retry_after", None) == retry_after
    # the response's headers, as sent, looked up in any case
    assert exc.headers == {name.lower(): value for name, value in response.headers.items()}
    for name, value in sent[1]:
        assert exc.headers[name.upper()] == value


@pytest.mark.parametrize("status", [200, 201, 204, 399])
def test_responses_below_400_are_returned(
    fetch: Callable[[str, dict[str, str]], Any], scripted_url: str, status: int
) -> None:
    response = fetch(scripted_url, script_headers(reply(status)))
    assert raise_for_error(response) is response


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("cls", "status", "code", "message"), EXCEPTION_TABLE)
def test_every_exception_survives_the_round_trip_in_every_style(
    style: StyleName, cls: type[RestException], status: int, code: str, message: str
) -> None:
    """What restfault renders, raise_for_error raises again (a 500 as its own class)."""
    context = None if cls is BatchException else {"field": "email"}  # a batch makes its own
    sent = make_exception(cls) if context is None else make_exception(cls, context=context)
    rendered = Renderer(style).render(sent)
    response = httpx.Response(rendered.status, headers=rendered.headers, content=rendered.body)
    with pytest.raises(RestException) as raised:
        raise_for_error(response)
    exc = raised.value
    assert type(exc) is (InternalServerErrorException if cls is RestException else cls)
    assert (exc.status_code, exc.code, exc.message, exc.context) == (
        status,
        code,
        sent.message,
        sent.context,
    )


def test_a_batch_is_rebuilt_per_index() -> None:
    errors = [
        {"index": 0, "status": 409, "code": "UNIQUE_CONSTRAINT", "message": "Taken"},
        {
            "index": 2,
            "status": 400,
            "code": "VALIDATION_ERROR",
            "message": "No",
            "context": {"f": 1},
        },
        {"index": 3, "message": "DreamFactory lists only index and message"},
    ]
    sent = BatchException(errors, rolled_back=True)
    for style in STYLES:
        rendered = Renderer(style).render(sent)
        response = httpx.Response(rendered.status, headers=rendered.headers, content=rendered.body)
        with pytest.raises(BatchException) as raised:
            raise_for_error(response)
        exc = raised.value
        assert (exc.errors, exc.rolled_back, exc.resource) == (errors, True, None)
        assert {i: (type(e), e.code, e.message, e.context) for i, e in exc.causes.items()} == {
            0: (ConflictResourceException, "UNIQUE_CONSTRAINT", "Taken", None),
            2: (BadRequestException, "VALIDATION_ERROR", "No", {"f": 1}),
            3: (BadRequestException, "BAD_REQUEST", errors[2]["message"], None),
        }


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (400, b"[" * 100_000 + b"]" * 100_000, (BadRequestException, 400, "BAD_REQUEST")),
        (404, b'{"error": "\xff\xfe"}', (NotFoundException, 404, "NOT_FOUND")),
        (
            400,
            body({"error": "BATCH_ERROR", "message": "m", "context": {"errors": "x"}}).encode(),
            (BatchException, 400, "BATCH_ERROR"),
        ),
        (
            400,
            body(
                {"error": "BATCH_ERROR", "message": "m", "context": {"errors": [1, {"x": 1}]}}
            ).encode(),
            (BatchException, 400, "BATCH_ERROR"),
        ),
        (600, b"odd", (RestException, 600, "HTTP_600")),
    ],
    ids=[
        "deep JSON",
        "invalid UTF-8",
        "batch errors not a list",
        "batch items without index",
        "600",
    ],
)
def test_odd_bodies_never_crash(
    status: int, content: bytes, expected: tuple[type[RestException], int, str]
) -> None:
    with pytest.raises(RestException) as raised:
        raise_for_error(httpx.Response(status, content=content))
    assert (type(raised.value), raised.value.status_code, raised.value.code) == expected


def test_an_item_that_is_a_batch_keeps_its_errors_but_no_causes() -> None:
    item: dict[str, Any] = {"index": 0, "message": "leaf"}
    for _ in range(300):  # deep enough that rebuilding every level would recurse too far
        item = {"index": 0, "code": "BATCH_ERROR", "message": "m", "context": {"errors": [item]}}
    with pytest.raises(BatchException) as raised:
        raise_for_error(httpx.Response(400, json={"error": "BATCH_ERROR", **item}))
    cause = raised.value.causes[0]
    assert type(cause) is BatchException
    assert (cause.errors, cause.causes) == (item["context"]["errors"][0]["context"]["errors"], {})


def test_batch_causes_skip_items_without_an_index() -> None:
    document = {"error": "BATCH_ERROR", "message": "m", "context": {"errors": [1, {"x": 1}]}}
    with pytest.raises(BatchException) as raised:
        raise_for_error(httpx.Response(400, json=document))
    assert (raised.value.errors, raised.value.causes) == ([{"x": 1}], {})


def test_the_client_module_needs_no_http_library() -> None:
    """``import restfault.client`` and its sans-IO half work without httpx or requests."""
    code = """
import sys
for name in ("httpx", "httpx2", "requests", "anyio"):
    sys.modules[name] = None  # an import of it now fails
import restfault.client as client
from restfault import NotFoundException

class Response:  # any object shaped like a response
    status_code = 404
    headers = {"content-type": "application/json", "retry-after": "3"}
    content = b'{"error": "TABLE_NOT_FOUND", "message": "No table"}'
    text = content.decode()

try:
    client.raise_for_error(Response())
except NotFoundException as exc:
    print(exc.code, exc.message, exc.headers["Retry-After"])
client.Retry(attempts=2)
for name in ("Client", "AsyncClient", "Session"):
    try:
        getattr(client, name)
    except ImportError as exc:
        print(name, exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "TABLE_NOT_FOUND No table 3",
        "Client restfault.client.Client needs httpx: pip install 'restfault[client]'",
        "AsyncClient restfault.client.AsyncClient needs httpx: pip install 'restfault[client]'",
        "Session restfault.client.Session needs requests: pip install 'restfault[client]'",
    ]


def test_public_names() -> None:
    client = importlib.import_module("restfault.client")
    assert client.__all__ == ["AsyncClient", "Client", "Retry", "Session", "raise_for_error"]
    assert set(client.__all__) <= set(dir(client))
    assert all(hasattr(client, name) for name in client.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'Missing'"):
        _ = client.Missing


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("requests", "restfault.client.Session needs requests: pip install 'restfault[client]'"),
        ("restfault._client_requests", "import of restfault._client_requests halted"),
    ],
)
def test_only_a_missing_library_is_explained(
    monkeypatch: pytest.MonkeyPatch, missing: str, message: str
) -> None:
    client = importlib.import_module("restfault.client")
    monkeypatch.delitem(vars(client), "Session", raising=False)  # as before its first use
    monkeypatch.delitem(sys.modules, "restfault._client_requests", raising=False)
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(ImportError, match=re.escape(message)):
        _ = client.Session
