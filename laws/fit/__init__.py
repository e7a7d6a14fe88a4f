"""Fit scaling laws to training runs: the Hoffmann et al. 2022 / Epoch 2024 method, vectorized.

Modules, one job each: ``common`` (inputs, Huber, FitError), ``kernels`` (objective and gradient, calling the
laws' own formulas), ``optimizer`` (batched L-BFGS-B with pruning), ``multistart`` (start grid, polish,
bootstrap with ``workers``), ``forms`` (one spec per loss-law form and the one fit), ``power`` (OLS power
laws), ``diagnostics`` (typed records), ``result`` (FitResult with ``to_law()``), ``objectives``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from laws.fit.common import DEFAULT_DELTA, FitError, Progress, huber
from laws.fit.diagnostics import Diagnostic
from laws.fit.forms import (
    CHINCHILLA,
    CHINCHILLA_BOUNDS,
    HOFFMANN_GRID,
    KAPLAN,
    KAPLAN_BOUNDS,
    KAPLAN_GRID,
    MUENNIGHOFF,
    MUENNIGHOFF_BASE,
    MUENNIGHOFF_GRID,
    MUENNIGHOFF_RSTAR,
    fit_form,
)
from laws.fit.objectives import chinchilla_objective, huber_objective, muennighoff_objective
from laws.fit.optimizer import Prune, minimize_batched
from laws.fit.power import fit_power_law
from laws.fit.result import DERIVED_MEANING, FitResult
from laws.kaplan import kaplan_log_loss
from laws.muennighoff import effective_params, effective_tokens, muennighoff_loss

FORMS = ("chinchilla", "kaplan", "muennighoff", "power")


def fit_chinchilla(
    params, tokens, loss, *, delta: float = DEFAULT_DELTA, bootstrap: int = 0, seed: int | None = 0,
    budget: float | None = None, progress: Progress | None = None, grid: Mapping[str, Sequence[float]] | None = None,
    source: str = "runs", workers: int | None = 1,
) -> FitResult:
    """Fit L = E + A/N^alpha + B/D^beta (N params, D tokens, L loss) by the Hoffmann et al. 2022 method.

    Huber ``delta`` on log loss (summed), L-BFGS from the 4,500-point grid of App. D.2 (or ``grid``: keys
    a, b, e, alpha, beta). ``bootstrap`` resampled refits (seeded by ``seed``, ``workers`` processes, same
    numbers for any count) give stderr / ci95 and intervals on the derived allocation at ``budget`` FLOPs.
    ``progress(done, total)`` is called as replicates finish.
    """
    return fit_form(CHINCHILLA, {"params": params, "tokens": tokens, "loss": loss}, delta=delta, bootstrap_n=bootstrap,
                    seed=seed, budget=budget, progress=progress, grid=grid, source=source, workers=workers)


def fit_kaplan(
    params, tokens, loss, *, delta: float = DEFAULT_DELTA, bootstrap: int = 0, seed: int | None = 0,
    budget: float | None = None, progress: Progress | None = None, grid: Mapping[str, Sequence[float]] | None = None,
    source: str = "runs", workers: int | None = 1,
) -> FitResult:
    """Fit Kaplan et al. 2020 L = ((Nc/N)^(alpha_N/alpha_D) + Dc/D)^alpha_D (N params, D tokens).

    Same method as ``fit_chinchilla`` from a 400-point grid of (log Nc, log Dc, alpha_N, alpha_D)
    (``KAPLAN_GRID``).
    """
    return fit_form(KAPLAN, {"params": params, "tokens": tokens, "loss": loss}, delta=delta, bootstrap_n=bootstrap,
                    seed=seed, budget=budget, progress=progress, grid=grid, source=source, workers=workers)


def fit_muennighoff(
    params, tokens, unique_tokens, loss, *, base: Any = MUENNIGHOFF_BASE, delta: float = DEFAULT_DELTA,
    bootstrap: int = 0, seed: int | None = 0, progress: Progress | None = None,
    grid: Mapping[str, Sequence[float]] | None = None, source: str = "runs", budget: float | None = None,
    workers: int | None = 1,
) -> FitResult:
    """Fit R_D*, R_N* of the Muennighoff et al. 2023 data-constrained law with the base law held fixed.

    ``base``: Chinchilla coefficients E, A, B, alpha, beta (dict, a ``laws`` Law or a chinchilla FitResult);
    default the authors' C4 base (``MUENNIGHOFF_BASE``). For your own data pass a base fitted on your
    single-epoch runs. Batched L-BFGS in (log R_D*, log R_N*) from a 36-point grid (``MUENNIGHOFF_GRID``).
    The optimum is often flat. ``budget`` is ignored (the allocation under repetition has no closed form).
    """
    del budget
    return fit_form(MUENNIGHOFF, {"params": params, "tokens": tokens, "unique_tokens": unique_tokens, "loss": loss},
                    delta=delta, bootstrap_n=bootstrap, seed=seed, progress=progress, grid=grid, source=source,
                    base=base, workers=workers)


def muennighoff_effective(params, tokens, unique_tokens, *, R_D_star, R_N_star, A, B, alpha, beta, E=None):
    """Effective (N', D') of the data-constrained law (``laws.muennighoff``): U_D = min(U, D) unique tokens seen."""
    del E
    return (effective_params(params, unique_tokens, A, B, alpha, beta, R_N_star, tokens=tokens),
            effective_tokens(tokens, unique_tokens, R_D_star))


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
        kw.pop("workers", None)
        return dataclasses.replace(fit_power_law(runs.column(y), **kw, **{k: runs.column(k) for k in x}), target=y)
    raise FitError(f"unknown form {form!r}; allowed: {', '.join(FORMS)}", field="form")


__all__ = [
    "CHINCHILLA_BOUNDS", "DEFAULT_DELTA", "DERIVED_MEANING", "FORMS", "HOFFMANN_GRID", "KAPLAN_BOUNDS", "KAPLAN_GRID",
    "MUENNIGHOFF_BASE", "MUENNIGHOFF_GRID", "MUENNIGHOFF_RSTAR", "Diagnostic", "FitError", "FitResult", "Prune",
    "chinchilla_objective", "fit_chinchilla", "fit_kaplan", "fit_muennighoff", "fit_power_law", "fit_runs", "huber",
    "huber_objective", "kaplan_log_loss", "minimize_batched", "muennighoff_effective", "muennighoff_loss",
    "muennighoff_objective",
]
