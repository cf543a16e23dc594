"""Instructions per request, counted by valgrind: the figure no neighbour can move.

``python -m bench.instructions asgi bare,restfault-none,restfault-limit,floor-in-request``
runs each variant (and ``floor``: ``limits``' ``hit`` + ``get_window_stats`` in a tight
loop) twice under ``valgrind --tool=callgrind``, after the same warm-up, with and without
``--requests`` more requests, and prints the difference per request. Timings on a shared
machine move by a third from one hour to the next; restfault's counts agree to within
1 % from one run to the next. ``limits``' memory storage starts a timer thread by the
clock, and valgrind slows the clock's pace of requests, so ``floor`` and
``floor-in-request`` vary more (a third, for the latter): read those in time.

An instruction is not a fixed amount of time: inside a whole request each one costs more
than in a tight loop, where the interpreter's caches stay warm (``bench/floor.py``). Read
the counts for what the code does, the timings for what it costs. Needs ``valgrind``
(``apt-get install valgrind``); without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARM = 500


def child(kind: str, variant: str, requests: int) -> None:
    """What each valgrind run executes: the warm-up, then ``requests`` more."""
    if variant == "floor":
        from limits import parse
        from limits.storage import MemoryStorage
        from limits.strategies import FixedWindowRateLimiter

        limiter = FixedWindowRateLimiter(MemoryStorage())
        item = parse("1000000000/hour")
        for _ in range(WARM + requests):
            limiter.hit(item, "k")
            limiter.get_window_stats(item, "k")
        return
    from bench import apps
    from bench.inprocess import make_driver

    factories = apps.asgi_variants() if kind == "asgi" else apps.wsgi_variants()
    loop = asyncio.new_event_loop() if kind == "asgi" else None
    driver = make_driver(kind, factories[variant](), loop)
    driver.once()
    driver.run(WARM)
    if requests:
        driver.run(requests)


def collected(kind: str, variant: str, requests: int) -> int:
    """Instructions valgrind counted for one child run."""
    command = [
        *_fixed_layout(),
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.instructions",
        "--child",
        kind,
        variant,
        str(requests),
    ]
    # This checkout's restfault, whichever one the interpreter has installed.
    path = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-500:]}")
    return int(found.group(1))


@functools.cache
def _fixed_layout() -> list[str]:
    """``setarch -R`` where the machine allows it: with the address space laid out alike
    in every run, a variant's count repeats to the instruction (without it, to within
    about 1 %: the layout moves which requests a garbage collection falls in)."""
    setarch = shutil.which("setarch")
    if setarch is None:
        return []
    prefix = [setarch, platform.machine(), "-R"]
    tried = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if tried.returncode == 0 else []


def per_request(kind: str, variant: str, requests: int) -> float:
    """The two runs side by side (two cores): instructions per extra request."""
    with ThreadPoolExecutor(2) as pool:
        more = pool.submit(collected, kind, variant, requests)
        warm_only = collected(kind, variant, 0)
        return (more.result() - warm_only) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "VARIANT", "N"), help=argparse.SUPPRESS
    )
    parser.add_argument("kind", nargs="?", choices=["asgi", "wsgi"])
    parser.add_argument("variants", nargs="?", default="bare,restfault-none,restfault-limit")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    if args.child:
        kind, variant, requests = args.child
        child(kind, variant, int(requests))
        return
    if args.kind is None:
        parser.error("say asgi or wsgi")
    if shutil.which("valgrind") is None:
        print("bench.instructions: valgrind is not installed (apt-get install valgrind)")
        return
    names = args.variants.split(",")
    counts = {name: per_request(args.kind, name, args.requests) for name in names}
    counts["floor"] = per_request(args.kind, "floor", args.requests)
    bare = counts.get("bare")
    print(f"{'variant':24} {'instructions':>13} {'added':>10}")
    for name, count in counts.items():
        added = "" if bare is None or name == "floor" else f"{count - bare:10.0f}"
        print(f"{name:24} {count:13.0f} {added:>10}")


if __name__ == "__main__":
    main()
