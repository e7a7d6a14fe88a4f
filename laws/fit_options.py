"""Chinchilla-form fits with the options that may help extrapolation: run weights, a fixed or bounded E.

Same estimator as ``laws.fit.fit_chinchilla`` (Hoffmann et al. 2022, App. D.2: sum of Huber_delta on log loss,
delta = 1e-3, L-BFGS from every point of the start grid, best end point kept) with three additions:

- ``weights``: one non-negative weight per run multiplying its Huber term (e.g. compute weights, which make the
  largest runs count more);
- ``E_fixed``: E held at a given value (the grid's e axis collapses to log E);
- ``E_bounds``: (lo, hi) bounds on E (e.g. below the smallest observed loss).

It is built only on the public pieces of ``laws.fit`` (``chinchilla_objective`` with weights and gradient,
``minimize_batched``, ``HOFFMANN_GRID``). Inputs are centered (N / exp(mean log N), D likewise) for
conditioning; A and B are mapped back. Units: params, tokens, loss as in ``laws.fit``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

from laws.fit import DEFAULT_DELTA, HOFFMANN_GRID, FitError, chinchilla_objective, minimize_batched

E_LOG_BOUNDS = (-10.0, 5.0)  # same as laws.fit: log E in [-10, 5]
EXP_BOUNDS = (0.0, 5.0)  # alpha, beta


def compute_weights(flops, power: float = 0.5) -> np.ndarray:
    """Weights proportional to compute^power, normalized to mean 1 (power 0: unweighted)."""
    c = np.asarray(flops, float)
    w = np.exp(power * (np.log(c) - np.log(c).mean()))
    return w / w.mean()


def fit_chinchilla_options(params, tokens, loss, *, weights=None, E_fixed: float | None = None,
                           E_bounds: tuple[float, float] | None = None, delta: float = DEFAULT_DELTA,
                           grid: Mapping[str, Sequence[float]] | None = None) -> dict[str, float]:
    """Coefficients E, A, B, alpha, beta of the Chinchilla form fitted with the options; see the module doc."""
    n, d, y = (np.asarray(v, float).reshape(-1) for v in (params, tokens, loss))
    if not (n.size == d.size == y.size) or n.size < 4:
        raise FitError(f"need at least 4 runs with params, tokens and loss, got {n.size}", field="runs")
    for name, v in (("params", n), ("tokens", d), ("loss", y)):
        if not np.all(np.isfinite(v) & (v > 0)):
            raise FitError(f"{name} must be positive finite numbers", field=name)
    w = None
    if weights is not None:
        w = np.asarray(weights, float).reshape(-1)
        if w.size != n.size or not np.all(np.isfinite(w) & (w >= 0)) or w.sum() <= 0:
            raise FitError("weights must be one non-negative number per run, not all zero", field="weights")
    e_lo, e_hi = E_LOG_BOUNDS
    if E_fixed is not None:
        if not (math.isfinite(E_fixed) and 0 < E_fixed < y.min()):
            raise FitError(f"E_fixed must be in (0, smallest loss {y.min():.4g}), got {E_fixed}", field="E_fixed")
        e_lo = e_hi = math.log(E_fixed)
    elif E_bounds is not None:
        lo, hi = E_bounds
        if not (0 < lo < hi and math.isfinite(hi)):
            raise FitError(f"E_bounds must be 0 < lo < hi, got {E_bounds}", field="E_bounds")
        e_lo, e_hi = max(e_lo, math.log(lo)), min(e_hi, math.log(hi))
    sn, sd = math.exp(np.log(n).mean()), math.exp(np.log(d).mean())
    nc, dc = n / sn, d / sd
    g = {**HOFFMANN_GRID, **(grid or {})}
    es = (e_lo,) if e_lo == e_hi else tuple(min(max(v, e_lo), e_hi) for v in g["e"])
    starts = np.array([(a - al * math.log(sn), b - be * math.log(sd), e, al, be)
                       for a in g["a"] for b in g["b"] for e in sorted(set(es)) for al in g["alpha"]
                       for be in g["beta"]])
    lower = np.array([-np.inf, -np.inf, e_lo, EXP_BOUNDS[0], EXP_BOUNDS[0]])
    upper = np.array([np.inf, np.inf, e_hi, EXP_BOUNDS[1], EXP_BOUNDS[1]])

    def fg(th: np.ndarray):
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # exp(a) underflow at far starts
            f, gr = chinchilla_objective(nc, dc, y, A=np.exp(th[:, 0]), B=np.exp(th[:, 1]), E=np.exp(th[:, 2]),
                                         alpha=th[:, 3], beta=th[:, 4], delta=delta, weights=w, grad=True)
        return f, gr

    x, f, _ = minimize_batched(lambda th, rows: fg(th), starts, lower, upper, gtol=1e-6, ftol=1e-9, max_iter=500)
    best = x[int(np.nanargmin(np.where(np.isfinite(f), f, np.inf)))]
    bounds = [(None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi)
              for lo, hi in zip(lower, upper, strict=True)]

    def fun(v):
        fv, gv = fg(v[None, :])
        return float(fv[0]), gv[0]

    res = minimize(fun, best, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-11})
    th = res.x if res.fun <= fun(best)[0] else best
    return {"E": float(math.exp(th[2])), "A": float(math.exp(th[0]) * sn ** th[3]),
            "B": float(math.exp(th[1]) * sd ** th[4]), "alpha": float(th[3]), "beta": float(th[4])}


__all__ = ["compute_weights", "fit_chinchilla_options"]
