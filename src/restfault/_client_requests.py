"""``restfault.client.Session``: a ``requests.Session`` that retries and raises."""

from __future__ import annotations

import contextvars
import inspect
import time
from typing import Any

import requests
from requests.exceptions import UnrewindableBodyError
from requests.utils import rewind_body

from ._client_errors import raise_for_error
from ._client_retry import DEFAULT_RETRY, Retry
from ._errors import ConfigurationError

__all__ = ["Session"]

# requests follows a redirect by calling ``send`` again from inside ``send``: only the
# outermost call retries and raises, so that each hop is not retried on its own too.
_sending = contextvars.ContextVar("restfault_client_sending", default=False)


def _rewound(request: requests.PreparedRequest) -> bool:
    """Whether ``request``'s body can be sent again: none, bytes, or a file rewound to
    where it started (as requests does for a redirect); never a generator's."""
    body: object = request.body  # typed bytes | str | None, yet a file or generator passes
    if body is None or isinstance(body, bytes | str):
        return True
    try:
        rewind_body(request)
    except UnrewindableBodyError:
        return False
    return True


class Session(requests.Session):
    """A ``requests.Session`` that retries by ``retry`` and raises restfault's exceptions.

    A request whose body cannot be sent twice (a generator) is never retried.

    >>> with Session(retry=Retry(attempts=5)) as session:
    ...     session.get("https://api.example.com/api/v2/health").json()  # doctest: +SKIP
    {'status': 'ok'}
    """

    def __init__(self, *, retry: Retry = DEFAULT_RETRY) -> None:
        if inspect.iscoroutinefunction(retry.sleep):
            raise ConfigurationError(
                "Session(retry=Retry(sleep=...)): sleep is a coroutine function, which "
                "requests cannot await; give Session a plain function"
            )
        super().__init__()
        self.retry = retry

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send ``request``, again while ``retry`` says so; raise for the final error."""
        if _sending.get():
            return super().send(request, **kwargs)
        attempts = self.retry.start(request.method or "GET", request.url, request.headers)
        sleep = self.retry.sleep or time.sleep
        token = _sending.set(True)
        try:
            while True:
                response = super().send(request, **kwargs)
                seconds = attempts.wait_after(response) if _rewound(request) else None
                if seconds is None:
                    return raise_for_error(response)
                response.close()
                sleep(seconds)
        finally:
            _sending.reset(token)
