"""Every per-request decision, made once from plain facts, for every adapter.

An adapter owns one ``Core``. Its protocol driver (``_asgi``, ``_wsgi``) carries the
request's facts in — method, path, the endpoint the framework's router dispatched to,
the client's address, headers — and the core's answers out:

- ``admit`` (``_policies``): maintenance mode (``_maintenance``), which limits apply,
  each one's key and cost, the verdict;
- ``rate_headers``: the header values of a verdict (``_rate_headers.rate_header_values``);
- ``refusal``: the 429 of a denied verdict, its envelope rendered once per code
  (``_denial``); ``unavailable``: the 503 of maintenance mode;
- ``render``: the envelope of any exception;
- the request's id (``_request_id``), and one log record per error response, with its
  metric (``_observe``, ``_metrics``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ._denial import Denial, Denials
from ._errors import ServiceUnavailableException
from ._http import is_json_media_type
from ._limiting import Verdict
from ._logging import logger
from ._observe import Facts, Reporter
from ._policies import Policies
from ._rate_headers import rate_header_values, raw_rate_header_values
from ._registry import Registry
from ._render import ErrorResponse, Renderer
from ._settings import Settings
from ._translate import Translations

__all__ = ["Core", "Denial"]


class Core(Policies):
    """One adapter's configuration, registries and per-request decisions."""

    admits: bool
    admits_unrouted: bool

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
        self.metrics = None
        if settings.metrics:
            from ._metrics import Metrics  # imports opentelemetry: only when asked for

            self.metrics = Metrics()
        super().__init__(settings, self.registry)
        self.translate_hooks: list[Callable[[type[BaseException]], None]] = []
        # Request ids: the header's name as each driver reads it (empty when off).
        header = settings.request_id_header
        self.request_id_header = header
        self.request_id_raw = header.lower().encode("ascii") if header else b""
        self.request_id_environ = "HTTP_" + header.upper().replace("-", "_") if header else ""
        self.denials = Denials(self.renderer, ietf=settings.ietf_headers, with_ids=bool(header))
        self.reporter = Reporter(self.metrics)
        self.maintained = settings.maintenance is not None
        # Maintenance mode, default or path limits: every request is admitted.
        self.settled = bool(self.maintained or self.default_rules or self.path_rules)
        # Default and path limits whose plan needs nothing of the app (no key_func, no
        # callable limit or cost) and no maintenance callable to ask.
        self._plain_globals = (
            settings.key_func is None
            and not self.maintained
            and all(
                rule.static is not None and all(limit.simple for limit in rule.static)
                for rule in (*self.default_rules, *(rule for _, rule in self.path_rules))
            )
        )
        self._settle()
        self.registry.on_first_declared = self._settle
        if settings.debug:
            logger.warning(
                "restfault: debug=True shows exception types, messages and tracebacks to "
                "clients; never enable it in production"
            )

    # -- what the response says ---------------------------------------------------------

    def rate_headers(
        self, verdict: Verdict | None, now: float | None = None
    ) -> list[tuple[str, str]]:
        """The rate-limit headers of ``verdict``; without ``now``, the clock is read only
        if a field needs it (``ietf_headers``: seconds until each reset)."""
        if verdict is None:
            return []
        settings = self.settings
        return rate_header_values(verdict, now, settings.headers_enabled, settings.ietf_headers)

    def raw_rate_headers(
        self, verdict: Verdict | None, now: float | None = None
    ) -> list[tuple[bytes, bytes]]:
        """``rate_headers`` as ASGI header pairs."""
        if verdict is None:
            return []
        settings = self.settings
        return raw_rate_header_values(verdict, now, settings.headers_enabled, settings.ietf_headers)

    def _settle(self) -> None:
        """What every request reads, settled again when an endpoint's first limit or
        exemption is declared (limits may be declared after start-up):

        - ``admits``: whether requests are admitted at all (limits, or maintenance mode);
        - ``admits_unrouted``: whether a request may be admitted before the framework's
          router runs, because what the router finds would change nothing: no endpoint
          has a limit or an exemption, and no callable of the app (``key_func``, a
          callable limit or cost, ``maintenance``) could read what routing adds to the
          request (path parameters). An adapter also asks whether the framework would run
          anything of the app's own around the decision (the Flask adapter: other hooks).
        """
        declared = self.registry.any_declared
        self.admits = self.settled or declared
        self.admits_unrouted = self._plain_globals and not declared

    def replaces(self, status: int, content_type: str | None) -> bool:
        """Whether a response the app starts is an error restfault answers with the
        envelope instead (status and headers kept): ``convert_error_responses``, a status
        of 400 or more, and a body that is not JSON. Drivers test ``status >= 400`` first,
        so a success costs no header lookup."""
        return (
            status >= 400
            and self.settings.convert_error_responses
            and not is_json_media_type(content_type)
        )

    def id_headers(self, request_id: str | None) -> list[tuple[str, str]]:
        """The request-id header of a response (none when request ids are off)."""
        if request_id is None or self.request_id_header is None:
            return []
        return [(self.request_id_header, request_id)]

    def retry_after(self, verdict: Verdict, now: float) -> int:
        """Whole seconds until a denied request would really pass (rounded up, >= 1)."""
        reported = verdict.reported
        seconds = math.ceil(reported.reset - now) if reported is not None else 1
        return seconds if seconds > 1 else 1  # not max(): ~1,200 instructions against ~40

    def refusal(
        self, verdict: Verdict, facts: Facts, now: float
    ) -> tuple[Denial, list[tuple[str, str]]]:
        """The 429 of a denied verdict: its envelope, rendered once per limit code (a
        callable style renders each one itself) with the request's id spliced in, and
        this request's own headers: ``Retry-After``, the rate-limit headers and its id.
        Logged once per client key and limit until its reset."""
        denial = self._denial(verdict, facts, now)
        extra = [
            ("Retry-After", str(self.retry_after(verdict, now))),
            *self.rate_headers(verdict, now),
            *self.id_headers(facts.request_id),
        ]
        return denial, extra

    def raw_refusal(
        self, verdict: Verdict, facts: Facts, now: float
    ) -> tuple[Denial, list[tuple[bytes, bytes]]]:
        """``refusal`` with its headers as ASGI pairs."""
        denial = self._denial(verdict, facts, now)
        extra = [
            (b"retry-after", b"%d" % self.retry_after(verdict, now)),
            *self.raw_rate_headers(verdict, now),
        ]
        request_id = facts.request_id
        if request_id is not None and self.request_id_raw:
            extra.append((self.request_id_raw, request_id.encode("ascii")))
        return denial, extra

    def _denial(self, verdict: Verdict, facts: Facts, now: float) -> Denial:
        denial = self.denials.denial(verdict, facts.request_id, now)
        self.reporter.denied(facts, verdict, denial.code, now)
        return denial

    def unavailable(self, seconds: int, facts: Facts) -> ErrorResponse:
        """The 503 of maintenance mode (logged at INFO: it was asked for), its
        ``Retry-After`` and the request's id included."""
        rest = ServiceUnavailableException(retry_after=seconds)
        response = self.renderer.render_rest(rest, None, facts.request_id)
        self.reporter.error(facts, response.status, rest.code, None, maintenance=True)
        headers = response.headers + self.id_headers(facts.request_id)
        return ErrorResponse(response.status, headers, response.body)

    def render(self, exc: BaseException, facts: Facts) -> tuple[ErrorResponse, bool]:
        """The envelope for ``exc`` and whether it was unexpected; its log record is
        written here (``_observe``)."""
        rest, unexpected = self.renderer.resolve(exc)
        response = self.renderer.render_resolved(exc, rest, unexpected, facts.request_id)
        self.reporter.error(facts, response.status, rest.code, exc, unexpected=unexpected)
        return response, unexpected
