"""Robust allocations: choose params N and tokens D against the spread of a law's coefficient samples.

The samples are the law's bootstrap (``[law.bootstrap]`` of a ``planner fit`` file) or, for a published law,
seeded draws from its published standard errors (``laws.uncertainty``). Two robust objectives, both geometric
programs:

- ``mode="mean"``: the sample-mean loss (1/S)·Σ_s L_s(N, D), a sum of posynomials, i.e. a posynomial;
- ``mode="worst"``: the largest loss over the central ``confidence`` share of the samples, in epigraph form:
  minimize t subject to L_s(N, D) ≤ t for every sample s kept.

**Which samples are "central".** The samples are ranked by their loss at a *reference point* (N0, D0) and the
(1 - confidence)/2 share at each end is dropped. Ranking by loss (not by each sample's predicted N_opt) is the
choice here because the worst case bounds a loss: two samples can agree on N_opt and differ by 0.1 nats in E,
and only a loss ranking drops the extreme one. The selection is fixed before solving (it is data of the
program, not a function of the decision variables), so the program stays a GP. :func:`robust_allocation` uses
the point-estimate plan as the reference; at that point the robust objective is the upper end of the central
interval of the loss.

Units: params in parameters, tokens in tokens, FLOPs as 6·N·D, loss in the law's units (nats/token).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.errors import InputError
from planner.plan import LossDistribution

MODES = ("mean", "worst")
Mode = Literal["mean", "worst"]
DEFAULT_CONFIDENCE = 0.9


# ------------------------------------------------------------------------------------------- inputs


def _resolve_law(law: Any) -> Any:
    """A Law object from a Law, a catalog id or a law file path (None: the default law)."""
    if law is None or isinstance(law, str):
        from laws import LawError, get_law

        try:
            return get_law(law)
        except LawError as e:
            raise InputError("law", str(e)) from None
    return law


def law_samples(law: Any) -> dict[str, np.ndarray]:
    """The law's coefficient samples: its bootstrap, else its published uncertainty, else an InputError."""
    from laws.uncertainty import with_samples

    law = with_samples(_resolve_law(law))
    if law.bootstrap is None:
        raise InputError("law", f"law {law.id} has no bootstrap samples ([law.bootstrap]) and its source publishes "
                         "no verified uncertainty; fit your runs with `planner fit RUNS.csv --bootstrap 1000 --out "
                         "law.toml` and plan with that file")
    if law.inputs != ("params", "tokens") or not law.dgp:
        raise InputError("law", f"robust plans need a loss law of params and tokens that is a geometric program; "
                         f"law {law.id} ({law.form}) takes {', '.join(law.inputs)}")
    return {k: np.asarray(v, float) for k, v in law.bootstrap.items()}


