"""A request's exchange as the body iterable restfault returns around a WSGI app's: it
converts a held error response, answers a failure before the first chunk with the
envelope (after it, logs and re-raises, so the server closes the connection instead of
sending a second, corrupt response), holds the request's id while a streamed body is
produced, and counts ``deduct_when`` limits once the response is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ._core import Core
from ._logging import log_after_start
from ._storage import SyncLimiter
from ._translate import http_exception
from ._wsgi import EXCHANGE_KEY, Environ, Exchange, StartResponse, answer, finish

__all__ = ["Body"]


class Body(Exchange):
    """One request's exchange, which the adapter hands the server as the body: the app's
    body (``body``, set once the app returned it) with a held error response converted,
    a failure before the first chunk answered with the envelope, one after it logged (and
    re-raised), and the ``deduct_when`` limits counted when closed."""

    __slots__ = ("body", "limiter")

    def __init__(
        self, core: Core, limiter: SyncLimiter, environ: Environ, start_response: StartResponse
    ) -> None:
        Exchange.__init__(self, core, environ, start_response)
        self.limiter = limiter
        self.body: Iterable[bytes] = ()

    def __iter__(self) -> Iterator[bytes]:
        iterator = iter(self.body)
        # A server sends the headers with the first non-empty chunk (PEP 3333): until then
        # the envelope can still replace them, even after start_response was passed on.
        body_sent = False
        traced = self.request_id is not None
        while self.held is None:
            try:
                # The request's id is current while the app produces each chunk, never
                # while the server holds the generator.
                chunk = self.run(next, iterator) if traced else next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                if body_sent:
                    environ = self.environ
                    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
                    self.run(log_after_start, exc, method, path)
                    raise
                yield from self.run(answer, self, exc)
                return
            if self.held is None:
                body_sent = body_sent or bool(chunk)
                yield chunk
        if self.held is not None:
            status, headers = self.held
            self.held = None
            held = http_exception(status, None, headers)
            yield from self.run(answer, self, held)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done()

    def done(self) -> None:
        """The response is over: its ``deduct_when`` limits are counted, and whatever keeps
        the environ (a framework's request does, in a cycle) no longer keeps this exchange
        and the app's body with it, so both go as soon as the server drops them."""
        self.environ.pop(EXCHANGE_KEY, None)
        finish(self.limiter, self)
