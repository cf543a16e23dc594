"""Hostile HTTP against both example apps under their real servers (hypothesis).

Random methods, paths (invalid UTF-8, lone surrogates, control characters, all
percent-encoded as the transport requires), query strings, headers and bodies (invalid
UTF-8, lone-surrogate escapes, 20,000-level nesting, huge keys, wrong content types) go
over a raw socket. Every answer >= 400 must be the configured envelope with the HTTP
status in it; the only 500 is the deliberate ``/api/v2/boom``; no body carries a
traceback, an exception's text or the secret; the server stays healthy; and its log
shows no unhandled exception but boom's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.servers import Server

from .conftest import Raw, check_envelope, check_no_leak, raw_request

MAX_EXAMPLES = 150
SEED = 20261122
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXEMPT = {"/api/v2/health"}
HOP_BY_HOP = {
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "upgrade",
    "expect",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "http2-settings",
}
COUNTS: dict[str, dict[str, int]] = {}


def encoded(data: bytes) -> str:
    return quote_from_bytes(data, safe="")


surrogates = st.characters(categories=["Cs"])
segment_text = st.one_of(
    st.text(max_size=30).map(lambda s: s.encode("utf-8")),
    st.text(st.one_of(surrogates, st.characters()), min_size=1, max_size=10).map(
        lambda s: s.encode("utf-8", "surrogatepass")  # a lone surrogate, as UTF-8 bytes
    ),
    st.binary(min_size=1, max_size=30),  # invalid UTF-8, NUL, CR, LF...
    st.sampled_from(
        [b"1", b"2", b"0", b"-1", b"9" * 40, b"contacts", b"Contacts", b"table", b"role", b".."]
    ),
).map(encoded)
segment = st.one_of(
    segment_text,
    st.sampled_from(["%", "%zz", "%0d%0aX-Injected:%20yes", "a%2Fb", "%00", "%ED%A0%80"]),
)
PATHS = [
    "/api/v2/health",
    "/api/v2/openapi.json",
    "/api/v2/db/_table/contacts",
    "/api/v2/db/_table/{}",
    "/api/v2/db/_table/contacts/{}",
    "/api/v2/db/_table/{}/{}",
    "/api/v2/system/{}",
    "/api/v2/db/_proc/{}",
    "/api/v2/email",
    "/api/v2/boom",
    "/api/v2/user/session",
    "/api/v2/user/profile",
    "/api/v2/auth/refresh",
    "/api/v2/user/{}",
    "/api/v2/{}",
    "/{}",
    "/api/v2/health/{}",
]


@st.composite
def paths(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from(PATHS))
    return template.format(*(draw(segment) for _ in range(template.count("{}"))))


query_pair = st.tuples(
    st.one_of(st.sampled_from(["filter", "continue", "rollback"]), segment), segment
).map("=".join)
query_special = st.sampled_from(
    [
        "filter=email=ada@example.com",
        "filter=name",
        "filter=id=1%00",
        "continue=true&rollback=true",
        "rollback=true",
        "continue=1",
        "filter=email=%ED%A0%80",
    ]
)
queries = st.one_of(
    st.just(""),
    query_special,
    st.lists(query_pair, max_size=4).map("&".join),
    st.binary(max_size=40).map(encoded),
)

token = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True).filter(
    lambda name: name.lower() not in HOP_BY_HOP
)
# Visible ASCII and obs-text (latin-1 high bytes); no CR, LF or NUL, which HTTP forbids.
header_value = st.binary(max_size=60).map(
    lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F).strip()
)
keys = st.sampled_from(
    [b"sk_demo", b"pk_demo", b"pk_revoked", b"sk_nope", b"nonsense", b"sk_d\xe9mo", b"", b"sk_"]
)
content_types = st.sampled_from(
    [
        b"application/json",
        b"application/json; charset=latin-1",
        b"application/problem+json",
        b"text/plain",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=xyz",
        b"multipart/form-data",
        b"application/xml",
        b"\xff\xfe",
        b";;;",
    ]
)


def one_content_type(pairs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """gunicorn refuses a repeated Content-Type itself (400, before the app): send one."""
    kept, seen = [], False
    for name, value in pairs:
        if name.lower() == b"content-type":
            if seen:
                continue
            seen = True
        kept.append((name, value))
    return kept


headers = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([b"X-API-Key", b"X-DreamFactory-API-Key"]), keys),
        st.tuples(st.just(b"Content-Type"), content_types),
        st.tuples(
            st.sampled_from(
                [
                    b"X-Forwarded-For",
                    b"Authorization",
                    b"X-DreamFactory-Session-Token",
                    b"Cookie",
                    b"Accept",
                ]
            ),
            header_value,
        ),
        st.tuples(token.map(str.encode), header_value),
    ),
    max_size=6,
).map(one_content_type)

DEEP = 20_000
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
any_text = st.text(st.one_of(surrogates, st.characters()), max_size=12)


class Blob(bytes):
    """A body whose repr stays short when hypothesis reports an example."""

    def __repr__(self) -> str:
        return (
            f"Blob({len(self)} bytes: {bytes(self[:60])!r}...)"
            if len(self) > 200
            else (bytes.__repr__(self))
        )


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()  # ASCII, with lone surrogates as \ud800 escapes


records = st.lists(
    st.dictionaries(st.sampled_from(["name", "email", "id"]), st.one_of(any_text, json_values)),
    max_size=4,
).map(lambda items: _json({"resource": items}))
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    json_values.map(_json),
    records,
    st.fixed_dictionaries({"to": any_text, "subject": any_text}).map(_json),
    st.fixed_dictionaries({"email": any_text, "password": any_text}).map(_json),
    st.fixed_dictionaries({"refreshToken": st.one_of(any_text, json_values)}).map(_json),
    st.sampled_from(
        [
            b'{"resource": "\xff\xfe"}',
            b'"\xed\xa0\x80"',
            b"\xef\xbb\xbf{}",
            b'{"resource": [{"name": "\\ud800", "email": "\\udfff@example.com"}]}',
            b'{"to": "\\ud800", "subject": "\\udc00"}',
            b"[" * DEEP + b"]" * DEEP,
            b'{"a":' * DEEP + b"1" + b"}" * DEEP,
            b'{"resource": ' + b"[" * DEEP + b"]" * DEEP + b"}",
            b'{"' + b"k" * 200_000 + b'": 1}',
            b'{"resource": [{"name": "' + b"n" * 100_000 + b'", "email": "big@example.com"}]}',
            b"NaN",
            b'{"resource": [{"name": "x", "email": Infinity}]}',
            b"1" * 5000,
        ]
    ),
)
bodies = bodies.map(Blob)
methods = st.one_of(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    st.from_regex(r"[A-Z]{3,10}", fullmatch=True),
)


def refused_by_server(response: Raw) -> bool:
    """gunicorn's and uvicorn's own 400 for a request they will not pass to the app."""
    return response.status == 400 and (
        (response.body.startswith(b"<html>") and b"<h1><p>Bad Request</p></h1>" in response.body)
        or response.body == b"Invalid HTTP request received."
    )


OPERATIONS = [
    ("GET", "/api/v2/db/_table/contacts"),
    ("POST", "/api/v2/db/_table/contacts"),
    ("GET", "/api/v2/db/_table/contacts/1"),
    ("DELETE", "/api/v2/db/_table/contacts/{}"),
    ("GET", "/api/v2/system/{}"),
    ("GET", "/api/v2/db/_proc/{}"),
    ("POST", "/api/v2/email"),
    ("GET", "/api/v2/boom"),
    ("POST", "/api/v2/user/session"),
    ("GET", "/api/v2/user/profile"),
    ("POST", "/api/v2/auth/refresh"),
]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, list[tuple[bytes, bytes]], bytes]:
    """Half wholly random; half a real operation with a live key and one hostile part."""
    extra = draw(headers)
    query = draw(queries)
    if draw(st.booleans()):
        method, path = draw(methods), draw(paths())
    else:
        method, template = draw(st.sampled_from(OPERATIONS))
        path = template.format(*(draw(segment) for _ in range(template.count("{}"))))
        key = draw(st.sampled_from([b"sk_demo", b"pk_demo"]))
        extra = [(b"X-API-Key", key), *extra]
        if all(name.lower() != b"content-type" for name, _ in extra):
            extra.append((b"Content-Type", b"application/json"))
    return method, f"{path}?{query}" if query else path, extra, draw(bodies)


HOSTILE_BODIES = {
    "invalid UTF-8": b'{"resource": [{"name": "\xff", "email": "z@example.com"}]}',
    "lone surrogates": b'{"resource": [{"name": "\\ud800", "email": "\\udfff@example.com"}]}',
    "lone surrogate, 2nd record": (
        b'{"resource": [{"name": "a", "email": "a@b.c"}, {"name": "x\\ud800", "email": "c@d"}]}'
    ),
    "UTF-8 surrogate bytes": b'{"resource": [{"name": "\xed\xa0\x80", "email": "s@x"}]}',
    "20,000-level list": b"[" * DEEP + b"]" * DEEP,
    "20,000-level object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "20,000-level resource": b'{"resource": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "200 kB key": b'{"' + b"k" * 200_000 + b'": 1}',
    "NaN email": b'{"resource": [{"name": "x", "email": NaN}]}',
    "5,000-digit number": b'{"resource": [{"name": "x", "email": ' + b"9" * 5000 + b"}]}",
    "latin-1 text": '{"resource": [{"name": "\u00e9", "email": "\u00e9@x"}]}'.encode("latin-1"),
    "email surrogates": b'{"to": "\\ud800", "subject": "\\udc00"}',
    "BOM": b'\xef\xbb\xbf{"to": "a", "subject": "b"}',
    "empty": b"",
}
CONTENT_TYPES = [b"application/json", b"application/json; charset=latin-1", b"text/plain", None]


def check(
    app: str, style: str, method: str, target: str, response: Raw, sent: int = 0, run: str = ""
) -> None:
    counts = COUNTS.setdefault(run or f"{app}/{style}", {})
    counts["requests"] = counts.get("requests", 0) + 1
    if response.status == 0:
        # The server answered before reading a large body, closed, and the kernel's reset
        # discarded the answer: transport, not restfault. Only a large body may do that.
        assert sent > 65536, (method, target)
        key = "reset while sending a large body"
        counts[key] = counts.get(key, 0) + 1
        return
    family = f"{response.status // 100}xx"
    counts[family] = counts.get(family, 0) + 1
    path = target.split("?", 1)[0]
    check_no_leak(response.body)
    if refused_by_server(response):  # the app never saw it: not restfault's to answer
        counts["refused by the server"] = counts.get("refused by the server", 0) + 1
        return
    assert 100 <= response.status < 600
    if response.status == 500:
        assert path == "/api/v2/boom", (method, target)
        counts["boom"] = counts.get("boom", 0) + 1
    if response.status >= 400:
        check_envelope(style, response, head=method == "HEAD")
    if path not in EXEMPT:  # every rate-limited response says so (API.md §5)
        assert response.header("X-RateLimit-Limit") == "100000", response.headers


@pytest.fixture(scope="module", params=["starlette", "flask"])
def fuzz_app(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.slow
@pytest.mark.parametrize("style", ["dreamfactory", "problem"])
def test_hostile_requests_always_get_the_envelope(
    launch: Callable[..., Server], fuzz_app: str, style: str
) -> None:
    server = launch(fuzz_app, RESTFAULT_STYLE=style)

    @FUZZ
    @seed(SEED)  # the same examples on every run: CI stays stable
    @given(request=requests())
    def fuzz(request: tuple[str, str, list[tuple[bytes, bytes]], bytes]) -> None:
        method, target, headers, body = request
        response = raw_request(server.port, method, target, headers, body)
        check(fuzz_app, style, method, target, response, len(body))

    fuzz()
    health = raw_request(server.port, "GET", "/api/v2/health")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    log = server.output()
    unhandled = re.findall(r"unhandled (\w+) on (\S+) ([^\s;]+)", log)
    assert all(found == ("RuntimeError", "GET", "/api/v2/boom") for found in unhandled), unhandled
    assert "hunter2" not in log.replace("database password is hunter2", "")
    print(f"fuzz {fuzz_app}/{style}: {COUNTS.get(f'{fuzz_app}/{style}')}")


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    ["/api/v2/db/_table/contacts", "/api/v2/email", "/api/v2/user/session", "/api/v2/auth/refresh"],
)
def test_every_hostile_body_on_the_write_endpoints(
    launch: Callable[..., Server], fuzz_app: str, path: str
) -> None:
    """Each hostile body, under each content type, with a live admin key: a 4xx envelope."""
    server = launch(fuzz_app, RESTFAULT_STYLE="problem")
    seen = {}
    for name, body in HOSTILE_BODIES.items():
        for content_type in CONTENT_TYPES:
            headers = [(b"X-API-Key", b"sk_demo")]
            if content_type is not None:
                headers.append((b"Content-Type", content_type))
            response = raw_request(server.port, "POST", path, headers, body)
            check(fuzz_app, "problem", "POST", path, response, len(body), f"{fuzz_app} {path}")
            assert 400 <= response.status < 500 or name in ("latin-1 text", "BOM"), (
                name,
                response.status,
                response.body[:200],
            )
            seen[name, content_type] = response.status
    assert raw_request(server.port, "GET", "/api/v2/health").status == 200


@pytest.mark.slow
def test_both_apps_answer_alike(launch: Callable[..., Server]) -> None:
    """The same hostile requests, in the same order, get the same statuses from both apps
    (EXAMPLES.md: "both must behave exactly alike")."""
    servers = [launch(app, RESTFAULT_STYLE="bkend") for app in ("starlette", "flask")]
    differences: list[tuple[str, str, list[int], list[str]]] = []

    @FUZZ
    @seed(SEED + 1)
    @given(request=requests())
    def compare(request: tuple[str, str, list[tuple[bytes, bytes]], bytes]) -> None:
        method, target, headers, body = request
        answers = [raw_request(s.port, method, target, headers, body) for s in servers]
        statuses = [a.status for a in answers]
        if 0 in statuses or any(refused_by_server(a) for a in answers):
            return  # a transport-level answer: nothing to compare
        codes = [a.json()["error"] if a.status >= 400 and method != "HEAD" else "" for a in answers]
        if statuses[0] != statuses[1] or codes[0] != codes[1]:
            differences.append((method, target[:80], statuses, codes))

    compare()
    COUNTS["parity"] = {"requests per app": MAX_EXAMPLES, "differences": len(differences)}
    assert not differences, differences[:10]
