"""Sweep grids: parsing an axis ("1e20:1e25:50", "a,b,c", a number or a list) and the validated grid of a sweep.

Every value is checked when the grid is built, so a bad axis value is a one-line InputError naming the request
field, raised before any point is solved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from planner.errors import InputError
from planner.request import PlanRequest
from planner.sweep_pool import Grid

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


class _GridText:
    """A grid's text for an error message, built only when a message needs it (a list's ``str`` is O(n))."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __repr__(self) -> str:
        text = repr(self.items)
        return text if len(text) <= 60 else text[:40] + " ... " + text[-15:]


def _number(text: str, field: str, spec: str | _GridText) -> float:
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
        items = list(spec)  # iterated once: the grid's text is built only for an error message
        if len(items) > MAX_GRID:
            raise InputError(field, f"grid of {len(items):,} values: at most {MAX_GRID:,}")
        shown = _GridText(items)
        values = [_number(repr(float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else str(v),
                          field, shown) for v in items]
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


def _axis_values(name: str, spec: Any, base: PlanRequest) -> list[Any]:
    field = AXES[name]
    if name == "gpus":
        return _accelerators(spec, base.catalog)
    return parse_grid(spec, field)


def grid_of(
    base: PlanRequest | Mapping[str, Any],
    *,
    budgets: Any = None,
    dollars: Any = None,
    deadlines: Any = None,
    inference_tokens: Any = None,
    gpus: Any = None,
) -> Grid:
    """The validated grid of a sweep (see ``sweep`` for the axes). Every point's request is checked before
    any is solved -- a bad axis value is an input error, not an infeasible plan -- and none is kept."""
    from laws.base import LawError
    from laws.catalog import get_law

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
    grid = Grid(fields=base.model_dump(exclude_unset=True), axes=axes)
    for i in range(total):
        try:
            grid.request(i)
        except InputError as err:
            where = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in grid.update(i).items())
            raise InputError(err.field, f"{err.detail} (grid point {where})") from None
    return grid


