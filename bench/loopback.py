"""Over loopback: wrk against uvicorn (1 worker, h11) and gunicorn (1 sync worker).

Every server of a group is started once and stays up; each repetition then runs wrk
against every variant in turn, and the report is the median of per-repetition ratios
of requests/s against the bare app of the same server.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from tests.servers import HOST, Server, free_port

UVICORN = ["bare", "restfault-none", "restfault-limit", "slowapi-decorator", "slowapi-middleware"]
GUNICORN = ["bare", "restfault-none", "restfault-limit", "flask-limiter"]
UVICORN_REDIS = ["restfault-redis", "slowapi-decorator-redis"]
GUNICORN_REDIS = ["restfault-redis", "flask-limiter-redis"]


def uvicorn(variant: str, env: dict[str, str]) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.apps:asgi_from_env", "--factory"]
    argv += ["--host", HOST, "--port", str(port), "--workers", "1", "--http", "h11"]
    argv += ["--loop", "asyncio", "--log-level", "warning", "--no-access-log"]
    return Server(argv, port, {**env, "BENCH_VARIANT": variant})


def gunicorn(variant: str, env: dict[str, str]) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "bench.apps:wsgi_from_env()"]
    argv += ["--bind", f"{HOST}:{port}", "--workers", "1", "--worker-class", "sync"]
    argv += ["--log-level", "warning"]
    return Server(argv, port, {**env, "BENCH_VARIANT": variant})


def wrk(port: int, seconds: float, connections: int = 8) -> float:
    """Requests/s that wrk measured (non-2xx answers would be counted: checked below)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://{HOST}:{port}/"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error responses on port {port}:\n{out}")
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    return float(match.group(1))


@contextmanager
def servers(
    make: Callable[[str, dict[str, str]], Server], variants: list[str], env: dict[str, str]
) -> Iterator[dict[str, Server]]:
    with ExitStack() as stack:
        started = {}
        for variant in variants:
            server = stack.enter_context(make(variant, env))
            server.start(30)
            started[variant] = server
        yield started


def measure(
    group: str,
    make: Callable[[str, dict[str, str]], Server],
    variants: list[str],
    env: dict[str, str],
    reps: int,
    seconds: float,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    samples: dict[str, list[float]] = {v: [] for v in variants}
    with servers(make, variants, env) as running:
        for server in running.values():
            wrk(server.port, 1)  # warm-up: imports, first window, connections
        for rep in range(reps):
            order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
            for variant in order:
                samples[variant].append(wrk(running[variant].port, seconds))
            log(
                f"  {group} rep {rep + 1}/{reps}: "
                + ", ".join(f"{v} {samples[v][-1]:.0f}" for v in variants)
            )
    base = samples["bare"]
    return [
        {
            "group": group,
            "variant": v,
            "rps": statistics.median(values),
            "ratio": statistics.median(x / b for x, b in zip(values, base, strict=True)),
            "min_ratio": min(x / b for x, b in zip(values, base, strict=True)),
        }
        for v, values in samples.items()
    ]


def available() -> bool:
    return shutil.which("wrk") is not None
