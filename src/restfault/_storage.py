"""The storage I/O of rate limiting: sync ``limits`` for WSGI, ``limits.aio`` for ASGI.

Both limiters drive the one evaluation of ``_evaluate``; they differ only in how a
storage call is made (the in-process ``memory://`` storage is called directly by both:
it does no I/O). Both bound every call in time and share one outage policy:

- ``memory`` (default): enforce the same limits in this process until the storage is back;
- ``allow``: let requests through without limits;
- ``deny``: answer 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After``.

One warning is logged when an outage starts and one line when it ends; the real storage
is tried again at most every ``storage_retry_interval`` seconds meanwhile.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from typing import Any, Generic, TypeVar

from ._backends import aclose_storage, build_async_storage, build_sync_storage, redacted_uri
from ._errors import ConfigurationError, ServiceUnavailableException
from ._evaluate import Evaluation, deduct, evaluate, evaluate_in_process, known_denial
from ._expiry import ExpiryCache
from ._limiting import PlanItem, Verdict
from ._logging import logger
from ._memory import InProcessStorage
from ._ops import AsyncStorage, StorageOp, SyncStorage
from ._settings import Settings

__all__ = ["AsyncLimiter", "SyncLimiter"]

R = TypeVar("R")
S = TypeVar("S")
Steps = Generator[StorageOp, Any, R]


class Outage:
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


class _Limiter(Generic[S]):
    """What both limiters share: the storage, the outage, the fallback, the caches."""

    def __init__(self, settings: Settings, factory: Callable[[], S]) -> None:
        self._factory = factory
        self.strategy = settings.strategy
        self.policy = settings.on_storage_error
        self.outage = Outage(settings.storage_uri, settings.storage_retry_interval)
        self.local: InProcessStorage | None = None  # memory://: called directly
        self.storage: S | None = None
        if settings.in_process:
            self.local = InProcessStorage()
            self.evaluation = Evaluation(self.strategy, self.local.known_ends, ExpiryCache())
        else:
            self.evaluation = Evaluation(self.strategy, ExpiryCache(), ExpiryCache())
            try:
                self.storage = factory()
            except ConfigurationError:
                raise
            except Exception as exc:
                # Some clients (sync redis+cluster) connect while being built: an outage at
                # start-up must not keep the app from starting.
                self.outage.failed(time.time(), exc)
        self._fallback: tuple[InProcessStorage, Evaluation] | None = None
        if settings.metrics:
            from ._metrics import watch_storage  # imports opentelemetry: only when asked for

            watch_storage(self)  # restfault.storage.fallback counts it while it fails

    def _connected(self) -> S:
        """The storage, built now if building it failed at start-up (a cluster that was
        down then); a failure here counts as part of the outage."""
        if self.storage is None:
            self.storage = self._factory()
        return self.storage

    def _degraded(self, steps: Callable[[Evaluation], Steps[R]], default: R) -> R:
        """The answer while the storage is out, as ``on_storage_error`` says."""
        if self.policy == "allow":
            return default
        if self.policy == "deny":
            raise ServiceUnavailableException(
                "Rate-limit storage unavailable", retry_after=self.outage.interval
            )
        if self._fallback is None:
            storage = InProcessStorage()
            self._fallback = storage, Evaluation(self.strategy, storage.known_ends, ExpiryCache())
        storage, evaluation = self._fallback
        return run(storage, steps(evaluation))

    def known(self, plan: Sequence[PlanItem]) -> Verdict | None:
        """The verdict known without a network storage call: a 429 this process knows
        ``plan`` gets (a spent key), or ``memory://`` evaluated in process — dict work
        under a lock held for microseconds, no I/O, so nothing to await or to time out
        (the commonest plan without a generator). None: ask the network storage."""
        now = time.time()
        how = self.evaluation
        denials = how.denials
        if denials.times and (known := known_denial(plan, denials, now)) is not None:
            return known
        local = self.local
        if local is None:
            return None
        verdict = evaluate_in_process(plan, local, how, now)
        return verdict if verdict is not None else run(local, evaluate(plan, how, now))

    def _steps(self, plan: Sequence[PlanItem]) -> Callable[[Evaluation], Steps[Verdict]]:
        now = time.time()
        return lambda evaluation: evaluate(plan, evaluation, now)

    def _deduct(self, items: Sequence[PlanItem]) -> Callable[[Evaluation], Steps[None]]:
        now = time.time()
        return lambda evaluation: deduct(items, evaluation, now)


class SyncLimiter(_Limiter[SyncStorage]):
    """Rate limits for WSGI code: blocking ``limits`` storage calls, bounded by timeouts."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, lambda: build_sync_storage(settings))

    def check(self, plan: Sequence[PlanItem]) -> Verdict | None:
        """Evaluate every limit of ``plan``: the verdict, or None (no limit counted)."""
        known = self.known(plan)
        return known if known is not None else self._call(self._steps(plan), None)

    def deduct(self, items: Sequence[PlanItem]) -> None:
        """Count ``deduct_when`` limits whose predicate held, after the response."""
        self._call(self._deduct(items), None)

    def _call(self, steps: Callable[[Evaluation], Steps[R]], default: R) -> R:
        if self.local is not None:
            return run(self.local, steps(self.evaluation))
        now = time.time()
        if self.outage.primary_usable(now):
            try:
                result = run(self._connected(), steps(self.evaluation))
            except Exception as exc:
                self.outage.failed(now, exc)
            else:
                self.outage.succeeded(now)
                return result
        return self._degraded(steps, default)


