"""One structured log record per error response, and the errors metric.

Every error response restfault answers is logged once on the ``restfault`` logger:

- 5xx at ERROR, with the traceback of the exception that caused it; a maintenance 503 at
  INFO (it was asked for);
- 4xx at INFO; a rate-limit 429 only for a client key's first denial on a limit until
  its reset, so a flood from one client writes one line.

The record carries an attribute ``restfault``: a dict with ``method``, ``path``,
``status`` (int), ``code``, ``request_id`` and ``duration_ms`` (and ``limit``, the
breached limit's ``RateLimit-Policy`` name, on a 429), so that JSON formatters
(python-json-logger, structlog) need no parsing. No request body and no header value is
logged (the request id aside); method and path are escaped against log forging.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ._expiry import ExpiryCache
from ._limiting import RateLimitDecision, Verdict
from ._logging import log_safe, logger

if TYPE_CHECKING:
    from ._metrics import Metrics

__all__ = ["Facts", "PlainFacts", "Reporter"]


class Facts(Protocol):
    """What the record of an error response says about its request (a driver's state)."""

    method: str
    request_id: str | None
    began: float  # time.perf_counter() when the request came in

    def logged_path(self) -> str: ...


@dataclass(slots=True)
class PlainFacts:
    """Facts of a request no driver state was found for."""

    method: str
    path: str
    request_id: str | None = None
    began: float = field(default_factory=time.perf_counter)

    def logged_path(self) -> str:
        return self.path


class Reporter:
    """Writes the record of each error response, and counts it when metrics are on."""

    __slots__ = ("_denials_logged", "_lock", "metrics")

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics
        self._denials_logged = ExpiryCache(4096)
        self._lock = threading.Lock()  # threaded WSGI servers deny several at once

    def error(
        self,
        facts: Facts,
        status: int,
        code: str,
        exc: BaseException | None,
        *,
        unexpected: bool = False,
        maintenance: bool = False,
    ) -> None:
        """Record an error response (any but a rate-limit denial)."""
        if self.metrics is not None:
            self.metrics.error(status, code)
        level = logging.ERROR if status >= 500 and not maintenance else logging.INFO
        if not logger.isEnabledFor(level):
            return
        method, path, data = _data(facts, status, code)
        args: tuple[str, ...]
        if maintenance:
            template, args = "restfault: maintenance: %s %s answered %d %s", (method, path)
        else:
            prefix = "unhandled " if unexpected else ""
            template = "restfault: " + prefix + "%s on %s %s; answered %d %s"
            args = (type(exc).__name__, method, path)
        logger.log(
            level,
            template + _id_suffix(facts),
            *args,
            status,
            code,
            *_id_args(facts),
            # The traceback of an exception that was raised (not of one standing for a
            # framework's own error response).
            exc_info=exc if level == logging.ERROR and exc and exc.__traceback__ else None,
            extra={"restfault": data},
        )

    def denied(self, facts: Facts, verdict: Verdict, code: str, now: float) -> None:
        """Record a rate-limit 429: once per client key and limit until its reset."""
        if self.metrics is not None:
            self.metrics.error(429, code)
        if not logger.isEnabledFor(logging.INFO):
            return
        breached = breached_limit(verdict)
        if breached is None:
            return
        with self._lock:
            if self._denials_logged.get(breached.key, now) is not None:
                return
            self._denials_logged.set(breached.key, breached.reset, now)
        method, path, data = _data(facts, 429, code)
        data["limit"] = breached.policy
        logger.info(
            "restfault: %s %s answered 429 %s: limit %s (once per client until its reset)"
            + _id_suffix(facts),
            method,
            path,
            code,
            breached.policy,
            *_id_args(facts),
            extra={"restfault": data},
        )


def breached_limit(verdict: Verdict) -> RateLimitDecision | None:
    """The limit a 429 is logged for: the one it reports (its code, its Retry-After) when
    that one refused the request, else the first that did."""
    breached = verdict.breached
    reported = verdict.reported
    if any(decision is reported for decision in breached):
        return reported
    return breached[0] if breached else reported


def _data(facts: Facts, status: int, code: str) -> tuple[str, str, dict[str, Any]]:
    method = log_safe(facts.method, 16)
    path = log_safe(facts.logged_path())
    data: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "code": code,
        "request_id": facts.request_id,
        "duration_ms": round((time.perf_counter() - facts.began) * 1000, 3),
    }
    return method, path, data


def _id_suffix(facts: Facts) -> str:
    return "" if facts.request_id is None else " (request %s)"


def _id_args(facts: Facts) -> tuple[str, ...]:
    return () if facts.request_id is None else (facts.request_id,)
