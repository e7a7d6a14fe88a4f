"""Plan speed against the conic solver's own time, and a cold plan against importing cvxpy (no assertions).

For several requests, in one run:
- solver: Clarabel's own time per plan (building its solver object and iterating, summed over every solve the
  plan makes; measured on the direct path, which hands Clarabel exactly cvxpy's data);
- warm ``optimize()`` through cvxpy's own solve (``planner.program.DIRECT = False``: the path before issue 14)
  and through the direct cone path (after); the ratio warm optimize / solver time (issue 14 target: <= 2x);
- the time inside ``TrainingProgram.solve`` per plan (direct path) over the solver time, and solves per plan.
Then cold processes: ``planner optimize --budget 1e22 --json`` with an empty program cache (miss) and with the
program cached (hit), against ``python -c "import cvxpy"`` (target: hit <= 0.5x).

Run: python benchmarks/bench_solve.py [--repeat N] [--cold N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REQUESTS = {
    "budget 1e22, h100": dict(budget_flops=1e22, gpu="h100"),
    "dollars 1e6 + 30 days, a100": dict(dollars=1e6, deadline_days=30, gpu="a100-80gb"),
    "cost, target loss 2.2": dict(objective="cost", target_loss=2.2, gpu="h100"),
    "time, loss 2.2, $5M, 512 gpus": dict(objective="time", target_loss=2.2, dollars=5e6, max_gpus=512, gpu="h100"),
    "budget 1e22 + serving 1e12": dict(budget_flops=1e22, gpu="h100", inference_tokens=1e12),
    "budget 1e22, MoE 8 experts": dict(budget_flops=1e22, gpu="h100", experts=8),
    "budget 5e25 (late: past 30 days)": dict(budget_flops=5e25, gpu="h100"),
}


def _median(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _solver_time(optimize, request: dict, repeat: int) -> tuple[float, float, float]:
    """(median Clarabel seconds per plan, median seconds inside TrainingProgram.solve per plan, solves per plan)
    on the direct path."""
    from planner.cone import ConeProgram
    from planner.program import TrainingProgram

    real, real_solve = ConeProgram.solve_data, TrainingProgram.solve
    spent: list[float] = []
    solving: list[float] = []

    def timed(self, *args):
        ans = real(self, *args)
        spent.append(ans.solver_seconds)
        return ans

    def timed_solve(self, values):
        t = time.perf_counter()
        out = real_solve(self, values)
        solving.append(time.perf_counter() - t)
        return out

    ConeProgram.solve_data, TrainingProgram.solve = timed, timed_solve
    try:
        per_plan, in_solve, counts = [], [], []
        for _ in range(repeat):
            spent.clear()
            solving.clear()
            optimize(**request)
            per_plan.append(sum(spent))
            in_solve.append(sum(solving))
            counts.append(len(spent))
    finally:
        ConeProgram.solve_data, TrainingProgram.solve = real, real_solve
    return statistics.median(per_plan), statistics.median(in_solve), statistics.median(counts)


def _cold(cmd: list[str], env: dict, repeat: int, reset=None) -> float:
    samples = []
    for _ in range(repeat):
        if reset:
            reset()
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15, help="warm plans timed per request and path")
    parser.add_argument("--cold", type=int, default=3, help="cold processes timed per case")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    cache = tempfile.mkdtemp(prefix="planner-bench-cache-")
    os.environ["PLANNER_CACHE_DIR"] = cache

    import clarabel
    import cvxpy as cp

    import planner.program as program
    from planner import optimize

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, cvxpy {cp.__version__}, clarabel {clarabel.__version__}")
    print(f"{'request':32s} {'solves':>6s} {'solver':>9s} {'in solve':>17s} {'optimize()':>19s} "
          f"{'solve/solver':>13s} {'optimize/solver':>15s} {'speedup':>8s}")
    print(f"{'':32s} {'':6s} {'':9s} {'before':>8s} {'after':>8s} {'before':>9s} {'after':>9s} "
          f"{'before':>6s} {'after':>6s} {'before':>7s} {'after':>7s}")
    rows = []
    for name, request in REQUESTS.items():
        program.DIRECT = True
        optimize(**request)   # compile every program the request visits (and warm the caches)
        solver, in_solve, solves = _solver_time(optimize, request, args.repeat)
        t_direct = _median(lambda r=request: optimize(**r), args.repeat)
        program.DIRECT = False
        optimize(**request)
        _, in_solve_cvxpy, _ = _solver_time(optimize, request, args.repeat)
        t_cvxpy = _median(lambda r=request: optimize(**r), args.repeat)
        program.DIRECT = True
        row = (in_solve_cvxpy / solver, in_solve / solver, t_cvxpy / solver, t_direct / solver, t_cvxpy / t_direct)
        rows.append(row)
        print(f"{name:32s} {solves:6.0f} {solver * 1e3:7.2f}ms {in_solve_cvxpy * 1e3:6.1f}ms {in_solve * 1e3:6.1f}ms "
              f"{t_cvxpy * 1e3:7.1f}ms {t_direct * 1e3:7.1f}ms {row[0]:5.1f}x {row[1]:5.1f}x {row[2]:6.1f}x "
              f"{row[3]:6.1f}x {row[4]:7.2f}x")
    med = [statistics.median(r[i] for r in rows) for i in range(5)]
    print(f"{'median':32s} {'':6s} {'':9s} {'':8s} {'':8s} {'':9s} {'':9s} {med[0]:5.1f}x {med[1]:5.1f}x "
          f"{med[2]:6.1f}x {med[3]:6.1f}x {med[4]:7.2f}x")
    print("solver: Clarabel's own time per plan (direct path); in solve: inside TrainingProgram.solve per plan; "
          "optimize(): warm, end to end;\nbefore: cvxpy's own solve (planner.program.DIRECT = False), after: the "
          "direct cone path; speedup: optimize() before / after")

    env = {**os.environ, "PLANNER_CACHE_DIR": tempfile.mkdtemp(prefix="planner-bench-cold-")}
    plan_cmd = [sys.executable, "-c", "import sys; from cli import app; sys.argv = ['planner'] + sys.argv[1:]; "
                "app()", "optimize", "--budget", "1e22", "--json"]

    def empty_cache():
        import shutil

        shutil.rmtree(env["PLANNER_CACHE_DIR"], ignore_errors=True)

    from bench_cli import compile_tree  # bytecode written first, as an install does

    compile_tree(ROOT)
    t_import = _cold([sys.executable, "-c", "import cvxpy"], env, args.cold)
    t_miss = _cold(plan_cmd, env, args.cold, reset=empty_cache)
    t_hit = _cold(plan_cmd, env, args.cold)   # the last miss left the programs cached
    print(f"cold `python -c 'import cvxpy'`            {t_import:7.2f} s   (reference)")
    print(f"cold `planner optimize --budget 1e22 --json`, cache miss {t_miss:7.2f} s   "
          f"{t_miss / t_import:5.2f}x import cvxpy")
    print(f"cold `planner optimize --budget 1e22 --json`, cache hit  {t_hit:7.2f} s   "
          f"{t_hit / t_import:5.2f}x import cvxpy (target <= 0.5x)")


if __name__ == "__main__":
    main()
