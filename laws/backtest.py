"""Backtest a fit: train on the runs with the lowest compute, predict the held-out largest ones.

The runs are ordered by compute C = 6·N·D; the top ``holdout`` share (at least one run) is held out. Every loss
form that the columns support is fitted on the rest with the ``laws.fit`` functions (chinchilla and kaplan by
the Hoffmann et al. 2022 method, a power law L = k·N^a·D^b by OLS in logs, and the Muennighoff et al. 2023
data-constrained form when ``unique_tokens`` is given and some training run repeats data), and each form's
relative error |L_hat - L| / L is reported per held-out run and on average. The form with the smallest mean
error "extrapolated best".

Fitting options that may extrapolate better are evaluated the same way on the Chinchilla form
(``laws.fit_options``): compute weights (w ∝ C^0.5), a compute floor (drop training runs below it; default the
training runs' lower quartile of compute), and a fixed or bounded E (only when given).

:func:`extrapolation_warning` says when a planning target lies more than ``EXTRAPOLATION_FACTOR`` times beyond
the largest run's compute, with the fit's predicted interval there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from laws import fit as lf
from laws.fit_options import compute_weights, fit_chinchilla_options

DEFAULT_HOLDOUT = 0.2
EXTRAPOLATION_FACTOR = 10.0  # a target beyond 10x the largest run's compute gets a warning
WEIGHT_POWER = 0.5  # compute-weighted option: w ∝ C^0.5
MIN_TRAIN = 6  # a 5-coefficient fit needs at least one spare run


class HeldOutRun(BaseModel):
    """One held-out run with each form's prediction and relative error."""

    model_config = ConfigDict(frozen=True)

    params: float
    tokens: float
    flops: float = Field(description="6·N·D")
    loss: float
    predicted: dict[str, float]
    rel_error: dict[str, float] = Field(description="|predicted - loss| / loss per form")


class FormBacktest(BaseModel):
    model_config = ConfigDict(frozen=True)

    mean_rel_error: float
    max_rel_error: float
    coefficients: dict[str, float]


class OptionBacktest(BaseModel):
    model_config = ConfigDict(frozen=True)

    description: str
    mean_rel_error: float
    n_train: int
    coefficients: dict[str, float]


class Backtest(BaseModel):
    """Result of :func:`backtest` (``planner fit --backtest --json`` prints it under ``backtest``)."""

    model_config = ConfigDict(frozen=True)

    holdout: float
    n_train: int
    n_holdout: int
    train_max_flops: float
    holdout_flops: tuple[float, float]
    holdout_runs: list[HeldOutRun]
    per_form: dict[str, FormBacktest]
    best_form: str
    mean_rel_error: float = Field(description="the best form's mean relative error on the held-out runs")
    options: dict[str, OptionBacktest] = Field(description="chinchilla-form fitting options, same split")
    best_option: str | None = None
    notes: list[str] = Field(default_factory=list)


