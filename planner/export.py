"""Export a Plan or a SweepResult: CSV (csv module), JSON, and an editable xlsx capacity plan (openpyxl,
built by ``planner.workbook``).

The workbook's sheets (Inputs, Plan, Infeasible), its live formulas and how text cells are kept from
becoming formulas are described in ``planner.workbook``. CSV cells that start with = + - @ get a leading
apostrophe.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.plan import Plan
from planner.safe_io import Outputs, write_output
from planner.sweep import SweepResult, plan_row
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

    from planner.sweep_digest import write_csv_rows

    return write_output(path, field, lambda tmp: write_csv_rows(tmp, rows), outputs)


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
