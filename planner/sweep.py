"""Sweeps and Pareto frontiers: one request, re-planned over a grid of budgets, dollars, deadlines, demand, devices.

    from planner import PlanRequest
    from planner.sweep import sweep
    result = sweep(PlanRequest(gpu="h100", budget_flops=1e21), budgets="1e20:1e25:50", gpus=["h100", "b200"])
    result.frontier("loss-cost")       # the non-dominated rows, cheapest first

Every grid point is ``optimize`` of the base request with the axis values substituted. The geometric program
is compiled once per constraint set (``planner.program.get_program`` caches it) and re-solved with new
Parameter values, so a point costs a few milliseconds. A point that cannot be planned is recorded in
``failures`` with its one-line reason; it does not stop the sweep.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.errors import InfeasiblePlanError, InputError
from planner.plan import Plan
from planner.request import PlanRequest

# sweep() keyword -> PlanRequest field it sets
AXES: dict[str, str] = {
    "budgets": "budget_flops",
    "dollars": "dollars",
    "deadlines": "deadline_days",
    "inference_tokens": "inference_tokens",
    "gpus": "gpu",
}
NUMERIC_AXES = ("budgets", "dollars", "deadlines", "inference_tokens")
MAX_POINTS = 100_000  # a grid larger than this is almost surely a typo (e.g. a count of 1e6)
MAX_GRID = 10_000  # points on one axis

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


# ---------------------------------------------------------------------------------------------- grids


def _number(text: str, field: str, spec: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise InputError(field, f"grid {spec!r}: {text.strip()!r} is not a number") from None
    if not math.isfinite(x) or x <= 0:
        raise InputError(field, f"grid {spec!r}: values must be positive and finite, got {text.strip()!r}")
    return x


def parse_grid(spec: str | float | int | Sequence[float], field: str = "budget_flops") -> list[float]:
    """Grid values from a spec: ``"1e20:1e25:50"`` -> 50 log-spaced values, both ends included;
    ``"1e6,2e6,5e6"`` -> that list; ``"3e21"`` or a number -> [3e21]; a sequence of numbers -> itself.

    Raises InputError naming ``field`` (the request field the grid sets) for a malformed spec.
    """
    if isinstance(spec, bool):
        raise InputError(field, f"grid must be a number, a list or 'start:stop:count', got {spec!r}")
    if isinstance(spec, int | float):
        return [_number(repr(float(spec)), field, str(spec))]
    if not isinstance(spec, str):
        values = [_number(repr(float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else str(v),
                          field, str(list(spec))) for v in spec]
        if not values:
            raise InputError(field, "grid is empty")
        return values
    s = spec.strip()
    if not s:
        raise InputError(field, "grid is empty; use 'start:stop:count', 'a,b,c' or one number")
    if ":" in s:
        parts = s.split(":")
        if len(parts) != 3:
            raise InputError(field, f"grid {spec!r}: a range is 'start:stop:count' (e.g. 1e20:1e25:50)")
        start, stop = _number(parts[0], field, spec), _number(parts[1], field, spec)
        try:
            count = int(parts[2])
        except ValueError:
            raise InputError(field, f"grid {spec!r}: count {parts[2].strip()!r} must be a whole number") from None
        if not 1 <= count <= MAX_GRID:
            raise InputError(field, f"grid {spec!r}: count must be in [1, {MAX_GRID:,}], got {count}")
        if count == 1:
            if start != stop:
                raise InputError(field, f"grid {spec!r}: one point needs start == stop (or give one number)")
            return [start]
        values = np.geomspace(start, stop, count)
        values[0], values[-1] = start, stop  # exact ends
        return [float(v) for v in values]
    values = [_number(p, field, spec) for p in s.split(",") if p.strip()]
    if not values:
        raise InputError(field, f"grid {spec!r} has no values")
    if len(values) > MAX_GRID:
        raise InputError(field, f"grid {spec!r}: at most {MAX_GRID:,} values")
    return values


def _accelerators(spec: str | Sequence[str], catalog: tuple[str, ...], field: str = "gpus") -> list[str]:
    from cost_models.catalog import CatalogError, load_catalog

    items = spec.split(",") if isinstance(spec, str) else list(spec)
    ids = [str(x).strip() for x in items if str(x).strip()]
    if not ids:
        raise InputError(field, "no accelerator ids given (e.g. h100,b200 or any)")
    try:
        cat = load_catalog(catalog)
        if ids == ["any"]:
            return list(cat.accelerators)
        out = [cat.get(i).id for i in ids]
    except CatalogError as e:
        raise InputError("catalog" if e.field == "catalog" else field, str(e)) from None
    return list(dict.fromkeys(out))


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


def _axis_values(name: str, spec: Any, base: PlanRequest) -> list[Any]:
    field = AXES[name]
    if name == "gpus":
        return _accelerators(spec, base.catalog)
    return parse_grid(spec, field)


def sweep(
    base: PlanRequest | Mapping[str, Any],
    *,
    budgets: Any = None,
    dollars: Any = None,
    deadlines: Any = None,
    inference_tokens: Any = None,
    gpus: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Plan every point of the cartesian product of the given axes.

    Each axis is a grid spec (see ``parse_grid``) or a list: ``budgets`` FLOPs, ``dollars`` USD, ``deadlines``
    days, ``inference_tokens`` tokens served, ``gpus`` accelerator ids (a list, "h100,b200" or "any").
    ``progress(done, total)`` is called after each point. Bad axis values raise InputError (one line, naming
    the field); a point that cannot be planned is recorded in ``failures`` with its reason.
    """
    from laws.base import LawError
    from laws.catalog import get_law
    from planner.optimize import optimize

    if not isinstance(base, PlanRequest):
        base = PlanRequest.parse(**dict(base))
    given = {"budgets": budgets, "dollars": dollars, "deadlines": deadlines, "inference_tokens": inference_tokens,
             "gpus": gpus}
    axes = {AXES[k]: _axis_values(k, v, base) for k, v in given.items() if v is not None}
    total = math.prod(len(v) for v in axes.values()) if axes else 1
    if total > MAX_POINTS:
        raise InputError(next(iter(axes)), f"the grid has {total:,} points; at most {MAX_POINTS:,}")
    try:
        get_law(base.law)  # a bad law, catalog or accelerator fails every point: say so once
    except LawError as e:
        raise InputError("law", str(e)) from None
    if "gpu" not in axes:
        _accelerators(base.gpu if base.gpu.strip().lower() == "any" else base.gpu.split(","), base.catalog,
                      field="gpu")

    # Validate every point before solving any: a bad axis value is an input error, not an infeasible plan.
    fields = base.model_dump(exclude_unset=True)
    names = list(axes)
    requests: list[PlanRequest] = []
    for combo in itertools.product(*(axes[n] for n in names)):
        update = dict(zip(names, combo, strict=True))
        try:
            requests.append(PlanRequest(**{**fields, **update}))
        except InputError as err:
            where = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in update.items())
            raise InputError(err.field, f"{err.detail} (grid point {where})") from None

    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    plans: list[Plan] = []
    failures: list[SweepFailure] = []
    for done, req in enumerate(requests, 1):
        point = {n: getattr(req, n) for n in names}
        try:
            plan = optimize(req)
        except InputError as e:  # infeasible, or this accelerator cannot run this precision, ...
            relax = e.relaxations if isinstance(e, InfeasiblePlanError) else {}
            failures.append(SweepFailure(point=point, field=e.field, reason=str(e).replace("\n", " "),
                                         relaxations=relax))
        else:
            plans.append(plan)
            rows.append(plan_row(plan, req))
        if progress is not None:
            progress(done, total)
    elapsed = time.perf_counter() - t0
    frontiers = {name: pareto_indices(rows, x, y) for name, (x, y) in FRONTIERS.items()}
    return SweepResult(base=base, axes=axes, rows=rows, plans=plans, failures=failures, frontiers=frontiers,
                       elapsed_s=elapsed)

