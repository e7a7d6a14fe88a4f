"""Cold command-line speed and the sweep, before and after, as ratios measured in the same run (no assertions).

For each tree -- "before" (a commit, default the merge base with main, unpacked with ``git archive`` into a
temporary folder) and "after" (this checkout) -- in fresh processes:

- ``planner sweep --budget 1e18:1e26:N`` (default N = 1,000) vs one cold ``planner optimize --budget 1e22 --json``
  (issue 14 target: <= 1.5x);
- cold ``planner optimize --budget 1e22 --json`` vs ``python -c "import cvxpy"`` (target: <= 0.5x);
- ``planner --help`` vs ``python -c "import typer"`` (target: <= 0.3 s and <= 6x);
- the API sweep of N budgets vs N x one plan's conic-solver time (``bench_sweep.py``; target: <= 3x);
- which of planner.export, matplotlib, openpyxl, pandas and scipy.stats a cold optimize imports.

Run: python benchmarks/bench_cli.py [--points N] [--before COMMIT] [--skip-before]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANNER = "import sys; from cli import app; sys.argv = ['planner'] + sys.argv[1:]; app()"
OPTIONAL = ("planner.export", "matplotlib", "openpyxl", "pandas", "scipy.stats")


def _wall(cmd: list[str], cwd: Path, repeat: int) -> float:
    """Median wall seconds of ``cmd`` over ``repeat`` runs (output discarded; a failure stops the benchmark)."""
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _planner(*args: str) -> list[str]:
    return [sys.executable, "-c", PLANNER, *args]


def _imported(tree: Path, args: list[str]) -> list[str]:
    """Which OPTIONAL modules ``planner args`` imports (python -X importtime)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", PLANNER, *args], cwd=tree,
                         capture_output=True, text=True, check=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time")}
    return [m for m in OPTIONAL if m in names]


def compile_tree(tree: Path) -> None:
    """Write the tree's bytecode first, as ``pip install`` does (with PYTHONDONTWRITEBYTECODE set, an editable
    checkout would otherwise compile every module on every cold start; cvxpy's own bytecode is installed)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-x", r"[/\\](tests|benchmarks)[/\\]", str(tree)],
                   cwd=tree, stdout=subprocess.DEVNULL, check=False)


def measure(tree: Path, points: int, repeat: int) -> dict:
    """Every measurement for one tree (seconds)."""
    m: dict = {"tree": str(tree)}
    compile_tree(tree)
    m["import_typer_s"] = _wall([sys.executable, "-c", "import typer"], tree, repeat)
    m["help_s"] = _wall(_planner("--help"), tree, repeat)
    m["import_cvxpy_s"] = _wall([sys.executable, "-c", "import cvxpy"], tree, max(3, repeat // 2))
    m["optimize_s"] = _wall(_planner("optimize", "--budget", "1e22", "--json"), tree, max(3, repeat // 2))
    m["optimize_imports"] = _imported(tree, ["optimize", "--budget", "1e22", "--json"])
    m["cli_sweep_s"] = _wall(_planner("sweep", "--budget", f"1e18:1e26:{points}"), tree, 1)
    api = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_sweep.py"), "--root", str(tree),
                          "--points", str(points), "--json"], cwd=tree, capture_output=True, text=True, check=True)
    m["api"] = json.loads(api.stdout.strip().splitlines()[-1])
    return m


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


ROWS = (
    ("API sweep, {n:,} budgets 1e18..1e26 (serial) / {n:,} x one plan's solver time", "<= 3x",
     lambda m: (m["api"]["sweep_s"], m["api"]["sweep_solver_s"])),
    ("API sweep on every core / serial API sweep", "",
     lambda m: (m["api"].get("sweep_pooled_s"), m["api"]["sweep_s"])),
    ("CLI `planner sweep --budget 1e18:1e26:{n}` / one cold `planner optimize`", "<= 1.5x",
     lambda m: (m["cli_sweep_s"], m["optimize_s"])),
    ("cold `planner optimize --budget 1e22 --json` / `python -c \"import cvxpy\"`", "<= 0.5x",
     lambda m: (m["optimize_s"], m["import_cvxpy_s"])),
    ("`planner --help` / `python -c \"import typer\"`", "<= 6x (and <= 0.3 s)",
     lambda m: (m["help_s"], m["import_typer_s"])),
)


def report(runs: dict[str, dict], points: int) -> None:
    names = list(runs)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print("| measurement | " + " | ".join(names) + " | target |")
    print("|---|" + "---|" * len(names) + "---|")
    for label, target, pick in ROWS:
        cells = []
        for name in names:
            a, b = pick(runs[name])
            cells.append("-" if a is None else f"{_ratio(a, b)} ({a:.2f} s / {b:.2f} s)")
        print(f"| {label.format(n=points)} | " + " | ".join(cells) + f" | {target} |")
    absolute = (("`planner --help`", "help_s"), ("cold `planner optimize`", "optimize_s"),
                ("`import cvxpy`", "import_cvxpy_s"), ("`import typer`", "import_typer_s"))
    for label, key in absolute:
        print(f"| {label} | " + " | ".join(f"{runs[n][key]:.2f} s" for n in names) + " | |")
    print("| one plan (1e22): wall / its solver time | " + " | ".join(
        f"{runs[n]['api']['one_plan_s'] * 1e3:.0f} ms / {runs[n]['api']['one_plan_solver_s'] * 1e3:.1f} ms "
        f"({runs[n]['api']['one_plan_solves']:.0f} solves)" for n in names) + " | |")
    print("| parse_grid of a 2,000-value list / of a 2,000-point range | " + " | ".join(
        f"{_ratio(runs[n]['api']['parse_list_s'], runs[n]['api']['parse_range_s'])} "
        f"({runs[n]['api']['parse_list_s'] * 1e3:.0f} ms)" for n in names) + " | linear |")
    print("| cold optimize imports (of " + ", ".join(OPTIONAL) + ") | " + " | ".join(
        ", ".join(runs[n]["optimize_imports"]) or "none" for n in names) + " | only what the options need |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5, help="runs per cold-start timing (median)")
    ap.add_argument("--before", default=None, help="commit to compare with (default: merge base with main)")
    ap.add_argument("--skip-before", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write every measurement to this file")
    args = ap.parse_args()
    runs: dict[str, dict] = {}
    tmp = None
    try:
        if not args.skip_before:
            commit = args.before or subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT,
                                                   capture_output=True, text=True, check=True).stdout.strip()
            tmp = Path(tempfile.mkdtemp(prefix="planner-before-"))
            archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
            runs[f"before ({commit[:7]})"] = measure(tmp, args.points, args.repeat)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
        runs[f"after ({head or 'working tree'})"] = measure(ROOT, args.points, args.repeat)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    report(runs, args.points)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
