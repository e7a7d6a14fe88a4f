"""Batched projected L-BFGS: many independent bound-constrained problems advanced at once on arrays.

Used for the multistart grid (every start of one fit) and the bootstrap (every replicate x warm start). The
grid search can prune: at checkpoints, starts whose objective is far above the best so far stop (see
:class:`Prune`); a test on the published data checks that the optimum does not move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FG = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Prune:
    """At each iteration in ``checkpoints``, stop the problems whose objective exceeds ``factor`` x the best
    objective reached so far, keeping at least the ``keep`` best. For a multistart of ONE problem only
    (the objectives must be comparable). Objectives must be >= 0 (sums of Huber losses are)."""

    checkpoints: tuple[int, ...] = (5, 10, 15, 20, 30, 40, 60, 80, 120)
    factor: float = 5.0
    keep: int = 32


def minimize_batched(
    fg: FG,
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
    prune: Prune | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimize S independent problems at once: projected L-BFGS with a backtracking Armijo line search.

    ``fg(x, rows)`` returns (f (k,), grad (k, p)) for the problems ``rows`` at points x (k, p). Problems stop
    on their own when the projected gradient's max norm is <= gtol, the objective's relative decrease is
    <= ftol for 3 consecutive steps, or the line search fails; with ``prune``, also when they fall too far
    behind the best at a checkpoint. No step moves a coordinate by more than ``max_step``. Returns
    (x, f, iterations), one row per problem.
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
    checkpoints = set(prune.checkpoints) if prune is not None else set()
    for it in range(max_iter):
        if it in checkpoints:
            _prune(f, active, prune)
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


def _prune(f: np.ndarray, active: np.ndarray, rule: Prune) -> None:
    """In place: deactivate active problems with f > factor x min(f), sparing the ``keep`` lowest."""
    finite = np.isfinite(f)
    if not finite.any():
        return
    best = float(f[finite].min())
    far = active & ~(f <= rule.factor * best)
    if not far.any():
        return
    spare = np.argsort(np.where(finite, f, np.inf), kind="stable")[: rule.keep]
    far[spare] = False
    active[far] = False
