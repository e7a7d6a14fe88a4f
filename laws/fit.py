"""Fit scaling laws to training runs: the Hoffmann et al. 2022 / Epoch 2024 method, vectorized.

Loss laws are fitted in log space: minimize sum_i Huber_delta(log L_hat(N_i, D_i) - log L_i), delta = 1e-3
(a SUM, not a mean: Besiroglu et al. 2024 trace Hoffmann's early stop to the mean), by L-BFGS from every point
of a start grid, keeping the best. Here the grid is run as one batch: a numpy L-BFGS-B (projected, backtracking
Armijo) advances all starts at once on arrays of shape (starts, runs) with analytic gradients; the few best
distinct end points are polished with ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)``.
``benchmarks/bench_fit.py`` checks that this reaches the optimum of a plain per-start scipy loop.

Bootstrap: runs are resampled with replacement (multinomial counts used as weights, numpy Generator seeded by
``seed``); each replicate is refitted by the batched L-BFGS started from every distinct local optimum the
full-data grid search found (the best one included), so all replicates run as one batch.

Units: params N in parameters, tokens D in tokens, loss L in nats/token (any unit works, consistently),
budgets C in FLOPs with C = 6·N·D.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

DEFAULT_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2 (eq. 11): Huber delta on log loss

# Hoffmann et al. 2022, App. D.2: start grid for (alpha, beta, e, a, b); 5*5*5*6*6 = 4,500 starts (laws.md §2
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
# tied): huggingface/datablations README / utils/parametric_fit.ipynb; laws.md §7 [V-authors]. The authors' code
# holds log values a = 6.255414, b = 7.3049974, e = 0.6254804 (A 520.82, B 1487.72, E 1.8691 are these rounded);
# the exact exponentials reproduce their README oracles to 1e-16 and their objective 0.0158259 to 1e-9.
MUENNIGHOFF_BASE: dict[str, float] = {"E": math.exp(0.6254804), "A": math.exp(6.255414), "B": math.exp(7.3049974),
                                      "alpha": 0.3526596, "beta": 0.3526596}
# Muennighoff et al. 2023 published decay constants (same source), for reference and tests.
MUENNIGHOFF_RSTAR: dict[str, float] = {"R_D_star": 15.387756, "R_N_star": 5.309743}
MUENNIGHOFF_GRID = {"R_D_star": (1.0, 3.0, 10.0, 30.0, 100.0, 300.0), "R_N_star": (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)}
MUENNIGHOFF_BOUNDS = {"log_R_D_star": (math.log(1e-3), math.log(1e6)), "log_R_N_star": (math.log(1e-3), math.log(1e6))}

FORMS = ("chinchilla", "kaplan", "muennighoff", "power")
CORR_LIMIT = 0.9  # |corr(alpha, beta)| across bootstraps above this => "poorly identified"
BASIN_FACTOR = 1.5  # bootstrap refits start from every full-data local optimum with objective <= 1.5 x best
MIN_DISTINCT = 3  # fewer distinct N (or D) values than this => warning

Progress = Callable[[int, int], None]


class FitError(ValueError):
    """Inputs a fit cannot use; ``field`` names the offending input."""

    def __init__(self, message: str, field: str = "runs"):
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------------------------------- Huber


def huber(r: np.ndarray, delta: float = DEFAULT_DELTA) -> np.ndarray:
    """Huber loss of residuals r: r²/2 for |r| <= delta, delta·(|r| - delta/2) beyond (scipy.special.huber)."""
    r = np.asarray(r, dtype=float)
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


# -------------------------------------------------------------------------------- objective kernels
# Each kernel takes parameters theta of shape (S, p) (S problems, e.g. starts x bootstrap replicates),
# per-problem run weights w of shape (S, n) or None, and returns (f (S,), grad (S, p)).


_CHUNK_ELEMS = 8192  # rows x runs per kernel call: 64 KB temporaries stay in cache and below malloc's mmap
# threshold (128 KB); about 5x faster than one pass over (starts, runs)


def _chunked(kernel, theta, w, n, p):
    """Evaluate kernel(theta_chunk, w_chunk) -> (f, g) over row chunks of theta (S, p)."""
    S = theta.shape[0]
    rows = max(1, _CHUNK_ELEMS // max(n, 1))
    if S <= rows:
        return kernel(theta, w)
    f, g = np.empty(S), np.empty((S, p))
    for s0 in range(0, S, rows):
        f[s0 : s0 + rows], g[s0 : s0 + rows] = kernel(theta[s0 : s0 + rows], None if w is None else w[s0 : s0 + rows])
    return f, g


def _softmax_terms(ts):
    """In place: each t -> exp(t - max) (floored at exp(-60) to avoid denormals); returns (max, sum)."""
    m = ts[0].copy()
    for t in ts[1:]:
        np.maximum(m, t, out=m)
    s = np.zeros_like(m)
    for t in ts:
        t -= m
        np.maximum(t, -60.0, out=t)
        np.exp(t, out=t)
        s += t
    return m, s


def _huber_terms(r, delta, w):
    """Huber values h and slopes hp of residuals r (hp·(r - hp/2) is r²/2 inside delta, delta(|r| - delta/2) out)."""
    hp = np.clip(r, -delta, delta)
    h = r - 0.5 * hp
    h *= hp
    if w is not None:
        h *= w
        hp *= w
    return h, hp


def _chinchilla_fg(theta, xn, xd, y, w, delta):
    """Theta columns (a, b, e, alpha, beta); residual LSE(a - alpha·xn, b - beta·xd, e) - y."""

    def kernel(th, ww):
        a, b, e, al, be = (th[:, k : k + 1] for k in range(5))
        t1 = a - al * xn
        t2 = b - be * xd
        if t1.max() < 600.0 and t2.max() < 600.0 and e.min() > -600.0:
            # fast path (no overflow possible): plain exponentials; exp(e) is one number per row
            for t in (t1, t2):
                np.maximum(t, -600.0, out=t)
                np.exp(t, out=t)
            ee = np.exp(e)
            s = t1 + t2
            s += ee
            r = np.log(s)
            r -= y
            h, hp = _huber_terms(r, delta, ww)
            hp /= s
            t1 *= hp
            t2 *= hp
            grad = np.stack([t1.sum(1), t2.sum(1), ee[:, 0] * hp.sum(1), -(t1 @ xn), -(t2 @ xd)], axis=1)
            return h.sum(1), grad
        t3 = np.repeat(e, xn.size, axis=1)
        m, s = _softmax_terms((t1, t2, t3))
        r = np.log(s)
        r += m
        r -= y
        h, hp = _huber_terms(r, delta, ww)
        hp /= s
        t1 *= hp
        t2 *= hp
        t3 *= hp
        grad = np.stack([t1.sum(1), t2.sum(1), t3.sum(1), -(t1 @ xn), -(t2 @ xd)], axis=1)
        return h.sum(1), grad

    return _chunked(kernel, theta, w, xn.size, 5)


def _kaplan_fg(theta, xn, xd, y, w, delta):
    """Theta columns (nc, dc, alpha_N, alpha_D); log L = alpha_D·LSE((alpha_N/alpha_D)(nc - xn), dc - xd)."""

    def kernel(th, ww):
        nc, dc, an, ad = (th[:, k : k + 1] for k in range(4))
        p = an / ad
        u = nc - xn
        t1, t2 = p * u, dc - xd
        m, s = _softmax_terms((t1, t2))
        lse = np.log(s)
        lse += m
        h, hp = _huber_terms(ad * lse - y, delta, ww)
        hp /= s
        t1 *= hp  # hp·w1
        t2 *= hp  # hp·w2
        hl = hp * s  # Huber slope again (hp was divided by s)
        grad = np.stack([t1.sum(1) * an[:, 0], t2.sum(1) * ad[:, 0], (t1 * u).sum(1),
                         (hl * lse).sum(1) - (t1 * u).sum(1) * p[:, 0]], axis=1)
        return h.sum(1), grad

    return _chunked(kernel, theta, w, xn.size, 4)


def _effective(u, r, rstar):
    """U·(1 + R*·(1 - exp(-R/R*))) and its derivative in log R* (Muennighoff et al. 2023, eq. 5 / 6)."""
    x = np.exp(-r / rstar)
    val = u * (1.0 + rstar * (1.0 - x))
    dlog = u * (rstar * (1.0 - x) - r * x)  # d val / d log R*
    return val, dlog


@dataclass(frozen=True)
class _MuennighoffData:
    """Per-run quantities of the data-constrained form that do not depend on R_D*, R_N*."""

    u_d: np.ndarray
    r_d: np.ndarray
    u_n: np.ndarray
    r_n: np.ndarray
    y: np.ndarray
    base: Mapping[str, float]


def _muennighoff_data(params, tokens, unique_tokens, loss, base) -> _MuennighoffData:
    al, be = base["alpha"], base["beta"]
    g = (al * base["A"] / (be * base["B"])) ** (1.0 / (al + be))
    n_opt_u = g * (unique_tokens * g) ** (be / al)  # Chinchilla-optimal N for U_D tokens (laws.md §7)
    u_n = np.minimum(params, n_opt_u)
    return _MuennighoffData(
        u_d=unique_tokens, r_d=np.maximum(tokens / unique_tokens - 1.0, 0.0), u_n=u_n,
        r_n=np.maximum(params / u_n - 1.0, 0.0), y=np.log(loss), base=dict(base))


def _muennighoff_fg(theta, md: _MuennighoffData, w, delta):
    """Theta columns (log R_D*, log R_N*); base A, B, E, alpha, beta fixed."""
    b = md.base
    la, lb, le = math.log(b["A"]), math.log(b["B"]), math.log(b["E"])

    def kernel(th, ww):
        rd, rn = np.exp(th[:, 0:1]), np.exp(th[:, 1:2])
        dp, ddp = _effective(md.u_d, md.r_d, rd)
        np_, dnp = _effective(md.u_n, md.r_n, rn)
        t1 = la - b["alpha"] * np.log(np_)
        t2 = lb - b["beta"] * np.log(dp)
        t3 = np.full_like(t1, le)
        m, s = _softmax_terms((t1, t2, t3))
        r = np.log(s)
        r += m
        r -= md.y
        h, hp = _huber_terms(r, delta, ww)
        hp /= s
        grad = np.stack([-b["beta"] * (hp * t2 * ddp / dp).sum(1), -b["alpha"] * (hp * t1 * dnp / np_).sum(1)],
                        axis=1)
        return h.sum(1), grad

    return _chunked(kernel, theta, w, md.y.size, 2)


# ------------------------------------------------------------------------------- batched L-BFGS-B


def minimize_batched(
    fg: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    memory: int = 10,
    max_iter: int = 2000,
    gtol: float = 1e-9,
    ftol: float = 1e-14,
    max_backtrack: int = 50,
    max_step: float = 100.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimize S independent problems at once: projected L-BFGS with a backtracking Armijo line search.

    ``fg(x, rows)`` returns (f (k,), grad (k, p)) for the problems ``rows`` at points x (k, p). Problems stop
    on their own when the projected gradient's max norm is <= gtol, the objective's relative decrease is
    <= ftol for 3 consecutive steps, or the line search fails. No step moves a coordinate by more than
    ``max_step``. Returns (x, f, iterations), one row per problem.
    """
    x = np.clip(np.array(x0, dtype=float), lower, upper)
    S, p = x.shape
    rows_all = np.arange(S)
    f, g = fg(x, rows_all)
    s_hist = np.zeros((S, memory, p))
    y_hist = np.zeros((S, memory, p))
    rho = np.zeros((S, memory))
    stall = np.zeros(S, dtype=int)
    iters = np.zeros(S, dtype=int)
    active = np.isfinite(f)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xa, fa, ga = x[idx], f[idx], g[idx]
        blocked = ((xa <= lower) & (ga > 0)) | ((xa >= upper) & (ga < 0))
        pg = np.where(blocked, 0.0, ga)
        done = np.abs(pg).max(axis=1) <= gtol
        # two-loop recursion (newest pair last), restricted to the free variables
        sh, yh, rh = s_hist[idx], y_hist[idx], rho[idx]
        q = pg.copy()
        alph = np.empty((idx.size, memory))
        for j in range(memory - 1, -1, -1):
            alph[:, j] = rh[:, j] * np.einsum("ij,ij->i", sh[:, j], q)
            q -= alph[:, j, None] * yh[:, j]
        yy = np.einsum("ij,ij->i", yh[:, -1], yh[:, -1])
        has_mem = rh[:, -1] > 0
        gamma = np.where(has_mem, np.einsum("ij,ij->i", sh[:, -1], yh[:, -1]) / np.where(yy > 0, yy, 1.0), 1.0)
        r = gamma[:, None] * q
        for j in range(memory):
            bj = rh[:, j] * np.einsum("ij,ij->i", yh[:, j], r)
            r += sh[:, j] * (alph[:, j] - bj)[:, None]
        d = np.where(blocked, 0.0, -r)
        slope = np.einsum("ij,ij->i", d, pg)
        reset = ~(slope < 0)
        if reset.any():
            d[reset] = -pg[reset]
            rho[idx[reset]] = 0.0
            has_mem &= ~reset
        # first step without curvature memory: unit length; any step at most MAX_STEP in every coordinate
        dmax = np.abs(d).max(axis=1)
        t = np.where(has_mem, 1.0, 1.0 / np.maximum(dmax, 1.0))
        t = np.minimum(t, max_step / np.maximum(dmax, 1e-300))
        xn = np.clip(xa + t[:, None] * d, lower, upper)
        pending = ~done
        fn = fa.copy()
        gn = ga.copy()
        for _ls in range(max_backtrack):
            pi = np.flatnonzero(pending)
            if pi.size == 0:
                break
            ft, gt = fg(xn[pi], idx[pi])
            ok = np.isfinite(ft) & (ft <= fa[pi] + 1e-4 * np.einsum("ij,ij->i", ga[pi], xn[pi] - xa[pi]))
            acc = pi[ok]
            fn[acc], gn[acc] = ft[ok], gt[ok]
            pending[acc] = False
            rej = pi[~ok]
            t[rej] *= 0.5
            xn[rej] = np.clip(xa[rej] + t[rej, None] * d[rej], lower, upper)
        failed = pending  # line search did not find a decrease: treat as converged
        moved = ~done & ~failed
        mi = idx[moved]
        s = xn[moved] - xa[moved]
        yv = gn[moved] - ga[moved]
        sy = np.einsum("ij,ij->i", s, yv)
        good = sy > 1e-10 * np.sqrt(np.einsum("ij,ij->i", s, s) * np.einsum("ij,ij->i", yv, yv))
        gi = mi[good]
        if gi.size:
            s_hist[gi] = np.concatenate([s_hist[gi, 1:], s[good, None]], axis=1)
            y_hist[gi] = np.concatenate([y_hist[gi, 1:], yv[good, None]], axis=1)
            rho[gi] = np.concatenate([rho[gi, 1:], (1.0 / sy[good])[:, None]], axis=1)
        small = (fa[moved] - fn[moved]) <= ftol * np.maximum(np.abs(fa[moved]), 1e-300)
        stall[mi] = np.where(small, stall[mi] + 1, 0)
        x[mi], f[mi], g[mi] = xn[moved], fn[moved], gn[moved]
        iters[mi] += 1
        active[idx[done | failed]] = False
        active[mi[stall[mi] >= 3]] = False
    return x, f, iters


