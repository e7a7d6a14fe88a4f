"""Sweeps and Pareto frontiers: one request, re-planned over a grid of budgets, dollars, deadlines, demand, devices.

    from planner import PlanRequest
    from planner.sweep import sweep
    result = sweep(PlanRequest(gpu="h100", budget_flops=1e21), budgets="1e20:1e25:50", gpus=["h100", "b200"])
    result.frontier("loss-cost")       # the non-dominated rows, cheapest first

    for p in iter_sweep(PlanRequest(budget_flops=1e21), budgets="1e18:1e26:10000", dollars="1e4:1e8:10"):
        p.row or p.failure             # one point at a time, in grid order; nothing is accumulated

Every grid point is ``optimize`` of the base request with the axis values substituted. The geometric programs
are compiled once per process and constraint set (``planner.program.get_program`` caches them) and re-solved
with new Parameter values. Large grids are shared by worker processes (``planner.sweep_pool``). A point that
cannot be planned is recorded in ``failures`` with its one-line reason; it does not stop the sweep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import InputError
from planner.plan import Plan
from planner.request import PlanRequest
from planner.sweep_grid import AXES, MAX_GRID, MAX_POINTS, NUMERIC_AXES, grid_of, parse_grid
from planner.sweep_pool import Grid, SweepPoint, default_workers, solve_points

__all__ = [
    "AXES", "FRONTIERS", "MAX_GRID", "MAX_POINTS", "NUMERIC_AXES", "ROW_KEYS", "Grid", "SweepFailure",
    "SweepPoint", "SweepResult", "SweepStream", "grid_of", "iter_sweep", "pareto", "pareto_indices", "parse_grid",
    "plan_row", "sweep",
]

# Pareto frontiers: name -> (x, y), both minimized
FRONTIERS: dict[str, tuple[str, str]] = {
    "loss-cost": ("total_cost_usd", "loss"),
    "time-cost": ("total_cost_usd", "hours"),
}

# Columns of a sweep row, in order: the axis values, then the plan's key numbers (units in the names).
ROW_KEYS: tuple[str, ...] = (
    "budget_flops", "dollars", "deadline_days", "inference_tokens", "gpu",
    "precision", "params", "tokens", "tokens_per_param", "flops", "loss", "gpus", "hours", "days", "gpu_hours",
    "cost_usd", "total_cost_usd", "energy_kwh", "mfu", "goodput", "price_usd_per_gpu_hour", "batch_tokens",
    "steps", "learning_rate", "warmup_steps", "total_params", "active_params", "experts", "epochs", "layers",
    "d_model", "binding",
)


def plan_row(plan: Plan, request: PlanRequest | None = None) -> dict[str, Any]:
    """A flat dict of ``plan``'s key numbers (and the request's axis values when given).

    Units: params/tokens counts, flops FLOP, loss nats/token, hours wall-clock, gpu_hours device-hours,
    *_usd dollars, energy_kwh kWh. ``binding`` is the binding constraints joined by ';'.
    """
    row: dict[str, Any] = {}
    for f in ("budget_flops", "dollars", "deadline_days", "inference_tokens"):
        row[f] = getattr(request, f) if request is not None else None
    row.update(
        gpu=plan.gpu, precision=plan.precision, params=plan.params, tokens=plan.tokens,
        tokens_per_param=plan.tokens_per_param, flops=plan.flops, loss=plan.loss, gpus=plan.gpus, hours=plan.hours,
        days=plan.days, gpu_hours=plan.gpu_hours, cost_usd=plan.cost_usd, total_cost_usd=plan.total_cost_usd,
        energy_kwh=plan.energy_kwh, mfu=plan.mfu, goodput=plan.goodput,
        price_usd_per_gpu_hour=plan.price_usd_per_gpu_hour, batch_tokens=plan.batch_tokens, steps=plan.steps,
        learning_rate=plan.learning_rate, warmup_steps=plan.warmup_steps, total_params=plan.total_params,
        active_params=plan.active_params, experts=plan.experts, epochs=plan.epochs,
        layers=plan.shape.layers, d_model=plan.shape.d_model,
        binding=";".join(plan.binding),
    )
    return row


class SweepFailure(BaseModel):
    """A grid point that could not be planned: its axis values and the one-line reason."""

    model_config = ConfigDict(frozen=True)

    point: dict[str, Any] = Field(description="PlanRequest field -> value at this grid point")
    field: str = Field(description="the request field the error names")
    reason: str
    relaxations: dict[str, float] = Field(default_factory=dict, description="limit -> value that would fix it")


class SweepResult(BaseModel):
    """A sweep: the axes, one row and one Plan per feasible point (same order), failures and frontiers.

    ``frontiers`` maps a frontier name (``FRONTIERS``: "loss-cost", "time-cost") to indexes into ``rows``,
    sorted by the x quantity (dollars). ``elapsed_s`` is the wall-clock of the whole sweep.
    """

    model_config = ConfigDict(frozen=True)

    base: PlanRequest
    axes: dict[str, list[Any]] = Field(description="PlanRequest field -> values swept")
    rows: list[dict[str, Any]]
    plans: list[Plan]
    failures: list[SweepFailure]
    frontiers: dict[str, list[int]]
    elapsed_s: float

    @property
    def points(self) -> int:
        """Grid points attempted."""
        return len(self.rows) + len(self.failures)

    def frontier(self, name: str = "loss-cost") -> list[dict[str, Any]]:
        """The rows on frontier ``name`` ("loss-cost" or "time-cost"), cheapest first."""
        if name not in self.frontiers:
            raise InputError("pareto", f"unknown frontier {name!r}; allowed: {', '.join(FRONTIERS)}")
        return [self.rows[i] for i in self.frontiers[name]]

    def summary(self, *, plans: bool = False) -> dict[str, Any]:
        """JSON-ready dict: axes, rows, failures, frontiers (rows), timing; full plans only if ``plans``."""
        out: dict[str, Any] = {
            "base": self.base.model_dump(mode="json", exclude_defaults=True),
            "axes": self.axes,
            "points": self.points,
            "feasible": len(self.rows),
            "elapsed_s": self.elapsed_s,
            "rows": self.rows,
            "failures": [f.model_dump(mode="json") for f in self.failures],
            "frontiers": {k: self.frontier(k) for k in self.frontiers},
        }
        if plans:
            out["plans"] = [p.summary() for p in self.plans]
        return out


# --------------------------------------------------------------------------------------------- pareto


def _value(p: Any, key: str) -> float | None:
    v = p.get(key) if isinstance(p, Mapping) else getattr(p, key, None)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


PARETO_RTOL = 1e-6  # values this close (relative) are ties: $0.10 on $100,000


def pareto_indices(points: Sequence[Any], x: str = "total_cost_usd", y: str = "loss", *,
                   rtol: float = PARETO_RTOL) -> list[int]:
    """Indexes of the points not dominated in (``x``, ``y``), both minimized, sorted by x (ties: lower y).

    Values within ``rtol`` (relative) of each other count as equal. A point is dominated when another is no
    worse in both (within ``rtol``) and better than it by more than ``rtol`` in one; of points equal within
    ``rtol`` in both, the first in (x, y) order is kept. Points missing x or y are skipped.
    """
    keyed = []
    for i, p in enumerate(points):
        vx, vy = _value(p, x), _value(p, y)
        if vx is not None and vy is not None:
            keyed.append((vx, vy, i))
    keyed.sort()
    strict, best_y = [], math.inf  # the exact frontier: x ascending, y strictly descending
    for vx, vy, i in keyed:
        if vy < best_y:
            strict.append((vx, vy, i))
            best_y = vy
    # A point tolerance-dominated by any point is tolerance-dominated by one on the exact frontier, so only
    # frontier neighbours within the tolerance window need checking.
    out = []
    for k, (vx, vy, i) in enumerate(strict):
        dominated = False
        j = k + 1  # larger x, smaller y: dominates if x ties and y is clearly lower
        while not dominated and j < len(strict) and _le(strict[j][0], vx, rtol):
            dominated = strict[j][1] < vy - rtol * abs(vy)
            j += 1
        j = k - 1  # smaller x, larger y: dominates if y ties and x is clearly lower, or if both tie (kept first)
        while not dominated and j >= 0 and _le(strict[j][1], vy, rtol):
            dominated = True
            j -= 1
        if not dominated:
            out.append(i)
    return out


def _le(a: float, b: float, rtol: float) -> bool:
    """a <= b within the relative tolerance."""
    return a <= b + rtol * max(abs(a), abs(b))


def pareto(points: Sequence[Any], x: str = "total_cost_usd", y: str = "loss", *, rtol: float = PARETO_RTOL
           ) -> list[Any]:
    """The non-dominated points (dicts or objects with attributes ``x`` and ``y``), minimizing both,
    sorted by ``x``; ties within ``rtol``. E.g. ``pareto(rows)`` is loss vs dollars; ``pareto(rows,
    y="hours")`` time vs dollars."""
    return [points[i] for i in pareto_indices(points, x, y, rtol=rtol)]


# ---------------------------------------------------------------------------------------------- sweep


class SweepStream(Iterator[SweepPoint]):
    """The points of a sweep, yielded in grid order as they are solved (see ``iter_sweep``); ``axes`` and
    ``total`` describe the grid. ``close()`` stops the workers of an unfinished sweep."""

    def __init__(self, grid: Grid, points: Iterator[SweepPoint]) -> None:
        self.grid = grid
        self._points = points

    @property
    def axes(self) -> dict[str, list[Any]]:
        """PlanRequest field -> values swept."""
        return self.grid.axes

    @property
    def total(self) -> int:
        """Grid points."""
        return self.grid.total

    def __next__(self) -> SweepPoint:
        return next(self._points)

    def close(self) -> None:
        close = getattr(self._points, "close", None)
        if close is not None:
            close()


def iter_sweep(
    base: PlanRequest | Mapping[str, Any],
    *,
    budgets: Any = None,
    dollars: Any = None,
    deadlines: Any = None,
    inference_tokens: Any = None,
    gpus: Any = None,
    workers: int | None = 1,
    plans: bool = False,
) -> SweepStream:
    """The sweep's points one at a time, in grid order, as they are solved (nothing is accumulated): each a
    ``SweepPoint`` with its ``row`` or its ``failure`` (and its ``plan`` when ``plans``).

    The grid is validated when this is called (InputError for a bad axis); the points are solved as the
    iterator is consumed, on ``workers`` processes (None: every core; used for large grids only, see
    ``planner.sweep_pool``; rows equal a serial run's). A script that uses several
    workers must start from ``if __name__ == "__main__":`` (worker processes import the main module, as
    ``multiprocessing`` requires).
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError("workers", f"must be a whole number >= 1, got {workers!r}")
    grid = grid_of(base, budgets=budgets, dollars=dollars, deadlines=deadlines, inference_tokens=inference_tokens,
                   gpus=gpus)
    return SweepStream(grid, solve_points(grid, workers=default_workers() if workers is None else workers,
                                          keep_plans=plans))


def sweep(
    base: PlanRequest | Mapping[str, Any],
    *,
    budgets: Any = None,
    dollars: Any = None,
    deadlines: Any = None,
    inference_tokens: Any = None,
    gpus: Any = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = 1,
) -> SweepResult:
    """Plan every point of the cartesian product of the given axes.

    Each axis is a grid spec (see ``parse_grid``) or a list: ``budgets`` FLOPs, ``dollars`` USD, ``deadlines``
    days, ``inference_tokens`` tokens served, ``gpus`` accelerator ids (a list, "h100,b200" or "any").
    ``progress(done, total)`` is called after each point. Bad axis values raise InputError (one line, naming
    the field); a point that cannot be planned is recorded in ``failures`` with its reason. ``workers``
    processes share a large grid (None: every core; see ``iter_sweep``). The result holds every Plan: for very
    large grids, stream ``iter_sweep`` instead.
    """
    if not isinstance(base, PlanRequest):
        base = PlanRequest.parse(**dict(base))
    t0 = time.perf_counter()
    stream = iter_sweep(base, budgets=budgets, dollars=dollars, deadlines=deadlines,
                        inference_tokens=inference_tokens, gpus=gpus, workers=workers, plans=True)
    rows: list[dict[str, Any]] = []
    plans: list[Plan] = []
    failures: list[SweepFailure] = []
    try:
        for done, p in enumerate(stream, 1):
            if p.failure is not None:
                failures.append(p.failure)
            else:
                plans.append(p.plan)
                rows.append(p.row)
            if progress is not None:
                progress(done, stream.total)
    finally:
        stream.close()
    elapsed = time.perf_counter() - t0
    frontiers = {name: pareto_indices(rows, x, y) for name, (x, y) in FRONTIERS.items()}
    return SweepResult(base=base, axes=stream.axes, rows=rows, plans=plans, failures=failures,
                       frontiers=frontiers, elapsed_s=elapsed)
