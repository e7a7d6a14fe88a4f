"""Robust plans on the full program: ``optimize(PlanRequest(..., robust="mean"|"worst", confidence=0.9))``.

Every limit, the cluster model and every objective stay as in a point plan; only the loss the program sees is
replaced by the robust loss over the law's coefficient samples (``planner.robust_terms``: compressed so that a
robust plan costs about two point plans). The steps:

1. the point-estimate plan of the same request (it is reported next to the robust plan, and for ``worst`` it is
   the reference at which the samples are ranked to choose the central ``confidence`` share);
2. the robust plan: the program with the robust loss; its launchable plan is ranked with the exact robust loss
   over all samples;
3. ``worst`` only: every central sample is checked at the robust plan (continuous and launchable); any that
   exceeds the program's epigraph joins the active set and step 2 runs again (at most ``MAX_CUTS`` rounds).

The plan's ``loss`` is the law's point-estimate loss at the plan (as for any plan), ``objective_value`` the
robust loss (objective loss), and ``robust`` holds both plans' loss distributions (median and central
``confidence`` interval) so the cost of robustness is visible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from planner.plan import Plan, RobustReport
from planner.request import PlanRequest

MAX_CUTS = 5


def _samples_source(base, law) -> str:
    from laws.uncertainty import published_uncertainty

    if base.bootstrap is not None:
        return f"the bootstrap samples of law {base.id}"
    pu = published_uncertainty(law.id)
    return f"{pu.source}; seeded draws" if pu is not None else "the law's samples"


def optimize_robust(request: PlanRequest, run: Callable[..., Plan]) -> Plan:
    """The robust plan for ``request`` (``run(request, robust_terms)`` is the planner's solve-and-round step)."""
    from laws.uncertainty import with_samples
    from planner.optimize import _law
    from planner.robust import central_samples, loss_distribution
    from planner.robust_terms import check_law, mean_terms, violated, worst_terms

    base = _law(request)
    law = with_samples(base)
    samples = check_law(law)  # InputError (law or robust) before any solve
    point = run(request)
    ref = (point.continuous["params"], point.continuous["effective_tokens"])
    conf = request.confidence
    if request.robust == "mean":
        terms = mean_terms(samples)
    else:
        terms = worst_terms(samples, central_samples(law, conf, ref, samples), conf)
    error, cuts = terms.error, 0
    plan = run(request, terms)
    for _ in range(MAX_CUTS):
        c = plan.continuous
        bad = set(violated(terms, c["params"], c["effective_tokens"]))
        bad |= set(violated(terms, plan.params, plan.effective_tokens))
        if not bad:
            break
        terms = terms.with_rows(sorted(bad))
        cuts += len(bad)
        plan = run(request, terms)

    c, cp0 = plan.continuous, point.continuous
    program = {"params": c["params"], "tokens": c["effective_tokens"],
               "objective_value": float(terms.value(c["params"], c["effective_tokens"])),
               "point_objective_value": float(terms.value(cp0["params"], cp0["effective_tokens"]))}
    kept_point = False
    if request.objective == "loss" and terms.value(point.params, point.effective_tokens) < \
            terms.value(plan.params, plan.effective_tokens):
        # both are launchable plans that meet every limit; whole-cluster rounding (which may give up 0.1% of
        # the objective for cluster sizing) can leave the robust program's plan behind the point plan's on the
        # robust loss itself when robustness moves the optimum less than that: keep the better of the two
        plan, kept_point = point, True

    def dist(p: Plan):
        return loss_distribution(law, p.params, p.effective_tokens, conf, ref, samples)

    rob, pt = dist(plan), dist(point)
    report = RobustReport(
        mode=request.robust, confidence=conf, n_samples=terms.n_samples, samples_source=_samples_source(base, law),
        objective_value=float(terms.value(plan.params, plan.effective_tokens)), robust=rob, point=pt,
        point_plan={"params": point.params, "tokens": point.tokens, "gpus": float(point.gpus), "hours": point.hours,
                    "cost_usd": point.total_cost_usd, "loss": point.loss},
        cost_of_robustness=rob.median - pt.median, worst_gain=pt.worst_central - rob.worst_central,
        program_terms=terms.size, compression_error=error, cutting_planes=cuts,
        program_optimum=program)
    loss = float(law.predict(params=plan.params, tokens=plan.effective_tokens))
    loss_ci = plan.loss_ci
    if loss_ci is None:
        lo, hi = np.percentile(terms.sample_losses(plan.params, plan.effective_tokens), [2.5, 97.5])
        loss_ci = (float(lo), float(hi))
    notes = ["the point-estimate plan's launchable cluster has the lower robust loss (rounding to a whole cluster "
             "moves the loss more than robustness does here): it is the robust plan"] if kept_point else []
    what = ("the sample-mean loss" if request.robust == "mean" else
            f"the largest loss over the central {conf:.0%} of the samples")
    note = (f"robust plan: minimizes {what} over {terms.n_samples} coefficient samples ({report.samples_source}); "
            f"'loss' is the point-estimate law's loss at this plan, the objective value is the robust loss")
    extra = {"objective_value": report.objective_value} if request.objective == "loss" else {}
    return plan.model_copy(update={
        **extra, "loss": loss, "loss_ci": loss_ci, "robust": report, "notes": [*plan.notes, note, *notes],
        "rounded": plan.rounded.model_copy(update={"loss": loss})})


__all__ = ["optimize_robust"]
