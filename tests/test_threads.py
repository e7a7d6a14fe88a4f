"""The library is safe to call from threads: concurrent plans each answer their own request (issue 13 #1).

Before the fix, 4 threads sharing the compiled programs' Parameters returned plans of other requests with
status "optimal" and raised "Already mutably borrowed".
"""

from __future__ import annotations

import concurrent.futures as cf

import planner


def _plan_flops(budget: float) -> tuple[float, float]:
    return budget, planner.optimize(budget_flops=budget, gpu="h100").flops


def test_concurrent_optimize_answers_each_request():
    budgets = [10 ** (19 + 0.1 * i) for i in range(30)] * 4
    with cf.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(_plan_flops, budgets))
    wrong = [(b, f) for b, f in results if abs(f / b - 1) > 0.01]
    assert not wrong, f"{len(wrong)} plans answered another request, e.g. {wrong[:3]}"
