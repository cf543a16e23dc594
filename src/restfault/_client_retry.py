"""``Retry``: when ``restfault.client`` tries a request again, and how long it waits first.

Sans-IO and shared by every client (httpx's sync and async, requests'): each one only
sends, sleeps and asks ``Attempts.wait_after(response)`` what to do next.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._client_errors import ResponseLike, error_from_response
from ._client_headers import server_wait
from ._errors import ConfigurationError

__all__ = ["DEFAULT_RETRY", "IDEMPOTENT_METHODS", "Attempts", "Retry", "loggable_url"]

logger = logging.getLogger("restfault.client")

# RFC 9110 §9.2.2; a request carrying an Idempotency-Key header is safe to repeat as well.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# 429 says the request was not processed, so it is retried whatever the method.
_NOT_PROCESSED = 429


def _number(option: str, value: object, *, minimum: float, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigurationError(f"Retry({option}={value!r}): {option} must be a number")
    if value < minimum or (finite and math.isinf(value)):
        bound = f"at least {minimum:g}" + (" and finite" if finite else "")
        raise ConfigurationError(f"Retry({option}={value!r}): {option} must be {bound}")
    return float(value)


@dataclass(frozen=True)
class Retry:
    """How a ``restfault.client`` client retries a request the server turned away.

    - ``attempts``: how many tries in all, the first included (1: never retry);
    - ``statuses``: the statuses retried; 429 for any method (the server did not process
      the request), any other only for an idempotent method (GET, HEAD, OPTIONS, PUT,
      DELETE, TRACE) or a request with an ``Idempotency-Key`` header;
    - the wait: ``Retry-After`` (seconds, or an HTTP date measured from the response's
      ``Date``), else the largest ``t`` of the ``RateLimit`` field's items with ``r=0``,
      else exponential backoff with full jitter from ``backoff`` seconds;
    - ``budget``: seconds that all the waits of one request may add up to; when the
      server asks for more than is left, the error is raised at once, with the server's
      ``retry_after``, instead of trying again too early;
    - ``sleep``: replaces the sleeping function (a coroutine function for ``AsyncClient``).

    >>> Retry(attempts=5, statuses=(429, 502, 503, 504), budget=30)
    Retry(attempts=5, statuses=(429, 502, 503, 504), budget=30.0, backoff=0.5, sleep=None)
    """

    attempts: int = 3
    statuses: Collection[int] = (429, 503)
    budget: float = 60.0
    backoff: float = 0.5
    sleep: Callable[[float], Any] | None = None

    def __post_init__(self) -> None:
        attempts = self.attempts
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ConfigurationError(
                f"Retry(attempts={attempts!r}): attempts counts every try, the first "
                "included, so it must be an int of at least 1 (1: never retry)"
            )
        statuses = self.statuses
        if isinstance(statuses, str | bytes) or not isinstance(statuses, Collection):
            raise ConfigurationError(f"Retry(statuses={statuses!r}) must be a tuple of statuses")
        for status in statuses:
            if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
                raise ConfigurationError(
                    f"Retry(statuses={statuses!r}): {status!r} is not an error status "
                    "(an int from 400 to 599)"
                )
        object.__setattr__(self, "statuses", tuple(statuses))
        object.__setattr__(self, "budget", _number("budget", self.budget, minimum=0, finite=False))
        object.__setattr__(self, "backoff", _number("backoff", self.backoff, minimum=0))
        if self.sleep is not None and not callable(self.sleep):
            raise ConfigurationError(f"Retry(sleep={self.sleep!r}) must be callable or None")

    def backoff_wait(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first) when the server named
        none: uniformly random up to ``backoff * 2 ** (retry - 1)`` ("full jitter")."""
        ceiling = self.backoff * 2.0 ** min(retry - 1, 64)
        return random.uniform(0.0, ceiling)

    def start(self, method: str, url: object, headers: Mapping[str, str]) -> Attempts:
        """The retry state of one request (``headers`` are the request's)."""
        return Attempts(self, method, url, headers)


DEFAULT_RETRY = Retry()


def loggable_url(url: object) -> str:
    """``url`` without its query, fragment and user info: safe to write to a log."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else parts.path


class Attempts:
    """One request's tries so far and the seconds waited for it."""

    __slots__ = ("method", "repeatable", "retry", "tries", "url", "waited")

    def __init__(
        self, retry: Retry, method: str, url: object, request_headers: Mapping[str, str]
    ) -> None:
        self.retry = retry
        self.method = method.upper()
        self.url = url
        self.repeatable = self.method in IDEMPOTENT_METHODS or "Idempotency-Key" in request_headers
        self.tries = 1
        self.waited = 0.0

    def wait_after(self, response: ResponseLike) -> float | None:
        """Seconds to wait before trying again, or None when ``response`` is the final one.

        Raises the response's exception (``TooManyRequestsException`` with the server's
        ``retry_after`` for a 429) when the server asks for longer than the budget has left.
        """
        retry, status = self.retry, response.status_code
        if status not in retry.statuses or self.tries >= retry.attempts:
            return None
        if status != _NOT_PROCESSED and not self.repeatable:
            return None
        left = retry.budget - self.waited
        asked = server_wait(response.headers)
        if asked is None:
            seconds, source = min(left, retry.backoff_wait(self.tries)), "backoff"
        elif asked[0] > left:
            raise error_from_response(response, retry_after=asked[0])
        else:
            seconds, source = asked
        self.tries += 1
        self.waited += seconds
        url = loggable_url(self.url)
        logger.info(
            "%s %s answered %d: waiting %.2f s (%s) before try %d of %d",
            *(self.method, url, status, seconds, source, self.tries, retry.attempts),
            extra={
                "restfault": {
                    "method": self.method,
                    "url": url,
                    "status": status,
                    "wait": seconds,
                    "source": source,
                    "attempt": self.tries,
                    "attempts": retry.attempts,
                }
            },
        )
        return seconds
