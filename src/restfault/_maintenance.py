"""Maintenance mode: what the ``maintenance`` callable's answer means.

The callable receives the request (as ``key_func`` does) and returns falsy to serve it
(``0`` included), ``True`` for a 503 with ``Retry-After: 60``, or a number of seconds for
a 503 with that ``Retry-After`` (rounded up). It is asked at admission, before any limit
(a maintenance 503 counts against no limit), for every request but those to ``.exempt``
endpoints and ``exempt_paths`` — health checks keep answering.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

__all__ = ["DEFAULT_RETRY_AFTER", "maintenance_due", "maintenance_seconds"]

DEFAULT_RETRY_AFTER = 60


def maintenance_due(
    check: Callable[[Any], Any], request: Callable[[], Any]
) -> Generator[Any, Any, int | None]:
    """``Retry-After`` seconds when maintenance mode answers the request 503, else None.
    It yields what ``check`` returns: the ASGI driver awaits it when it is awaitable."""
    return maintenance_seconds((yield check(request())))


def maintenance_seconds(value: Any) -> int | None:
    """``Retry-After`` seconds of a maintenance answer, or None to serve the request.

    >>> maintenance_seconds(None), maintenance_seconds(True), maintenance_seconds(120)
    (None, 60, 120)
    """
    if not value:
        return None
    if value is True:
        return DEFAULT_RETRY_AFTER
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf:
        return math.ceil(value)
    # A bug in the app's callable, answered as one (a 500, logged): never a guess.
    raise TypeError(
        f"the maintenance callable returned {value!r}; return a falsy value to serve the "
        "request, True for maintenance (Retry-After: 60) or a number of seconds"
    )