def _check_mode(mode: str, confidence: float) -> None:
    if mode not in MODES:
        raise InputError("robust", f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    if isinstance(confidence, bool) or not (isinstance(confidence, int | float) and 0 < confidence <= 1):
        raise InputError("confidence", f"must be a share in (0, 1], got {confidence!r}")


def sample_losses(law: Any, params, tokens, samples: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Loss of every sample at (params, tokens): shape (S,) + broadcast shape of the inputs."""
    law = _resolve_law(law)
    smp = law_samples(law) if samples is None else samples
    n, d = np.asarray(params, float), np.asarray(tokens, float)
    extra = (None,) * np.broadcast(n, d).ndim
    coefs = {k: np.asarray(smp[k], float)[(slice(None), *extra)] for k in law.coefficient_names}
    return np.asarray(law.formula(params=n, tokens=d, **coefs))


def central_samples(law: Any, confidence: float, reference: tuple[float, float],
                    samples: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Indices of the central ``confidence`` share of the samples, ranked by loss at ``reference`` = (N0, D0).

    Keeps the ranks [floor(S·q), ceil(S·(1-q))) with q = (1 - confidence)/2, at least one sample.
    """
    _check_mode("worst", confidence)
    losses = sample_losses(law, reference[0], reference[1], samples)
    s = losses.size
    order = np.argsort(losses, kind="stable")
    q = (1.0 - confidence) / 2.0
    lo = int(math.floor(s * q + 1e-9))
    hi = max(lo + 1, int(math.ceil(s * (1.0 - q) - 1e-9)))
    return np.sort(order[lo:hi])


# ------------------------------------------------------------------------------------ the objective


def robust_loss(law: Any, params, tokens, mode: Mode = "mean", confidence: float = DEFAULT_CONFIDENCE, *,
                reference: tuple[float, float] | None = None) -> np.ndarray:
    """The robust loss at (params, tokens) with numpy: the sample mean, or the worst loss over the central
    ``confidence`` share of samples ranked at ``reference`` (default: the evaluated point; pass it explicitly
    for array inputs). Same formula as :func:`robust_loss_expr`."""
    _check_mode(mode, confidence)
    law = _resolve_law(law)
    smp = law_samples(law)
    losses = sample_losses(law, params, tokens, smp)
    if mode == "mean":
        return losses.mean(axis=0)
    if reference is None:
        if np.ndim(params) or np.ndim(tokens):
            raise InputError("reference", "worst-case loss over arrays of points needs reference=(N0, D0)")
        reference = (float(params), float(tokens))
    keep = central_samples(law, confidence, reference, smp)
    return losses[keep].max(axis=0)


def robust_loss_expr(law: Any, N, D, mode: Mode = "mean", confidence: float = DEFAULT_CONFIDENCE, *,
                     reference: tuple[float, float] | None = None):
    """The robust loss as a cvxpy DGP expression of positive variables N (params), D (tokens).

    Returns (objective, constraints): for "mean" the posynomial (1/S)·Σ_s L_s(N, D) and no constraints; for
    "worst" an epigraph variable t (positive) and the constraints L_s(N, D) ≤ t over the central samples
    (``reference`` = (N0, D0) is required: the point at which samples are ranked).
    """
    import cvxpy as cp

    _check_mode(mode, confidence)
    law = _resolve_law(law)
    smp = law_samples(law)
    names = law.coefficient_names
    s = next(iter(smp.values())).size
    if mode == "mean":
        # a flat Python sum: cvxpy compiles it about 30x faster than cp.sum(cp.hstack(terms))
        total = sum(law.formula(params=N, tokens=D, **{k: float(smp[k][i]) for k in names}) for i in range(s))
        return total / s, []
    if reference is None:
        raise InputError("reference", "the worst-case objective needs reference=(N0, D0), the point at which the "
                         "samples are ranked (e.g. the point-estimate plan)")
    keep = central_samples(law, confidence, reference, smp)
    t = cp.Variable(pos=True, name="robust_loss")
    cons = [law.formula(params=N, tokens=D, **{k: float(smp[k][i]) for k in names}) <= t for i in keep]
    return t, cons


# ------------------------------------------------------------------------------------ the planner


class RobustAllocation(BaseModel):
    """A robust compute-budget allocation (6·N·D ≤ budget) next to the point-estimate one."""

    model_config = ConfigDict(frozen=True)

    law: str
    budget_flops: float
    mode: Mode
    confidence: float
    n_samples: int
    params: float
    tokens: float
    flops: float
    robust: LossDistribution
    point: LossDistribution = Field(description="the plan that minimizes the point-estimate loss")
    cost_of_robustness: float = Field(description="median loss of the robust plan minus that of the point plan")
    notes: list[str] = Field(default_factory=list)


def _solve(objective, constraints, N, D, budget: float) -> tuple[float, float]:
    import cvxpy as cp

    prob = cp.Problem(cp.Minimize(objective), [6.0 * N * D <= budget, *constraints])
    try:
        prob.solve(gp=True)
    except cp.SolverError:
        prob.solve(gp=True, solver=cp.SCS)
    if prob.status not in ("optimal", "optimal_inaccurate") or N.value is None:
        raise InputError("budget_flops", f"the robust program could not be solved (status {prob.status})")
    return float(N.value), float(D.value)


def loss_distribution(law: Any, params: float, tokens: float, confidence: float = DEFAULT_CONFIDENCE,
                      reference: tuple[float, float] | None = None,
                      samples: Mapping[str, np.ndarray] | None = None) -> LossDistribution:
    """The loss of (params, tokens) across the law's samples: median, central ``confidence`` interval, mean and
    the worst loss over the central share ranked at ``reference`` (default: the point itself)."""
    _check_mode("worst", confidence)
    law = _resolve_law(law)
    smp = law_samples(law) if samples is None else samples
    n, d = float(params), float(tokens)
    reference = (n, d) if reference is None else reference
    losses = sample_losses(law, n, d, smp)
    q = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(losses, [q, 100.0 - q])
    keep = central_samples(law, confidence, reference, smp)
    return LossDistribution(params=n, tokens=d, loss_point=float(law.predict(params=n, tokens=d)),
                            median=float(np.median(losses)), interval=(float(lo), float(hi)),
                            mean=float(losses.mean()), worst_central=float(losses[keep].max()))


def _solve_compressed(smp, law, mode, confidence, reference, N, D, budget: float) -> tuple[float, float]:
    """Gauss-quadrature mean, or the envelope samples with cutting planes until no central sample is above t."""
    from planner.robust_terms import check_law, mean_terms, violated, worst_terms

    s = check_law(law)
    if mode == "mean":
        terms = mean_terms(s)
    else:
        terms = worst_terms(s, central_samples(law, confidence, reference, smp), confidence)
    for _ in range(10):
        obj, cons = terms.expr(N, D)
        n1, d1 = _solve(obj, cons, N, D, budget)
        bad = violated(terms, n1, d1)
        if not bad:
            break
        terms = terms.with_rows(bad)
    return n1, d1


def robust_allocation(law: Any = None, budget_flops: float = 1e22, mode: Mode = "mean",
                      confidence: float = DEFAULT_CONFIDENCE) -> RobustAllocation:
    """Robust (params, tokens) for a compute budget: minimize the robust loss s.t. 6·N·D ≤ budget_flops.

    ``law``: a Law, catalog id or law file (default: the default law, whose published uncertainty is used).
    Returns the robust plan and the point-estimate plan, each with its loss distribution over the samples.
    """
    import cvxpy as cp

    _check_mode(mode, confidence)
    if isinstance(budget_flops, bool) or not (isinstance(budget_flops, int | float) and math.isfinite(budget_flops)
                                              and 1e6 <= budget_flops <= 1e32):
        raise InputError("budget_flops", f"must be a number of FLOPs in [1e6, 1e32], got {budget_flops!r}")
    from laws.uncertainty import published_uncertainty, with_samples

    base = _resolve_law(law)
    law = with_samples(base)
    smp = law_samples(law)
    budget = float(budget_flops)
    N, D = cp.Variable(pos=True, name="params"), cp.Variable(pos=True, name="tokens")
    n0, d0 = _solve(law.expr(params=N, tokens=D), [], N, D, budget)
    if law.form == "chinchilla":  # the compressed robust loss of planner.robust_terms (same optimum, faster)
        n1, d1 = _solve_compressed(smp, law, mode, confidence, (n0, d0), N, D, budget)
    else:
        obj, cons = robust_loss_expr(law, N, D, mode, confidence, reference=(n0, d0))
        n1, d1 = _solve(obj, cons, N, D, budget)
    ref = (n0, d0)
    robust = loss_distribution(law, n1, d1, confidence, ref, smp)
    point = loss_distribution(law, n0, d0, confidence, ref, smp)
    notes = []
    pu = published_uncertainty(law.id)
    if pu is not None and base.bootstrap is None:
        notes.append(f"samples drawn from published standard errors: {pu.source}")
    return RobustAllocation(law=law.id, budget_flops=budget, mode=mode, confidence=confidence,
                            n_samples=int(next(iter(smp.values())).size), params=n1, tokens=d1,
                            flops=6.0 * n1 * d1, robust=robust, point=point,
                            cost_of_robustness=robust.median - point.median, notes=notes)


__all__ = ["MODES", "LossDistribution", "RobustAllocation", "central_samples", "law_samples", "loss_distribution",
           "robust_allocation", "robust_loss", "robust_loss_expr", "sample_losses"]
