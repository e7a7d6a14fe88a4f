"""Sweep speed: a 1,000-point budget sweep (one compiled program, re-solved with new Parameter values) vs the
same 1,000 plans each built and compiled from scratch. Prints seconds and their ratio; no assertions.

Run: python benchmarks/bench_sweep.py [points]
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(points: int = 1000) -> None:
    sys.path.insert(0, str(ROOT))
    import planner.program as program
    from planner import PlanRequest, optimize
    from planner.sweep import parse_grid, sweep

    base = PlanRequest(budget_flops=1e21, gpu="h100")
    optimize(base)  # compile once so both runs start warm on imports
    spec = f"1e19:1e25:{points}"

    t = time.perf_counter()
    result = sweep(base, budgets=spec)
    t_sweep = time.perf_counter() - t

    t = time.perf_counter()
    for budget in parse_grid(spec):
        program._CACHE.clear()  # build and compile the geometric program again for every point
        optimize(base.model_copy(update={"budget_flops": budget}))
    t_fresh = time.perf_counter() - t

    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"sweep, {points:,} budgets (compiled program re-solved): {t_sweep:.2f} s "
          f"({t_sweep / points * 1e3:.2f} ms/point, {len(result.rows)} feasible)")
    print(f"{points:,} fresh build-and-solve plans:                  {t_fresh:.2f} s "
          f"({t_fresh / points * 1e3:.2f} ms/point)")
    print(f"ratio fresh / sweep: {t_fresh / t_sweep:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
