"""The 429 of a rate-limit denial: rendered once per code, the request's id spliced in.

A flood of denials must cost less than the app's own 200, so the envelope is rendered once
per limit code (and, in the problem style with ``ietf_headers``, per set of breached
limits, which ``violated-policies`` lists) and kept. With request ids on, the kept body
is cut around a placeholder id, and each request's id is put in its place: no rendering
per request. A callable style renders every denial itself (it may read
``current_request_id()``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import TooManyRequestsException
from ._http import encode_headers
from ._limiting import Verdict
from ._render import Renderer

__all__ = ["QUOTA_EXCEEDED", "Denial", "Denials"]

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
# A request id is never this (ids are visible ASCII): where the id goes in a kept body.
_PLACEHOLDER = "\x00restfault-request-id\x00"
_PLACEHOLDER_JSON = b'"\\u0000restfault-request-id\\u0000"'
_KEPT = 256  # distinct denial envelopes kept (codes x breached-limit sets)


@dataclass(frozen=True, slots=True)
class Denial:
    """A 429 envelope: status, headers (without ``Retry-After`` and the rate-limit headers,
    which are the request's own) and body, with the ASGI form of its headers."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw_headers: list[tuple[bytes, bytes]]
    code: str
    # The body before and after the request id, when it carries one.
    around_id: tuple[bytes, bytes] | None = None

    def for_request(self, request_id: str | None) -> Denial:
        """This denial with ``request_id`` in its body (and the body's length)."""
        if self.around_id is None or request_id is None:
            return self
        before, after = self.around_id
        # A request id is visible ASCII: only '"' and '\' need escaping in a JSON string.
        quoted = request_id.replace("\\", "\\\\").replace('"', '\\"')
        body = b"".join((before, b'"', quoted.encode("ascii"), b'"', after))
        length = str(len(body))
        return Denial(  # (not dataclasses.replace: it costs more than the rest together)
            self.status,
            [*self.headers, ("Content-Length", length)],
            body,
            [*self.raw_headers, (b"content-length", length.encode("ascii"))],
            self.code,
        )


class Denials:
    """The 429s of one adapter: its renderer(s) and the envelopes kept."""

    __slots__ = ("_by_code", "_kept", "_quota", "_renders_each", "renderer", "with_ids")

    def __init__(self, renderer: Renderer, *, ietf: bool, with_ids: bool) -> None:
        self.renderer = renderer
        self.with_ids = with_ids
        # The problem style with the IETF fields: RFC 9457's quota-exceeded problem type,
        # the breached limits listed in ``violated-policies``.
        self._quota: Renderer | None = None
        if ietf and renderer.style == "problem":
            self._quota = Renderer("problem", problem_type=QUOTA_EXCEEDED)
        self._kept: dict[tuple[str | None, tuple[str, ...], bool], Denial] = {}
        self._renders_each = callable(renderer.style)
        # The common case — no request ids, no violated-policies — found by code alone.
        self._by_code: dict[str | None, Denial] | None = None
        if not with_ids and self._quota is None and not self._renders_each:
            self._by_code = {}

    def denial(self, verdict: Verdict, request_id: str | None, now: float) -> Denial:
        """The 429 of a denied verdict, for the request of ``request_id``."""
        reported = verdict.reported
        code = reported.code if reported is not None else None
        by_code = self._by_code
        if by_code is not None:
            kept = by_code.get(code)
            if kept is None:
                kept = self._kept_denial(code, (), False)
                if len(by_code) < _KEPT:
                    by_code[code] = kept
            return kept
        if self._renders_each:
            return self._rendered(verdict, code, request_id, now)
        names = tuple(d.policy for d in verdict.breached) if self._quota is not None else ()
        with_id = self.with_ids and request_id is not None
        kept = self._kept.get((code, names, with_id))
        if kept is None:
            kept = self._kept_denial(code, names, with_id)
            if len(self._kept) < _KEPT:
                self._kept[code, names, with_id] = kept
        return kept.for_request(request_id)

    def _kept_denial(self, code: str | None, names: tuple[str, ...], with_id: bool) -> Denial:
        if self._quota is not None:
            exc = TooManyRequestsException(code=code, context={"violated-policies": list(names)})
            renderer = self._quota
        else:
            exc = TooManyRequestsException(code=code)
            renderer = self.renderer
        if with_id:
            rendered = renderer.render_rest(exc, None, _PLACEHOLDER)
            parts = rendered.body.split(_PLACEHOLDER_JSON)
            if len(parts) == 2:
                headers = [(k, v) for k, v in rendered.headers if k.lower() != "content-length"]
                return Denial(
                    rendered.status,
                    headers,
                    rendered.body,
                    encode_headers(headers),
                    exc.code,
                    (parts[0], parts[1]),
                )
        rendered = renderer.render_rest(exc)
        return Denial(
            rendered.status,
            rendered.headers,
            rendered.body,
            encode_headers(rendered.headers),
            exc.code,
        )

    def _rendered(
        self, verdict: Verdict, code: str | None, request_id: str | None, now: float
    ) -> Denial:
        reported = verdict.reported
        exc = reported.exception(now) if reported is not None else TooManyRequestsException()
        rendered = self.renderer.render_rest(exc, None, request_id)
        headers = [(k, v) for k, v in rendered.headers if k.lower() != "retry-after"]
        return Denial(rendered.status, headers, rendered.body, encode_headers(headers), exc.code)
