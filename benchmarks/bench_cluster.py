"""Warm plan time of the cluster-model planner against the planner before it, measured in the same run.

Usage (repository root): ``python benchmarks/bench_cluster.py [--before REF]`` (default REF: the last commit
before the cluster model, 18a3d14). The REF checkout is made with ``git worktree`` in a temporary folder and
timed in a subprocess with the same Python; both sides time the same requests after one warm-up call each.
Prints milliseconds per plan and the ratio after/before.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = [{"budget_flops": 1e21}, {"budget_flops": 1e23}, {"dollars": 1e6}, {"dollars": 1e7, "deadline_days": 14},
            {"gpu_hours": 5e5}, {"budget_flops": 1e22, "gpu": "a100-80gb"}]
SNIPPET = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import planner
reqs = json.loads(sys.argv[2])
for r in reqs:
    planner.optimize(**r)  # warm-up: programs compiled
out = {}
for r in reqs:
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < 1.0 or n < 3:
        planner.optimize(**r)
        n += 1
    out[json.dumps(r)] = (time.perf_counter() - t) / n * 1e3
print(json.dumps(out))
"""


def _time(tree: Path) -> dict[str, float]:
    res = subprocess.run([sys.executable, "-c", SNIPPET, str(tree), json.dumps(REQUESTS)], capture_output=True,
                         text=True, check=True, cwd=tree)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--before", default="18a3d14")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            before = _time(old)
            after = _time(ROOT)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
    print(f"{'request':55s} {'before ms':>10s} {'after ms':>10s} {'after/before':>13s}")
    for k in before:
        print(f"{k:55s} {before[k]:10.1f} {after[k]:10.1f} {after[k] / before[k]:13.1f}")
    tb, ta = sum(before.values()), sum(after.values())
    print(f"{'all':55s} {tb:10.1f} {ta:10.1f} {ta / tb:13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
