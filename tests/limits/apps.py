"""Apps for the multi-process tests, configured from the environment.

``asgi_app`` (Starlette, for uvicorn) and ``wsgi_app`` (Flask, for gunicorn) serve
``/<strategy>/`` for each strategy, each limited by ``RF_LIMITS`` (default 20/minute) on
the storage ``RF_STORAGE_URI`` with keys under ``RF_KEY_PREFIX``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import restfault.flask
import restfault.starlette

STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")


def options(strategy: str) -> dict[str, Any]:
    return {
        "default_limits": os.environ.get("RF_LIMITS", "20/minute"),
        "storage_uri": os.environ.get("RF_STORAGE_URI", "memory://"),
        "key_prefix": os.environ.get("RF_KEY_PREFIX", "restfault"),
        "strategy": strategy,
        "storage_timeout": 2.0,
    }


async def _index(request: Any) -> JSONResponse:
    return JSONResponse({"ok": True})


def _starlette(strategy: str) -> Starlette:
    app = Starlette(routes=[Route("/", _index)])
    restfault.starlette.RestFault(app, **options(strategy))
    return app


def _flask(strategy: str) -> Flask:
    app = Flask(f"{__name__}.{strategy}")
    app.add_url_rule("/", "index", lambda: {"ok": True})
    restfault.flask.RestFault(app, **options(strategy))
    return app


asgi_app = Starlette(routes=[Mount(f"/{s}", app=_starlette(s)) for s in STRATEGIES])
wsgi_app = DispatcherMiddleware(Flask(__name__), {f"/{s}": _flask(s) for s in STRATEGIES})
