"""restfault's clients against both example apps under their real servers (uvicorn and
gunicorn), in each of the three envelope styles, as a Python user of the API meets them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from restfault import (
    BadRequestException,
    BatchException,
    ConflictResourceException,
    NotFoundException,
    TooManyRequestsException,
)
from restfault.client import Client, Retry
from tests.client.conftest import Caller
from tests.examples.apps import APPS, Api

pytestmark = pytest.mark.slow

STYLES = ("dreamfactory", "bkend", "problem")
EMAIL = {"to": "ada@example.com", "subject": "Hi"}


def serve(example_servers: Callable[..., Api], app: str, style: str) -> str:
    """The base URL of ``app`` in ``style``, one email per key every 2 seconds."""
    api = example_servers(app, RESTFAULT_STYLE=style, RESTFAULT_EMAIL_LIMITS="1/2seconds")
    return api.base_url


@pytest.fixture(params=[(app, style) for app in APPS for style in STYLES], ids="-".join)
def served(request: pytest.FixtureRequest, example_servers: Callable[..., Api]) -> tuple[str, str]:
    """(base URL, style) of one example app in one style."""
    app, style = request.param
    return serve(example_servers, app, style), style


def test_an_unknown_table_is_not_found(
    caller_factory: Callable[[str], Caller], served: tuple[str, str]
) -> None:
    base_url, style = served
    caller = caller_factory(base_url)
    with pytest.raises(NotFoundException) as raised:
        caller.request("GET", "/api/v2/db/_table/Contacts", headers={"X-API-Key": "pk_demo"})
    exc = raised.value
    assert type(exc) is NotFoundException
    # the dreamfactory style carries no string code: the class's own is all there is
    assert exc.code == ("NOT_FOUND" if style == "dreamfactory" else "TABLE_NOT_FOUND")
    assert (exc.status_code, exc.message) == (404, "Table 'Contacts' not found")
    assert exc.headers["X-RateLimit-Remaining"].isdigit()  # whatever case the server sent
    assert caller.waits == []


def test_a_failed_batch_lists_its_errors_by_index(
    caller_factory: Callable[[str], Caller], served: tuple[str, str]
) -> None:
    base_url, _ = served
    records = [
        {"name": "Ada", "email": "ada@example.com"},  # already stored
        {"name": "Barbara"},  # no email
        {"name": "Donald", "email": f"{uuid.uuid4().hex[:12]}@example.com"},
    ]
    caller = caller_factory(base_url)
    with pytest.raises(BatchException) as raised:
        caller.request(
            "POST",
            "/api/v2/db/_table/contacts?continue=true",
            headers={"X-API-Key": "pk_demo"},
            json={"resource": records},
        )
    exc = raised.value
    assert (exc.status_code, exc.code, exc.message) == (400, "BATCH_ERROR", "Batch operation error")
    assert [(error["index"], error["code"]) for error in exc.errors] == [
        (0, "UNIQUE_CONSTRAINT"),
        (1, "VALIDATION_ERROR"),
    ]
    assert {i: (type(e), e.code, e.context) for i, e in exc.causes.items()} == {
        0: (ConflictResourceException, "UNIQUE_CONSTRAINT", None),
        1: (BadRequestException, "VALIDATION_ERROR", {"field": "email", "error": "is required"}),
    }
    assert exc.resource is not None
    assert exc.resource[:2] == [None, None]
    assert list(exc.resource[2]) == ["id"]


def test_a_retry_after_beyond_the_budget_raises_at_once(
    caller_factory: Callable[[str], Caller], served: tuple[str, str]
) -> None:
    base_url, style = served
    caller = caller_factory(base_url)
    # One email per 2 s: of two sent back to back, one at least is turned away.
    for _ in range(2):
        try:
            caller.request(
                "POST",
                "/api/v2/email",
                Retry(budget=0.5),
                headers={"X-API-Key": "sk_demo"},
                json=EMAIL,
            )
        except TooManyRequestsException as exc:
            raised = exc
            break
    else:
        pytest.fail("two emails in a row were both sent")
    assert raised.code == ("RATE_LIMIT_EXCEEDED" if style == "dreamfactory" else "EMAIL_RATE_LIMIT")
    assert raised.message == "Too Many Requests"
    assert raised.retry_after == int(raised.headers["Retry-After"])
    assert raised.retry_after in (1, 2)
    assert caller.waits == []  # it did not wait, and did not try again early


@pytest.mark.parametrize("app", APPS)
def test_a_429_is_waited_out(example_servers: Callable[..., Api], app: str) -> None:
    """The one test that really sleeps: as long as the server's Retry-After, then sent."""
    waits: list[float] = []
    answers: list[httpx.Response] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with Client(
        base_url=serve(example_servers, app, "bkend"),
        headers={"X-API-Key": "pk_demo"},
        retry=Retry(sleep=sleep),
        event_hooks={"response": [answers.append]},
        timeout=10,
    ) as client:
        client.post("/api/v2/email", json=EMAIL)  # this window's one email
        waits.clear()
        answers.clear()
        response = client.post("/api/v2/email", json=EMAIL)
    assert (response.status_code, response.json()) == (202, {"queued": True})
    assert [answer.status_code for answer in answers] == [429, 202]
    assert waits == [float(answers[0].headers["Retry-After"])]
    assert 1 <= waits[0] <= 2
