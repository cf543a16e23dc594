"""Fixtures of the client tests: the scripted server, the example apps, the three clients.

A ``Caller`` sends one request through one of restfault's clients (``Client``,
``AsyncClient`` or ``Session``), with a ``Retry`` whose ``sleep`` records the waits
instead of sleeping, so every wait can be asserted exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from restfault.client import AsyncClient, Client, Retry, Session
from tests.examples.conftest import example_servers  # noqa: F401 - a fixture, reused
from tests.servers import HOST, Server, free_port, running

CLIENTS = ("Client", "AsyncClient", "Session")
Reply = tuple[int, list[tuple[str, str]], str]


def reply(status: int, body: str = "", **headers: str) -> Reply:
    """One scripted reply; ``Retry_After="3"`` sends ``Retry-After: 3``."""
    return status, [(name.replace("_", "-"), value) for name, value in headers.items()], body


@dataclasses.dataclass
class Caller:
    """Sends requests through one of restfault's clients and records the waits."""

    kind: str
    base_url: str
    waits: list[float] = dataclasses.field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        retry: Retry | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The final response (or the exception it raised), ``retry`` recording its waits."""
        retry = retry or Retry()
        url = f"{self.base_url}{path}"
        if self.kind == "AsyncClient":
            return asyncio.run(self._async_request(method, url, retry, headers, **kwargs))

        def sleep(seconds: float) -> None:
            self.waits.append(seconds)

        retry = dataclasses.replace(retry, sleep=sleep)
        if self.kind == "Session":
            with Session(retry=retry) as session:
                return session.request(method, url, headers=headers, timeout=10, **kwargs)
        with Client(retry=retry, timeout=10, follow_redirects=True) as client:
            return client.request(method, url, headers=headers, **kwargs)

    async def _async_request(
        self, method: str, url: str, retry: Retry, headers: dict[str, str] | None, **kwargs: Any
    ) -> Any:
        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)

        retry = dataclasses.replace(retry, sleep=sleep)
        async with AsyncClient(retry=retry, timeout=10, follow_redirects=True) as client:
            return await client.request(method, url, headers=headers, **kwargs)


@pytest.fixture(scope="session")
def scripted_url() -> Iterator[str]:
    """The base URL of ``tests/client/scripted_app.py`` under uvicorn."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "tests.client.scripted_app:app"]
    argv += ["--host", HOST, "--port", str(port), "--no-date-header", "--log-level", "warning"]
    with running(Server(argv, port)):
        yield f"http://{HOST}:{port}"


def script_headers(*replies: Reply, **extra: str) -> dict[str, str]:
    """Request headers that make the scripted app answer ``replies`` in order."""
    headers = {"X-Script": json.dumps(replies), "X-Script-Id": uuid.uuid4().hex}
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers


@pytest.fixture(params=CLIENTS)
def caller_factory(request: pytest.FixtureRequest) -> Callable[[str], Caller]:
    """``caller_factory(base_url)``: a Caller of this test's client kind."""
    return lambda base_url: Caller(str(request.param), base_url)
