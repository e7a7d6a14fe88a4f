"""Export a Plan or a SweepResult: CSV (csv module), JSON, and an editable xlsx capacity plan (openpyxl,
built by ``planner.workbook``).

The xlsx has two sheets a person edits and reads:

- **Inputs**: the assumptions in column B (goodput, power utilization, PUE, serving efficiency), the request's
  limits, the law with its coefficients and citation, a table of accelerators (price per device-hour, TDP) and
  a table of throughput assumptions (peak FLOP/s at the precision used, MFU).
- **Plan**: one row per scenario. Params, tokens, loss and devices are the planner's values; the derived cells
  are live formulas of the Inputs sheet: FLOPs = 6·N·D; device-hours = FLOPs / (peak · MFU · goodput · 3600);
  hours = device-hours / devices; training $ = device-hours × price; $ per million served output tokens =
  serving price × device-seconds per output token × 1e6 / 3600 (the serving model's figure for the plan's
  serving configuration, cost_models.serving); serving $ = (output tokens × s/token + input tokens × s/input
  token) × serving price / 3600; energy kWh =
  devices × TDP × power utilization × hours × PUE / 1000. Changing a price in Inputs moves every total.

A sweep adds an **Infeasible** sheet (grid points that could not be planned, with the reason). Every text cell
that starts with = + - @ (or a tab / carriage return) is written as a string with Excel's quote prefix, so a
law id, accelerator name or file path cannot become a formula (CSV cells get a leading apostrophe).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.plan import Plan
from planner.safe_io import Outputs, write_output
from planner.sweep import ROW_KEYS, SweepResult, plan_row
from planner.workbook import XLSX_MAX_TEXT, write_xlsx, xlsx_text
from planner.workbook.cells import FORMULA_START


def escape_text(s: str) -> str:
    """A CSV-safe text cell: a leading apostrophe when it would start a spreadsheet formula."""
    return "'" + s if s.startswith(FORMULA_START) else s


def _rows(target: Plan | SweepResult) -> list[dict[str, Any]]:
    if isinstance(target, SweepResult):
        return list(target.rows)
    if isinstance(target, Plan):
        return [plan_row(target)]
    raise TypeError(f"export needs a Plan or a SweepResult, got {type(target).__name__}")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def write_csv(target: Plan | SweepResult, path: str | Path, *, field: str = "csv",
              outputs: Outputs | None = None) -> Path:
    """One row per plan (the sweep's feasible points), columns ``planner.sweep.ROW_KEYS`` (units in names).

    Written to a temporary file renamed into place (an existing file is replaced only by a complete one), or
    staged in ``outputs`` to be renamed with the command's other files."""
    rows = _rows(target)

    def writer(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(ROW_KEYS), extrasaction="ignore")
            w.writeheader()
            for row in rows:
                w.writerow({k: escape_text(v) if isinstance(v, str) else ("" if v is None else v)
                            for k, v in row.items()})

    return write_output(path, field, writer, outputs)


def to_json(target: Plan | SweepResult) -> dict[str, Any]:
    """The JSON object for a plan (``Plan.summary()``) or a sweep (``SweepResult.summary()``); no NaN."""
    if isinstance(target, SweepResult):
        return _json_safe(target.summary())
    if isinstance(target, Plan):
        return _json_safe(target.summary())
    raise TypeError(f"export needs a Plan or a SweepResult, got {type(target).__name__}")


def write_json(target: Plan | SweepResult, path: str | Path, *, field: str = "json_out",
               outputs: Outputs | None = None) -> Path:
    """``to_json(target)`` written with indentation (atomically, or staged in ``outputs``; see ``write_csv``)."""
    text = json.dumps(to_json(target), indent=2, allow_nan=False) + "\n"
    return write_output(path, field, lambda tmp: tmp.write_bytes(text.encode("utf-8")), outputs)


def write(target: Plan | SweepResult, path: str | Path) -> Path:
    """Write by the file's suffix: .csv, .json or .xlsx."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return write_csv(target, path)
    if suffix == ".json":
        return write_json(target, path)
    if suffix == ".xlsx":
        return write_xlsx(target, path)
    raise InputError("export", f"unknown file type {suffix or '(none)'!r} for {path}; use .csv, .json or .xlsx")


__all__ = ["FORMULA_START", "XLSX_MAX_TEXT", "escape_text", "to_json", "write", "write_csv", "write_json",
           "write_xlsx", "xlsx_text"]
