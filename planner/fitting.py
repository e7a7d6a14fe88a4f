"""Python entry point for fitting runs: ``planner.fit(runs, backtest=True)``.

Wraps ``laws.fit.fit_runs`` (the fit), ``laws.backtest.backtest`` (held-out largest runs) and
``laws.backtest.extrapolation_warning`` (a planning target far beyond the runs) into one report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import InputError


@dataclass(frozen=True)
class FitReport:
    """``result``: the ``laws.fit.FitResult``; ``backtest``: a ``laws.backtest.Backtest`` (None unless asked);
    ``warnings``: runs-file warnings and the extrapolation warning at ``budget``."""

    result: Any
    backtest: Any = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


def fit(runs: Any, form: str = "chinchilla", *, bootstrap: int = 0, seed: int = 0, budget: float | None = None,
        backtest: bool = False, holdout: float = 0.2, compute_floor: float | None = None,
        E_fixed: float | None = None, E_bounds: tuple[float, float] | None = None, **kw: Any) -> FitReport:
    """Fit ``form`` to ``runs`` (a ``laws.runs.Runs`` or a CSV path); optionally backtest it.

    ``budget``: the planning target in FLOPs (optimal N, D there; a warning if it is more than
    ``laws.backtest.EXTRAPOLATION_FACTOR`` times the largest run). Other keywords go to ``laws.fit.fit_runs``.
    """
    from laws.backtest import backtest as run_backtest
    from laws.backtest import extrapolation_warning
    from laws.fit import fit_runs
    from laws.runs import read_runs

    try:
        if isinstance(runs, str | Path):
            runs = read_runs(runs)
        if form in ("chinchilla", "kaplan"):
            kw["budget"] = budget
        result = fit_runs(runs, form, bootstrap=bootstrap, seed=seed, **kw)
        warnings = list(getattr(runs, "warnings", ()))
        if budget is not None:
            w = extrapolation_warning(result, runs, budget)
            if w:
                warnings.append(w)
        bt = run_backtest(runs, holdout, compute_floor=compute_floor, E_fixed=E_fixed, E_bounds=E_bounds) \
            if backtest else None
    except ValueError as e:
        if isinstance(e, InputError):
            raise
        raise InputError(getattr(e, "field", "runs"), str(e)) from None
    return FitReport(result=result, backtest=bt, warnings=tuple(warnings))


__all__ = ["FitReport", "fit"]