def _polish(fg1, x0, lower, upper, *, maxiter: int = 20000) -> tuple[np.ndarray, float, bool]:
    """scipy L-BFGS-B from x0 with analytic gradient and tight tolerances; (x, f, success)."""
    bounds = [(None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi) for lo, hi in
              zip(lower, upper, strict=True)]

    def fun(v):
        f, g = fg1(v[None, :])
        return float(f[0]), g[0]

    res = minimize(fun, np.asarray(x0, float), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 20})
    return res.x, float(res.fun), bool(res.success)


# --------------------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class _Problem:
    """One fitting problem in internal coordinates (centered logs), shared by the point fit and bootstrap."""

    form: str
    internal: tuple[str, ...]
    names: tuple[str, ...]
    fg: Callable[..., tuple[np.ndarray, np.ndarray]]  # fg(theta, w) with w (S, n) or None
    to_coef: Callable[[np.ndarray], dict[str, np.ndarray]]  # (..., p) -> name -> (...)
    starts: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: int


def _distinct(x: np.ndarray, f: np.ndarray, k: int, *, ftol: float = 1e-9, xtol: float = 1e-3) -> list[int]:
    """Indices of up to k lowest-objective points that differ from each other (in objective or location)."""
    order = np.argsort(f, kind="stable")
    keep: list[int] = []
    for i in order:
        if not np.isfinite(f[i]):
            break
        if all(abs(f[i] - f[j]) > ftol * max(abs(f[j]), 1e-300) or np.max(np.abs(x[i] - x[j])) > xtol for j in keep):
            keep.append(int(i))
        if len(keep) >= k:
            break
    return keep


