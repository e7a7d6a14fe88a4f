"""Planner speed, as ratios against references measured in the same run (no assertions).

- warm solve (compiled DPP program, new Parameter values) vs fresh build-and-solve vs closed form;
- optimize() end to end (solve + rounding + Plan) and a 1,000-point budget sweep;
- cold start of `planner --help` (must not import cvxpy) and `planner optimize` in fresh processes.

Run: python benchmarks/bench_solve.py
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(fn, repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _cold(args: list[str], repeat: int = 5) -> float:
    cmd = [sys.executable, "-c", "import sys; from cli import app; sys.argv = ['planner'] + sys.argv[1:]; app()",
           *args]
    return _time(lambda: subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False), repeat)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import cvxpy as cp

    from laws import get_law
    from planner import optimize
    from planner.program import TrainingProgram, get_program

    law = get_law()
    active = frozenset({"flops", "memory"})
    values = {"peak": 989.4e12, "mfu": 0.36, "price": 2.3, "bytes_per_param": 16.0, "memory": 80e9, "flops": 1e22}
    prog = get_program(law, active)
    prog.solve(values)
    budgets = iter([1e22 * (1 + i * 1e-3) for i in range(100_000)])

    def warm():
        values["flops"] = next(budgets)
        prog.solve(values)

    def fresh():
        TrainingProgram(law, active).solve(values)

    def closed():
        law.compute_optimal(values["flops"])

    t_warm = _time(warm, 300)
    t_fresh = _time(fresh, 30)
    t_closed = _time(closed, 3000)
    optimize(budget_flops=1e22)
    t_opt = _time(lambda: optimize(budget_flops=next(budgets)), 200)
    t0 = time.perf_counter()
    for i in range(1000):
        optimize(budget_flops=10 ** (20 + 5 * i / 999))
    t_sweep = time.perf_counter() - t0
    optimize(budget_flops=1e22, moe=True)
    t_moe = _time(lambda: optimize(budget_flops=next(budgets), moe=True), 20)
    optimize(budget_flops=1e22, unique_tokens=2e10)
    t_data = _time(lambda: optimize(budget_flops=next(budgets), unique_tokens=2e10), 10)
    t_help = _cold(["--help"])
    t_opt_cold = _cold(["optimize", "--budget", "1e22", "--json"], repeat=3)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, cvxpy {cp.__version__}")
    print(f"closed-form Chinchilla optimum      {t_closed * 1e6:9.1f} us   (reference)")
    print(f"warm DGP solve (DPP re-solve)       {t_warm * 1e3:9.3f} ms   {t_warm / t_closed:8.0f}x closed form")
    print(f"fresh build + solve                 {t_fresh * 1e3:9.3f} ms   {t_fresh / t_warm:8.1f}x warm solve")
    print(f"optimize() end to end (+rounding)   {t_opt * 1e3:9.3f} ms   {t_opt / t_warm:8.1f}x warm solve")
    print(f"1,000-point budget sweep            {t_sweep:9.3f} s    {t_sweep / (1000 * t_fresh):8.2f}x of 1,000 "
          "fresh builds")
    print(f"optimize(moe=True), 7 expert counts {t_moe * 1e3:9.3f} ms   {t_moe / t_opt:8.1f}x dense optimize()")
    print(f"optimize(unique_tokens=...) grid    {t_data * 1e3:9.3f} ms   {t_data / t_opt:8.1f}x dense optimize()")
    print(f"`planner --help` cold start         {t_help:9.3f} s")
    print(f"`planner optimize` cold start       {t_opt_cold:9.3f} s    {t_opt_cold / t_help:8.1f}x --help")


if __name__ == "__main__":
    main()