def _split(flops: np.ndarray, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(flops, kind="stable")
    k = max(1, int(round(holdout * flops.size)))
    return order[:-k], order[-k:]


def _predict(form: str, coefs: dict[str, float], n, d, u=None) -> np.ndarray:
    if form == "chinchilla":
        return coefs["E"] + coefs["A"] * n ** -coefs["alpha"] + coefs["B"] * d ** -coefs["beta"]
    if form == "kaplan":
        return np.exp(lf.kaplan_log_loss(n, d, **coefs))
    if form == "power":
        return coefs["k"] * n ** coefs["a_params"] * d ** coefs["a_tokens"]
    return lf.muennighoff_loss(n, d, u, **coefs)


def _fit_forms(n, d, y, u) -> tuple[dict[str, dict[str, float]], list[str]]:
    fits: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    for form, fn in (("chinchilla", lambda: lf.fit_chinchilla(n, d, y)), ("kaplan", lambda: lf.fit_kaplan(n, d, y)),
                     ("power", lambda: lf.fit_power_law(y, params=n, tokens=d))):
        try:
            fits[form] = fn().coefficients
        except lf.FitError as e:
            notes.append(f"{form} form could not be fitted on the training runs: {e}")
    if u is not None:
        repeats = d > u * (1 + 1e-9)
        if repeats.any():
            single = ~repeats
            if single.sum() >= MIN_TRAIN:
                base = lf.fit_chinchilla(n[single], d[single], y[single]).coefficients
                notes.append(f"muennighoff base law fitted on the {int(single.sum())} training runs without repeats")
            else:
                base = dict(lf.MUENNIGHOFF_BASE)
                notes.append("muennighoff base law: the authors' C4 base (too few training runs without repeats)")
            m = lf.fit_muennighoff(n, d, u, y, base=base)
            fits["muennighoff"] = {**m.fixed, **m.coefficients}
        else:
            notes.append("muennighoff form skipped: no training run repeats data (D <= unique_tokens)")
    return fits, notes


def backtest(runs: Any, holdout: float = DEFAULT_HOLDOUT, *, compute_floor: float | None = None,
             E_fixed: float | None = None, E_bounds: tuple[float, float] | None = None,
             options: bool = True) -> Backtest:
    """Fit on the lowest-compute runs, predict the top ``holdout`` share by compute (see the module doc).

    ``runs``: a ``laws.runs.Runs`` (or any object with params, tokens, loss and optional unique_tokens arrays).
    ``compute_floor`` (FLOPs), ``E_fixed``, ``E_bounds``: options to evaluate besides the defaults.
    """
    if isinstance(holdout, bool) or not (isinstance(holdout, int | float) and 0 < holdout < 1):
        raise lf.FitError(f"holdout must be a share in (0, 1), got {holdout!r}", field="holdout")
    n, d, y = (np.asarray(getattr(runs, k), float) for k in ("params", "tokens", "loss"))
    u_all = getattr(runs, "unique_tokens", None)
    u_all = None if u_all is None else np.asarray(u_all, float)
    c = 6.0 * n * d
    tr, ho = _split(c, float(holdout))
    if tr.size < MIN_TRAIN:
        raise lf.FitError(f"{tr.size} training runs after holding out {ho.size}; need at least {MIN_TRAIN} "
                          "(lower --holdout or add runs)", field="holdout")
    u_tr = None if u_all is None else u_all[tr]
    fits, notes = _fit_forms(n[tr], d[tr], y[tr], u_tr)
    if not fits:
        raise lf.FitError("no form could be fitted on the training runs", field="runs")
    u_ho = None if u_all is None else u_all[ho]
    preds = {f: _predict(f, co, n[ho], d[ho], u_ho) for f, co in fits.items()}
    errs = {f: np.abs(p - y[ho]) / y[ho] for f, p in preds.items()}
    held = [HeldOutRun(params=float(n[i]), tokens=float(d[i]), flops=float(c[i]), loss=float(y[i]),
                       predicted={f: float(preds[f][j]) for f in fits}, rel_error={f: float(errs[f][j]) for f in fits})
            for j, i in enumerate(ho)]
    per_form = {f: FormBacktest(mean_rel_error=float(e.mean()), max_rel_error=float(e.max()), coefficients=fits[f])
                for f, e in errs.items()}
    best = min(per_form, key=lambda f: per_form[f].mean_rel_error)
    plain = None
    if "chinchilla" in per_form:  # the plain option is the chinchilla form's fit itself (same estimator)
        plain = OptionBacktest(description="unweighted Huber fit on every training run (the chinchilla form above)",
                               mean_rel_error=per_form["chinchilla"].mean_rel_error, n_train=int(tr.size),
                               coefficients=fits["chinchilla"])
    opts = _options(n[tr], d[tr], y[tr], c[tr], n[ho], d[ho], y[ho], compute_floor, E_fixed, E_bounds, plain) \
        if options else {}
    best_opt = min(opts, key=lambda k: opts[k].mean_rel_error) if opts else None
    return Backtest(holdout=float(holdout), n_train=int(tr.size), n_holdout=int(ho.size),
                    train_max_flops=float(c[tr].max()), holdout_flops=(float(c[ho].min()), float(c[ho].max())),
                    holdout_runs=held, per_form=per_form, best_form=best,
                    mean_rel_error=per_form[best].mean_rel_error, options=opts, best_option=best_opt, notes=notes)


def _options(n, d, y, c, nh, dh, yh, floor, E_fixed, E_bounds, plain=None) -> dict[str, OptionBacktest]:
    def run(desc, mask=None, **kw) -> OptionBacktest:
        m = np.ones(n.size, bool) if mask is None else mask
        if "weights" in kw:
            kw["weights"] = kw["weights"][m]
        co = fit_chinchilla_options(n[m], d[m], y[m], **kw)
        err = np.abs(_predict("chinchilla", co, nh, dh) - yh) / yh
        return OptionBacktest(description=desc, mean_rel_error=float(err.mean()), n_train=int(m.sum()),
                              coefficients=co)

    out = {"plain": plain} if plain is not None else {"plain": run("unweighted Huber fit on every training run")}
    out |= {"compute_weighted": run(f"each run's Huber term weighted by compute^{WEIGHT_POWER:g} (mean 1)",
                                   weights=compute_weights(c, WEIGHT_POWER))}
    fl = float(np.quantile(c, 0.25)) if floor is None else float(floor)
    mask = c >= fl
    if mask.sum() >= MIN_TRAIN:
        out["compute_floor"] = run(f"training runs with compute >= {fl:.3g} FLOPs"
                                   + (" (lower quartile)" if floor is None else ""), mask)
    if E_fixed is not None:
        out["E_fixed"] = run(f"E fixed at {E_fixed:g}", E_fixed=E_fixed)
    if E_bounds is not None:
        out["E_bounded"] = run(f"E bounded to [{E_bounds[0]:g}, {E_bounds[1]:g}]", E_bounds=E_bounds)
    return out


def extrapolation_warning(result: Any, runs: Any, target_flops: float,
                          factor: float = EXTRAPOLATION_FACTOR) -> str | None:
    """A warning when ``target_flops`` exceeds ``factor`` × the largest run's 6·N·D, with the fit's predicted
    loss-optimal loss and N_opt at the target (bootstrap 95% interval when the fit has samples)."""
    c_max = float(np.max(6.0 * np.asarray(runs.params, float) * np.asarray(runs.tokens, float)))
    if not (math.isfinite(target_flops) and target_flops > factor * c_max):
        return None
    msg = (f"target {target_flops:.3g} FLOPs is {target_flops / c_max:.3g}x the largest run ({c_max:.3g} FLOPs), "
           f"more than the {factor:g}x beyond the runs that planner extrapolates without a warning")
    if getattr(result, "form", None) in ("chinchilla", "kaplan"):
        opt = result.compute_optimal(target_flops)
        parts = []
        for key, label in (("loss_opt", "loss"), ("N_opt", "N_opt")):
            v = opt["value"][key]
            ci = opt["ci95"].get(key)
            parts.append(f"{label} {v:.4g}" + (f" [95% {ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""))
        msg += "; predicted there: " + ", ".join(parts)
        if not opt["ci95"]:
            msg += " (no interval: fit with --bootstrap for one)"
    return msg


__all__ = ["DEFAULT_HOLDOUT", "EXTRAPOLATION_FACTOR", "Backtest", "backtest", "extrapolation_warning"]
