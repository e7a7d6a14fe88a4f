"""Objective kernels: the sum over runs of Huber_delta(log L_hat - log L) and its gradient, many problems at once.

Each kernel takes parameters theta of shape (S, p) (S problems, e.g. starts or bootstrap replicates) and
per-problem run weights w of shape (S, n) or None, and returns (f (S,), grad (S, p)). The predictions are the
laws' own formulas in log space (``laws.chinchilla.chinchilla_log_terms``, ``laws.kaplan.kaplan_log_terms``,
``laws.muennighoff`` effective tokens and params); the kernels add only the Huber loss and the chain rule.

Work is split into blocks of at most ``BLOCK_ELEMS`` (problems x runs) elements, over problems and, for very
many runs, over runs too (the objective and gradient are sums over runs), so memory per block is bounded and
time grows linearly with the number of runs. Each problem's result depends only on its own row: the same
numbers come out whatever the batch it is evaluated in (no BLAS reductions across rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from laws.chinchilla import chinchilla_log_terms
from laws.kaplan import kaplan_log_terms
from laws.muennighoff import discounted, discounted_dlog_rstar, params_base, repeated, unique_tokens_seen

BLOCK_ELEMS = 8192  # problems x runs per block: 64 KB temporaries stay in cache (about 5x faster than one pass)
MAX_RUN_BLOCK = 65536  # runs per block when one problem's row alone exceeds BLOCK_ELEMS

Kernel = Callable[[np.ndarray, np.ndarray | None, slice], tuple[np.ndarray, np.ndarray]]


def blocked(kernel: Kernel, theta: np.ndarray, w: np.ndarray | None, n: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate ``kernel(theta_rows, w_rows, runs)`` over blocks of problems and runs; sums the run blocks."""
    S = theta.shape[0]
    cols = n if n <= MAX_RUN_BLOCK else MAX_RUN_BLOCK
    rows = max(1, BLOCK_ELEMS // max(cols, 1))
    if S <= rows and cols == n:
        return kernel(theta, w, slice(0, n))
    f, g = np.zeros(S), np.zeros((S, p))
    for s0 in range(0, S, rows):
        rs = slice(s0, s0 + rows)
        for c0 in range(0, n, cols):
            cs = slice(c0, min(n, c0 + cols))
            fb, gb = kernel(theta[rs], None if w is None else w[rs, cs], cs)
            f[rs] += fb
            g[rs] += gb
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


def _rowdot(a, x):
    """sum_j a[i, j]·x[j] per row, without BLAS (row results independent of the batch)."""
    return (a * x).sum(1)


@dataclass(frozen=True)
class ChinchillaKernel:
    """Theta columns (a, b, e, alpha, beta) = (log A', log B', log E, alpha, beta) in centered logs xn, xd."""

    xn: np.ndarray
    xd: np.ndarray
    y: np.ndarray
    delta: float

    def __call__(self, theta, w):
        return blocked(self._block, theta, w, self.y.size, 5)

    def _block(self, th, ww, cs):
        xn, xd, y = self.xn[cs], self.xd[cs], self.y[cs]
        a, b, e, al, be = (th[:, k : k + 1] for k in range(5))
        t1, t2, t3 = chinchilla_log_terms(xn, xd, a, b, e, al, be)
        if t1.max() < 600.0 and t2.max() < 600.0 and e.min() > -600.0:
            # no overflow possible: plain exponentials (exp(e) is one number per row)
            for t in (t1, t2):
                np.maximum(t, -600.0, out=t)
                np.exp(t, out=t)
            ee = np.exp(t3)
            s = t1 + t2
            s += ee
            r = np.log(s)
            r -= y
            h, hp = _huber_terms(r, self.delta, ww)
            hp /= s
            t1 *= hp
            t2 *= hp
            grad = np.stack([t1.sum(1), t2.sum(1), ee[:, 0] * hp.sum(1), -_rowdot(t1, xn), -_rowdot(t2, xd)], axis=1)
            return h.sum(1), grad
        t3 = np.repeat(t3, xn.size, axis=1)
        m, s = _softmax_terms((t1, t2, t3))
        r = np.log(s)
        r += m
        r -= y
        h, hp = _huber_terms(r, self.delta, ww)
        hp /= s
        t1 *= hp
        t2 *= hp
        t3 *= hp
        grad = np.stack([t1.sum(1), t2.sum(1), t3.sum(1), -_rowdot(t1, xn), -_rowdot(t2, xd)], axis=1)
        return h.sum(1), grad


@dataclass(frozen=True)
class KaplanKernel:
    """Theta columns (log Nc', log Dc', alpha_N, alpha_D) in centered logs xn, xd."""

    xn: np.ndarray
    xd: np.ndarray
    y: np.ndarray
    delta: float

    def __call__(self, theta, w):
        return blocked(self._block, theta, w, self.y.size, 4)

    def _block(self, th, ww, cs):
        xn, xd, y = self.xn[cs], self.xd[cs], self.y[cs]
        nc, dc, an, ad = (th[:, k : k + 1] for k in range(4))
        t1, t2 = kaplan_log_terms(xn, xd, nc, dc, an, ad)
        u = nc - xn  # d t1 / d (alpha_N/alpha_D)
        p = an / ad
        m, s = _softmax_terms((t1, t2))
        lse = np.log(s)
        lse += m
        h, hp = _huber_terms(ad * lse - y, self.delta, ww)
        hl = hp.copy()  # Huber slope
        hp /= s
        t1 *= hp  # hp·softmax weight 1
        t2 *= hp
        t1u = (t1 * u).sum(1)
        grad = np.stack([t1.sum(1) * an[:, 0], t2.sum(1) * ad[:, 0], t1u, (hl * lse).sum(1) - t1u * p[:, 0]], axis=1)
        return h.sum(1), grad


@dataclass(frozen=True)
class MuennighoffKernel:
    """Theta columns (log R_D*, log R_N*); the base law's A, B, E, alpha, beta fixed.

    Per run, the quantities that do not depend on R* come from the law: U_D = min(U, D), R_D = D/U_D - 1,
    U_N = min(N, N_opt(U_D)), R_N = N/U_N - 1 (Muennighoff et al. 2023, eqs. 5-6).
    """

    u_d: np.ndarray
    r_d: np.ndarray
    u_n: np.ndarray
    r_n: np.ndarray
    y: np.ndarray
    base: tuple[float, float, float, float, float]  # E, A, B, alpha, beta
    delta: float

    @classmethod
    def from_runs(cls, params, tokens, unique_tokens, loss, base, delta):
        E, A, B, al, be = (base[k] for k in ("E", "A", "B", "alpha", "beta"))
        u_d = unique_tokens_seen(tokens, unique_tokens)
        u_n = params_base(params, unique_tokens, A, B, al, be, tokens=tokens)
        return cls(u_d, repeated(tokens, u_d), u_n, repeated(params, u_n), np.log(loss), (E, A, B, al, be), delta)

    def __call__(self, theta, w):
        return blocked(self._block, theta, w, self.y.size, 2)

    def _block(self, th, ww, cs):
        E, A, B, al, be = self.base
        u_d, r_d, u_n, r_n, y = self.u_d[cs], self.r_d[cs], self.u_n[cs], self.r_n[cs], self.y[cs]
        rd, rn = np.exp(th[:, 0:1]), np.exp(th[:, 1:2])
        dp, ddp = discounted(u_d, r_d, rd), discounted_dlog_rstar(u_d, r_d, rd)
        np_, dnp = discounted(u_n, r_n, rn), discounted_dlog_rstar(u_n, r_n, rn)
        # log L = LSE(log A - alpha·log N', log B - beta·log D', log E): the law's loss in log space
        t1 = np.log(A) - al * np.log(np_)
        t2 = np.log(B) - be * np.log(dp)
        t3 = np.full_like(t1, np.log(E))
        m, s = _softmax_terms((t1, t2, t3))
        r = np.log(s)
        r += m
        r -= y
        h, hp = _huber_terms(r, self.delta, ww)
        hp /= s
        grad = np.stack([-be * (hp * t2 * ddp / dp).sum(1), -al * (hp * t1 * dnp / np_).sum(1)], axis=1)
        return h.sum(1), grad
