"""The benchmarked applications: one tiny endpoint, built bare and with each library.

Every factory returns a fresh app so that variants share no storage. The same factories
serve the in-process timings (``bench.inprocess``) and the loopback servers
(``bench.loopback`` starts ``uvicorn bench.apps:asgi_from_env`` and
``gunicorn bench.apps:wsgi_from_env`` with ``BENCH_VARIANT`` set).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bench import floor

if TYPE_CHECKING:
    from flask import Flask
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

App = TypeVar("App", "Starlette", "Flask")

GENEROUS = "1000000000/hour"  # never exhausted during a run: every request is a 200
EXHAUSTED = "1/day"  # exhausted by the warm-up: every timed request is a 429


def _redis_uri() -> str:
    return os.environ.get("BENCH_REDIS_URI", "redis://127.0.0.1:6379")


# -- Starlette ----------------------------------------------------------------------------


def _starlette(error: bool = False) -> Starlette:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def conflict(request: Request) -> Response:
        raise HTTPException(409, "already there")

    return Starlette(routes=[Route("/", conflict if error else home)])


def starlette_restfault(**options: Any) -> Callable[[], Starlette]:
    def build() -> Starlette:
        from restfault.starlette import RestFault

        opts = dict(options)
        app = _starlette(opts.pop("_error", False))
        RestFault(app, **opts)
        return app

    return build


def starlette_slowapi(
    mode: str, limit: str = GENEROUS, storage: str = "memory://"
) -> Callable[[], Starlette]:
    """slowapi as its README shows it: ``@limiter.limit`` or ``SlowAPIMiddleware``."""

    def build() -> Starlette:
        from slowapi import Limiter, _rate_limit_exceeded_handler
        from slowapi.errors import RateLimitExceeded
        from slowapi.middleware import SlowAPIMiddleware
        from slowapi.util import get_remote_address
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        uri = _redis_uri() if storage == "redis" else storage
        if mode == "decorator":
            limiter = Limiter(key_func=get_remote_address, headers_enabled=True, storage_uri=uri)

            @limiter.limit(limit)  # type: ignore[untyped-decorator]  # slowapi is untyped
            async def home(request: Request) -> Response:
                return PlainTextResponse("ok")

        else:
            limiter = Limiter(
                key_func=get_remote_address,
                default_limits=[limit],
                headers_enabled=True,
                storage_uri=uri,
            )

            async def home(request: Request) -> Response:
                return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/", home)])
        app.state.limiter = limiter
        app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
        if mode == "middleware":
            app.add_middleware(SlowAPIMiddleware)
        return app

    return build


# -- Flask --------------------------------------------------------------------------------


def _flask(error: bool = False) -> Flask:
    from flask import Flask, abort

    app = Flask("bench")

    @app.get("/")
    def home() -> str:
        if error:
            abort(409)
        return "ok"

    return app


def flask_restfault(**options: Any) -> Callable[[], Flask]:
    def build() -> Flask:
        from restfault.flask import RestFault

        opts = dict(options)
        app = _flask(opts.pop("_error", False))
        RestFault(app, **opts)
        return app

    return build


def flask_limiter(limit: str = GENEROUS, storage: str = "memory://") -> Callable[[], Flask]:
    """Flask-Limiter as its quick start shows it, with headers on."""

    def build() -> Flask:
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address

        app = _flask()
        Limiter(
            get_remote_address,
            app=app,
            default_limits=[limit],
            headers_enabled=True,
            storage_uri=_redis_uri() if storage == "redis" else storage,
        )
        return app

    return build


# -- the variant tables -------------------------------------------------------------------


def _sanitize(options: dict[str, Any]) -> dict[str, Any]:
    if options.get("storage_uri") == "redis":
        options["storage_uri"] = _redis_uri()
    return options


def asgi_variants(redis: bool = False) -> dict[str, Callable[[], Starlette]]:
    """name -> factory, the bare app first; every other is timed against it."""

    def rf(**options: Any) -> Callable[[], Starlette]:
        def build() -> Starlette:
            return starlette_restfault(**_sanitize(dict(options)))()

        return build

    variants: dict[str, Callable[[], Starlette]] = {
        "bare": _starlette,
        "bare-error": lambda: _starlette(error=True),
        "floor-in-request": floor.starlette_limits_only(_starlette, GENEROUS),
        "restfault-none": rf(),
        "restfault-limit": rf(default_limits=GENEROUS),
        "restfault-limit-noheaders": rf(default_limits=GENEROUS, headers_enabled=False),
        "restfault-429": rf(default_limits=EXHAUSTED),
        "restfault-error": rf(_error=True),
        "restfault-moving": rf(default_limits=GENEROUS, strategy="moving-window"),
        "restfault-sliding": rf(default_limits=GENEROUS, strategy="sliding-window-counter"),
        "restfault-limit-limits-memory": with_limits_memory_storage(rf(default_limits=GENEROUS)),
        # Issue 14: request ids (minted: the bench sends none) and metrics (no-op provider).
        "restfault-limit-ids": rf(default_limits=GENEROUS, request_id_header="X-Request-ID"),
        "restfault-limit-metrics": rf(default_limits=GENEROUS, metrics=True),
        "restfault-ids-429": rf(default_limits=EXHAUSTED, request_id_header="X-Request-ID"),
        "restfault-ids-error": rf(_error=True, request_id_header="X-Request-ID"),
        "slowapi-decorator": starlette_slowapi("decorator"),
        "slowapi-middleware": starlette_slowapi("middleware"),
        "slowapi-429": starlette_slowapi("decorator", EXHAUSTED),
    }
    if redis:
        variants.update(
            {
                "restfault-redis": rf(default_limits=GENEROUS, storage_uri="redis"),
                "restfault-redis-sliding": rf(
                    default_limits=GENEROUS, storage_uri="redis", strategy="sliding-window-counter"
                ),
                "slowapi-decorator-redis": starlette_slowapi("decorator", storage="redis"),
            }
        )
    return variants


def wsgi_variants(redis: bool = False) -> dict[str, Callable[[], Flask]]:
    def rf(**options: Any) -> Callable[[], Flask]:
        def build() -> Flask:
            return flask_restfault(**_sanitize(dict(options)))()

        return build

    variants: dict[str, Callable[[], Flask]] = {
        "bare": _flask,
        "bare-error": lambda: _flask(error=True),
        "floor-in-request": floor.flask_limits_only(_flask, GENEROUS),
        "restfault-none": rf(),
        "restfault-limit": rf(default_limits=GENEROUS),
        "restfault-limit-noheaders": rf(default_limits=GENEROUS, headers_enabled=False),
        "restfault-429": rf(default_limits=EXHAUSTED),
        "restfault-error": rf(_error=True),
        "restfault-moving": rf(default_limits=GENEROUS, strategy="moving-window"),
        "restfault-sliding": rf(default_limits=GENEROUS, strategy="sliding-window-counter"),
        "restfault-limit-limits-memory": with_limits_memory_storage(rf(default_limits=GENEROUS)),
        "restfault-limit-ids": rf(default_limits=GENEROUS, request_id_header="X-Request-ID"),
        "restfault-limit-metrics": rf(default_limits=GENEROUS, metrics=True),
        "restfault-ids-429": rf(default_limits=EXHAUSTED, request_id_header="X-Request-ID"),
        "restfault-ids-error": rf(_error=True, request_id_header="X-Request-ID"),
        "flask-limiter": flask_limiter(),
        "flask-limiter-429": flask_limiter(EXHAUSTED),
    }
    if redis:
        variants.update(
            {
                "restfault-redis": rf(default_limits=GENEROUS, storage_uri="redis"),
                "restfault-redis-sliding": rf(
                    default_limits=GENEROUS, storage_uri="redis", strategy="sliding-window-counter"
                ),
                "flask-limiter-redis": flask_limiter(storage="redis"),
            }
        )
    return variants


def asgi_from_env() -> Starlette:
    """For ``uvicorn --factory bench.apps:asgi_from_env`` (BENCH_VARIANT names the variant)."""
    return asgi_variants(redis=True)[os.environ["BENCH_VARIANT"]]()


def wsgi_from_env() -> Flask:
    """For ``gunicorn 'bench.apps:wsgi_from_env()'``."""
    return wsgi_variants(redis=True)[os.environ["BENCH_VARIANT"]]()


# -- experiments (bench only) --------------------------------------------------------------


def _restfault_of(app: Starlette | Flask) -> Any:
    """The restfault adapter installed on ``app`` (its limiter is internal: experiments only)."""
    from flask import Flask

    if isinstance(app, Flask):
        return app.extensions["restfault"]
    return app.state.restfault


def with_limits_memory_storage(build: Callable[[], App]) -> Callable[[], App]:
    """restfault on ``limits.storage.MemoryStorage`` itself (its sweeper thread restarted
    every 10 ms), as before restfault's InProcessStorage: the two side by side."""

    def patched() -> App:
        from limits.storage import MemoryStorage

        from restfault._evaluate import Evaluation
        from restfault._expiry import ExpiryCache

        class LimitsMemory(MemoryStorage):
            """limits' storage, with the two calls restfault's evaluation makes of its own
            in-process storage, answered through limits' public methods."""

            def hit_fixed(
                self, key: str, expiry: float, amount: int, now: float
            ) -> tuple[int, float]:
                count = self.incr(key, int(expiry), amount)  # limits reads its own clock
                return count, self.get_expiry(key)

            def peek_fixed(self, key: str, now: float) -> tuple[int, float]:
                return self.get(key), self.get_expiry(key)

        app = build()
        owner = _restfault_of(app)
        limiter = owner.limiter
        # Called in process like restfault's own (no I/O); window ends cached as for a
        # network storage, since limits' storage cannot hand them over with the count.
        limiter.local = LimitsMemory()
        limiter.evaluation = Evaluation(limiter.strategy, ExpiryCache(), ExpiryCache())
        return app

    return patched
