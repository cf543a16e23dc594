"""``restfault.client.Client`` and ``AsyncClient``: httpx clients that retry and raise.

Only the I/O is twinned: each ``send`` sends, reads an error body, asks the shared
``Attempts`` whether to wait, sleeps, and finally hands the response to
``raise_for_error``.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import anyio
import httpx

from ._client_errors import raise_for_error
from ._client_retry import DEFAULT_RETRY, Retry
from ._errors import ConfigurationError

__all__ = ["AsyncClient", "Client"]


def _resendable(request: httpx.Request) -> bool:
    """Whether ``request``'s body is in memory (httpx reads all but streamed bodies), so
    that it can be sent again; a consumed iterator or file would send nothing."""
    try:
        request.content  # noqa: B018 - raises for a streamed body
    except httpx.RequestNotRead:
        return False
    return True


class Client(httpx.Client):
    """An ``httpx.Client`` that retries by ``retry`` and raises restfault's exceptions.

    Takes every ``httpx.Client`` option. Each final response goes through
    ``raise_for_error``: a 404 raises ``NotFoundException``, an exhausted 429
    ``TooManyRequestsException`` with ``retry_after``. A request with a streamed body (an
    iterator, a file, multipart files) is never retried: its body cannot be sent twice.

    >>> with Client(base_url="https://api.example.com", retry=Retry(attempts=5)) as client:
    ...     records = client.get("/api/v2/db/_table/contacts").json()  # doctest: +SKIP
    """

    def __init__(self, *, retry: Retry = DEFAULT_RETRY, **httpx_options: Any) -> None:
        if inspect.iscoroutinefunction(retry.sleep):
            raise ConfigurationError(
                "Client(retry=Retry(sleep=...)): sleep is a coroutine function, which "
                "only AsyncClient can await; give Client a plain function"
            )
        super().__init__(**httpx_options)
        self.retry = retry

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        """Send ``request``, again while ``retry`` says so; raise for the final error."""
        attempts = self.retry.start(request.method, request.url, request.headers)
        sleep = self.retry.sleep or time.sleep
        resendable = _resendable(request)
        while True:
            response = super().send(request, **kwargs)
            if response.status_code >= 400:
                response.read()  # a streamed error's body, for the exception
            seconds = attempts.wait_after(response) if resendable else None
            if seconds is None:
                return raise_for_error(response)
            response.close()
            sleep(seconds)


class AsyncClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that retries by ``retry`` and raises restfault's exceptions.

    ``Retry(sleep=...)`` may be a coroutine function (awaited) or a plain function.

    >>> async with AsyncClient(base_url="https://api.example.com") as client:
    ...     records = (await client.get("/api/v2/db/_table/contacts")).json()  # doctest: +SKIP
    """

    def __init__(self, *, retry: Retry = DEFAULT_RETRY, **httpx_options: Any) -> None:
        super().__init__(**httpx_options)
        self.retry = retry

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        """Send ``request``, again while ``retry`` says so; raise for the final error."""
        attempts = self.retry.start(request.method, request.url, request.headers)
        resendable = _resendable(request)
        while True:
            response = await super().send(request, **kwargs)
            if response.status_code >= 400:
                await response.aread()
            seconds = attempts.wait_after(response) if resendable else None
            if seconds is None:
                return raise_for_error(response)
            await response.aclose()
            await self._sleep(seconds)

    async def _sleep(self, seconds: float) -> None:
        if self.retry.sleep is None:
            await anyio.sleep(seconds)
            return
        slept = self.retry.sleep(seconds)
        if inspect.isawaitable(slept):
            await slept
