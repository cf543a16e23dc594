"""The body iterable restfault returns around a WSGI app's: it converts a held error
response, answers a failure before the first chunk with the envelope (after it, logs and
re-raises, so the server closes the connection instead of sending a second, corrupt
response), holds the request's id while a streamed body is produced, and counts
``deduct_when`` limits once the response is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ._core import Core
from ._logging import log_after_start
from ._storage import SyncLimiter
from ._translate import http_exception
from ._wsgi import Exchange, answer, finish

__all__ = ["Body"]


class Body:
    """The app's body iterable: converts a held error response, answers a failure before
    the first chunk with the envelope, logs (and re-raises) one after it, and counts the
    ``deduct_when`` limits when closed."""

    def __init__(
        self, core: Core, limiter: SyncLimiter, body: Iterable[bytes], exchange: Exchange
    ) -> None:
        self.core = core
        self.limiter = limiter
        self.body = body
        self.exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        exchange = self.exchange
        iterator = iter(self.body)
        # A server sends the headers with the first non-empty chunk (PEP 3333): until then
        # the envelope can still replace them, even after start_response was passed on.
        body_sent = False
        traced = exchange.request_id is not None
        while exchange.held is None:
            try:
                # The request's id is current while the app produces each chunk, never
                # while the server holds the generator.
                chunk = exchange.run(next, iterator) if traced else next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                if body_sent:
                    environ = exchange.environ
                    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
                    exchange.run(log_after_start, exc, method, path)
                    raise
                yield from exchange.run(answer, self.core, exchange, exc)
                return
            if exchange.held is None:
                body_sent = body_sent or bool(chunk)
                yield chunk
        if exchange.held is not None:
            status, headers = exchange.held
            exchange.held = None
            held = http_exception(status, None, headers)
            yield from exchange.run(answer, self.core, exchange, held)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            finish(self.core, self.limiter, self.exchange)
