"""One spec per loss-law form (start grid, bounds, internal coordinates, kernel) and the one fit that runs them.

Loss laws are fitted in log space: minimize sum_i Huber_delta(log L_hat(N_i, D_i) - log L_i), delta = 1e-3 (a
SUM, not a mean: Besiroglu et al. 2024 trace Hoffmann's early stop to the mean), by L-BFGS from every point of
a start grid, keeping the best (Hoffmann et al. 2022, App. D.2). The multistart and bootstrap are in
``laws.fit.multistart``; the kernels in ``laws.fit.kernels``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from laws.chinchilla import chinchilla_loss
from laws.fit import diagnostics as dg
from laws.fit.common import DEFAULT_DELTA, FitError, Progress, as_arrays, bounds, input_ranges, need_rows, start_grid
from laws.fit.kernels import ChinchillaKernel, KaplanKernel, MuennighoffKernel
from laws.fit.multistart import Problem, bootstrap, solve
from laws.fit.result import FitResult
from laws.kaplan import kaplan_loss
from laws.muennighoff import muennighoff_loss

# Hoffmann et al. 2022, App. D.2: start grid for (alpha, beta, e, a, b); 5*5*5*6*6 = 4,500 starts (the paper
# says "6,250 starts", but these value sets, as listed there and in Epoch's notebook, give 4,500).
HOFFMANN_GRID: dict[str, tuple[float, ...]] = {
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
}
# Optimizer bounds (a = log A and b = log B are free). e in [-10, 5] means E in [4.5e-5, 148].
CHINCHILLA_BOUNDS = {"e": (-10.0, 5.0), "alpha": (0.0, 5.0), "beta": (0.0, 5.0)}

# Kaplan start grid (ours): log Nc, log Dc around Kaplan et al. 2020 Table 2 (6.4e13, 1.8e13); exponents
# bracketing 0.076 / 0.103.
KAPLAN_GRID: dict[str, tuple[float, ...]] = {
    "log_Nc": (20.0, 25.0, 30.0, 35.0, 40.0),
    "log_Dc": (20.0, 25.0, 30.0, 35.0, 40.0),
    "alpha_N": (0.03, 0.1, 0.3, 1.0),
    "alpha_D": (0.03, 0.1, 0.3, 1.0),
}
KAPLAN_BOUNDS = {"alpha_N": (1e-3, 5.0), "alpha_D": (1e-3, 5.0)}

# Muennighoff et al. 2023 base law, fitted by the authors on Chinchilla's C4 IsoFLOP points (alpha = beta
# tied): github.com/huggingface/datablations, README "Parametric Fit" and utils/parametric_fit.ipynb. The
# authors' code holds log values a = 6.255414, b = 7.3049974, e = 0.6254804 (A 520.82, B 1487.72, E 1.8691 are
# these rounded); the exact exponentials reproduce their README oracles to 1e-16 and their objective 0.0158259
# to 1e-9.
MUENNIGHOFF_BASE: dict[str, float] = {"E": math.exp(0.6254804), "A": math.exp(6.255414), "B": math.exp(7.3049974),
                                      "alpha": 0.3526596, "beta": 0.3526596}
# Muennighoff et al. 2023 published decay constants (same source), for reference and tests.
MUENNIGHOFF_RSTAR: dict[str, float] = {"R_D_star": 15.387756, "R_N_star": 5.309743}
MUENNIGHOFF_GRID = {"R_D_star": (1.0, 3.0, 10.0, 30.0, 100.0, 300.0), "R_N_star": (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)}
MUENNIGHOFF_BOUNDS = {"log_R_D_star": (math.log(1e-3), math.log(1e6)), "log_R_N_star": (math.log(1e-3), math.log(1e6))}


@dataclass(frozen=True)
class Setup:
    """What a form builds from the runs: the kernel, the starts (internal coordinates) and the map back."""

    kernel: Any
    starts: np.ndarray
    to_coef: Callable[[np.ndarray], dict[str, np.ndarray]]  # internal (..., p) -> coefficient name -> (...)
    log_coef: Callable[[Mapping[str, float]], dict[str, float]]  # coefficients -> grid coordinates


@dataclass(frozen=True)
class FormSpec:
    """A loss-law form for the fitter: coefficient and internal names, runs inputs, start grid and bounds."""

    form: str
    names: tuple[str, ...]
    internal: tuple[str, ...]
    inputs: tuple[str, ...]
    grid: Mapping[str, Sequence[float]]
    bounds: Mapping[str, tuple[float, float]]
    labels: Mapping[str, str]  # internal name -> how diagnostics call it
    pairs: tuple[str, str]  # the two coefficients whose bootstrap correlation is checked
    setup: Callable[..., Setup]


def _centered(params, tokens):
    ln, ld = np.log(params), np.log(tokens)
    mn, md = float(ln.mean()), float(ld.mean())
    return ln - mn, ld - md, mn, md


def _chinchilla_setup(d, delta, grid, base) -> Setup:
    xn, xd, mn, md = _centered(d["params"], d["tokens"])
    g = start_grid(grid, CHINCHILLA.internal)
    starts = g.copy()
    starts[:, 0] -= g[:, 3] * mn  # a' = a - alpha·mean(log N): the same start functions, centered coordinates
    starts[:, 1] -= g[:, 4] * md

    def to_coef(th):
        th = np.asarray(th, float)
        return {"E": np.exp(th[..., 2]), "A": np.exp(th[..., 0] + th[..., 3] * mn),
                "B": np.exp(th[..., 1] + th[..., 4] * md), "alpha": th[..., 3], "beta": th[..., 4]}

    def log_coef(c):
        return {"a": math.log(c["A"]), "b": math.log(c["B"]), "e": math.log(c["E"]), "alpha": c["alpha"],
                "beta": c["beta"]}

    return Setup(ChinchillaKernel(xn, xd, np.log(d["loss"]), delta), starts, to_coef, log_coef)


def _kaplan_setup(d, delta, grid, base) -> Setup:
    xn, xd, mn, md = _centered(d["params"], d["tokens"])
    starts = start_grid(grid, KAPLAN.internal)
    starts[:, 0] -= mn
    starts[:, 1] -= md

    def to_coef(th):
        th = np.asarray(th, float)
        return {"Nc": np.exp(th[..., 0] + mn), "Dc": np.exp(th[..., 1] + md), "alpha_N": th[..., 2],
                "alpha_D": th[..., 3]}

    def log_coef(c):
        return {"log_Nc": math.log(c["Nc"]), "log_Dc": math.log(c["Dc"]), "alpha_N": c["alpha_N"],
                "alpha_D": c["alpha_D"]}

    return Setup(KaplanKernel(xn, xd, np.log(d["loss"]), delta), starts, to_coef, log_coef)


def _muennighoff_setup(d, delta, grid, base) -> Setup:
    kernel = MuennighoffKernel.from_runs(d["params"], d["tokens"], d["unique_tokens"], d["loss"], base, delta)

    def to_coef(th):
        th = np.asarray(th, float)
        return {"R_D_star": np.exp(th[..., 0]), "R_N_star": np.exp(th[..., 1])}

    return Setup(kernel, np.log(start_grid(grid, ("R_D_star", "R_N_star"))), to_coef, lambda c: {})


CHINCHILLA = FormSpec("chinchilla", ("E", "A", "B", "alpha", "beta"), ("a", "b", "e", "alpha", "beta"),
                      ("params", "tokens"), HOFFMANN_GRID, CHINCHILLA_BOUNDS,
                      {"a": "log A", "b": "log B", "e": "log E"}, ("alpha", "beta"), _chinchilla_setup)
KAPLAN = FormSpec("kaplan", ("Nc", "Dc", "alpha_N", "alpha_D"), ("log_Nc", "log_Dc", "alpha_N", "alpha_D"),
                  ("params", "tokens"), KAPLAN_GRID, KAPLAN_BOUNDS, {}, ("alpha_N", "alpha_D"), _kaplan_setup)
MUENNIGHOFF = FormSpec("muennighoff", ("R_D_star", "R_N_star"), ("log_R_D_star", "log_R_N_star"),
                       ("params", "tokens", "unique_tokens"), MUENNIGHOFF_GRID, MUENNIGHOFF_BOUNDS,
                       {"log_R_D_star": "R_D*", "log_R_N_star": "R_N*"}, ("R_D_star", "R_N_star"),
                       _muennighoff_setup)
SPECS = {s.form: s for s in (CHINCHILLA, KAPLAN, MUENNIGHOFF)}


def base_coefficients(base: Any) -> dict[str, float]:
    """Chinchilla coefficients E, A, B, alpha, beta from a dict, a ``laws`` Law or a chinchilla FitResult."""
    if isinstance(base, FitResult) or (hasattr(base, "coefficients") and hasattr(base, "form")):
        if base.form != "chinchilla":
            raise FitError(f"muennighoff base must be a chinchilla fit or law, got {base.form}", field="base")
        base = base.coefficients
    if not isinstance(base, Mapping) or any(k not in base for k in ("E", "A", "B", "alpha", "beta")):
        raise FitError("muennighoff base needs chinchilla coefficients E, A, B, alpha, beta", field="base")
    out = {k: float(base[k]) for k in ("E", "A", "B", "alpha", "beta")}
    if not all(math.isfinite(v) and v > 0 for v in out.values()):
        raise FitError("muennighoff base coefficients must be positive and finite", field="base")
    return out


def _predict(form: str, c: Mapping[str, float], d: Mapping[str, np.ndarray]) -> np.ndarray:
    if form == "chinchilla":
        return chinchilla_loss(d["params"], d["tokens"], **c)
    if form == "kaplan":
        return kaplan_loss(d["params"], d["tokens"], **c)
    return muennighoff_loss(d["params"], d["tokens"], d["unique_tokens"], **c)


def _residual_stats(pred: np.ndarray, loss: np.ndarray) -> dict[str, float]:
    lr = np.log(pred) - np.log(loss)
    return {"rms_loss": float(np.sqrt(np.mean((pred - loss) ** 2))), "rms_log_loss": float(np.sqrt(np.mean(lr**2))),
            "max_abs_log_residual": float(np.max(np.abs(lr)))}


def summaries(names, samples: dict[str, np.ndarray] | None):
    """(stderr, ci95, samples) per coefficient; NaN / None without a bootstrap."""
    if samples is None:
        return ({k: math.nan for k in names}, {k: (math.nan, math.nan) for k in names}, {k: None for k in names})
    stderr = {k: float(np.std(samples[k], ddof=1)) if samples[k].size > 1 else math.nan for k in names}
    ci = {k: tuple(float(v) for v in np.percentile(samples[k], [2.5, 97.5])) for k in names}
    return stderr, ci, {k: samples[k] for k in names}


def fit_form(spec: FormSpec, runs: Mapping[str, Any], *, delta: float = DEFAULT_DELTA, bootstrap_n: int = 0,
             seed: int | None = 0, budget: float | None = None, progress: Progress | None = None,
             grid: Mapping[str, Sequence[float]] | None = None, source: str = "runs", base: Any = None,
             workers: int | None = 1) -> FitResult:
    """Fit ``spec``'s law to ``runs`` (arrays named by ``spec.inputs`` and ``loss``); see ``fit_chinchilla``."""
    d = as_arrays(**{k: runs[k] for k in (*spec.inputs, "loss")})
    n = d["loss"].size
    need_rows(n, len(spec.names), spec.form)
    grid = {**spec.grid, **(grid or {})}
    fixed = base_coefficients(base) if spec.form == "muennighoff" else {}
    st = spec.setup(d, delta, grid, fixed)
    lo, hi = bounds(spec.internal, spec.bounds)
    pr = Problem(st.kernel, st.starts, lo, hi, n)
    sol = solve(pr)
    coefs = {k: float(v) for k, v in st.to_coef(sol.theta).items()}
    samples = th = None
    if bootstrap_n:
        th = bootstrap(pr, sol.basins, int(bootstrap_n), np.random.default_rng(seed), progress, workers=workers)
        samples = {k: np.asarray(v, float) for k, v in st.to_coef(th).items()}
    stderr, ci, boot = summaries(spec.names, samples)
    stats = _residual_stats(_predict(spec.form, {**fixed, **coefs}, d), d["loss"])
    diags = dg.run_count(n, len(spec.names))
    derived: dict[str, float] = {}
    if spec.form == "muennighoff":
        epochs = d["tokens"] / d["unique_tokens"]
        stats.update(max_epochs=float(epochs.max()), n_repeated=float(np.sum(epochs > 1)))
        diags += dg.too_few_distinct({"N (params)": d["params"], "epochs (D/U)": np.round(epochs, 6)})
        diags.append(dg.residuals(stats))
        if not np.any(epochs > 1):
            diags.append(dg.note("not_identified", "no run repeats data (all D <= U): R_D* is not identified"))
        if not np.any(st.kernel.r_n > 0):
            diags.append(dg.note("not_identified", "no run has N above N_opt(U): R_N* is not identified"))
        derived = {"D_eff_saturation_multiple": 1.0 + coefs["R_D_star"],
                   "N_eff_saturation_multiple": 1.0 + coefs["R_N_star"]}
    else:
        stats.update(n_distinct_params=float(np.unique(d["params"]).size),
                     n_distinct_tokens=float(np.unique(d["tokens"]).size))
        diags += dg.too_few_distinct({"N (params)": d["params"], "D (tokens)": d["tokens"]})
        diags.append(dg.residuals(stats))
        diags += dg.grid_edge(st.log_coef(coefs), grid, spec.labels)
    diags += dg.at_bound(sol.theta, spec.internal, lo, hi, spec.labels)
    corr, r = dg.correlation(samples, *spec.pairs)
    diags += corr
    if samples is not None:
        stats[f"corr_{spec.pairs[0]}_{spec.pairs[1]}"] = r
        if spec.form != "muennighoff":
            diags += dg.bootstrap_at_bound(th, lo, hi)
    res = FitResult(spec.form, coefs, stderr, ci, boot, sol.objective, n, tuple(diags), derived=derived, stats=stats,
                    ranges=input_ranges(d), fixed=fixed, delta=delta, n_starts=st.starts.shape[0], source=source)
    return _with_derived(res, budget)


def _with_derived(res: FitResult, budget: float | None) -> FitResult:
    if res.form not in ("chinchilla", "kaplan"):
        return res
    opt = res.compute_optimal(budget if budget is not None else 1e21)
    keep = ("a", "b", "G") if budget is None else tuple(opt["value"])
    derived = {k: float(opt["value"][k]) for k in keep if k in opt["value"]}
    stderr = {k: v for k, v in opt["stderr"].items() if k in derived and k != "budget_flops"}
    ci = {k: v for k, v in opt["ci95"].items() if k in derived and k != "budget_flops"}
    return dataclasses.replace(res, derived=derived, derived_stderr=stderr, derived_ci95=ci)
