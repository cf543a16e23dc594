"""``limits`` alone inside a whole request: the floor of issue 16's first targets, measured
the way restfault is measured.

``best_of.floor`` and ``inprocess.limits_alone`` time ``hit`` + ``get_window_stats`` in a
tight loop, where the interpreter's caches stay warm for those few functions. Inside a
request, around a framework's own code, the same two calls cost about twice as much (on
this project's machines: 17 µs added to a bare Starlette request against 8.5 µs in the
loop). These variants are the bare apps with nothing but those two calls per request —
memory storage, fixed window, keyed by the client's address, no headers — so a limiter's
added cost can be read against what ``limits`` itself costs in the same place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask
    from starlette.applications import Starlette

__all__ = ["flask_limits_only", "starlette_limits_only"]


def _limiter(limit: str) -> tuple[Any, Any]:
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    return FixedWindowRateLimiter(MemoryStorage()), parse(limit)


def starlette_limits_only(bare: Callable[[], Starlette], limit: str) -> Callable[[], Starlette]:
    """The bare Starlette app under a pure ASGI middleware making the two calls."""

    def build() -> Starlette:
        limiter, item = _limiter(limit)
        app = bare()

        class LimitsOnly:
            def __init__(self, app: Any) -> None:
                self.app = app

            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http":
                    client = scope.get("client")
                    key = client[0] if client else "unknown"
                    limiter.hit(item, key)
                    limiter.get_window_stats(item, key)
                await self.app(scope, receive, send)

        app.add_middleware(LimitsOnly)
        return app

    return build


def flask_limits_only(bare: Callable[[], Flask], limit: str) -> Callable[[], Flask]:
    """The bare Flask app with the two calls around its ``wsgi_app``."""

    def build() -> Flask:
        limiter, item = _limiter(limit)
        app = bare()
        wsgi_app = app.wsgi_app

        def limits_only(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            key = environ.get("REMOTE_ADDR") or "unknown"
            limiter.hit(item, key)
            limiter.get_window_stats(item, key)
            return wsgi_app(environ, start_response)

        app.wsgi_app = limits_only  # type: ignore[method-assign]
        return app

    return build
