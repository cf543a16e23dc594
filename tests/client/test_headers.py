"""What the client reads of headers: the server's wait (``Retry-After``, ``RateLimit``), the
rebuilt exception's case-insensitive headers, and the URL it logs."""

from __future__ import annotations

from typing import Any

import pytest

from restfault._client_headers import Headers, ratelimit_wait, retry_after_seconds
from restfault._client_retry import loggable_url

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
NOW = 1445412480.0  # DATE as a Unix time


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"retry-after": " 7 "}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:07 GMT", "Date": DATE}, 7.0),
        ({"Retry-After": "Wednesday, 21-Oct-15 07:28:09 GMT", "Date": DATE}, 9.0),  # RFC 850
        ({"Retry-After": "Wed Oct 21 07:28:05 2015", "Date": DATE}, 5.0),  # asctime
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:03 -0000", "Date": DATE}, 3.0),  # no zone
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:04 GMT"}, 4.0),  # no Date: from now
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:04 GMT", "Date": "garbage"}, 4.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT", "Date": DATE}, 0.0),  # past
        ({}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-1"}, None),
        ({"Retry-After": "1.5"}, None),
        ({"Retry-After": "1e3"}, None),
        ({"Retry-After": "²"}, None),
        ({"Retry-After": "3, 4"}, None),
        ({"Retry-After": "Wed, 99 Oct 2015 07:28:04 GMT"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(Headers(headers), now=NOW) == seconds


@pytest.mark.parametrize(
    ("field", "seconds"),
    [
        ('"a";r=0;t=4, "b";r=0;t=9, "c";r=5;t=30', 9.0),
        ("default;r=0;t=12", 12.0),
        ('"a"; r=0; t=3', 3.0),
        ('"a, b;r=5";r=0;t=6', 6.0),  # separators inside a String
        ('"say \\"hi\\", t=99";r=0;t=2', 2.0),  # escaped quotes inside a String
        ('"a";r=1;t=4', None),
        ('"a";r=0', None),
        ('"a";t=4', None),
        ('"a";r=0;t=-4', None),
        ('"a";r=0;t=4.5', None),
        ('"a";r=x;t=4, "b";r=0;t=2', 2.0),
        ("limit=100, remaining=0, reset=50", None),  # an older draft's syntax
        ("", None),
    ],
)
def test_ratelimit_t_of_the_exhausted_items(field: str, seconds: float | None) -> None:
    assert ratelimit_wait({"RateLimit": field}) == seconds


def test_exception_headers_are_looked_up_in_any_case() -> None:
    headers = Headers([("Retry-After", "3"), ("x-ratelimit-limit", "10")])
    assert headers == {"retry-after": "3", "x-ratelimit-limit": "10"}
    assert (headers["RETRY-AFTER"], headers.get("X-RateLimit-Limit")) == ("3", "10")
    # A key of another type is simply not there (as in any mapping).
    assert 3 not in headers  # type: ignore[comparison-overlap]
    assert ("Retry-After" in headers, headers.get("Date", "-")) == (True, "-")
    headers["X-Request-ID"] = "r1"
    headers.update({"Content-Type": "text/plain"}, Via="1.1 proxy")
    headers.update([("Date", DATE)])
    assert headers.setdefault("VIA", "other") == "1.1 proxy"
    assert headers.pop("RETRY-after") == "3"
    assert headers.pop("Retry-After", None) is None
    del headers["DATE"]
    copied = headers.copy()
    assert isinstance(copied, Headers)
    assert copied == {
        "x-ratelimit-limit": "10",
        "x-request-id": "r1",
        "content-type": "text/plain",
        "via": "1.1 proxy",
    }


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        (
            "https://api.example.com/api/v2/email?key=secret#frag",
            "https://api.example.com/api/v2/email",
        ),
        ("http://user:secret@127.0.0.1:8000/x?y=1", "http://127.0.0.1:8000/x"),
        ("http://[::1]:8000/x", "http://[::1]:8000/x"),
        ("/relative/path?q=1", "/relative/path"),
    ],
)
def test_logged_urls_carry_no_query_or_credentials(url: Any, logged: str) -> None:
    assert loggable_url(url) == logged
