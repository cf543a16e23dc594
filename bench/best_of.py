"""The quiet reading: each variant's best of many short runs, side by side.

``python -m bench.best_of asgi restfault-none,restfault-limit,restfault-429`` times the
bare app and the named variants in turn, ``--rounds`` times ``--requests`` requests
each, by elapsed time, with the garbage collector off, and prints each one's fastest
round. On a shared machine a neighbour can only slow a round down, never speed it up:
the minimum is the figure least touched by noise (``make bench`` reports medians of
per-repetition differences, which show the spread). ``limits``' own ``hit`` +
``get_window_stats`` is timed the same way: the floor of issue 16's first target.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from bench import apps
from bench.inprocess import make_driver, use_wall_clock


def floor(requests: int) -> float:
    """µs of ``limits``' memory fixed window: ``hit`` + ``get_window_stats``."""
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    limiter = FixedWindowRateLimiter(MemoryStorage())
    item = parse("1000000000/hour")
    start = time.perf_counter()
    for _ in range(requests):
        limiter.hit(item, "k")
        limiter.get_window_stats(item, "k")
    return (time.perf_counter() - start) / requests * 1e6


def best_of(kind: str, names: list[str], rounds: int, requests: int) -> dict[str, float]:
    """µs/request of the bare app, each variant and the floor: the fastest round of each."""
    use_wall_clock()
    loop = asyncio.new_event_loop() if kind == "asgi" else None
    factories: dict[str, Any] = apps.asgi_variants() if kind == "asgi" else apps.wsgi_variants()
    drivers = {}
    for name in ["bare", *names]:
        driver = make_driver(kind, factories[name](), loop)
        driver.once()
        driver.run(requests)  # warm: caches filled, a 429 variant's limit spent
        drivers[name] = driver
    best = {name: float("inf") for name in [*drivers, "floor"]}
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, driver in drivers.items():
                best[name] = min(best[name], driver.run(requests) / requests * 1e6)
            best["floor"] = min(best["floor"], floor(requests))
    finally:
        if enabled:
            gc.enable()
        if loop is not None:
            loop.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["asgi", "wsgi"])
    parser.add_argument("variants", help="comma-separated variant names (bench/apps.py)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    best = best_of(args.kind, args.variants.split(","), args.rounds, args.requests)
    bare = best["bare"]
    print(f"{'variant':32} {'µs':>8} {'added':>8} {'ratio':>7}")
    for name, value in best.items():
        added = "" if name == "floor" else f"{value - bare:8.2f}"
        ratio = "" if name == "floor" else f"{value / bare:7.3f}"
        print(f"{name:32} {value:8.2f} {added:>8} {ratio:>7}")


if __name__ == "__main__":
    main()
