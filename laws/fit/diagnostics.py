"""What a fit can and cannot tell: typed diagnostic records (kind, severity, message, the numbers behind it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from laws.fit.common import BOUND_TOL, CORR_LIMIT, MIN_DISTINCT

Severity = Literal["info", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a fit. ``kind`` is a stable key (e.g. ``"poorly_identified"``), ``message`` one line for
    people, ``values`` the numbers it is about. ``str(d)`` is the message."""

    kind: str
    severity: Severity
    message: str
    values: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "message": self.message, "values": dict(self.values)}


def run_count(n: int, p: int) -> list[Diagnostic]:
    out = [Diagnostic("runs", "info", f"{n} runs for {p} coefficients", {"runs": n, "coefficients": p})]
    if n < 3 * p:
        out.append(Diagnostic("few_runs", "warning", f"few runs: {n} for {p} coefficients; expect wide intervals",
                              {"runs": n, "coefficients": p}))
    return out


def too_few_distinct(values: Mapping[str, np.ndarray], what: str = "dependence") -> list[Diagnostic]:
    out = []
    for label, v in values.items():
        k = int(np.unique(v).size)
        if k < MIN_DISTINCT:
            tail = f"the {label} dependence is not identified" if what == "dependence" else what
            out.append(Diagnostic("too_few_distinct", "warning",
                                  f"too few distinct {label} values ({k} < {MIN_DISTINCT}): {tail}",
                                  {"input": label, "distinct": k}))
    return out


def residuals(stats: Mapping[str, float]) -> Diagnostic:
    return Diagnostic("residual", "info", f"residual RMS {stats['rms_loss']:.4g} in loss, "
                      f"{stats['rms_log_loss']:.4g} in log loss", dict(stats))


def grid_edge(values: Mapping[str, float], grid: Mapping[str, Sequence[float]],
              labels: Mapping[str, str]) -> list[Diagnostic]:
    out = []
    for k, v in values.items():
        if k not in grid:
            continue
        lo, hi = min(grid[k]), max(grid[k])
        if v < lo or v > hi:
            out.append(Diagnostic("grid_edge", "warning", f"{labels.get(k, k)} = {v:.4g} lies outside the start grid "
                                  f"[{lo:g}, {hi:g}]: the grid does not bracket the optimum",
                                  {"parameter": k, "value": v, "grid": (lo, hi)}))
    return out


def at_bound(theta: np.ndarray, internal: Sequence[str], lower: np.ndarray, upper: np.ndarray,
             labels: Mapping[str, str]) -> list[Diagnostic]:
    out = []
    for j, name in enumerate(internal):
        label = labels.get(name, name)
        for side, b, hit in (("lower", lower[j], theta[j] <= lower[j] + BOUND_TOL),
                             ("upper", upper[j], theta[j] >= upper[j] - BOUND_TOL)):
            if np.isfinite(b) and hit:
                out.append(Diagnostic("at_bound", "warning", f"{label} = {theta[j]:.4g} is at its optimizer {side} "
                                      f"bound ({b:g}): the optimum may lie beyond",
                                      {"parameter": name, "value": float(theta[j]), "bound": float(b)}))
    return out


def bootstrap_at_bound(th: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> list[Diagnostic]:
    at = np.zeros(th.shape[0], bool)
    for j in range(th.shape[1]):
        if np.isfinite(lower[j]):
            at |= th[:, j] <= lower[j] + BOUND_TOL
        if np.isfinite(upper[j]):
            at |= th[:, j] >= upper[j] - BOUND_TOL
    k = int(at.sum())
    if not k:
        return []
    return [Diagnostic("bootstrap_at_bound", "warning", f"{k} of {th.shape[0]} bootstrap refits ended at an "
                       "optimizer bound", {"refits": k, "of": th.shape[0]})]


def correlation(samples: Mapping[str, np.ndarray] | None, a: str, b: str) -> tuple[list[Diagnostic], float]:
    """corr(a, b) across bootstrap samples, and a "poorly identified" warning when |corr| > CORR_LIMIT."""
    if samples is None or samples[a].size < 3 or np.std(samples[a]) == 0 or np.std(samples[b]) == 0:
        return [], math.nan
    r = float(np.corrcoef(samples[a], samples[b])[0, 1])
    if abs(r) > CORR_LIMIT:
        return [Diagnostic("poorly_identified", "warning",
                           f"{a} and {b} are poorly identified: corr({a}, {b}) = {r:.3f} across bootstraps "
                           f"(|corr| > {CORR_LIMIT}); only a combination of them is constrained by these runs",
                           {"a": a, "b": b, "corr": r})], r
    return [], r


def note(kind: str, message: str, severity: Severity = "warning", **values: Any) -> Diagnostic:
    return Diagnostic(kind, severity, message, values)
