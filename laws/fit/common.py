"""Shared pieces of the fitters: the error type, input checks, the Huber loss, start grids and bounds.

Units: params N in parameters, tokens D in tokens, loss L in nats/token (any unit works, consistently),
budgets C in FLOPs with C = 6·N·D.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from planner_errors import FieldError

DEFAULT_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2 (eq. 11): Huber delta on log loss
MIN_DISTINCT = 3  # fewer distinct N (or D) values than this => warning
CORR_LIMIT = 0.9  # |corr| of two coefficients across bootstraps above this => "poorly identified"
BOUND_TOL = 1e-4  # an internal parameter within this of an optimizer bound counts as "at the bound"

Progress = Callable[[int, int], None]


class FitError(FieldError):
    """Inputs a fit cannot use; ``field`` names the offending input."""

    def __init__(self, message: str, field: str = "runs"):
        super().__init__(message, field)


def huber(r: np.ndarray, delta: float = DEFAULT_DELTA) -> np.ndarray:
    """Huber loss of residuals r: r²/2 for |r| <= delta, delta·(|r| - delta/2) beyond (scipy.special.huber)."""
    r = np.asarray(r, dtype=float)
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def as_arrays(**named) -> dict[str, np.ndarray]:
    """Equal-length 1-D float arrays of positive finite numbers, or a FitError naming the input."""
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


def need_rows(n: int, p: int, form: str) -> None:
    if n < p:
        raise FitError(f"{n} runs; a {p}-coefficient {form} fit needs at least {p}", field="runs")


def start_grid(spec: Mapping[str, Sequence[float]], order: Sequence[str]) -> np.ndarray:
    """Every combination of the start values, one row per start, columns in ``order``."""
    return np.array(list(itertools.product(*(spec[k] for k in order))), dtype=float)


def bounds(names: Sequence[str], spec: Mapping[str, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([spec.get(k, (-np.inf, np.inf))[0] for k in names])
    hi = np.array([spec.get(k, (-np.inf, np.inf))[1] for k in names])
    return lo, hi


def input_ranges(d: Mapping[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    return {k: (float(v.min()), float(v.max())) for k, v in d.items() if k in ("params", "tokens", "unique_tokens")}