def _solve(pr: _Problem, *, n_polish: int = 5, n_basins: int = 4):
    """Batched L-BFGS from every start, scipy polish of the best distinct end points; (theta, f, basins)."""
    x, f, _ = minimize_batched(lambda th, rows: pr.fg(th, None), pr.starts, pr.lower, pr.upper, gtol=1e-6,
                               ftol=1e-9, max_iter=500)
    cand = _distinct(x, f, n_polish, ftol=1e-6, xtol=1e-2)
    polished = []
    for i in cand:
        xp, fp, _ = _polish(lambda th: pr.fg(th, None), x[i], pr.lower, pr.upper)
        if not fp <= f[i]:  # keep the batched point if scipy did not improve it
            xp, fp = x[i], float(f[i])
        polished.append((fp, xp))
    polished.sort(key=lambda t: t[0])
    px = np.array([p[1] for p in polished])
    pf = np.array([p[0] for p in polished])
    # warm starts for bootstrap refits: distinct optima with objective within BASIN_FACTOR of the best
    keep = [i for i in _distinct(px, pf, n_basins, ftol=1e-7, xtol=1e-2) if pf[i] <= BASIN_FACTOR * pf[0]]
    return px[0], float(pf[0]), px[keep]


def _bootstrap(pr: _Problem, basins: np.ndarray, n_boot: int, rng: np.random.Generator,
               progress: Progress | None, chunk: int | None = None) -> np.ndarray:
    """Refit n_boot resampled data sets, each from every basin; returns internal thetas (n_boot, p)."""
    n = pr.n
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)  # resampling with replacement
    k = basins.shape[0]
    if chunk is None:  # ~10 progress updates; batches of >= 100 replicates keep numpy efficient; <= 2M weights
        chunk = max(1, min(n_boot, max(100, -(-n_boot // 10)), 2_000_000 // max(1, n * k)))
    out = np.empty((n_boot, basins.shape[1]))
    if progress is not None:
        progress(0, n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        w = np.repeat(counts[start:stop], k, axis=0)
        x0 = np.tile(basins, (stop - start, 1))
        x, f, _ = minimize_batched(lambda th, rows, w=w: pr.fg(th, w[rows]), x0, pr.lower, pr.upper)
        f = np.where(np.isfinite(f), f, np.inf).reshape(stop - start, k)
        best = np.argmin(f, axis=1)
        out[start:stop] = x.reshape(stop - start, k, -1)[np.arange(stop - start), best]
        if progress is not None:
            progress(stop, n_boot)
    return out


# ------------------------------------------------------------------------------------------ result


def _pct(a: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(a, [2.5, 97.5])
    return float(lo), float(hi)


def _fmt_float(v: float) -> str:
    v = float(v)
    if not math.isfinite(v):
        raise FitError(f"cannot write non-finite value {v!r} to a law file", field="coefficients")
    return repr(v)


def _toml_str(s: str) -> str:
    return json.dumps(str(s), ensure_ascii=False)


_CITATIONS = {
    "chinchilla": "fitted by planner fit (Hoffmann et al. 2022 method: Huber delta {delta:g} on log loss, L-BFGS from "
                  "a {starts:,}-point grid)",
    "kaplan": "fitted by planner fit (Kaplan et al. 2020 form, eq. 1.5; Huber delta {delta:g} on log loss, L-BFGS "
              "from a {starts:,}-point grid)",
    "muennighoff": "fitted by planner fit (Muennighoff et al. 2023 data-constrained form; R_D*, R_N* fitted with the "
                   "base law held fixed; Huber delta {delta:g} on log loss, L-BFGS from a {starts:,}-point grid)",
    "power": "fitted by planner fit (power law, OLS in log space)",
}


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted law: values, bootstrap uncertainty and diagnostics (lmfit / scikit-learn style).

    ``coefficients`` name -> value (chinchilla: E, A, B, alpha, beta; kaplan: Nc, Dc, alpha_N, alpha_D;
    muennighoff: R_D_star, R_N_star with the base law in ``fixed``; power: k and a_<x> exponents).
    ``stderr`` / ``ci95`` are bootstrap standard deviations and 2.5-97.5 percentile intervals (NaN without a
    bootstrap; for the power law, OLS standard errors and t intervals then). ``bootstrap`` holds the samples
    (None without). ``objective`` is the minimized sum of Huber losses on log loss (power: sum of squared log
    residuals). ``derived``: quantities computed from the coefficients (with ``derived_stderr`` /
    ``derived_ci95`` when bootstrapped), e.g. N_opt, D_opt (tokens), tokens_per_param at ``budget_flops``.
    ``stats``: residual RMS in loss and log loss, distinct input values. ``ranges``: min/max of each input.
    """

    form: str
    coefficients: dict[str, float]
    stderr: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    bootstrap: dict[str, np.ndarray | None]
    objective: float
    n_runs: int
    diagnostics: tuple[str, ...]
    derived: dict[str, float] = field(default_factory=dict)
    derived_stderr: dict[str, float] = field(default_factory=dict)
    derived_ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)
    delta: float = DEFAULT_DELTA
    n_starts: int = 0
    source: str = "runs"
    target: str = "y"  # power law: the fitted column (e.g. "lr")

    # ------------------------------------------------------------------ evaluation
    def _all_coefficients(self) -> dict[str, Any]:
        return {**self.fixed, **self.coefficients}

    @property
    def bootstrap_samples(self) -> dict[str, np.ndarray] | None:
        """The bootstrap samples as name -> array, or None without a bootstrap."""
        if any(v is None for v in self.bootstrap.values()) or not self.bootstrap:
            return None
        return dict(self.bootstrap)  # type: ignore[arg-type]

    def predict(self, params=None, tokens=None, unique_tokens=None, **xs) -> np.ndarray:
        """Predicted loss (nats/token) at params N and tokens D (and unique_tokens U for muennighoff);
        for the power law, y at the named inputs (``predict(params=..., tokens=...)``)."""
        c = self._all_coefficients()
        if self.form == "power":
            xs = {k: v for k, v in {"params": params, "tokens": tokens, "unique_tokens": unique_tokens, **xs}.items()
                  if v is not None}
            return _power_predict(c, xs)
        if params is None or tokens is None:
            raise FitError(f"{self.form} predict needs params and tokens", field="params")
        n, d = np.asarray(params, float), np.asarray(tokens, float)
        if self.form == "chinchilla":
            return c["E"] + c["A"] * n ** (-c["alpha"]) + c["B"] * d ** (-c["beta"])
        if self.form == "kaplan":
            return ((c["Nc"] / n) ** (c["alpha_N"] / c["alpha_D"]) + c["Dc"] / d) ** c["alpha_D"]
        if unique_tokens is None:
            raise FitError("muennighoff predict needs unique_tokens", field="unique_tokens")
        return muennighoff_loss(n, d, np.asarray(unique_tokens, float), **c)

    def compute_optimal(self, budget: float) -> dict[str, Any]:
        """Loss-optimal N (params) and D (tokens) under 6·N·D = budget FLOPs, with bootstrap stderr / ci95.

        Chinchilla: N = G·(C/6)^(beta/(alpha+beta)), G = (alpha·A/(beta·B))^(1/(alpha+beta)) (Hoffmann eq. 4);
        Kaplan: N = (p·Nc^p·C/(6·Dc))^(1/(p+1)), p = alpha_N/alpha_D. Returns value / stderr / ci95 dicts.
        """
        if self.form not in ("chinchilla", "kaplan"):
            raise FitError(f"compute-optimal allocation is defined for chinchilla and kaplan fits, not {self.form}",
                           field="form")
        with np.errstate(all="ignore"):
            value = {k: float(v) for k, v in _optimal(self.form, self.coefficients, float(budget)).items()}
        out: dict[str, Any] = {"value": value, "stderr": {}, "ci95": {}}
        smp = self.bootstrap_samples
        if smp is not None:
            with np.errstate(all="ignore"):  # degenerate refits (alpha or beta at 0) give inf / nan allocations
                boot = _optimal(self.form, smp, float(budget))
                for k, v in boot.items():
                    v = np.asarray(v, float)
                    v = v[np.isfinite(v)]
                    if v.size > 1:
                        out["stderr"][k] = float(np.std(v, ddof=1))
                        out["ci95"][k] = _pct(v)
        return out

    # ------------------------------------------------------------------ reporting
    def summary(self) -> str:
        """A plain-text report: coefficients with stderr and 95% interval, derived values, diagnostics."""
        lines = [f"{self.form} fit to {self.source}: {self.n_runs} runs, objective {self.objective:.7g}"]
        for k, v in self.coefficients.items():
            se, (lo, hi) = self.stderr.get(k, math.nan), self.ci95.get(k, (math.nan, math.nan))
            lines.append(f"  {k:>12} = {v:<14.6g} stderr {se:<10.3g} 95% [{lo:.6g}, {hi:.6g}]")
        for k, v in self.derived.items():
            extra = ""
            if k in self.derived_ci95:
                lo, hi = self.derived_ci95[k]
                extra = f" 95% [{lo:.4g}, {hi:.4g}]"
            lines.append(f"  {k:>16} = {v:.6g}{extra}")
        lines += [f"  - {d}" for d in self.diagnostics]
        return "\n".join(lines)

    def to_dict(self, *, samples: bool = False) -> dict[str, Any]:
        """JSON-ready dict (bootstrap samples only if ``samples``)."""
        d = {
            "form": self.form, "coefficients": dict(self.coefficients), "stderr": dict(self.stderr),
            "ci95": {k: list(v) for k, v in self.ci95.items()}, "objective": self.objective,
            "n_runs": self.n_runs, "diagnostics": list(self.diagnostics), "derived": dict(self.derived),
            "derived_stderr": dict(self.derived_stderr),
            "derived_ci95": {k: list(v) for k, v in self.derived_ci95.items()}, "stats": dict(self.stats),
            "ranges": {k: list(v) for k, v in self.ranges.items()}, "fixed": dict(self.fixed), "delta": self.delta,
            "n_starts": self.n_starts, "source": self.source,
        }
        smp = self.bootstrap_samples
        d["n_bootstrap"] = 0 if smp is None else int(next(iter(smp.values())).size)
        if samples and smp is not None:
            d["bootstrap"] = {k: v.tolist() for k, v in smp.items()}
        return d

    def to_toml(self, path: str | Path, id: str, title: str | None = None, *, samples: bool = True) -> Path:
        """Write a law file in the catalog's schema (``[[law]]`` with ``[law.coefficients]`` and, with a
        bootstrap, ``[law.bootstrap]``), loadable by ``laws.catalog.load_law_file``. Floats keep full precision.

        Chinchilla and Kaplan fits load as those forms; a muennighoff file carries the base coefficients too
        (E, A, B, alpha, beta, R_D_star, R_N_star) and a power file ``k``, ``a_<x>`` and ``output`` (the
        fitted column).
        """
        if not isinstance(id, str) or not id.strip() or "#" in id:
            raise FitError(f"law id must be a non-empty string without '#', got {id!r}", field="id")
        form_title = {"chinchilla": "Chinchilla form", "kaplan": "Kaplan form", "muennighoff":
                      "Muennighoff data-constrained form", "power": "Power law"}[self.form]
        title = title or f"{form_title} fitted to {self.source}"
        citation = _CITATIONS[self.form].format(delta=self.delta, starts=self.n_starts)
        rng = self.ranges
        validity = ", ".join(f"{_SYMBOL.get(k, k)} in [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in rng.items())
        validity = f"{validity} of the fitted runs" if validity else "range of the fitted runs"
        coefs = self._all_coefficients()
        out = [
            "# Written by planner fit (laws/fit.py). Coefficients at full float precision.",
            "[[law]]",
            f"id = {_toml_str(id.strip())}",
            f"form = {_toml_str(self.form)}",
            f"title = {_toml_str(title)}",
            f"citation = {_toml_str(citation)}",
            'status = "fitted"',
            'params_counts = "as in the input runs"',
            'tokens_counts = "as in the input runs"',
            'loss_units = "as in the input runs"',
            f"validity = {_toml_str(validity)}",
            *([f"output = {_toml_str(self.target)}"] if self.form == "power" else []),
            "[law.coefficients]",
        ]
        out += [f"{k} = {_fmt_float(v)}" for k, v in coefs.items()]
        smp = self.bootstrap_samples
        if samples and smp is not None:
            m = next(iter(smp.values())).size
            full = {k: (smp[k] if k in smp else np.full(m, v)) for k, v in coefs.items()}
            out.append("[law.bootstrap]")
            for k, arr in full.items():
                vals = [_fmt_float(v) for v in np.asarray(arr, float)]
                chunks = [", ".join(vals[i : i + 6]) for i in range(0, len(vals), 6)]
                out.append(f"{k} = [\n  " + ",\n  ".join(chunks) + ",\n]")
        p = Path(path)
        p.write_text("\n".join(out) + "\n", encoding="utf-8")
        return p


_SYMBOL = {"params": "N", "tokens": "D", "unique_tokens": "U"}


def _optimal(form: str, c: Mapping[str, Any], budget: float) -> dict[str, Any]:
    if form == "chinchilla":
        al, be, A, B = (np.asarray(c[k], float) for k in ("alpha", "beta", "A", "B"))
        G = (al * A / (be * B)) ** (1.0 / (al + be))
        n = G * (budget / 6.0) ** (be / (al + be))
        d = budget / (6.0 * n)
        loss = np.asarray(c["E"], float) + A * n ** (-al) + B * d ** (-be)
        return {"budget_flops": np.full_like(n, budget), "N_opt": n, "D_opt": d, "tokens_per_param": d / n,
                "loss_opt": loss, "a": be / (al + be), "b": al / (al + be), "G": G}
    an, ad, nc, dc = (np.asarray(c[k], float) for k in ("alpha_N", "alpha_D", "Nc", "Dc"))
    p = an / ad
    # minimize (Nc/N)^p + 6·Dc·N/C over N: N^(p+1) = p·Nc^p·C/(6·Dc), in logs for range safety
    n = np.exp((np.log(p) + p * np.log(nc) + math.log(budget / 6.0) - np.log(dc)) / (p + 1.0))
    d = budget / (6.0 * n)
    loss = ((nc / n) ** p + dc / d) ** ad
    return {"budget_flops": np.full_like(n, budget), "N_opt": n, "D_opt": d, "tokens_per_param": d / n,
            "loss_opt": loss, "a": 1.0 / (p + 1.0), "b": p / (p + 1.0)}


# ------------------------------------------------------------------------------------------ inputs


def _arrays(**named) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    n = None
    for k, v in named.items():
        a = np.asarray(v, dtype=float).reshape(-1)
        if n is not None and a.size != n:
            raise FitError(f"{k} has {a.size} values but {next(iter(named))} has {n}", field=k)
        n = a.size
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            i = int(np.flatnonzero(~np.isfinite(a) | (a <= 0))[0])
            raise FitError(f"{k}[{i}] must be a positive finite number, got {a[i]!r}", field=k)
        out[k] = a
    return out


def _need_rows(n: int, p: int, form: str) -> None:
    if n < p:
        raise FitError(f"{n} runs; a {p}-coefficient {form} fit needs at least {p}", field="runs")


def _grid(spec: Mapping[str, Sequence[float]], order: Sequence[str]) -> np.ndarray:
    return np.array(list(itertools.product(*(spec[k] for k in order))), dtype=float)


def _bounds(names: Sequence[str], spec: Mapping[str, tuple[float, float]]):
    lo = np.array([spec.get(k, (-np.inf, np.inf))[0] for k in names])
    hi = np.array([spec.get(k, (-np.inf, np.inf))[1] for k in names])
    return lo, hi


def _distinct_diagnostics(values: Mapping[str, np.ndarray], n: int, p: int) -> list[str]:
    out = [f"{n} runs for {p} coefficients"]
    if n < 3 * p:
        out.append(f"few runs: {n} for {p} coefficients; expect wide intervals")
    for label, v in values.items():
        k = np.unique(v).size
        if k < MIN_DISTINCT:
            out.append(f"too few distinct {label} values ({k} < {MIN_DISTINCT}): the {label} dependence is "
                       "not identified")
    return out


def _residual_stats(pred: np.ndarray, loss: np.ndarray) -> dict[str, float]:
    return {"rms_loss": float(np.sqrt(np.mean((pred - loss) ** 2))),
            "rms_log_loss": float(np.sqrt(np.mean((np.log(pred) - np.log(loss)) ** 2))),
            "max_abs_log_residual": float(np.max(np.abs(np.log(pred) - np.log(loss))))}


def _summaries(names, samples: dict[str, np.ndarray] | None, point: Mapping[str, float]):
    if samples is None:
        return ({k: math.nan for k in names}, {k: (math.nan, math.nan) for k in names}, {k: None for k in names})
    stderr = {k: float(np.std(samples[k], ddof=1)) if samples[k].size > 1 else math.nan for k in names}
    ci = {k: _pct(samples[k]) for k in names}
    return stderr, ci, {k: samples[k] for k in names}


BOUND_TOL = 1e-4  # an internal parameter within this of an optimizer bound counts as "at the bound"


def _bound_diagnostics(theta: np.ndarray, pr: _Problem, labels: Mapping[str, str]) -> list[str]:
    out = []
    for j, name in enumerate(pr.internal):
        lo, hi = pr.lower[j], pr.upper[j]
        label = labels.get(name, name)
        if np.isfinite(lo) and theta[j] <= lo + BOUND_TOL:
            out.append(f"{label} = {theta[j]:.4g} is at its optimizer lower bound ({lo:g}): the optimum may lie beyond")
        if np.isfinite(hi) and theta[j] >= hi - BOUND_TOL:
            out.append(f"{label} = {theta[j]:.4g} is at its optimizer upper bound ({hi:g}): the optimum may lie beyond")
    return out


_LOG_LABELS = {"a": "log A", "b": "log B", "e": "log E"}


def _grid_range_diagnostics(values: Mapping[str, float], grid: Mapping[str, Sequence[float]]) -> list[str]:
    out = []
    for k, v in values.items():
        if k not in grid:
            continue
        lo, hi = min(grid[k]), max(grid[k])
        if v < lo or v > hi:
            label = _LOG_LABELS.get(k, k)
            out.append(f"{label} = {v:.4g} lies outside the start grid [{lo:g}, {hi:g}]: the grid does not "
                       "bracket the optimum")
    return out


def _corr_diagnostic(samples: dict[str, np.ndarray] | None, a: str, b: str) -> tuple[list[str], float]:
    if samples is None or samples[a].size < 3 or np.std(samples[a]) == 0 or np.std(samples[b]) == 0:
        return [], math.nan
    r = float(np.corrcoef(samples[a], samples[b])[0, 1])
    if abs(r) > CORR_LIMIT:
        return [f"{a} and {b} are poorly identified: corr({a}, {b}) = {r:.3f} across bootstraps "
                f"(|corr| > {CORR_LIMIT}); only a combination of them is constrained by these runs"], r
    return [], r


# -------------------------------------------------------------------------------- Chinchilla fit


def _chinchilla_problem(params, tokens, loss, delta, grid) -> tuple[_Problem, float, float]:
    ln, ld, y = np.log(params), np.log(tokens), np.log(loss)
    mn, md = float(ln.mean()), float(ld.mean())
    xn, xd = ln - mn, ld - md
    order = ("a", "b", "e", "alpha", "beta")
    g = _grid(grid, order)
    starts = g.copy()
    starts[:, 0] -= g[:, 3] * mn  # a' = a - alpha·mean(log N): same start functions, centered coordinates
    starts[:, 1] -= g[:, 4] * md
    lo, hi = _bounds(order, CHINCHILLA_BOUNDS)

    def to_coef(th):
        th = np.asarray(th, float)
        return {"E": np.exp(th[..., 2]), "A": np.exp(th[..., 0] + th[..., 3] * mn),
                "B": np.exp(th[..., 1] + th[..., 4] * md), "alpha": th[..., 3], "beta": th[..., 4]}

    pr = _Problem("chinchilla", order, ("E", "A", "B", "alpha", "beta"),
                  lambda th, w: _chinchilla_fg(th, xn, xd, y, w, delta), to_coef, starts, lo, hi, y.size)
    return pr, mn, md


def chinchilla_objective(params, tokens, loss, *, E, A, B, alpha, beta, delta: float = DEFAULT_DELTA,
                         weights=None, grad: bool = False):
    """Sum over runs of Huber_delta(LSE(log A - alpha·log N, log B - beta·log D, log E) - log L).

    Coefficients may be arrays (one objective per element). With ``grad``, also returns the gradient with
    respect to (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta), shape (..., 5).
    """
    d = _arrays(params=params, tokens=tokens, loss=loss)
    co = np.broadcast_arrays(*(np.asarray(v, float) for v in (A, B, E, alpha, beta)))
    shape = co[0].shape
    th = np.stack([np.log(co[0]).ravel(), np.log(co[1]).ravel(), np.log(co[2]).ravel(), co[3].ravel(),
                   co[4].ravel()], axis=1)
    w = None if weights is None else np.broadcast_to(np.asarray(weights, float), (th.shape[0], d["loss"].size))
    f, g = _chinchilla_fg(th, np.log(d["params"]), np.log(d["tokens"]), np.log(d["loss"]), w, delta)
    f = f.reshape(shape)
    return (f, g.reshape(*shape, 5)) if grad else f


def huber_objective(form: str, coefficients: Mapping[str, Any], *, params, tokens, loss, unique_tokens=None,
                    delta: float = DEFAULT_DELTA):
    """The fitting objective of ``form`` at given coefficients: sum_i Huber_delta(log L_hat_i - log L_i).

    chinchilla: E, A, B, alpha, beta; kaplan: Nc, Dc, alpha_N, alpha_D; muennighoff: E, A, B, alpha, beta,
    R_D_star, R_N_star (and unique_tokens). Coefficient values may be arrays (vectorized).
    """
    c = dict(coefficients)
    if form == "chinchilla":
        return chinchilla_objective(params, tokens, loss, delta=delta, **c)
    if form == "kaplan":
        d = _arrays(params=params, tokens=tokens, loss=loss)
        pred = kaplan_log_loss(d["params"], d["tokens"], **{k: np.asarray(v, float)[..., None] for k, v in c.items()})
        return huber(pred - np.log(d["loss"]), delta).sum(-1)
    if form == "muennighoff":
        base = {k: c.pop(k) for k in ("E", "A", "B", "alpha", "beta")}
        return muennighoff_objective(c["R_D_star"], c["R_N_star"], params=params, tokens=tokens,
                                     unique_tokens=unique_tokens, loss=loss, base=base, delta=delta)
    raise FitError(f"unknown form {form!r}; allowed: chinchilla, kaplan, muennighoff", field="form")


def _fit_and_bootstrap(pr: _Problem, bootstrap: int, seed: int | None, progress: Progress | None):
    """Grid fit, then (with ``bootstrap``) the batched bootstrap refits: theta, objective, coefficients,
    bootstrap samples (None without), the raw bootstrap thetas, and (stderr, ci95, samples) summaries."""
    theta, fbest, basins = _solve(pr)
    coefs = {k: float(v) for k, v in pr.to_coef(theta).items()}
    samples = th = None
    if bootstrap:
        th = _bootstrap(pr, basins, int(bootstrap), np.random.default_rng(seed), progress)
        samples = {k: np.asarray(v, float) for k, v in pr.to_coef(th).items()}
    return theta, fbest, coefs, samples, th, _summaries(pr.names, samples, coefs)


def fit_chinchilla(
    params, tokens, loss, *, delta: float = DEFAULT_DELTA, bootstrap: int = 0, seed: int | None = 0,
    budget: float | None = None, progress: Progress | None = None, grid: Mapping[str, Sequence[float]] | None = None,
    source: str = "runs",
) -> FitResult:
    """Fit L = E + A/N^alpha + B/D^beta (N params, D tokens, L loss) by the Hoffmann et al. 2022 method.

    Huber ``delta`` on log loss (summed), L-BFGS from the 6,250-point grid of App. D.2 (or ``grid``: keys
    a, b, e, alpha, beta). ``bootstrap`` resampled refits (seeded by ``seed``) give stderr / ci95 and intervals
    on the derived allocation at ``budget`` FLOPs. ``progress(done, total)`` is called as replicates finish.
    """
    d = _arrays(params=params, tokens=tokens, loss=loss)
    n = d["loss"].size
    _need_rows(n, 5, "chinchilla")
    grid = {**HOFFMANN_GRID, **(grid or {})}
    pr, _, _ = _chinchilla_problem(d["params"], d["tokens"], d["loss"], delta, grid)
    theta, fbest, coefs, samples, th, (stderr, ci, boot) = _fit_and_bootstrap(pr, bootstrap, seed, progress)
    pred = coefs["E"] + coefs["A"] * d["params"] ** -coefs["alpha"] + coefs["B"] * d["tokens"] ** -coefs["beta"]
    stats = _residual_stats(pred, d["loss"])
    stats.update(n_distinct_params=float(np.unique(d["params"]).size),
                 n_distinct_tokens=float(np.unique(d["tokens"]).size))
    diags = _distinct_diagnostics({"N (params)": d["params"], "D (tokens)": d["tokens"]}, n, 5)
    diags.append(f"residual RMS {stats['rms_loss']:.4g} in loss, {stats['rms_log_loss']:.4g} in log loss")
    theta_orig = {"a": math.log(coefs["A"]), "b": math.log(coefs["B"]), "e": math.log(coefs["E"]),
                  "alpha": coefs["alpha"], "beta": coefs["beta"]}
    diags += _grid_range_diagnostics(theta_orig, grid)
    diags += _bound_diagnostics(theta, pr, {"e": "log E", "alpha": "alpha", "beta": "beta"})
    corr_diag, r = _corr_diagnostic(samples, "alpha", "beta")
    diags += corr_diag
    if samples is not None:
        stats["corr_alpha_beta"] = r
        diags += _bootstrap_bound_diagnostics(pr, th)
    res = FitResult("chinchilla", coefs, stderr, ci, boot, fbest, n, tuple(diags), stats=stats,
                    ranges=_ranges(d), delta=delta, n_starts=pr.starts.shape[0], source=source)
    return _with_derived(res, budget)


def _ranges(d: Mapping[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    return {k: (float(v.min()), float(v.max())) for k, v in d.items() if k in ("params", "tokens", "unique_tokens")}


def _bootstrap_bound_diagnostics(pr: _Problem, th: np.ndarray) -> list[str]:
    at = np.zeros(th.shape[0], bool)
    for j in range(th.shape[1]):
        if np.isfinite(pr.lower[j]):
            at |= th[:, j] <= pr.lower[j] + BOUND_TOL
        if np.isfinite(pr.upper[j]):
            at |= th[:, j] >= pr.upper[j] - BOUND_TOL
    k = int(at.sum())
    return [f"{k} of {th.shape[0]} bootstrap refits ended at an optimizer bound"] if k else []


def _with_derived(res: FitResult, budget: float | None) -> FitResult:
    if res.form not in ("chinchilla", "kaplan"):
        return res
    opt = res.compute_optimal(budget if budget is not None else 1e21)
    keep = ("a", "b", "G") if budget is None else tuple(opt["value"])
    derived = {k: float(opt["value"][k]) for k in keep if k in opt["value"]}
    stderr = {k: v for k, v in opt["stderr"].items() if k in derived and k != "budget_flops"}
    ci = {k: v for k, v in opt["ci95"].items() if k in derived and k != "budget_flops"}
    return dataclasses.replace(res, derived=derived, derived_stderr=stderr, derived_ci95=ci)


# ------------------------------------------------------------------------------------- Kaplan fit


def kaplan_log_loss(params, tokens, *, Nc, Dc, alpha_N, alpha_D):
    """log L for L = ((Nc/N)^(alpha_N/alpha_D) + Dc/D)^alpha_D, computed stably (log-sum-exp)."""
    ln, ld = np.log(params), np.log(tokens)
    p = alpha_N / alpha_D
    return alpha_D * np.logaddexp(p * (np.log(Nc) - ln), np.log(Dc) - ld)


def fit_kaplan(
    params, tokens, loss, *, delta: float = DEFAULT_DELTA, bootstrap: int = 0, seed: int | None = 0,
    budget: float | None = None, progress: Progress | None = None, grid: Mapping[str, Sequence[float]] | None = None,
    source: str = "runs",
) -> FitResult:
    """Fit Kaplan et al. 2020 L = ((Nc/N)^(alpha_N/alpha_D) + Dc/D)^alpha_D (N params, D tokens).

    Same method as ``fit_chinchilla``: Huber ``delta`` on log loss, batched L-BFGS from a 400-point grid of
    (log Nc, log Dc, alpha_N, alpha_D) (``KAPLAN_GRID``), scipy polish, optional seeded bootstrap.
    """
    d = _arrays(params=params, tokens=tokens, loss=loss)
    n = d["loss"].size
    _need_rows(n, 4, "kaplan")
    grid = {**KAPLAN_GRID, **(grid or {})}
    ln, ld, y = np.log(d["params"]), np.log(d["tokens"]), np.log(d["loss"])
    mn, md = float(ln.mean()), float(ld.mean())
    xn, xd = ln - mn, ld - md
    order = ("log_Nc", "log_Dc", "alpha_N", "alpha_D")
    starts = _grid(grid, order)
    starts[:, 0] -= mn
    starts[:, 1] -= md
    lo, hi = _bounds(order, KAPLAN_BOUNDS)

    def to_coef(th):
        th = np.asarray(th, float)
        return {"Nc": np.exp(th[..., 0] + mn), "Dc": np.exp(th[..., 1] + md), "alpha_N": th[..., 2],
                "alpha_D": th[..., 3]}

    pr = _Problem("kaplan", order, ("Nc", "Dc", "alpha_N", "alpha_D"),
                  lambda th, w: _kaplan_fg(th, xn, xd, y, w, delta), to_coef, starts, lo, hi, n)
    theta, fbest, coefs, samples, th, (stderr, ci, boot) = _fit_and_bootstrap(pr, bootstrap, seed, progress)
    pred = np.exp(kaplan_log_loss(d["params"], d["tokens"], **coefs))
    stats = _residual_stats(pred, d["loss"])
    diags = _distinct_diagnostics({"N (params)": d["params"], "D (tokens)": d["tokens"]}, n, 4)
    diags.append(f"residual RMS {stats['rms_loss']:.4g} in loss, {stats['rms_log_loss']:.4g} in log loss")
    diags += _grid_range_diagnostics({"log_Nc": math.log(coefs["Nc"]), "log_Dc": math.log(coefs["Dc"]),
                                      "alpha_N": coefs["alpha_N"], "alpha_D": coefs["alpha_D"]}, grid)
    diags += _bound_diagnostics(theta, pr, {})
    corr_diag, r = _corr_diagnostic(samples, "alpha_N", "alpha_D")
    diags += corr_diag
    if samples is not None:
        stats["corr_alpha_N_alpha_D"] = r
        diags += _bootstrap_bound_diagnostics(pr, th)
    res = FitResult("kaplan", coefs, stderr, ci, boot, fbest, n, tuple(diags), stats=stats, ranges=_ranges(d),
                    delta=delta, n_starts=starts.shape[0], source=source)
    return _with_derived(res, budget)


# ------------------------------------------------------------------------------- Muennighoff fit


def _base_coefficients(base: Any) -> dict[str, float]:
    if isinstance(base, FitResult):
        if base.form != "chinchilla":
            raise FitError(f"muennighoff base must be a chinchilla fit, got {base.form}", field="base")
        base = base.coefficients
    elif hasattr(base, "coefficients") and hasattr(base, "form"):  # a laws.Law
        if base.form != "chinchilla":
            raise FitError(f"muennighoff base must be a chinchilla law, got {base.form}", field="base")
        base = base.coefficients
    if not isinstance(base, Mapping) or any(k not in base for k in ("E", "A", "B", "alpha", "beta")):
        raise FitError("muennighoff base needs chinchilla coefficients E, A, B, alpha, beta", field="base")
    out = {k: float(base[k]) for k in ("E", "A", "B", "alpha", "beta")}
    if not all(math.isfinite(v) and v > 0 for v in out.values()):
        raise FitError("muennighoff base coefficients must be positive and finite", field="base")
    return out


def muennighoff_effective(params, tokens, unique_tokens, *, R_D_star, R_N_star, A, B, alpha, beta, E=None):
    """Effective (N', D') of Muennighoff et al. 2023: D' = U + U·R_D*·(1 - exp(-R_D/R_D*)), R_D = max(D/U - 1, 0);
    N' = U_N + U_N·R_N*·(1 - exp(-R_N/R_N*)), U_N = min(N, N_opt(U)), R_N = max(N/U_N - 1, 0), where N_opt(U) is
    the base law's compute-optimal N for U tokens. Inputs in parameters / tokens."""
    n, dt, u = (np.asarray(v, float) for v in (params, tokens, unique_tokens))
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    u_n = np.minimum(n, g * (u * g) ** (beta / alpha))
    r_d = np.maximum(dt / u - 1.0, 0.0)
    r_n = np.maximum(n / u_n - 1.0, 0.0)
    d_eff = u + u * R_D_star * (1.0 - np.exp(-r_d / R_D_star))
    n_eff = u_n + u_n * R_N_star * (1.0 - np.exp(-r_n / R_N_star))
    return n_eff, d_eff


def muennighoff_loss(params, tokens, unique_tokens, *, E, A, B, alpha, beta, R_D_star, R_N_star):
    """Loss (nats/token) E + A/N'^alpha + B/D'^beta of the data-constrained law (Muennighoff et al. 2023)."""
    n_eff, d_eff = muennighoff_effective(params, tokens, unique_tokens, R_D_star=R_D_star, R_N_star=R_N_star,
                                         A=A, B=B, alpha=alpha, beta=beta)
    return E + A / n_eff**alpha + B / d_eff**beta


def muennighoff_objective(R_D_star, R_N_star, *, params, tokens, unique_tokens, loss,
                          base: Any = MUENNIGHOFF_BASE, delta: float = DEFAULT_DELTA, weights=None,
                          grad: bool = False):
    """Sum over runs of Huber_delta(log L_hat - log L) for the data-constrained law, base law held fixed.

    R_D_star, R_N_star may be arrays (broadcast together). With ``grad``, also the gradient with respect to
    (log R_D*, log R_N*), shape (..., 2). ``base``: chinchilla coefficients (dict, Law or FitResult).
    """
    d = _arrays(params=params, tokens=tokens, unique_tokens=unique_tokens, loss=loss)
    md = _muennighoff_data(d["params"], d["tokens"], d["unique_tokens"], d["loss"], _base_coefficients(base))
    rd, rn = np.broadcast_arrays(np.asarray(R_D_star, float), np.asarray(R_N_star, float))
    th = np.stack([np.log(rd).ravel(), np.log(rn).ravel()], axis=1)
    w = None if weights is None else np.broadcast_to(np.asarray(weights, float), (th.shape[0], md.y.size))
    f, g = _muennighoff_fg(th, md, w, delta)
    f = f.reshape(rd.shape)
    return (f, g.reshape(*rd.shape, 2)) if grad else f


def fit_muennighoff(
    params, tokens, unique_tokens, loss, *, base: Any = MUENNIGHOFF_BASE, delta: float = DEFAULT_DELTA,
    bootstrap: int = 0, seed: int | None = 0, progress: Progress | None = None,
    grid: Mapping[str, Sequence[float]] | None = None, source: str = "runs", budget: float | None = None,
) -> FitResult:
    """Fit R_D*, R_N* of the Muennighoff et al. 2023 data-constrained law with the base law held fixed.

    ``base``: Chinchilla coefficients E, A, B, alpha, beta (dict, a ``laws`` Law or a chinchilla FitResult);
    default the authors' C4 base (``MUENNIGHOFF_BASE``). For your own data pass a base fitted on your
    single-epoch runs. Huber ``delta`` on log loss, batched L-BFGS in (log R_D*, log R_N*) from a 36-point
    grid (``MUENNIGHOFF_GRID``), scipy polish, optional bootstrap. The optimum is often flat (laws.md §7).
    """
    del budget  # the allocation under repetition has no closed form; not derived here
    d = _arrays(params=params, tokens=tokens, unique_tokens=unique_tokens, loss=loss)
    n = d["loss"].size
    _need_rows(n, 2, "muennighoff")
    b = _base_coefficients(base)
    md = _muennighoff_data(d["params"], d["tokens"], d["unique_tokens"], d["loss"], b)
    grid = {**MUENNIGHOFF_GRID, **(grid or {})}
    order = ("log_R_D_star", "log_R_N_star")
    starts = np.log(_grid(grid, ("R_D_star", "R_N_star")))
    lo, hi = _bounds(order, MUENNIGHOFF_BOUNDS)

    def to_coef(th):
        th = np.asarray(th, float)
        return {"R_D_star": np.exp(th[..., 0]), "R_N_star": np.exp(th[..., 1])}

    pr = _Problem("muennighoff", order, ("R_D_star", "R_N_star"), lambda th, w: _muennighoff_fg(th, md, w, delta),
                  to_coef, starts, lo, hi, n)
    theta, fbest, coefs, samples, th, (stderr, ci, boot) = _fit_and_bootstrap(pr, bootstrap, seed, progress)
    pred = muennighoff_loss(d["params"], d["tokens"], d["unique_tokens"], **b, **coefs)
    stats = _residual_stats(pred, d["loss"])
    epochs = d["tokens"] / d["unique_tokens"]
    stats.update(max_epochs=float(epochs.max()), n_repeated=float(np.sum(epochs > 1)))
    diags = _distinct_diagnostics({"N (params)": d["params"], "epochs (D/U)": np.round(epochs, 6)}, n, 2)
    diags.append(f"residual RMS {stats['rms_loss']:.4g} in loss, {stats['rms_log_loss']:.4g} in log loss")
    if not np.any(epochs > 1):
        diags.append("no run repeats data (all D <= U): R_D* is not identified")
    if not np.any(md.r_n > 0):
        diags.append("no run has N above N_opt(U): R_N* is not identified")
    diags += _bound_diagnostics(theta, pr, {"log_R_D_star": "R_D*", "log_R_N_star": "R_N*"})
    corr_diag, r = _corr_diagnostic(samples, "R_D_star", "R_N_star")
    diags += corr_diag
    if samples is not None:
        stats["corr_R_D_R_N"] = r
    derived = {"D_eff_saturation_multiple": 1.0 + coefs["R_D_star"], "N_eff_saturation_multiple":
               1.0 + coefs["R_N_star"]}
    return FitResult("muennighoff", coefs, stderr, ci, boot, fbest, n, tuple(diags), derived=derived, stats=stats,
                     ranges=_ranges(d), fixed=b, delta=delta, n_starts=starts.shape[0], source=source)


# ------------------------------------------------------------------------------------- power law


def _power_predict(c: Mapping[str, Any], xs: Mapping[str, Any]) -> np.ndarray:
    names = [k[2:] for k in c if k.startswith("a_")]
    missing = [k for k in names if k not in xs]
    extra = [k for k in xs if k not in names]
    if missing or extra:
        raise FitError(f"power-law predict takes {', '.join(names)}", field=(missing or extra)[0])
    out = np.asarray(c["k"], float)
    for k in names:
        out = out * np.asarray(xs[k], float) ** c[f"a_{k}"]
    return out


def fit_power_law(y, *, bootstrap: int = 0, seed: int | None = 0, progress: Progress | None = None,
                  source: str = "runs", **xs) -> FitResult:
    """Fit y = k·x1^a_x1·x2^a_x2··· by OLS in log space (e.g. ``fit_power_law(lr, params=N, tokens=D)``).

    Coefficients ``k`` and ``a_<name>``. Without a bootstrap, stderr / ci95 are the OLS standard errors and
    t intervals (k by the delta method on log k); with ``bootstrap`` resampled refits (seeded), percentiles.
    """
    if not xs:
        raise FitError("fit_power_law needs at least one input, e.g. fit_power_law(lr, params=N)", field="x")
    d = _arrays(y=y, **xs)
    yv = d.pop("y")
    n, p = yv.size, len(xs) + 1
    _need_rows(n, p + 1, "power-law")
    X = np.column_stack([np.ones(n)] + [np.log(d[k]) for k in xs])
    ly = np.log(yv)
    beta, *_ = np.linalg.lstsq(X, ly, rcond=None)
    resid = ly - X @ beta
    names = ["k"] + [f"a_{k}" for k in xs]

    def to_coef(b):
        b = np.asarray(b, float)
        return {"k": np.exp(b[..., 0]), **{f"a_{k}": b[..., j + 1] for j, k in enumerate(xs)}}

    coefs = {k: float(v) for k, v in to_coef(beta).items()}
    dof = n - p
    s2 = float(resid @ resid) / dof if dof > 0 else math.nan
    diags = [f"{n} runs for {p} coefficients"]
    samples = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=int(bootstrap)).astype(float)
        if progress is not None:
            progress(0, int(bootstrap))
        XtWX = np.einsum("bi,ij,ik->bjk", counts, X, X)
        XtWy = np.einsum("bi,ij,i->bj", counts, X, ly)
        ok = np.linalg.matrix_rank(XtWX) == p
        bs = np.full((int(bootstrap), p), np.nan)
        bs[ok] = np.linalg.solve(XtWX[ok], XtWy[ok][..., None])[..., 0]
        if progress is not None:
            progress(int(bootstrap), int(bootstrap))
        if not ok.all():
            diags.append(f"{int((~ok).sum())} bootstrap resamples were rank-deficient and dropped")
        samples = {k: np.asarray(v, float) for k, v in to_coef(bs[ok]).items()}
        stderr, ci, boot = _summaries(names, samples, coefs)
    else:
        from scipy.stats import t as student_t

        cov = s2 * np.linalg.pinv(X.T @ X)
        se = np.sqrt(np.diag(cov))
        q = float(student_t.ppf(0.975, dof)) if dof > 0 else math.nan
        stderr = {"k": coefs["k"] * se[0], **{f"a_{k}": float(se[j + 1]) for j, k in enumerate(xs)}}
        ci = {"k": (float(np.exp(beta[0] - q * se[0])), float(np.exp(beta[0] + q * se[0])))}
        ci.update({f"a_{k}": (float(beta[j + 1] - q * se[j + 1]), float(beta[j + 1] + q * se[j + 1]))
                   for j, k in enumerate(xs)})
        boot = {k: None for k in names}
        diags.append("stderr / ci95 from OLS (normal log residuals assumed); pass bootstrap for resampled intervals")
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    stats = {"rms_log": float(np.sqrt(np.mean(resid**2))), "r2_log": 1.0 - float(resid @ resid) / ss_tot
             if ss_tot > 0 else math.nan, "rms": float(np.sqrt(np.mean((np.exp(X @ beta) - yv) ** 2)))}
    diags.append(f"residual RMS {stats['rms_log']:.4g} in log y; R^2 (log) {stats['r2_log']:.4f}")
    for k, v in d.items():
        if np.unique(v).size < MIN_DISTINCT:
            diags.append(f"too few distinct {k} values ({np.unique(v).size} < {MIN_DISTINCT}): its exponent is "
                         "not identified")
    keys = list(xs)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            a, b = X[:, i + 1], X[:, j + 1]
            if np.std(a) > 0 and np.std(b) > 0:
                r = float(np.corrcoef(a, b)[0, 1])
                if abs(r) > 0.95:
                    diags.append(f"log {keys[i]} and log {keys[j]} are collinear (corr {r:.3f}): their exponents "
                                 "trade off")
    if samples is not None and len(keys) >= 2:
        diags += _corr_diagnostic(samples, f"a_{keys[0]}", f"a_{keys[1]}")[0]
    ranges = {k: (float(v.min()), float(v.max())) for k, v in d.items()}
    return FitResult("power", coefs, stderr, ci, boot, float(resid @ resid), n, tuple(diags), stats=stats,
                     ranges=ranges, delta=math.nan, n_starts=0, source=source)


# ----------------------------------------------------------------------------------------- runs


def fit_runs(runs, form: str, **kw) -> FitResult:
    """Fit ``form`` ("chinchilla", "kaplan", "muennighoff", "power") to a ``laws.runs.Runs``.

    Keyword arguments go to the fit function. For "power": ``y`` names the target column (e.g. "lr",
    "batch_tokens") and ``x`` the input columns (default ("params", "tokens")).
    """
    kw.setdefault("source", getattr(runs, "source", "runs"))
    if form in ("chinchilla", "kaplan"):
        fn = fit_chinchilla if form == "chinchilla" else fit_kaplan
        return fn(runs.params, runs.tokens, runs.loss, **kw)
    if form == "muennighoff":
        return fit_muennighoff(runs.params, runs.tokens, runs.column("unique_tokens"), runs.loss, **kw)
    if form == "power":
        y = kw.pop("y", None)
        if y is None:
            raise FitError("power-law fit needs y=<column>, e.g. y='lr'", field="y")
        x = kw.pop("x", ("params", "tokens"))
        x = (x,) if isinstance(x, str) else tuple(x)
        return dataclasses.replace(fit_power_law(runs.column(y), **kw, **{k: runs.column(k) for k in x}), target=y)
    raise FitError(f"unknown form {form!r}; allowed: {', '.join(FORMS)}", field="form")


__all__ = [
    "DEFAULT_DELTA", "FORMS", "HOFFMANN_GRID", "KAPLAN_GRID", "MUENNIGHOFF_BASE", "MUENNIGHOFF_RSTAR", "FitError",
    "FitResult", "chinchilla_objective", "fit_chinchilla", "fit_kaplan", "fit_muennighoff", "fit_power_law",
    "fit_runs", "huber", "huber_objective", "kaplan_log_loss", "minimize_batched", "muennighoff_effective",
    "muennighoff_loss", "muennighoff_objective",
]
