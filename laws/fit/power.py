"""Power laws y = k·x1^a_x1·x2^a_x2··· fitted by OLS in log space (e.g. a learning-rate or batch law)."""

from __future__ import annotations

import math

import numpy as np

from laws.fit import diagnostics as dg
from laws.fit.common import FitError, Progress, as_arrays, need_rows
from laws.fit.forms import summaries
from laws.fit.result import FitResult


def fit_power_law(y, *, bootstrap: int = 0, seed: int | None = 0, progress: Progress | None = None,
                  source: str = "runs", **xs) -> FitResult:
    """Fit y = k·x1^a_x1·x2^a_x2··· by OLS in log space (e.g. ``fit_power_law(lr, params=N, tokens=D)``).

    Coefficients ``k`` and ``a_<name>``. Without a bootstrap, stderr / ci95 are the OLS standard errors and
    t intervals (k by the delta method on log k); with ``bootstrap`` resampled refits (seeded), percentiles.
    """
    if not xs:
        raise FitError("fit_power_law needs at least one input, e.g. fit_power_law(lr, params=N)", field="x")
    d = as_arrays(y=y, **xs)
    yv = d.pop("y")
    n, p = yv.size, len(xs) + 1
    need_rows(n, p + 1, "power-law")
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
    diags = [dg.note("runs", f"{n} runs for {p} coefficients", "info", runs=n, coefficients=p)]
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
            diags.append(dg.note("rank_deficient", f"{int((~ok).sum())} bootstrap resamples were rank-deficient and "
                                 "dropped", dropped=int((~ok).sum())))
        samples = {k: np.asarray(v, float) for k, v in to_coef(bs[ok]).items()}
        stderr, ci, boot = summaries(names, samples)
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
        diags.append(dg.note("ols", "stderr / ci95 from OLS (normal log residuals assumed); pass bootstrap for "
                             "resampled intervals", "info"))
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    stats = {"rms_log": float(np.sqrt(np.mean(resid**2))), "r2_log": 1.0 - float(resid @ resid) / ss_tot
             if ss_tot > 0 else math.nan, "rms": float(np.sqrt(np.mean((np.exp(X @ beta) - yv) ** 2)))}
    diags.append(dg.note("residual", f"residual RMS {stats['rms_log']:.4g} in log y; R^2 (log) {stats['r2_log']:.4f}",
                         "info", **stats))
    diags += dg.too_few_distinct(d, "its exponent is not identified")
    keys = list(xs)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            a, b = X[:, i + 1], X[:, j + 1]
            if np.std(a) > 0 and np.std(b) > 0:
                r = float(np.corrcoef(a, b)[0, 1])
                if abs(r) > 0.95:
                    diags.append(dg.note("collinear", f"log {keys[i]} and log {keys[j]} are collinear (corr {r:.3f}): "
                                         "their exponents trade off", a=keys[i], b=keys[j], corr=r))
    if samples is not None and len(keys) >= 2:
        diags += dg.correlation(samples, f"a_{keys[0]}", f"a_{keys[1]}")[0]
    ranges = {k: (float(v.min()), float(v.max())) for k, v in d.items()}
    return FitResult("power", coefs, stderr, ci, boot, float(resid @ resid), n, tuple(diags), stats=stats,
                     ranges=ranges, delta=math.nan, n_starts=0, source=source)
