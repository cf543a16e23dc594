"""The ``restfault`` logger and the lines restfault writes to it, made safe to write."""

from __future__ import annotations

import logging

__all__ = ["log_after_start", "log_safe", "logger"]

logger = logging.getLogger("restfault")

# C0, DEL and C1 controls, and the Unicode line and paragraph separators: every character
# str.splitlines() (and many log viewers) break a line at.
_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def log_safe(text: str, limit: int = 512) -> str:
    """``text`` with control characters escaped, so it cannot forge log lines."""
    return text[:limit].translate(_CONTROL)


def log_after_start(exc: BaseException, method: str, path: str) -> None:
    """Log an error raised once the response had started: it cannot be answered any more,
    so the adapter re-raises it and the server closes the connection."""
    logger.error(
        "restfault: %s after the response started on %s %s; closing the connection",
        type(exc).__name__,
        log_safe(method, 16),
        log_safe(path),
        exc_info=exc,
    )
