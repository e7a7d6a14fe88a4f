"""The scaling ladder to run next: small runs that pin down the loss-optimal plan at a target budget.

Method: **Fisher information of the Chinchilla form** (chosen over simulate-and-refit because it scores a
design in microseconds, so hundreds of candidate ladders can be compared; a simulate-and-refit score needs
hundreds of nonlinear refits per candidate). With log-loss noise sigma per run, the information of a set of runs
about theta = (log A, log B, log E, alpha, beta) is J = Σ_i g_i g_iᵀ / sigma² + J_prior, g_i = ∂ log L̂(N_i, D_i)
/ ∂theta, and the covariance of the fitted theta is about J⁻¹ (least squares in log loss; the Huber fit of
``planner fit`` scales it by a constant, which does not change which design is best). At the target C the plan's
loss L_opt(C) and log N_opt(C) (Hoffmann et al. 2022, eq. 4) then have variance ∇hᵀ J⁻¹ ∇h (delta method);
reported intervals come from draws theta ~ N(theta_hat, J⁻¹) (seeded).

Designs searched: ladders of ``levels`` compute budgets a factor ``ratio`` apart, ``sizes`` models per budget
with params a factor ``step`` apart around the law's N_opt at that budget, the largest budget set so that the
whole ladder costs exactly the probe budget P. The chosen design minimizes
var(L_opt)/var_baseline(L_opt) + var(log N_opt)/var_baseline(log N_opt), so both uncertainties count relative
to the usual practice. The baseline is a plain IsoFLOP ladder of the same compute: 4 budgets a factor 4 apart,
5 sizes a factor 2 apart at each (``BASELINE``). ``simulate_errors`` checks the choice by simulate-and-refit.

With existing runs (sequential design), their information (noise estimated from their fit residuals) is added
to every candidate, and the prior law is their fit.

Units: params, tokens, FLOPs = 6·N·D, loss nats/token, noise as a standard deviation of log loss.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.errors import InputError

DEFAULT_NOISE = 0.01  # log-loss SD per run: our stated default (about 1% of the loss), used without --runs
MIN_NOISE = 1e-3
PRIOR_SD = np.array([3.0, 3.0, 1.0, 0.5, 0.5])  # weak prior on (log A, log B, log E, alpha, beta): regularizes J
BASELINE = {"levels": 4, "ratio": 4.0, "sizes": 5, "step": 2.0}
FAMILY = {"levels": (1, 2, 3, 4, 5, 6, 8), "ratio": (2.0, 3.0, 4.0, 6.0, 8.0, 16.0),
          "sizes": (3, 4, 5, 6, 8, 10, 12), "step": (1.25, 1.5, 2.0, 2.5, 3.0, 4.0)}
MIN_PARAMS = 2e7  # searched designs: no model below 20M params (the smallest Chinchilla runs are ~4e7)
TOKENS_PER_PARAM = (1.0, 1000.0)  # searched designs: D/N within this range, where the law was fitted or near
PROBE_VOCAB = 32_000  # shapes of probe runs: Llama 2's vocabulary (Touvron et al. 2023); with 128k most of a
# 30M-param probe would be embeddings
N_DRAWS = 4000
CI = 0.95


# ---------------------------------------------------------------------------------------- the model


def theta_of(coefs) -> np.ndarray:
    """(log A, log B, log E, alpha, beta) from Chinchilla coefficients."""
    return np.array([math.log(coefs["A"]), math.log(coefs["B"]), math.log(coefs["E"]), coefs["alpha"],
                     coefs["beta"]], float)


def log_loss(theta: np.ndarray, n, d) -> np.ndarray:
    """log L̂ for theta (..., 5) at params n and tokens d (broadcast)."""
    th = np.asarray(theta, float)
    a, b, e, al, be = (th[..., k, None] for k in range(5))
    return np.logaddexp(np.logaddexp(a - al * np.log(n), b - be * np.log(d)), e)


def log_loss_grad(theta: np.ndarray, n, d) -> np.ndarray:
    """∂ log L̂ / ∂theta at each run: (..., runs, 5)."""
    th = np.asarray(theta, float)
    a, b, e, al, be = (th[..., k, None] for k in range(5))
    ln, ld = np.log(n), np.log(d)
    lse = log_loss(th, n, d)
    w1, w2, w3 = np.exp(a - al * ln - lse), np.exp(b - be * ld - lse), np.exp(e - lse)
    return np.stack([w1, w2, w3, -w1 * ln, -w2 * ld], axis=-1)


def fisher(theta: np.ndarray, n, d, noise: float) -> np.ndarray:
    """Σ g gᵀ / noise² over runs (n, d) for log-loss noise ``noise``."""
    g = log_loss_grad(theta, np.asarray(n, float), np.asarray(d, float))
    return np.einsum("...ri,...rj->...ij", g, g) / noise**2


def targets(theta: np.ndarray, flops: float) -> np.ndarray:
    """(L_opt, log N_opt) at ``flops`` (Hoffmann et al. 2022, eq. 4), for theta (..., 5) -> (..., 2)."""
    th = np.asarray(theta, float)
    a, b, e, al, be = (th[..., k] for k in range(5))
    log_g = (np.log(al) + a - np.log(be) - b) / (al + be)
    log_n = log_g + be / (al + be) * math.log(flops / 6.0)
    log_d = math.log(flops / 6.0) - log_n
    loss = np.exp(e) + np.exp(a - al * log_n) + np.exp(b - be * log_d)
    return np.stack([loss, log_n], axis=-1)


def _target_grad(theta: np.ndarray, flops: float) -> np.ndarray:
    """∂(L_opt, log N_opt)/∂theta by central differences: (2, 5)."""
    h = 1e-6 * np.maximum(1.0, np.abs(theta))
    out = np.empty((2, 5))
    for k in range(5):
        up, dn = theta.copy(), theta.copy()
        up[k] += h[k]
        dn[k] -= h[k]
        out[:, k] = (targets(up, flops) - targets(dn, flops)) / (2 * h[k])
    return out


# -------------------------------------------------------------------------------------- the designs


def ladder_runs(theta: np.ndarray, probe_flops: float, levels: int, ratio: float, sizes: int,
                step: float) -> tuple[np.ndarray, np.ndarray]:
    """(params, tokens) of a ladder costing exactly ``probe_flops`` (see the module doc)."""
    c_rel = ratio ** -np.arange(levels, dtype=float)
    c = probe_flops * c_rel / (sizes * c_rel.sum())
    n_opt = np.array([math.exp(targets(theta, float(ck))[1]) for ck in c])
    offsets = step ** (np.arange(sizes) - (sizes - 1) / 2.0)
    n = (n_opt[:, None] * offsets[None, :]).ravel()
    d = (np.repeat(c, sizes)) / (6.0 * n)
    return n, d


def _valid(n: np.ndarray, d: np.ndarray) -> bool:
    r = d / n
    return bool(n.min() >= MIN_PARAMS and r.min() >= TOKENS_PER_PARAM[0] and r.max() <= TOKENS_PER_PARAM[1])


def _variances(theta, j_base, n, d, noise, grad) -> np.ndarray:
    j = j_base + fisher(theta, n, d, noise)
    cov = np.linalg.inv(j)
    return np.einsum("ij,jk,ik->i", grad, cov, grad)


def _spread(theta, cov, flops, seed, grad) -> dict[str, Any]:
    """95% intervals from seeded draws theta ~ N(theta_hat, cov); standard deviations by the delta method."""
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(theta, cov, size=N_DRAWS, method="svd")
    draws = draws[(draws[:, 3] > 0) & (draws[:, 4] > 0)]
    t = targets(draws, flops)
    q = [50 * (1 - CI), 50 * (1 + CI)]
    lo_l, hi_l = np.percentile(t[:, 0], q)
    lo_n, hi_n = np.exp(np.percentile(t[:, 1], q))
    sd = np.sqrt(np.einsum("ij,jk,ik->i", grad, cov, grad))
    return {"loss_ci": (float(lo_l), float(hi_l)), "params_opt_ci": (float(lo_n), float(hi_n)),
            "loss_sd": float(sd[0]), "log_params_opt_sd": float(sd[1])}


# --------------------------------------------------------------------------------------- the outputs


class LadderRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    params: float
    tokens: float
    flops: float = Field(description="6·N·D")
    gpu_hours: float
    cost_usd: float
    shape: dict[str, Any] = Field(description="layers, d_model, heads, kv_heads, ffn_hidden, vocab, params")


class Prediction(BaseModel):
    model_config = ConfigDict(frozen=True)

    loss_ci: tuple[float, float] = Field(description="95% interval of the loss-optimal loss at the target")
    params_opt_ci: tuple[float, float] = Field(description="95% interval of N_opt at the target")
    loss_sd: float = Field(description="delta-method standard deviation of the optimal loss (nats/token)")
    log_params_opt_sd: float = Field(description="delta-method standard deviation of log N_opt")


class LadderDesign(BaseModel):
    model_config = ConfigDict(frozen=True)

    levels: int
    ratio: float
    sizes: int
    step: float
    runs: list[LadderRun]
    total_flops: float
    predicted: Prediction


class Ladder(BaseModel):
    """``planner ladder`` output: the proposed runs, their predicted intervals at the target, and the baseline."""

    model_config = ConfigDict(frozen=True)

    target_flops: float
    probe_budget: float
    law: str
    gpu: str
    noise: float = Field(description="log-loss SD per run")
    noise_source: str
    method: str
    point: dict[str, float] = Field(description="the prior law's loss_opt and params_opt at the target")
    runs: list[LadderRun]
    total_flops: float
    predicted: Prediction
    design: dict[str, float]
    baseline: LadderDesign
    existing_runs: int = 0
    notes: list[str] = Field(default_factory=list)


def run_cost(params: float, tokens: float, gpu: str) -> tuple[float, float]:
    """(device-hours, dollars) of one run: the ONE adapter to the cost model, ``planner cost`` (the cluster model
    on the fewest whole nodes that hold the model and finish in 30 days)."""
    from planner.evaluate import RunRequest, estimate_run

    est = estimate_run(RunRequest(params=params, tokens=tokens, gpu=gpu))
    return float(est.gpu_hours), float(est.cost_usd)


def _run(params: float, tokens: float, gpu: str, vocab: int) -> LadderRun:
    from planner.rounding import fit_shape

    hours, usd = run_cost(params, tokens, gpu)
    fs = fit_shape(params, vocab=vocab)
    s = fs.shape
    shape = {"layers": s.layers, "d_model": s.d_model, "heads": s.heads, "kv_heads": s.kv_heads,
             "ffn_hidden": s.ffn_hidden, "vocab": s.vocab, "params": fs.achieved}
    return LadderRun(params=params, tokens=tokens, flops=6.0 * params * tokens, gpu_hours=hours, cost_usd=usd,
                     shape=shape)


# ------------------------------------------------------------------------------------------ search


def _check(name: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not (isinstance(v, int | float) and math.isfinite(v) and lo <= v <= hi):
        raise InputError(name, f"must be a number in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _prior(law, runs, given_noise: float | None) -> tuple[np.ndarray, np.ndarray, float, str, str, list[str]]:
    """theta, base information (prior + existing runs), noise, its source, law label, notes."""
    from planner.robust import _resolve_law

    law = _resolve_law(law)
    if law.form != "chinchilla":
        raise InputError("law", f"the ladder uses the Chinchilla form; law {law.id} is {law.form}")
    theta, label, notes = theta_of(law.coefficients), law.id, []
    noise, source = DEFAULT_NOISE, "stated default (about 1% of the loss per run; set --noise or give --runs)"
    j = np.diag(1.0 / PRIOR_SD**2)
    if runs is not None:
        from laws.fit import fit_chinchilla

        n, d, y = (np.asarray(getattr(runs, k), float) for k in ("params", "tokens", "loss"))
        if n.size >= 6:
            fit = fit_chinchilla(n, d, y)
            theta, label = theta_of(fit.coefficients), f"fit of {n.size} existing runs"
            rms = float(np.sqrt(np.mean((log_loss(theta, n, d) - np.log(y)) ** 2)))
            noise = max(MIN_NOISE, rms * math.sqrt(n.size / (n.size - 5)))
            source = f"residual RMS of the fit to the {n.size} existing runs (dof-corrected)"
        else:
            notes.append(f"{n.size} existing runs are too few to fit (need 6): prior law {law.id} kept")
        if given_noise is not None:
            noise, source = given_noise, "given"
        j = j + fisher(theta, n, d, noise)
    elif given_noise is not None:
        noise, source = given_noise, "given"
    return theta, j, noise, source, label, notes


def ladder(target_flops: float, probe_budget: float, *, runs: Any = None, gpu: str = "h100", law: Any = None,
           noise: float | None = None, seed: int = 0, vocab: int = PROBE_VOCAB) -> Ladder:
    """Propose the runs (total ≤ ``probe_budget`` FLOPs) that best pin down the loss-optimal plan at
    ``target_flops``, next to an IsoFLOP baseline of equal compute. See the module doc."""
    c = _check("target_flops", target_flops, 1e10, 1e32)
    p = _check("probe_budget", probe_budget, 1e10, 1e32)
    if isinstance(vocab, bool) or not isinstance(vocab, int) or not 256 <= vocab <= 1_000_000:
        raise InputError("vocab", f"must be an integer in [256, 1000000], got {vocab!r}")
    if p >= c:
        raise InputError("probe_budget", f"must be below the target ({c:.3g} FLOPs), got {p:.3g}")
    from cost_models.catalog import load_catalog

    if gpu not in load_catalog().ids():
        raise InputError("gpu", f"unknown accelerator {gpu!r}; allowed: {', '.join(load_catalog().ids())}")
    given = None if noise is None else _check("noise", noise, 1e-5, 1.0)
    theta, j0, nz, source, label, notes = _prior(law, runs, given)
    grad = _target_grad(theta, c)
    nb, db = ladder_runs(theta, p, **BASELINE)
    if not _valid(nb, db):
        notes.append(f"the IsoFLOP baseline has runs outside the searched range (N >= {MIN_PARAMS:.0e}, "
                     f"{TOKENS_PER_PARAM[0]:g} <= D/N <= {TOKENS_PER_PARAM[1]:g}) at this probe budget")
    vb = _variances(theta, j0, nb, db, nz, grad)
    best, best_score = None, math.inf
    for lv, r, m, st in itertools.product(*FAMILY.values()):
        n, d = ladder_runs(theta, p, lv, r, m, st)
        if not _valid(n, d):
            continue
        score = float(np.sum(_variances(theta, j0, n, d, nz, grad) / vb))
        if score < best_score - 1e-12:
            best, best_score = {"levels": lv, "ratio": r, "sizes": m, "step": st}, score
    if best is None:
        raise InputError("probe_budget", f"{p:.3g} FLOPs buys no ladder of models with N >= {MIN_PARAMS:.0e} and "
                         f"{TOKENS_PER_PARAM[0]:g} <= D/N <= {TOKENS_PER_PARAM[1]:g}; raise it")
    n, d = ladder_runs(theta, p, **best)

    def design(dn, dd, spec, s) -> tuple[list[LadderRun], Prediction]:
        cov = np.linalg.inv(j0 + fisher(theta, dn, dd, nz))
        return [_run(float(a), float(b), gpu, vocab) for a, b in zip(dn, dd, strict=True)], Prediction(
            **_spread(theta, cov, c, s, grad))

    runs_p, pred_p = design(n, d, best, seed)
    runs_b, pred_b = design(nb, db, BASELINE, seed)
    base = LadderDesign(**BASELINE, runs=runs_b, total_flops=float(np.sum(6 * nb * db)), predicted=pred_b)
    point = targets(theta, c)
    if best_score >= 2.0:
        notes.append("no ladder within the searched range beats the IsoFLOP baseline on the law's own terms here")
    return Ladder(target_flops=c, probe_budget=p, law=label, gpu=gpu, noise=nz, noise_source=source,
                  method="fisher information of the Chinchilla form (delta method; intervals from normal draws)",
                  point={"loss_opt": float(point[0]), "params_opt": float(math.exp(point[1]))},
                  runs=runs_p, total_flops=float(np.sum(6 * n * d)), predicted=pred_p,
                  design={**best, "score": best_score}, baseline=base,
                  existing_runs=0 if runs is None else int(np.size(runs.params)), notes=notes)


# ---------------------------------------------------------------------------------------- the check


def simulate_errors(theta_true: np.ndarray, n, d, noise: float, flops: float, seeds: int = 200,
                    seed: int = 0, iterations: int = 40) -> np.ndarray:
    """Realized errors at ``flops`` of least-squares refits on simulated runs: (seeds, 2) array of
    (L_opt_hat - L_opt, log N_opt_hat - log N_opt).

    Each seed draws log L_i = log L̂_true(N_i, D_i) + noise·z_i and refits theta by Levenberg-Marquardt (all
    seeds at once, started at the truth); refits with a non-positive exponent count at the start point.
    """
    n, d = np.asarray(n, float), np.asarray(d, float)
    rng = np.random.default_rng(seed)
    y = log_loss(theta_true, n, d)[None, :] + noise * rng.standard_normal((seeds, n.size))
    th = np.tile(theta_true, (seeds, 1))
    lam = np.full(seeds, 1e-3)

    def sse(t):
        return np.sum((log_loss(t, n, d) - y) ** 2, axis=1)

    cur = sse(th)
    eye = np.eye(5)
    for _ in range(iterations):
        g = log_loss_grad(th, n, d)
        r = log_loss(th, n, d) - y
        jtj = np.einsum("sri,srj->sij", g, g)
        jtr = np.einsum("sri,sr->si", g, r)
        a = jtj + lam[:, None, None] * (np.einsum("sii->si", jtj)[:, :, None] * eye + 1e-12 * eye)
        step = np.linalg.solve(a, -jtr[..., None])[..., 0]
        cand = th + step
        cand[:, 3:] = np.maximum(cand[:, 3:], 1e-4)
        new = sse(cand)
        ok = new < cur
        th[ok], cur[ok] = cand[ok], new[ok]
        lam = np.where(ok, lam / 3, lam * 4)
    return targets(th, flops) - targets(theta_true, flops)[None, :]


__all__ = ["BASELINE", "DEFAULT_NOISE", "Ladder", "fisher", "ladder", "ladder_runs", "run_cost",
           "simulate_errors", "targets"]
