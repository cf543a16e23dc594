"""cProfile of restfault's variants: which functions each request spends its time in.

``python -m bench.profiling [asgi|wsgi] VARIANT`` prints the top functions by own time, in
µs per request (under the profiler, which inflates small calls: read the ranking and the
call counts, not the absolute µs).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
from typing import Any

from bench import apps
from bench.inprocess import make_driver

DEFAULT = [
    ("asgi", "restfault-none"),
    ("asgi", "restfault-limit"),
    ("asgi", "restfault-429"),
    ("wsgi", "restfault-limit"),
    ("wsgi", "restfault-429"),
]


def profile(kind: str, variant: str, n: int = 20_000, top: int = 25) -> list[dict[str, Any]]:
    factories = apps.asgi_variants() if kind == "asgi" else apps.wsgi_variants()
    loop = asyncio.new_event_loop() if kind == "asgi" else None
    driver = make_driver(kind, factories[variant](), loop)
    for _ in range(3):
        driver.once()
    driver.run(2000)
    profiler = cProfile.Profile()
    profiler.enable()
    driver.run(n)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), (_cc, calls, tottime, cumtime, _) in stats.items():
        if "bench/" in filename:
            continue
        short = filename.split("site-packages/")[-1].split("/src/")[-1]
        rows.append(
            {
                "function": f"{short}:{line}({function})",
                "calls_per_request": calls / n,
                "own_us": tottime / n * 1e6,
                "cum_us": cumtime / n * 1e6,
            }
        )
    rows.sort(key=lambda r: r["own_us"], reverse=True)
    if loop is not None:
        loop.close()
    return rows[:top]


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'own µs':>8} {'cum µs':>8} {'calls':>6}  function"]
    for r in rows:
        lines.append(
            f"{r['own_us']:8.2f} {r['cum_us']:8.2f} {r['calls_per_request']:6.1f}  {r['function']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    targets = [(sys.argv[1], sys.argv[2])] if len(sys.argv) > 2 else DEFAULT
    for kind, variant in targets:
        print(f"== {kind} {variant}")
        print(format_rows(profile(kind, variant)))
        print()
