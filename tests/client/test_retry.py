"""``Retry`` through each client (``Client``, ``AsyncClient``, ``Session``) against a real
server answering scripted replies: which responses are retried, how long each wait is,
when the budget makes the error raise at once. Waits are recorded, never slept."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from restfault import (
    ConfigurationError,
    InternalServerErrorException,
    RestException,
    ServiceUnavailableException,
    TooManyRequestsException,
)
from restfault.client import AsyncClient, Client, Retry, Session
from tests.client.conftest import Caller, Reply, reply, script_headers

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
SEVEN_SECONDS_LATER = "Wed, 21 Oct 2015 07:28:07 GMT"
OK = reply(200, '{"ok": true}', Content_Type="application/json")
PROXY_502 = reply(
    502, "<html><body><h1>502 Bad Gateway</h1></body></html>\n", Content_Type="text/html"
)


def too_many(**headers: str) -> Reply:
    body = '{"error": "RATE_LIMIT_EXCEEDED", "message": "Slow down"}'
    return reply(429, body, Content_Type="application/json", **headers)


def unavailable(**headers: str) -> Reply:
    return reply(503, "", **headers)


@dataclasses.dataclass(frozen=True)
class Case:
    replies: tuple[Reply, ...]
    waits: list[float]  # exactly what was waited, in order
    tries: int  # requests the server answered
    error: type[RestException] | None = None  # None: the last reply is returned
    retry_after: int | None = None
    method: str = "POST"
    retry: Retry = dataclasses.field(default_factory=Retry)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


CASES = {
    # 429: retried for any method, waiting what the server asks
    "429 Retry-After seconds": Case((too_many(Retry_After="3"), OK), [3.0], 2),
    "429 Retry-After 0": Case((too_many(Retry_After="0"), OK), [0.0], 2),
    "429 Retry-After HTTP date, from Date": Case(
        (too_many(Retry_After=SEVEN_SECONDS_LATER, Date=DATE), OK), [7.0], 2
    ),
    "429 Retry-After HTTP date in the past": Case((too_many(Retry_After=DATE), OK), [0.0], 2),
    "429 RateLimit: largest t with r=0": Case(
        (too_many(RateLimit='"a";r=0;t=4, "b";r=0;t=9, "c";r=5;t=30'), OK), [9.0], 2
    ),
    "429 malformed Retry-After: RateLimit next": Case(
        (too_many(Retry_After="soon", RateLimit='"day";r=0;t=5'), OK), [5.0], 2
    ),
    "429 malformed Retry-After, no r=0: backoff": Case(
        (too_many(Retry_After="-1", RateLimit='"a";r=3;t=9'), too_many(Retry_After="1e3"), OK),
        [0.5, 1.0],
        3,
    ),
    "429 after a redirect: the first URL is tried again, never the hop alone": Case(
        (reply(307, Location="/hop"), too_many(Retry_After="1"), OK), [1.0], 3
    ),
    # tries run out
    "429 twice with attempts=2": Case(
        (too_many(Retry_After="1"),), [1.0], 2, TooManyRequestsException, 1, retry=Retry(attempts=2)
    ),
    "attempts=1 never retries": Case(
        (too_many(Retry_After="1"), OK), [], 1, TooManyRequestsException, 1, retry=Retry(attempts=1)
    ),
    "empty 503s on GET until attempts run out": Case(
        (unavailable(),), [0.5, 1.0], 3, ServiceUnavailableException, method="GET"
    ),
    # the budget: the error at once, with the server's retry_after
    "Retry-After beyond the budget": Case(
        (too_many(Retry_After="30"), OK),
        [],
        1,
        TooManyRequestsException,
        30,
        retry=Retry(budget=10),
    ),
    "Retry-After beyond what is left of the budget": Case(
        (too_many(Retry_After="3"), too_many(Retry_After="3"), OK),
        [3.0],
        2,
        TooManyRequestsException,
        3,
        retry=Retry(budget=5),
    ),
    "RateLimit t beyond the budget": Case(
        (too_many(RateLimit='"a";r=0;t=20'), OK),
        [],
        1,
        TooManyRequestsException,
        20,
        retry=Retry(budget=5),
    ),
    "503 HTTP date beyond the budget": Case(
        (unavailable(Retry_After=SEVEN_SECONDS_LATER, Date=DATE), OK),
        [],
        1,
        ServiceUnavailableException,
        7,
        method="GET",
        retry=Retry(budget=6.5),
    ),
    "backoff is cut to what is left of the budget": Case(
        (unavailable(), unavailable(), unavailable(), OK),
        [0.5, 0.25, 0.0],
        4,
        method="GET",
        retry=Retry(attempts=4, budget=0.75),
    ),
    # 503: only idempotent requests, or those carrying an Idempotency-Key
    "503 on POST is not retried": Case(
        (unavailable(Retry_After="1"), OK), [], 1, ServiceUnavailableException, 1
    ),
    "503 on POST with Idempotency-Key": Case(
        (unavailable(Retry_After="1"), OK), [1.0], 2, headers={"Idempotency-Key": "k-1"}
    ),
    "503 on PATCH is not retried": Case(
        (unavailable(Retry_After="1"), OK), [], 1, ServiceUnavailableException, 1, method="PATCH"
    ),
    **{
        f"503 on {method}": Case((unavailable(Retry_After="2"), OK), [2.0], 2, method=method)
        for method in ("GET", "PUT", "DELETE", "OPTIONS")
    },
    # statuses
    "a proxy's 502 is not in the default statuses": Case(
        (PROXY_502, OK), [], 1, RestException, method="GET"
    ),
    "502 retried when listed": Case(
        (PROXY_502, OK), [0.5], 2, method="GET", retry=Retry(statuses=(502, 503))
    ),
    "500 is not retried": Case(
        (reply(500, "Internal Server Error"), OK), [], 1, InternalServerErrorException, method="GET"
    ),
}


@pytest.fixture
def ceiling_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full jitter draws from [0, ceiling]; here it always draws the ceiling."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)


@pytest.mark.usefixtures("ceiling_jitter")
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_retries(caller_factory: Callable[[str], Caller], scripted_url: str, case: Case) -> None:
    caller = caller_factory(scripted_url)
    headers = script_headers(*case.replies, **case.headers)
    if case.error is None:
        response = caller.request(case.method, "/", case.retry, headers)
        assert response.status_code == case.replies[-1][0]
        final_headers = response.headers
    else:
        with pytest.raises(case.error) as raised:
            caller.request(case.method, "/", case.retry, headers)
        assert type(raised.value) is case.error
        assert getattr(raised.value, "retry_after", None) == case.retry_after
        final_headers = raised.value.headers
    assert caller.waits == case.waits
    assert int(final_headers["X-Try"]) == case.tries
    assert final_headers["X-Path"] == "/"


def _chunks() -> Iterator[bytes]:
    yield from (b"hel", b"lo")


async def _async_chunks() -> AsyncIterator[bytes]:
    for chunk in (b"hel", b"lo"):
        yield chunk


# (client, its keyword for the body, a fresh body of 5 bytes, whether it can be sent twice)
BODY_KINDS: dict[str, tuple[str, str, Callable[[], Any], bool]] = {
    "Client bytes": ("Client", "content", lambda: b"hello", True),
    "Client iterator": ("Client", "content", _chunks, False),
    "Client file": ("Client", "content", lambda: io.BytesIO(b"hello"), False),
    "AsyncClient bytes": ("AsyncClient", "content", lambda: b"hello", True),
    "AsyncClient async iterator": ("AsyncClient", "content", _async_chunks, False),
    "Session bytes": ("Session", "data", lambda: b"hello", True),
    "Session file, rewound": ("Session", "data", lambda: io.BytesIO(b"hello"), True),
    "Session iterator": ("Session", "data", _chunks, False),
}


@pytest.mark.parametrize(
    ("kind", "keyword", "body", "resendable"), BODY_KINDS.values(), ids=BODY_KINDS.keys()
)
def test_a_body_that_cannot_be_sent_twice_is_not_retried(
    scripted_url: str, kind: str, keyword: str, body: Callable[[], Any], resendable: bool
) -> None:
    caller = Caller(kind, scripted_url)
    headers = script_headers(too_many(Retry_After="1"), OK)
    if resendable:
        response = caller.request("POST", "/", Retry(), headers, **{keyword: body()})
        assert (response.status_code, caller.waits) == (200, [1.0])
        final_headers = response.headers
    else:
        with pytest.raises(TooManyRequestsException) as raised:
            caller.request("POST", "/", Retry(), headers, **{keyword: body()})
        assert (raised.value.retry_after, caller.waits) == (1, [])
        final_headers = raised.value.headers
    assert int(final_headers["X-Try"]) == (2 if resendable else 1)
    assert final_headers["X-Body-Length"] == "5"  # the whole body, on every try


def test_each_wait_is_logged(
    caller_factory: Callable[[str], Caller], scripted_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caller = caller_factory(scripted_url.replace("//", "//user:secret@"))
    headers = script_headers(too_many(Retry_After="2"), too_many(RateLimit='"a";r=0;t=3'), OK)
    with caplog.at_level(logging.INFO, logger="restfault.client"):
        caller.request("POST", "/api/v2/email?token=secret", Retry(), headers)
    url = f"{scripted_url}/api/v2/email"  # no user info, no query string
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("restfault.client", logging.INFO, f"POST {url} answered 429: {wait}")
        for wait in (
            "waiting 2.00 s (Retry-After) before try 2 of 3",
            "waiting 3.00 s (RateLimit) before try 3 of 3",
        )
    ]
    assert getattr(caplog.records[0], "restfault") == {  # noqa: B009 - set by the logger's extra
        "method": "POST",
        "url": url,
        "status": 429,
        "wait": 2.0,
        "source": "Retry-After",
        "attempt": 2,
        "attempts": 3,
    }


def test_streamed_error_bodies_are_read_for_the_exception(scripted_url: str) -> None:
    headers = script_headers(reply(404, '{"error": "TABLE_NOT_FOUND", "message": "No table"}'))
    with (
        Client(base_url=scripted_url) as client,
        pytest.raises(RestException) as raised,
        client.stream("GET", "/", headers=headers),
    ):
        pytest.fail("a 404 never reaches the body of the with block")
    assert (raised.value.status_code, raised.value.code) == (404, "TABLE_NOT_FOUND")
    assert raised.value.message == "No table"


def test_default_sleeps_really_wait(scripted_url: str) -> None:
    """Without ``sleep=``, the clients sleep for real (time.sleep, anyio.sleep)."""
    headers = script_headers(too_many(Retry_After="0"), OK)
    with Client(base_url=scripted_url) as client:
        assert client.get("/", headers=headers).status_code == 200

    async def main() -> int:
        async with AsyncClient(base_url=scripted_url) as client:
            retried = script_headers(too_many(RateLimit='"a";r=0;t=0'), OK)
            return (await client.get("/", headers=retried)).status_code

    started = time.monotonic()
    assert asyncio.run(main()) == 200
    assert time.monotonic() - started < 5


def test_async_client_takes_a_plain_sleep_too(scripted_url: str) -> None:
    waits: list[float] = []

    async def main() -> int:
        retry = Retry(sleep=waits.append)
        async with AsyncClient(base_url=scripted_url, retry=retry) as client:
            headers = script_headers(too_many(Retry_After="4"), OK)
            return (await client.post("/", headers=headers)).status_code

    assert asyncio.run(main()) == 200
    assert waits == [4.0]


# -- configuration ---------------------------------------------------------------------


async def _async_sleep(seconds: float) -> None:
    return None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attempts": 0}, r"Retry\(attempts=0\): attempts counts every try.*at least 1"),
        ({"attempts": 2.5}, r"Retry\(attempts=2.5\)"),
        ({"attempts": True}, r"Retry\(attempts=True\)"),
        ({"budget": -1}, r"Retry\(budget=-1\): budget must be at least 0"),
        ({"budget": float("nan")}, r"Retry\(budget=nan\): budget must be a number"),
        ({"budget": "60"}, r"Retry\(budget='60'\): budget must be a number"),
        ({"backoff": -0.5}, r"Retry\(backoff=-0.5\): backoff must be at least 0 and finite"),
        ({"backoff": float("inf")}, r"Retry\(backoff=inf\): backoff must be at least 0 and finite"),
        ({"statuses": 429}, r"Retry\(statuses=429\) must be a tuple of statuses"),
        ({"statuses": "429"}, r"Retry\(statuses='429'\) must be a tuple of statuses"),
        ({"statuses": (429, 200)}, r"200 is not an error status \(an int from 400 to 599\)"),
        ({"statuses": (429, "503")}, r"'503' is not an error status"),
        ({"sleep": 1}, r"Retry\(sleep=1\) must be callable or None"),
    ],
)
def test_bad_retry_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Retry(**options)


@pytest.mark.parametrize("client", [Client, Session])
def test_sync_clients_refuse_a_coroutine_sleep(client: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError, match="sleep is a coroutine function"):
        client(retry=Retry(sleep=_async_sleep))


def test_retry_defaults_and_normalised_values() -> None:
    assert Retry() == Retry(attempts=3, statuses=(429, 503), budget=60.0, backoff=0.5, sleep=None)
    retry = Retry(attempts=1, statuses=[502, 429], budget=0, backoff=0)
    assert (retry.statuses, retry.budget, retry.backoff) == ((502, 429), 0.0, 0.0)
    assert Retry(budget=float("inf")).budget == float("inf")


@pytest.mark.parametrize("retry_number", [1, 2, 3, 4])
def test_backoff_is_full_jitter_up_to_an_exponential_ceiling(retry_number: int) -> None:
    ceiling = 0.5 * 2 ** (retry_number - 1)
    waits = [Retry(backoff=0.5).backoff_wait(retry_number) for _ in range(500)]
    assert all(0 <= wait <= ceiling for wait in waits)
    assert min(waits) < ceiling * 0.1
    assert max(waits) > ceiling * 0.9
