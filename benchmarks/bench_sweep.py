"""API sweep speed, as ratios measured in the same run (no assertions).

- a serial sweep of N budgets 1e18..1e26 (default 1,000) vs the conic solver's own time inside it (the sum of
  Clarabel's reported solve times over every program solve of every plan, i.e. N x one plan's solver time);
- the same sweep on every core (``workers``) vs serially, where the tree has worker processes;
- ``parse_grid`` of a 2,000-value list (quadratic before issue 14's fix: 10,000 values took minutes) vs parsing
  a 2,000-point range spec.

Run: python benchmarks/bench_sweep.py [--points N] [--root TREE] [--json] [--decades]
``--decades``: the ratio per budget decade instead (plan by plan, serially), to see which plans cost what.
``--root`` times another checkout of the project (e.g. an older commit unpacked with ``git archive``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _instrument_solver() -> dict[str, float]:
    """Wrap the program's solve to add up the conic solver's own time (seconds) and count solves: Clarabel's
    time on the direct cone path (``planner.cone``, where the tree has it), else cvxpy's ``solver_stats``."""
    import planner.program as program

    acc = {"solver_s": 0.0, "solves": 0, "cone_s": 0.0}
    try:
        from planner.cone import ConeProgram
    except ImportError:  # a tree before the direct cone path
        ConeProgram = None  # noqa: N806
    if ConeProgram is not None:
        real = ConeProgram.solve_data

        def solve_data(self, *args):
            ans = real(self, *args)
            acc["cone_s"] += float(ans.solver_seconds)
            return ans

        ConeProgram.solve_data = solve_data
    cls = program.TrainingProgram
    original = cls.solve

    def solve(self, values):
        before = acc["cone_s"]
        sol = original(self, values)
        if acc["cone_s"] > before:
            acc["solver_s"] += acc["cone_s"] - before
        else:
            stats = getattr(getattr(self, "problem", None), "solver_stats", None)
            acc["solver_s"] += float(getattr(stats, "solve_time", None) or 0.0)
        acc["solves"] += 1
        return sol

    cls.solve = solve
    return acc


def measure(points: int = 1000, workers: bool = True) -> dict[str, float]:
    """Seconds of each measurement (in this process, whichever tree is first on sys.path)."""
    from planner import PlanRequest, optimize
    from planner.sweep import parse_grid, sweep

    acc = _instrument_solver()
    base = PlanRequest(budget_flops=1e21)
    optimize(base)  # imports and the first compile, outside every timing
    spec = f"1e18:1e26:{points}"
    out: dict[str, float] = {"points": points}

    acc.update(solver_s=0.0, solves=0)
    t = time.perf_counter()
    optimize(budget_flops=1e22)
    out["one_plan_s"] = time.perf_counter() - t
    out["one_plan_solver_s"], out["one_plan_solves"] = acc["solver_s"], acc["solves"]

    serial = {"workers": 1} if "workers" in inspect.signature(sweep).parameters else {}
    acc.update(solver_s=0.0, solves=0)
    t = time.perf_counter()
    result = sweep(base, budgets=spec, **serial)
    out["sweep_s"] = time.perf_counter() - t
    out["sweep_solver_s"], out["sweep_solves"] = acc["solver_s"], acc["solves"]
    out["feasible"] = len(result.rows)

    if serial and workers:
        from planner.sweep_pool import default_workers

        out["workers"] = default_workers()
        t = time.perf_counter()
        pooled = sweep(base, budgets=spec, workers=out["workers"])
        out["sweep_pooled_s"] = time.perf_counter() - t
        same = [(r["gpu"], r["params"], r["gpus"]) for r in pooled.rows] == [
            (r["gpu"], r["params"], r["gpus"]) for r in result.rows]
        out["pooled_same_rows"] = float(same)

    values = [1e18 * 1.001**i for i in range(2_000)]
    t = time.perf_counter()
    parse_grid(values)
    out["parse_list_s"] = time.perf_counter() - t
    t = time.perf_counter()
    parse_grid("1e18:1e26:2000")
    out["parse_range_s"] = time.perf_counter() - t
    return out


def report(m: dict[str, float]) -> None:
    n = int(m["points"])
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    print(f"one plan (budget 1e22): {m['one_plan_s'] * 1e3:.0f} ms, of which the conic solver "
          f"{m['one_plan_solver_s'] * 1e3:.1f} ms over {m['one_plan_solves']:.0f} solves")
    print(f"sweep, {n:,} budgets 1e18..1e26, serial: {m['sweep_s']:.1f} s ({m['feasible']:.0f} feasible, "
          f"{m['sweep_solves']:.0f} solves); the conic solver's own time in it: {m['sweep_solver_s']:.2f} s")
    print(f"  ratio sweep / solver time: {m['sweep_s'] / m['sweep_solver_s']:.1f}x  (issue 14 target <= 3x)")
    if "sweep_pooled_s" in m:
        print(f"sweep on {m['workers']:.0f} workers: {m['sweep_pooled_s']:.1f} s = "
              f"{m['sweep_pooled_s'] / m['sweep_s']:.2f}x the serial sweep"
              f" (same launchable rows: {bool(m['pooled_same_rows'])})")
    print(f"parse_grid, 2,000-value list: {m['parse_list_s'] * 1e3:.1f} ms = "
          f"{m['parse_list_s'] / m['parse_range_s']:.0f}x the 2,000-point range spec")


def by_decade(points: int) -> list[tuple[int, int, float, float]]:
    """(decade, plans, seconds, solver seconds) of ``optimize`` at each of ``points`` budgets 1e18..1e26, one by
    one in this process, after one warm-up pass over every eighth budget (the sweep's compiles outside it)."""
    import math

    from planner import optimize
    from planner.errors import InputError

    acc = _instrument_solver()
    budgets = [1e18 * (1e8 ** (i / (points - 1))) for i in range(points)]
    for b in budgets[::8]:
        try:
            optimize(budget_flops=b)
        except InputError:
            pass
    rows: dict[int, list[float]] = {}
    for b in budgets:
        acc.update(solver_s=0.0, solves=0)
        t = time.perf_counter()
        try:
            optimize(budget_flops=b)
        except InputError:
            pass
        row = rows.setdefault(int(math.floor(math.log10(b) + 1e-9)), [0, 0.0, 0.0])
        row[0] += 1
        row[1] += time.perf_counter() - t
        row[2] += acc["solver_s"]
    return [(d, int(n), t, s) for d, (n, t, s) in sorted(rows.items())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout of the project to time")
    ap.add_argument("--no-workers", action="store_true", help="skip the sweep on every core")
    ap.add_argument("--json", action="store_true", help="print the measurements as one JSON object")
    ap.add_argument("--decades", action="store_true",
                    help="instead: plan time / solver time per budget decade (serial, plan by plan)")
    args = ap.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    os.chdir(args.root)
    if args.decades:
        for decade, n, t, solver in by_decade(args.points):
            print(f"1e{decade}: {n:5d} plans  {t / n * 1e3:6.2f} ms a plan  solver {solver / n * 1e3:5.2f} ms  "
                  f"ratio {t / solver:5.2f}x")
        return
    m = measure(args.points, workers=not args.no_workers)
    if args.json:
        print(json.dumps(m))
    else:
        report(m)


if __name__ == "__main__":
    main()