class AsyncLimiter(_Limiter[AsyncStorage]):
    """Rate limits for ASGI code: awaited ``limits.aio`` calls under ``storage_timeout``.

    A ``limits.aio`` client belongs to the event loop it first ran on. Requests may come
    from several loops (FastAPI's module-level ``TestClient`` runs each in a new one; a
    test suite runs one per test): each loop gets a client of its own, closed in that loop
    when it shuts down (``loop.shutdown_asyncgens()``, which ``asyncio.run`` and anyio
    call), instead of every call failing as an outage.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, lambda: build_async_storage(settings))
        self.timeout = settings.storage_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncStorage, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    async def check(self, plan: Sequence[PlanItem]) -> Verdict | None:
        """``SyncLimiter.check``, awaited (``memory://`` needs no await: ``known``)."""
        known = self.known(plan)
        return known if known is not None else await self.evaluated(plan)

    async def evaluated(self, plan: Sequence[PlanItem]) -> Verdict | None:
        """``plan`` evaluated on the storage: what ``known`` could not answer."""
        return await self._call(self._steps(plan), None)

    async def deduct(self, items: Sequence[PlanItem]) -> None:
        """Count ``deduct_when`` limits whose predicate held, after the response."""
        if self.local is not None:
            run(self.local, deduct(items, self.evaluation, time.time()))
            return
        await self._call(self._deduct(items), None)

    async def _call(self, steps: Callable[[Evaluation], Steps[R]], default: R) -> R:
        now = time.time()
        if self.outage.primary_usable(now):
            try:
                storage = await self._for_this_loop()
                result = await within(self.timeout, arun(storage, steps(self.evaluation)))
            except Exception as exc:
                self.outage.failed(now, exc)
            else:
                self.outage.succeeded(now)
                return result
        return self._degraded(steps, default)

    async def _for_this_loop(self) -> AsyncStorage:
        loop = asyncio.get_running_loop()
        if loop is self._loop and self.storage is not None:
            return self.storage
        known = self._per_loop.get(loop)
        if known is None:
            # The client built at start-up serves the first loop; every other, a new one.
            built = self.storage if self._loop is None else None
            storage = built if built is not None else self._factory()
            closing = _closed_at_shutdown(storage)
            await closing.asend(None)  # now the loop knows it, and closes it at shutdown
            known = self._per_loop[loop] = (storage, closing)
        self._loop, self.storage = loop, known[0]
        return known[0]


async def _closed_at_shutdown(storage: AsyncStorage) -> AsyncGenerator[None, None]:
    """Suspended until its loop shuts down its async generators, then closes ``storage``."""
    try:
        yield
    finally:
        await aclose_storage(storage)


def run(storage: SyncStorage, steps: Steps[R]) -> R:
    """Drive an evaluation with blocking storage calls."""
    try:
        op = next(steps)
        while True:
            op = steps.send(op.run(storage))
    except StopIteration as done:
        result: R = done.value
        return result


async def arun(storage: AsyncStorage, steps: Steps[R]) -> R:
    """Drive an evaluation with awaited ``limits.aio`` calls."""
    try:
        op = next(steps)
        while True:
            op = steps.send(await op.arun(storage))
    except StopIteration as done:
        result: R = done.value
        return result


if sys.version_info >= (3, 11):

    async def within(seconds: float, call: Awaitable[R]) -> R:
        async with asyncio.timeout(seconds):
            return await call

else:  # pragma: no cover - Python 3.10

    async def within(seconds: float, call: Awaitable[R]) -> R:
        return await asyncio.wait_for(call, seconds)
