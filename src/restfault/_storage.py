"""The storage I/O of rate limiting: sync ``limits`` for WSGI, ``limits.aio`` for ASGI.

Both limiters drive the one evaluation in ``_limiting.evaluate``; they differ only in how
a storage call is made. Both bound every call in time and share one outage policy:

- ``memory`` (default): enforce the same limits in this process until the storage is back;
- ``allow``: let requests through without limits;
- ``deny``: answer 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After``.

One warning is logged when an outage starts and one line when it ends; the real storage
is tried again at most every ``storage_retry_interval`` seconds meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ._backends import build_storage
from ._errors import ConfigurationError, ServiceUnavailableException
from ._limiting import (
    ExpiryCache,
    Plan,
    RateLimitDecision,
    Steps,
    evaluate,
    evaluate_local_fixed,
)
from ._memory import InProcessStorage
from ._settings import Settings, redacted_uri

__all__ = ["AsyncLimiter", "SyncLimiter", "build_storage"]

logger = logging.getLogger("restfault")


class _Outage:
    """When the real storage is in use, and the log lines that mark an outage."""

    __slots__ = ("failing_since", "interval", "lock", "next_try", "uri")

    def __init__(self, uri: str, interval: float) -> None:
        self.uri = redacted_uri(uri)  # logged: never the storage's password
        # Threaded WSGI servers fail several requests at once: one warning per outage.
        self.lock = threading.Lock()
        self.interval = interval
        self.failing_since: float | None = None
        self.next_try = 0.0

    def primary_usable(self, now: float) -> bool:
        return self.failing_since is None or now >= self.next_try

    def failed(self, now: float, exc: BaseException) -> None:
        with self.lock:
            first = self.failing_since is None
            if first:
                self.failing_since = now
        if first:
            logger.warning(
                "restfault: rate-limit storage %s failed (%s: %s); falling back until it answers",
                self.uri,
                type(exc).__name__,
                exc,
            )
        # Counted from when the failure was known, not from when the request began: a
        # failure slower than the interval (a cluster re-discovering its nodes) would
        # otherwise let every following request probe the silent storage again.
        self.next_try = time.time() + self.interval

    def succeeded(self, now: float) -> None:
        if self.failing_since is None:  # the common case: no lock taken
            return
        with self.lock:
            since, self.failing_since = self.failing_since, None
        if since is not None:
            logger.warning(
                "restfault: rate-limit storage %s answers again after %.1f s",
                self.uri,
                now - since,
            )


class _LimiterBase:
    __slots__ = (
        "_factory",
        "_fallback",
        "cache",
        "local_fixed",
        "outage",
        "policy",
        "storage",
        "strategy",
    )

    def __init__(self, settings: Settings, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self.storage: Any = None
        self.outage = _Outage(settings.storage_uri, settings.storage_retry_interval)
        try:
            self.storage = factory()
        except ConfigurationError:
            raise
        except Exception as exc:
            # Some clients (sync redis+cluster) connect while being built: an outage at
            # start-up must not keep the app from starting.
            self.outage.failed(time.time(), exc)
        self.strategy = settings.strategy
        # The default configuration (memory://, fixed window) skips the generator driver.
        self.local_fixed = self.strategy == "fixed-window" and isinstance(
            self.storage, InProcessStorage
        )
        self.policy = settings.on_storage_error
        # In process, reading a window's end costs no round trip: nothing to cache (and
        # nothing to keep per client once the windows are over).
        in_process = settings.storage_uri.split("://", 1)[0].lower() == "memory"
        self.cache: ExpiryCache | None = None if in_process else ExpiryCache()
        self._fallback: Any = None

    def _steps(self, plan: Plan, now: float, primary: bool) -> Steps:
        return evaluate(plan, self.strategy, now, self.cache if primary else None)

    def _connected(self) -> Any:
        """The storage, built now if building it failed at start-up (a cluster that was
        down then); a failure here counts as part of the outage."""
        if self.storage is None:
            self.storage = self._factory()
        return self.storage

    def _degraded(self, plan: Plan, now: float) -> RateLimitDecision | None:
        """The answer while the storage is out, as ``on_storage_error`` says."""
        if self.policy == "allow":
            return None
        if self.policy == "deny":
            raise ServiceUnavailableException(
                "Rate-limit storage unavailable", retry_after=self.outage.interval
            )
        if self._fallback is None:
            self._fallback = InProcessStorage()
        if self.strategy == "fixed-window":
            return evaluate_local_fixed(self._fallback, plan)
        return _run(self._fallback, self._steps(plan, now, False))


class SyncLimiter(_LimiterBase):
    """Rate limits for WSGI code: blocking ``limits`` storage calls, bounded by timeouts."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, lambda: build_storage(settings, asynchronous=False))

    def check(self, plan: Plan) -> RateLimitDecision | None:
        """Hit every limit of ``plan``; the decision the response reports, or None."""
        if self.local_fixed:
            return evaluate_local_fixed(self.storage, plan)
        now = time.time()
        if self.outage.primary_usable(now):
            try:
                decision = _run(self._connected(), self._steps(plan, now, True))
            except Exception as exc:
                self.outage.failed(now, exc)
            else:
                self.outage.succeeded(now)
                return decision
        return self._degraded(plan, now)


class AsyncLimiter(_LimiterBase):
    """Rate limits for ASGI code: awaited ``limits.aio`` calls under ``storage_timeout``."""

    __slots__ = ("timeout",)

    def __init__(self, settings: Settings) -> None:
        # memory:// is the sync InProcessStorage, called directly: its calls are dict work
        # that never blocks, while limits.aio's twin schedules a task that sweeps every key
        # on each event-loop turn (a task per request; milliseconds once keys number 10^4).
        in_process = settings.storage_uri.split("://", 1)[0].lower() == "memory"
        super().__init__(settings, lambda: build_storage(settings, asynchronous=True))
        # The in-process storage cannot hang; skip the timer it would cost per request.
        self.timeout = None if in_process else settings.storage_timeout

    async def check(self, plan: Plan) -> RateLimitDecision | None:
        """Hit every limit of ``plan``; the decision the response reports, or None."""
        if self.local_fixed:  # dict work under a lock held for microseconds: no I/O
            return evaluate_local_fixed(self.storage, plan)
        now = time.time()
        if self.outage.primary_usable(now):
            try:
                steps = self._steps(plan, now, True)
                if self.timeout is None:
                    decision = _run(self._connected(), steps)
                else:
                    decision = await _within(self.timeout, _arun(self._connected(), steps))
            except Exception as exc:
                self.outage.failed(now, exc)
            else:
                self.outage.succeeded(now)
                return decision
        return self._degraded(plan, now)


def _run(storage: Any, steps: Steps) -> RateLimitDecision | None:
    try:
        op = next(steps)
        while True:
            op = steps.send(getattr(storage, op[0])(*op[1:]))
    except StopIteration as done:
        result: RateLimitDecision | None = done.value
        return result


async def _arun(storage: Any, steps: Steps) -> RateLimitDecision | None:
    try:
        op = next(steps)
        while True:
            op = steps.send(await getattr(storage, op[0])(*op[1:]))
    except StopIteration as done:
        result: RateLimitDecision | None = done.value
        return result


if sys.version_info >= (3, 11):

    async def _within(seconds: float, call: Any) -> Any:
        async with asyncio.timeout(seconds):
            return await call

else:  # pragma: no cover - Python 3.10

    async def _within(seconds: float, call: Any) -> Any:
        return await asyncio.wait_for(call, seconds)
