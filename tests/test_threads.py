"""The library is safe to call from threads: concurrent plans each answer their own request (issue 13 #1).

Before the fix, 4 threads sharing the compiled programs' Parameters returned plans of other requests with
status "optimal" and raised "Already mutably borrowed".
"""

from __future__ import annotations

import concurrent.futures as cf

import planner


def _plan(budget: float) -> tuple[float, float, float]:
    p = planner.optimize(budget_flops=budget, gpu="h100")
    return budget, p.flops, p.loss


def test_concurrent_optimize_answers_each_request():
    budgets = [10 ** (19 + 0.25 * i) for i in range(12)]
    serial = {b: _plan(b) for b in budgets}
    with cf.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(_plan, budgets * 4))
    # another request's plan is off by far more than the launchable plans' rounding (a few %)
    wrong = [(b, f, serial[b][1]) for b, f, loss in results
             if abs(f / serial[b][1] - 1) > 0.03 or abs(loss / serial[b][2] - 1) > 1e-3]
    assert not wrong, f"{len(wrong)} plans differ from the same request answered alone, e.g. {wrong[:3]}"
    assert all(f <= b * (1 + 1e-9) for b, f, _ in results)
