"""Request ids: reuse a client's, mint one otherwise, and know the current one.

With ``request_id_header`` set, every request gets an id: the incoming header's value when
it is 1–128 visible ASCII characters (0x21–0x7E), a fresh random one otherwise. The
drivers echo it on every response and hold it in a context variable while the app runs
(and while a streamed WSGI body is produced), so ``current_request_id()`` finds it in
the app's own code, in ``run_batch`` and in a callable style.
"""

from __future__ import annotations

import contextvars
import logging
import os

from ._logging import logger

__all__ = ["assign_request_id", "current_request_id", "is_valid_request_id", "request_id_var"]

MAX_LENGTH = 128

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "restfault.request_id", default=None
)


def current_request_id() -> str | None:
    """The id of the request being handled, or ``None`` (outside a request, or when the
    adapter's ``request_id_header`` is not set).

    >>> current_request_id() is None
    True

    For the app's own log records, and for a callable style::

        logger.info("charged %s", order.id, extra={"request_id": current_request_id()})
    """
    return request_id_var.get()


def is_valid_request_id(value: str) -> bool:
    """1 to 128 visible ASCII characters (0x21 to 0x7E): nothing that could split a header
    or a log line, nor hide in one.

    >>> is_valid_request_id("req-42"), is_valid_request_id("two words"), is_valid_request_id("")
    (True, False, False)
    """
    return (
        0 < len(value) <= MAX_LENGTH
        and value.isascii()
        and value.isprintable()  # excludes the C0 controls and DEL
        and " " not in value
    )


class _RequestIdFilter(logging.Filter):
    """Every other record of the ``restfault`` logger written while a request is handled
    (shadow-mode denials, a failure after the response started...) carries its id as the
    attribute ``request_id``; an error response's record has it in its ``restfault`` dict."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "restfault") and not hasattr(record, "request_id"):
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        return True


logger.addFilter(_RequestIdFilter())


def assign_request_id(incoming: str | None) -> str:
    """The id of a new request: the id of a request already being handled in this context
    (an app mounted inside another restfault's), else ``incoming`` when valid, else a
    fresh one (128 random bits, in hex)."""
    current = request_id_var.get()
    if current is not None:
        return current
    if incoming is not None and is_valid_request_id(incoming):
        return incoming
    return os.urandom(16).hex()
