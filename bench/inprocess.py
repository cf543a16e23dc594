"""In-process timings: the app is called directly, no server, no test client.

ASGI apps get a prepared scope and a minimal ``receive``/``send``; WSGI apps a prepared
environ and a no-op ``start_response``. Each repetition runs every variant in turn (the
order rotates between repetitions), so that a noisy neighbour slows all of them alike;
what is reported are medians of per-repetition differences and ratios against the bare
app of the same repetition, never a single absolute time.
"""

from __future__ import annotations

import asyncio
import gc
import io
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ASGI_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"bench.local"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}

WSGI_ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/",
    "QUERY_STRING": "",
    "SERVER_NAME": "bench.local",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "bench.local",
    "HTTP_USER_AGENT": "bench",
    "HTTP_ACCEPT": "*/*",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


# CPU time of this process (every thread of it) by default: on a shared machine another
# process's burst then does not land in whichever variant happened to be running, while
# everything this process does (limits' sweeper thread included) is still counted.
# ``use_wall_clock()`` switches to elapsed time.
_clock = time.process_time


def clock() -> float:
    return _clock()


def use_wall_clock() -> None:
    global _clock
    _clock = time.perf_counter


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class AsgiDriver:
    """Calls an ASGI app ``n`` times on one event loop."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop

    def once(self) -> Response:
        response = Response()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response.status = message["status"]
                response.headers = {
                    bytes(k).decode().lower(): bytes(v).decode() for k, v in message["headers"]
                }
            elif message["type"] == "http.response.body":
                response.body += message.get("body", b"")

        self.loop.run_until_complete(self.app(dict(ASGI_SCOPE), receive, send))
        return response

    def run(self, n: int) -> float:
        """Seconds for ``n`` requests."""
        app, template = self.app, ASGI_SCOPE
        message = {"type": "http.request", "body": b"", "more_body": False}

        async def receive() -> dict[str, Any]:
            return message

        async def send(message: dict[str, Any]) -> None:
            return None

        async def loop() -> float:
            start = clock()
            for _ in range(n):
                await app(dict(template), receive, send)
                # A server's loop turns between requests: let tasks the request scheduled
                # (limits' async memory storage schedules its expiry sweep) run, as they would.
                await asyncio.sleep(0)
            return clock() - start

        return self.loop.run_until_complete(loop())


class WsgiDriver:
    """Calls a WSGI app ``n`` times and drains each body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def once(self) -> Response:
        response = Response()

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            response.status = int(status.split(" ", 1)[0])
            response.headers = {k.lower(): v for k, v in headers}
            return lambda data: None

        environ = dict(WSGI_ENVIRON)
        environ["wsgi.input"] = io.BytesIO(b"")
        body = self.app(environ, start_response)
        try:
            response.body = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return response

    def run(self, n: int) -> float:
        app, template = self.app, WSGI_ENVIRON

        def write(data: bytes) -> None:
            return None

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            return write

        start = clock()
        for _ in range(n):
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO(b"")
            body = app(environ, start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return clock() - start


def make_driver(kind: str, app: Any, loop: asyncio.AbstractEventLoop | None) -> Any:
    if kind == "asgi":
        assert loop is not None
        return AsgiDriver(app, loop)
    return WsgiDriver(app)


def expected_status(name: str) -> int:
    if name.endswith("429"):
        return 429
    if name.endswith("error"):
        return 409
    return 200


@dataclass
class Timings:
    """µs/request of every variant in every repetition (same index = same repetition)."""

    kind: str
    n: int
    reps: int
    samples: dict[str, list[float]]
    checks: dict[str, Response]
    counts: dict[str, int]

    def baseline(self, name: str) -> str:
        return "bare-error" if name.endswith("error") else "bare"

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for name, values in self.samples.items():
            base = self.samples[self.baseline(name)]
            diffs = [v - b for v, b in zip(values, base, strict=True)]
            ratios = [v / b for v, b in zip(values, base, strict=True)]
            rows.append(
                {
                    "variant": name,
                    "baseline": self.baseline(name),
                    "us": statistics.median(values),
                    "added_us": statistics.median(diffs),
                    "ratio": statistics.median(ratios),
                    "min_added": min(diffs),
                    "max_added": max(diffs),
                    "status": self.checks[name].status,
                }
            )
        return rows


def time_variants(
    kind: str,
    factories: dict[str, Callable[[], Any]],
    n: int,
    reps: int,
    budget: float = 0.8,
    log: Callable[[str], None] = print,
) -> Timings:
    """Build every variant, check it answers as expected, then time ``reps`` rounds.

    A variant gets ``n`` requests per round, fewer (never under n/10) when that would take
    longer than ``budget`` seconds: the slow peers would otherwise dominate the run time.
    """
    loop = asyncio.new_event_loop() if kind == "asgi" else None
    drivers: dict[str, Any] = {}
    checks: dict[str, Response] = {}
    counts: dict[str, int] = {}
    for name, factory in factories.items():
        driver = make_driver(kind, factory(), loop)
        for _ in range(3):  # warm-up: builds the middleware stack, exhausts the 1/day limit
            driver.once()
        response = driver.once()
        want = expected_status(name)
        if response.status != want:
            raise RuntimeError(f"{kind} {name}: status {response.status}, expected {want}")
        limited = any(word in name for word in ("limit", "429", "slowapi", "redis"))
        if limited and "noheaders" not in name and "x-ratelimit-remaining" not in response.headers:
            raise RuntimeError(f"{kind} {name}: no X-RateLimit headers: {response.headers}")
        checks[name] = response
        warm = driver.run(2000) / 2000  # warm caches, fill the windows
        counts[name] = max(n // 10, min(n, int(budget / warm)))
        drivers[name] = driver
    samples: dict[str, list[float]] = {name: [] for name in drivers}
    names = list(drivers)
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            gc.collect()
            seconds = drivers[name].run(counts[name])
            samples[name].append(seconds / counts[name] * 1e6)
        log(
            f"  {kind} rep {rep + 1}/{reps}: "
            + ", ".join(f"{name} {samples[name][-1]:.1f}" for name in names)
        )
    if loop is not None:
        loop.close()
    return Timings(kind, n, reps, samples, checks, counts)


def time_limits_alone(n: int, reps: int) -> dict[str, float]:
    """``limits`` by itself (memory, fixed window): ``hit`` and ``hit`` + window stats."""
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    limiter = FixedWindowRateLimiter(MemoryStorage())
    item = parse("1000000000/hour")
    hit_only: list[float] = []
    with_stats: list[float] = []
    for _ in range(reps):
        start = clock()
        for _ in range(n):
            limiter.hit(item, "k")
        hit_only.append((clock() - start) / n * 1e6)
        start = clock()
        for _ in range(n):
            limiter.hit(item, "k")
            limiter.get_window_stats(item, "k")
        with_stats.append((clock() - start) / n * 1e6)
    return {"hit": statistics.median(hit_only), "hit+stats": statistics.median(with_stats)}
