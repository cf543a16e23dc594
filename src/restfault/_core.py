"""Every per-request decision, made once from plain facts, for every adapter.

An adapter owns one ``Core``. Its protocol driver (``_asgi``, ``_wsgi``) carries the
request's facts in — method, path, the endpoint the framework's router dispatched to,
the client's address, headers — and the core's answers out:

- ``admit`` (``_policies``): which limits apply, each one's key and cost, the verdict;
- ``rate_headers``: the header values of a verdict (``_limiting.rate_header_values``);
- ``refusal``: the 429 of a denied verdict, its envelope rendered once per code;
- ``render``: the envelope of any exception, and its log line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import TooManyRequestsException
from ._http import encode_headers
from ._limiting import Verdict, rate_header_values
from ._logging import log_safe, logger
from ._policies import Policies
from ._registry import Registry
from ._render import ErrorResponse, Renderer
from ._settings import Settings
from ._translate import Translations

__all__ = ["Core", "Denial"]


@dataclass(frozen=True, slots=True)
class Denial:
    """A 429 envelope rendered once: status, headers and body (``Retry-After`` and the
    rate-limit headers are the request's own), with the ASGI form of its headers."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw_headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, rendered: ErrorResponse) -> Denial:
        headers = rendered.headers
        return cls(rendered.status, headers, rendered.body, encode_headers(headers))


class Core(Policies):
    """One adapter's configuration, registries and per-request decisions."""

    def __init__(self, settings: Settings, *, asynchronous: bool) -> None:
        self.settings = settings
        self.asynchronous = asynchronous
        self.translations = Translations()
        self.renderer = Renderer(
            settings.style,
            debug=settings.debug,
            problem_type=settings.problem_type,
            translations=self.translations,
        )
        self.registry = Registry(settings.key_prefix, settings.strategy, asynchronous)
        super().__init__(settings, self.registry)
        self.translate_hooks: list[Callable[[type[BaseException]], None]] = []
        self._denials: dict[str | None, Denial] = {}
        if settings.debug:
            logger.warning(
                "restfault: debug=True shows exception types, messages and tracebacks to "
                "clients; never enable it in production"
            )

    # -- what the response says ---------------------------------------------------------

    def rate_headers(self, verdict: Verdict | None, now: float) -> list[tuple[str, str]]:
        if verdict is None:
            return []
        settings = self.settings
        return rate_header_values(
            verdict, now, legacy=settings.headers_enabled, ietf=settings.ietf_headers
        )

    def retry_after(self, verdict: Verdict, now: float) -> int:
        """Whole seconds until a denied request would really pass (rounded up, >= 1)."""
        reported = verdict.reported
        return max(1, math.ceil(reported.reset - now)) if reported is not None else 1

    def refusal(self, verdict: Verdict, now: float) -> tuple[Denial, list[tuple[str, str]]]:
        """The 429 of a denied verdict: its envelope, rendered once per limit code (a
        callable style renders each one itself), and this request's own headers:
        ``Retry-After`` and the rate-limit headers."""
        code = verdict.reported.code if verdict.reported is not None else None
        retry_after = self.retry_after(verdict, now)
        rate = self.rate_headers(verdict, now)
        if callable(self.settings.style):  # it may read exc.retry_after: no cache
            exc = TooManyRequestsException(code=code, retry_after=retry_after)
            return Denial.of(self.renderer.render_rest(exc)), rate
        denial = self._denials.get(code)
        if denial is None:
            rendered = self.renderer.render_rest(TooManyRequestsException(code=code))
            denial = self._denials[code] = Denial.of(rendered)
        return denial, [("Retry-After", str(retry_after)), *rate]

    def render(self, exc: BaseException, method: str, path: str) -> tuple[ErrorResponse, bool]:
        """The envelope for ``exc`` and whether it was unexpected (then it is logged here)."""
        rest, unexpected = self.renderer.resolve(exc)
        if unexpected:
            logger.error(
                "restfault: unhandled %s on %s %s",
                type(exc).__name__,
                log_safe(method, 16),
                log_safe(path),
                exc_info=exc,
            )
        elif rest is not exc and rest.status_code >= 500:
            logger.error(
                "restfault: %s on %s %s became %d %s",
                type(exc).__name__,
                log_safe(method, 16),
                log_safe(path),
                rest.status_code,
                rest.code,
                exc_info=exc,
            )
        elif rest is not exc and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "restfault: %s on %s %s answered %d %s",
                type(exc).__name__,
                log_safe(method, 16),
                log_safe(path),
                rest.status_code,
                rest.code,
            )
        return self.renderer.render_resolved(exc, rest, unexpected), unexpected
