"""The robust loss of the full training program, compressed so that a plan costs about what a point plan costs.

A Chinchilla-form law L_s(N, D) = E_s + A_s·N^-alpha_s + B_s·D^-beta_s per coefficient sample s (the law's
bootstrap, or ``laws.uncertainty``'s draws for a published law). Two robust losses (``planner.robust``):

**mean** (1/S)·Σ_s L_s = Ē + g(N) + h(D), with g(N) = Σ_s (A_s/S)·N^-alpha_s and h likewise in D: the N part
and the D part separate, and each is the integral of the exponential exp(-alpha·ln N) against the discrete
measure with weights A_s/S at the nodes alpha_s. Its K-node **Gauss quadrature** (Golub-Welsch, via Lanczos
on the measure) has positive weights u_k and nodes a_k inside [min alpha_s, max alpha_s], so
Σ_k u_k·N^-a_k is again a posynomial, exact for every polynomial in alpha of degree < 2K; for the smooth
exp(-alpha·x) the relative error falls like (x·h)^(2K)/(2K)! (h the half-width of the exponents). K grows
from 6 until the measured error of the whole mean loss over N, D in [1e5, 1e15] x [1e6, 1e17] is below
``MEAN_TOLERANCE`` (1e-7): 2K + 1 monomials instead of 3·S. Merging by k-means clusters of (alpha, beta) was
the alternative; it is exact only for identical exponents, and its error at K clusters is first-order in the
spread, where quadrature's is of order 2K.

**worst** max over the central ``confidence`` share of the samples (ranked by loss at the point-estimate
plan), epigraph t >= L_s for each kept sample. Only samples on the upper envelope can bind: the program keeps
those that are the largest somewhere on a 64 x 64 grid of (ln N, ln D) over the same box (the *active* set),
and :func:`planner.robust_plan` re-checks every central sample at the solved plan, adding any that exceeds the
program's t (a cutting-plane loop). The launchable plan is always ranked with the exact robust loss over all
samples (``value``), so the compressed program only supplies its starting point.

Units: params and tokens are counts, losses nats/token.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from planner.errors import InputError

MEAN_TOLERANCE = 1e-7       # measured relative error of the compressed mean loss, at most
MAX_NODES = 40              # quadrature nodes per exponent at most (then: all samples, exact)
GRID_PARAMS = (1e5, 1e15)   # the box on which errors and the worst-case envelope are measured
GRID_TOKENS = (1e6, 1e17)
ENVELOPE_GRID = 64
CHINCHILLA = ("E", "A", "B", "alpha", "beta")


@dataclasses.dataclass(frozen=True)
class RobustTerms:
    """The robust loss as data of the program. Hashable (it is part of the program's cache key): ``e``,
    ``n_terms``, ``d_terms`` (mean: Ē and the (coefficient, exponent) pairs of g and h) or ``rows`` (worst:
    the active samples' (E, A, B, alpha, beta)). ``samples`` and ``keep`` (the central samples) are for the
    exact evaluation and do not enter the key."""

    mode: str
    confidence: float
    e: float = 0.0
    n_terms: tuple[tuple[float, float], ...] = ()
    d_terms: tuple[tuple[float, float], ...] = ()
    rows: tuple[tuple[float, float, float, float, float], ...] = ()
    samples: Any = dataclasses.field(default=None, compare=False, repr=False)
    keep: Any = dataclasses.field(default=None, compare=False, repr=False)
    error: float = dataclasses.field(default=0.0, compare=False)

    @property
    def n_samples(self) -> int:
        return int(self.samples["E"].size)

    @property
    def size(self) -> int:
        """Monomials (mean) or epigraph constraints (worst) in the program."""
        return 1 + len(self.n_terms) + len(self.d_terms) if self.mode == "mean" else len(self.rows)

    def sample_losses(self, params, tokens) -> np.ndarray:
        """Every sample's loss at (params, tokens): shape (S,) + the inputs' broadcast shape."""
        n, d = np.asarray(params, float), np.asarray(tokens, float)
        ix = (slice(None),) + (None,) * np.broadcast(n, d).ndim
        s = {k: self.samples[k][ix] for k in CHINCHILLA}
        return s["E"] + s["A"] / n ** s["alpha"] + s["B"] / d ** s["beta"]

    def value(self, params, tokens):
        """The exact robust loss over all samples (mean) or all central samples (worst)."""
        losses = self.sample_losses(params, tokens)
        out = losses.mean(axis=0) if self.mode == "mean" else losses[self.keep].max(axis=0)
        return float(out) if np.ndim(out) == 0 else out

    def compressed(self, params, tokens):
        """The robust loss as the program sees it (numpy), for measuring the compression."""
        n, d = np.asarray(params, float), np.asarray(tokens, float)
        if self.mode == "mean":
            return self.e + sum(c * n**-a for c, a in self.n_terms) + sum(c * d**-b for c, b in self.d_terms)
        r = np.asarray(self.rows)
        ix = (slice(None),) + (None,) * np.broadcast(n, d).ndim
        return (r[:, 0][ix] + r[:, 1][ix] / n ** r[:, 3][ix] + r[:, 2][ix] / d ** r[:, 4][ix]).max(axis=0)

    def expr(self, N, D):
        """(loss expression, constraints) in cvxpy DGP: a posynomial (mean) or an epigraph variable (worst)."""
        if self.mode == "mean":
            loss = self.e + sum(c * N**-a for c, a in self.n_terms) + sum(c * D**-b for c, b in self.d_terms)
            return loss, []
        import cvxpy as cp

        t = cp.Variable(pos=True, name="robust_loss")
        return t, [e + a * N**-al + b * D**-be <= t for e, a, b, al, be in self.rows]

    def with_rows(self, extra) -> RobustTerms:
        """A copy whose active set also holds the samples ``extra`` (indices)."""
        s = self.samples
        have = set(self.rows)
        rows = list(self.rows) + [r for r in (_row(s, int(i)) for i in extra) if r not in have]
        return dataclasses.replace(self, rows=tuple(rows))


def _row(s, i: int) -> tuple[float, float, float, float, float]:
    return tuple(float(s[k][i]) for k in CHINCHILLA)


def check_law(law: Any) -> dict[str, np.ndarray]:
    """The Chinchilla-form coefficient samples of ``law`` (its bootstrap or its published uncertainty)."""
    from planner.robust import law_samples

    smp = law_samples(law)
    if law.form != "chinchilla" or set(law.coefficient_names) != set(CHINCHILLA):
        raise InputError("robust", f"robust plans need a Chinchilla-form law (E + A/N^alpha + B/D^beta); law "
                         f"{law.id} is of form {law.form}")
    return {k: np.asarray(smp[k], float) for k in CHINCHILLA}


def gauss_quadrature(nodes, weights, k: int) -> tuple[np.ndarray, np.ndarray]:
    """K-point Gauss quadrature of the discrete measure Σ w_i δ(x_i): (nodes, weights), both positive for
    positive inputs. Lanczos with full re-orthogonalization on diag(x), then the Jacobi matrix's eigenvectors
    (Golub and Welsch 1969)."""
    x, w = np.asarray(nodes, float), np.asarray(weights, float)
    total = float(w.sum())
    k = min(k, np.unique(x).size)
    c, s = float(np.mean(x)), float(np.std(x)) or 1.0
    y = (x - c) / s
    q = np.sqrt(w / total)
    qs, diag, off = [q], [], []
    for j in range(k):
        v = y * qs[j]
        diag.append(float(qs[j] @ v))
        for _ in range(2):  # twice is enough (Kahan's "twice is enough")
            for u in qs:
                v = v - (u @ v) * u
        b = float(np.linalg.norm(v))
        if j == k - 1 or b < 1e-12:
            break
        off.append(b)
        qs.append(v / b)
    t = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
    ev, vec = np.linalg.eigh(t)
    return c + s * ev, total * vec[0] ** 2


def _box(n: int = 41) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.geomspace(*GRID_PARAMS, n), np.geomspace(*GRID_TOKENS, n), indexing="ij")


def mean_terms(samples: dict[str, np.ndarray], tolerance: float = MEAN_TOLERANCE) -> RobustTerms:
    """The sample-mean loss with each exponent sum compressed by Gauss quadrature to ``tolerance``."""
    s = samples
    size = s["E"].size
    nn, dd = _box()
    exact = None
    k = 6
    while True:
        an, un = gauss_quadrature(s["alpha"], s["A"] / size, k)
        bd, vd = gauss_quadrature(s["beta"], s["B"] / size, k)
        terms = RobustTerms("mean", 1.0, e=float(s["E"].mean()),
                            n_terms=tuple(zip(un.tolist(), an.tolist(), strict=True)),
                            d_terms=tuple(zip(vd.tolist(), bd.tolist(), strict=True)), samples=s)
        if exact is None:
            exact = terms.value(nn, dd)
        err = float(np.max(np.abs(terms.compressed(nn, dd) / exact - 1.0)))
        if err <= tolerance or k >= min(MAX_NODES, size):
            return dataclasses.replace(terms, error=err)
        k += 4


def worst_terms(samples: dict[str, np.ndarray], keep: np.ndarray, confidence: float) -> RobustTerms:
    """The central samples ``keep`` with the active set: those largest somewhere on the envelope grid."""
    nn, dd = _box(ENVELOPE_GRID)
    terms = RobustTerms("worst", confidence, samples=samples, keep=np.asarray(keep))
    losses = terms.sample_losses(nn, dd)[terms.keep]
    active = np.unique(terms.keep[np.argmax(losses, axis=0)].ravel())
    terms = terms.with_rows(active)
    err = float(np.max(1.0 - terms.compressed(nn, dd) / losses.max(axis=0)))
    return dataclasses.replace(terms, error=max(err, 0.0))


def violated(terms: RobustTerms, params: float, tokens: float, tol: float = 1e-9) -> list[int]:
    """Central samples whose loss at (params, tokens) exceeds the active set's maximum there (worst mode)."""
    if terms.mode != "worst" or not (math.isfinite(params) and math.isfinite(tokens)):
        return []
    losses = terms.sample_losses(params, tokens)
    top = float(terms.compressed(params, tokens))
    return [int(i) for i in terms.keep if losses[i] > top * (1 + tol)]


__all__ = ["RobustTerms", "check_law", "gauss_quadrature", "mean_terms", "violated", "worst_terms"]
