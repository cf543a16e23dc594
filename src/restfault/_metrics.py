"""OpenTelemetry metrics (``metrics=True``), through the global meter provider.

- ``restfault.errors`` (counter): one per error response restfault answers, with
  ``http.response.status_code`` (an int) and ``error.code`` (the envelope's string code);
- ``restfault.rate_limit.decisions`` (counter): one per limit evaluated for a request,
  with ``restfault.limit.policy`` (the ``RateLimit-Policy`` name) and
  ``restfault.limit.outcome``: ``allowed``, ``denied`` or ``shadow_denied``;
- ``restfault.storage.fallback`` (observable up-down counter): how many of this
  process's rate-limit storages are failing right now, so that their limits are enforced
  per process (``on_storage_error="memory"``), skipped or denied, as configured.

Only imported when an adapter has ``metrics=True`` (``opentelemetry-api``, the
``restfault[otel]`` extra); the instruments are created once per process, and an
adapter without metrics never reaches this module, not even for a flag.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from ._limiting import Verdict

__all__ = ["Metrics", "watch_storage"]


class _Outage(Protocol):
    @property
    def failing_since(self) -> float | None: ...


class _Limiter(Protocol):
    @property
    def outage(self) -> _Outage: ...


_watched: weakref.WeakSet[Any] = weakref.WeakSet()


def _fallback(options: CallbackOptions) -> Iterable[Observation]:
    failing = sum(1 for limiter in list(_watched) if limiter.outage.failing_since is not None)
    yield Observation(failing)


class _Instruments:
    """The process's instruments, created on first use."""

    def __init__(self) -> None:
        from . import __version__

        meter = metrics.get_meter("restfault", __version__)
        self.errors = meter.create_counter(
            "restfault.errors",
            unit="{response}",
            description="Error responses answered with the envelope",
        )
        self.decisions = meter.create_counter(
            "restfault.rate_limit.decisions",
            unit="{decision}",
            description="Rate limits evaluated, one point per limit and request",
        )
        meter.create_observable_up_down_counter(
            "restfault.storage.fallback",
            callbacks=[_fallback],
            unit="{storage}",
            description="Rate-limit storages failing now (limits per process, or as "
            "on_storage_error says, until they answer)",
        )


_lock = threading.Lock()
_instruments: _Instruments | None = None


def _get() -> _Instruments:
    global _instruments
    with _lock:
        if _instruments is None:
            _instruments = _Instruments()
        return _instruments


def watch_storage(limiter: _Limiter) -> None:
    """Count ``limiter`` in ``restfault.storage.fallback`` while its storage fails."""
    _get()
    _watched.add(limiter)


class Metrics:
    """What one adapter records: error responses and rate-limit decisions."""

    __slots__ = ("_decisions", "_errors", "_outcomes")

    def __init__(self) -> None:
        instruments = _get()
        self._errors = instruments.errors
        self._decisions = instruments.decisions
        # Attribute sets built once per (policy, outcome), not per request.
        self._outcomes: dict[tuple[str, str], dict[str, str]] = {}

    def error(self, status: int, code: str) -> None:
        self._errors.add(1, {"http.response.status_code": status, "error.code": code})

    def decided(self, verdict: Verdict) -> None:
        outcomes = self._outcomes
        for decision in verdict.decisions:
            if decision.allowed:
                outcome = "allowed"
            else:
                outcome = "denied" if decision.enforced else "shadow_denied"
            key = (decision.policy, outcome)
            attributes = outcomes.get(key)
            if attributes is None:
                attributes = {
                    "restfault.limit.policy": decision.policy,
                    "restfault.limit.outcome": outcome,
                }
                if len(outcomes) < 4096:  # dynamic limits may name many policies
                    outcomes[key] = attributes
            self._decisions.add(1, attributes)
