"""RSS with 100,000 distinct client keys in memory storage, and after their windows end.

Run in a fresh process per variant (``python -m bench.memory asgi restfault``) so that
one variant's heap does not carry into the next. Time is controlled, not slept through:
``time.time`` is shifted past the window (the storages and restfault all read it), then
one more request lets the storage's expiry sweep run.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from typing import Any

from bench import apps
from bench.inprocess import ASGI_SCOPE, WSGI_ENVIRON

WINDOW = "1000/hour"
_real_time = time.time
_offset = 0.0


def _shifted_time() -> float:
    return _real_time() + _offset


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _address(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def build(kind: str, variant: str) -> Any:
    if kind == "asgi":
        if variant == "restfault":
            return apps.starlette_restfault(default_limits=WINDOW)()
        return apps.starlette_slowapi("decorator", WINDOW)()
    if variant == "restfault":
        return apps.flask_restfault(default_limits=WINDOW)()
    return apps.flask_limiter(WINDOW)()


def main(kind: str, variant: str, keys: int) -> dict[str, Any]:
    global _offset
    time.time = _shifted_time  # every storage and restfault read the clock through here
    app = build(kind, variant)
    loop = asyncio.new_event_loop()

    async def asgi_requests(first: int, count: int, turn: bool) -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            return None

        for i in range(first, first + count):
            scope = dict(ASGI_SCOPE)
            scope["client"] = (_address(i), 50000)
            await app(scope, receive, send)
            if turn:
                await asyncio.sleep(0)

    def wsgi_requests(first: int, count: int) -> None:
        import io

        for i in range(first, first + count):
            environ = dict(WSGI_ENVIRON)
            environ["wsgi.input"] = io.BytesIO(b"")
            environ["REMOTE_ADDR"] = _address(i)
            body = app(environ, lambda *a: lambda d: None)
            for _ in body:
                pass
            getattr(body, "close", lambda: None)()

    def requests(first: int, count: int, turn: bool = True) -> None:
        if kind == "asgi":
            loop.run_until_complete(asgi_requests(first, count, turn))
        else:
            wsgi_requests(first, count)

    def settle() -> float:
        # Let the storages' expiry sweeps (a thread timer, an asyncio task) finish.
        for _ in range(20):
            if kind == "asgi":
                loop.run_until_complete(asyncio.sleep(0.02))
            else:
                _real_sleep(0.02)
        gc.collect()
        return rss_mib()

    requests(keys + 1, 1000)  # imports, caches and code paths warm, one key only
    baseline = settle()
    start = _real_time()
    # The event loop does not turn during the fill: limits' async memory storage would
    # sweep every key on every turn, which makes filling it quadratic (timed below).
    requests(0, keys, turn=False)
    fill_seconds = _real_time() - start
    filled = settle()
    start = _real_time()
    requests(keys + 3, 200)  # with the loop turning between requests, as under a server
    loaded_us = (_real_time() - start) / 200 * 1e6
    _offset += 3600 + 5  # every window of the fill has ended
    requests(keys + 2, 10)  # one new key per request: each may schedule the sweep
    expired = settle()
    return {
        "kind": kind,
        "variant": variant,
        "keys": keys,
        "baseline_mib": round(baseline, 1),
        "filled_mib": round(filled, 1),
        "expired_mib": round(expired, 1),
        "bytes_per_key": round((filled - baseline) * 2**20 / keys),
        "fill_us_per_request": round(fill_seconds / keys * 1e6, 1),
        "us_per_request_with_keys_live": round(loaded_us, 1),
        "entries_after_expiry": _entries(app),
    }


def _entries(app: Any) -> dict[str, int]:
    """What the storage (and restfault's expiry cache) still hold after the windows ended."""
    found: dict[str, int] = {}
    state = getattr(app, "state", None)
    ext = getattr(app, "extensions", {})
    owner = getattr(state, "restfault", None) or ext.get("restfault")
    limiter = getattr(owner, "limiter", None)
    if limiter is None:
        limiter = getattr(state, "limiter", None) or ext.get("limiter")
        storage = getattr(limiter, "_storage", None)
    else:
        storage = limiter.local
        found.update(storage.sizes())
        found["denial_cache"] = len(limiter.evaluation.denials)
    for name in ("storage", "expirations", "events", "locks"):
        value = getattr(storage, name, None)
        if isinstance(value, dict):
            found[name] = len(value)
    return found


_real_sleep = time.sleep

if __name__ == "__main__":
    kind, variant = sys.argv[1], sys.argv[2]
    keys = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    print(json.dumps(main(kind, variant, keys)))
