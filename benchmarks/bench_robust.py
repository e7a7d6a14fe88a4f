"""Robust plans on the full program: the compressed robust loss vs all samples, as ratios (no assertions).

For the default law (500 draws from Besiroglu et al. 2024's published standard errors) and a fitted law file
(``--law FILE``), under a FLOPs budget and under a dollar + deadline limit, for mean and worst:

- the robust plan as ``optimize`` makes it (``planner.robust_terms``: Gauss quadrature for mean, envelope
  samples + cutting planes for worst), end to end, including the point-estimate plan it is compared with;
- the same robust solve with every sample in the program (mean: 1 + 2·S monomials; worst: every central sample
  as an epigraph constraint), the reference;
- the relative difference of the robust objective between the two launchable plans and between their
  continuous optima.

Run: python benchmarks/bench_robust.py [--law law.toml]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _full_terms(terms):
    """The same robust loss with every sample in the program (no compression)."""
    s = terms.samples
    size = s["E"].size
    if terms.mode == "mean":
        return dataclasses.replace(terms, e=float(s["E"].mean()),
                                   n_terms=tuple((float(a) / size, float(al)) for a, al in zip(s["A"], s["alpha"],
                                                                                                strict=True)),
                                   d_terms=tuple((float(b) / size, float(be)) for b, be in zip(s["B"], s["beta"],
                                                                                                strict=True)))
    return dataclasses.replace(terms, rows=()).with_rows(terms.keep)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser()
    ap.add_argument("--law", default=None)
    args = ap.parse_args()
    from laws.uncertainty import with_samples
    from planner import PlanRequest, optimize
    from planner.optimize import _law, _optimize
    from planner.robust import central_samples
    from planner.robust_terms import check_law, mean_terms, worst_terms

    cases = {"budget 1e23": {"budget_flops": 1e23}, "$2M, 14 days": {"dollars": 2e6, "deadline_days": 14}}
    optimize(PlanRequest(budget_flops=1e21))  # warm-up: imports and the first compile
    print(f"{'case':<14} {'mode':<6} {'terms':>6} {'optimize() s':>13} {'compressed s':>13} {'all samples s':>14} "
          f"{'speed-up':>9} {'rel. diff (launched)':>21} {'rel. diff (program)':>20}")
    for name, fields in cases.items():
        for mode in ("mean", "worst"):
            extra = {"law": args.law} if args.law else {}
            req = PlanRequest(**fields, **extra, robust=mode)
            t = time.perf_counter()
            optimize(req)
            e2e = time.perf_counter() - t
            law = with_samples(_law(req))
            smp = check_law(law)
            point = _optimize(req)
            ref = (point.continuous["params"], point.continuous["effective_tokens"])
            terms = mean_terms(smp) if mode == "mean" else worst_terms(smp, central_samples(law, 0.9, ref, smp), 0.9)
            full = _full_terms(terms)
            t = time.perf_counter()
            fast = _optimize(req, terms)
            fast_s = time.perf_counter() - t
            t = time.perf_counter()
            slow = _optimize(req, full)
            slow_s = time.perf_counter() - t
            a = full.value(fast.params, fast.effective_tokens)
            b = full.value(slow.params, slow.effective_tokens)
            ca = full.value(fast.continuous["params"], fast.continuous["effective_tokens"])
            cb = full.value(slow.continuous["params"], slow.continuous["effective_tokens"])
            print(f"{name:<14} {mode:<6} {terms.size:>6} {e2e:>13.2f} {fast_s:>13.2f} {slow_s:>14.2f} "
                  f"{slow_s / fast_s:>8.1f}x {a / b - 1:>+21.2e} {ca / cb - 1:>+20.2e}")
    print("optimize() s: end to end incl. the point plan; compressed / all samples s: one robust solve-and-round "
          "(planner.optimize._optimize) with the compressed loss / with every sample in the program; rel. diff: "
          "the exact robust loss of the compressed run's plan over the all-samples run's, minus 1")


if __name__ == "__main__":
    main()
