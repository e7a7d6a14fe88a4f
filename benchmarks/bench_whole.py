"""The whole-cluster search's share of a warm plan, before and after, measured in the same run (no assertions).

For each tree -- "before" (a commit, default the merge base with main, unpacked with ``git archive`` into a
temporary folder) and "after" (this checkout) -- in a fresh process per tree, for several requests: the median
over warm ``optimize()`` calls of the CPU milliseconds of the whole plan and of ``make_whole`` inside it (the
search of launchable shapes, layouts, devices and batches: ``planner.whole_search``). CPU time, since the host
is shared; the ratio before / after is what counts.

Run: python benchmarks/bench_whole.py [--repeat N] [--before COMMIT] [--skip-before]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REQUESTS = {
    "budget 1e22, h100": dict(budget_flops=1e22, gpu="h100"),
    "dollars 1e6 + 30 days, a100": dict(dollars=1e6, deadline_days=30, gpu="a100-80gb"),
    "time, loss 2.2, $5M, 512 gpus": dict(objective="time", target_loss=2.2, dollars=5e6, max_gpus=512, gpu="h100"),
    "budget 1e22, MoE up to 8 experts": dict(budget_flops=1e22, moe=True, max_experts=8, gpu="h100"),
    "cost, target loss 2.2": dict(objective="cost", target_loss=2.2, gpu="h100"),
}

# run in the tree measured: {request name: (plan ms, make_whole ms)}
CHILD = """
import importlib, json, statistics, sys, time
from planner import optimize
om = importlib.import_module("planner.optimize")
real, spent = om.make_whole, [0.0]
def timed(*a, **k):
    t = time.process_time(); r = real(*a, **k); spent[0] += time.process_time() - t; return r
om.make_whole = timed
out = {}
for name, request in json.loads(sys.argv[1]).items():
    optimize(**request); optimize(**request)
    plan, whole = [], []
    for _ in range(int(sys.argv[2])):
        spent[0] = 0.0; t = time.process_time(); optimize(**request)
        plan.append((time.process_time() - t) * 1e3); whole.append(spent[0] * 1e3)
    out[name] = (statistics.median(plan), statistics.median(whole))
print(json.dumps(out))
"""


def measure(tree: Path, repeat: int, cache: Path) -> dict[str, tuple[float, float]]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PLANNER_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(REQUESTS), str(repeat)], cwd=tree, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--before", default=None, help="commit to compare against (default: merge base with main)")
    parser.add_argument("--skip-before", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        after = measure(ROOT, args.repeat, tmp / "cache_after")
        before = None
        if not args.skip_before:
            commit = args.before or subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT,
                                                   capture_output=True, text=True, check=True).stdout.strip()
            (tmp / "before").mkdir()
            archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tmp / "before")], input=archive, check=True)
            before = measure(tmp / "before", args.repeat, tmp / "cache_before")
    print(f"{'request':34s} {'plan ms':>17s} {'make_whole ms':>19s}   (CPU ms, median of {args.repeat} warm calls)")
    for name, (plan, whole) in after.items():
        if before is None:
            print(f"{name:34s} {plan:17.1f} {whole:19.1f}")
            continue
        b_plan, b_whole = before[name]
        print(f"{name:34s} {b_plan:7.1f} -> {plan:6.1f} {b_whole:8.1f} -> {whole:6.1f}   "
              f"plan {b_plan / plan:4.1f}x, search {b_whole / whole:4.1f}x faster")


if __name__ == "__main__":
    main()
