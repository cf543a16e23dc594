"""Admission in the ASGI driver: a request's maintenance mode and limits decided by the
core, its plan checked on the storage (awaited ``limits.aio`` calls, or the in-process
storage called directly), the 429 answered, and ``deduct_when`` counted after the
response. ``Pipeline`` (``_asgi``) is built on it.
"""

from __future__ import annotations

import enum
import time
from typing import Any, Final

from ._asgi_messages import Send, send_envelope
from ._asgi_state import RequestState
from ._core import Core
from ._limiting import PlanItem, Verdict, counted_after
from ._observe import Facts
from ._policies import Admission, Applicable, Check, Steps
from ._registry import NO_ENDPOINT
from ._storage import AsyncLimiter

__all__ = ["PENDING", "Admitting", "Pending"]


class Pending(enum.Enum):
    """A verdict not known without awaiting the network storage."""

    PENDING = enum.auto()


PENDING: Final = Pending.PENDING


class Admitting:
    """What ``Pipeline`` admits requests with: its core and its limiter."""

    core: Core
    limiter: AsyncLimiter

    async def admit(self, state: RequestState, endpoint: Any) -> bool:
        """Decide this request's maintenance mode and limits, once; True when restfault
        has answered it."""
        state.admitted = True
        core = self.core
        method = state.method
        rules = (
            core.registry.for_endpoint(endpoint, method) if endpoint is not None else NO_ENDPOINT
        )
        client = state.scope.get("client")
        peer = client[0] if client else None
        planned = core.plan_at_once(method, state.path, rules, state.client_key, peer)
        if planned is not None:
            applicable, plan = planned
            checked = self.checked_now(applicable, plan)  # memory://: no coroutine
            if checked is PENDING:
                checked = await self.checked_on_storage(applicable, plan)
            state.verdict = checked
            state.deducts = core.deducted(applicable, plan, checked)
        else:
            steps = core.admit(
                method,
                state.path,
                rules,
                state.client_key,
                state.app_request,
                time.time,
            )
            admission = await self._drive(steps)
            if admission.unavailable is not None:
                response = core.unavailable(admission.unavailable, state)
                await send_envelope(state.send_own, response, [], method == "HEAD")
                return True
            state.verdict = admission.verdict
            state.deducts = admission.deducts
        verdict = state.verdict
        if verdict is not None and verdict.denied:
            state.started = True
            state.status = 429
            await self.refuse(state, state.send, verdict)
            return True
        return False

    def checked_now(self, applicable: Applicable, plan: list[PlanItem]) -> Verdict | Pending | None:
        """The verdict of a plan made at once (``Core.plan_at_once``), observed
        (``Core.observed``), when it is known without awaiting anything (no limit,
        ``memory://``, a known denial: ``AsyncLimiter.known``); else ``PENDING``, and
        ``checked_on_storage`` answers. Whatever else the admission says
        (``Core.deducted``) is its caller's to ask: a request decided before the app runs
        has nothing to count afterwards."""
        if not plan:
            return None
        verdict = self.limiter.known(plan)
        if verdict is None:
            return PENDING
        return self.core.observed(applicable, verdict, time.time)

    async def checked_on_storage(
        self, applicable: Applicable, plan: list[PlanItem]
    ) -> Verdict | None:
        """The verdict of a plan made at once, evaluated on the network storage."""
        verdict = await self.limiter.evaluated(plan)
        return self.core.observed(applicable, verdict, time.time)

    async def _drive(self, steps: Steps) -> Admission:
        """Run an admission: evaluate its plan on the storage, await what the app's
        callables return when it is awaitable."""
        try:
            value = next(steps)
            while True:
                if type(value) is Check:
                    value = await self.limiter.check(value.plan)
                elif hasattr(value, "__await__"):
                    value = await value
                value = steps.send(value)
        except StopIteration as done:
            admission: Admission = done.value
            return admission

    async def refuse(self, facts: Facts, send: Send, verdict: Verdict) -> None:
        """Answer the 429 of ``verdict`` with the server's ``send``: its envelope rendered
        once per code, with this request's Retry-After and rate-limit headers."""
        denial, extra = self.core.raw_refusal(verdict, facts, time.time())
        headers = [*denial.raw_headers, *extra]
        body = b"" if facts.method == "HEAD" else denial.body
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def deduct(self, state: RequestState) -> None:
        """Count the ``deduct_when`` limits whose predicate holds for the final status."""
        counted = counted_after(state.deducts, state.status)
        if counted:
            await self.limiter.deduct(counted)
