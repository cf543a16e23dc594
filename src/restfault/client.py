"""restfault for the clients of an API that speaks these conventions (restfault's or not).

What the conventions' ``fetchWithRetry`` and ``error.error.code`` snippets do by hand:

- ``raise_for_error(response)``: an httpx, httpx2 or requests response with a status of
  400 or more raises the exception of ``restfault`` for it (``NotFoundException``,
  ``BatchException`` with its per-index errors, ...), read from any envelope style;
- ``Retry(...)``: waits ``Retry-After`` (or the ``RateLimit`` field's ``t``, or backoff)
  within a time budget, retrying 429s and, for idempotent requests, 503s;
- ``Client`` / ``AsyncClient`` (httpx) and ``Session`` (requests): clients that retry
  by a ``Retry`` and raise for every final error response.

``raise_for_error`` and ``Retry`` need no HTTP library; ``Client``, ``AsyncClient`` and
``Session`` are imported on first use and need httpx or requests
(``pip install 'restfault[client]'``).

>>> import httpx
>>> from restfault import NotFoundException
>>> try:
...     raise_for_error(httpx.Response(404, json={"error": "TABLE_NOT_FOUND", "message": "No"}))
... except NotFoundException as exc:
...     print(exc.status_code, exc.code, exc.message)
404 TABLE_NOT_FOUND No
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._client_errors import raise_for_error
from ._client_retry import Retry

if TYPE_CHECKING:
    from ._client_httpx import AsyncClient, Client
    from ._client_requests import Session

__all__ = ["AsyncClient", "Client", "Retry", "Session", "raise_for_error"]

# name -> (private module, the library it needs, the modules that library brings)
_HTTPX = ("httpx", frozenset({"httpx", "anyio"}))
_REQUESTS = ("requests", frozenset({"requests"}))
_LAZY = {
    "Client": ("_client_httpx", *_HTTPX),
    "AsyncClient": ("_client_httpx", *_HTTPX),
    "Session": ("_client_requests", *_REQUESTS),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, library, brought = _LAZY[name]
    try:
        module = importlib.import_module(f"restfault.{module_name}")
    except ImportError as exc:
        if exc.name not in brought:
            raise
        raise ImportError(
            f"restfault.client.{name} needs {library}: pip install 'restfault[client]'",
            name=library,
        ) from exc
    value = getattr(module, name)
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
