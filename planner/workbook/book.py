"""Build the capacity-plan workbook: the Inputs and Plan sheets (and Infeasible for a sweep), written
atomically with each formula's computed value cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.plan import Plan
from planner.safe_io import Outputs, write_output
from planner.sweep import SweepResult, plan_row
from planner.workbook.cached import add_cached_values
from planner.workbook.cells import FMT_SCI, Sheet, col, load_openpyxl
from planner.workbook.inputs_sheet import write_inputs
from planner.workbook.plan_sheet import write_plan_sheet


def _scenarios(target: Plan | SweepResult) -> tuple[list[Plan], list[dict[str, Any]], dict[str, list[Any]]]:
    if isinstance(target, SweepResult):
        return list(target.plans), list(target.rows), dict(target.axes)
    if isinstance(target, Plan):
        return [target], [plan_row(target)], {}
    raise TypeError(f"export needs a Plan or a SweepResult, got {type(target).__name__}")


def write_xlsx(target: Plan | SweepResult, path: str | Path, *, field: str = "xlsx", law: Any = None,
               outputs: Outputs | None = None) -> Path:
    """An editable capacity plan (see the module docstring for the layout). Needs openpyxl (planner[xlsx]).

    ``law``: the Law (or law id / file) the plan used, listed with its coefficients; default: the sweep's request
    law, or the plan's law id (give ``law`` when the plan came from a law file). Every formula cell also carries
    its computed value, so readers that do not recalculate (pandas, openpyxl ``data_only``) see the numbers.
    Written atomically, or staged in ``outputs`` (see ``write_csv``)."""
    openpyxl = load_openpyxl()
    from openpyxl.styles import Alignment, Font, PatternFill

    plans, rows, axes = _scenarios(target)
    styles = {
        "bold": Font(bold=True),
        "title": Font(bold=True, size=13),
        "header": PatternFill("solid", fgColor="DDEBF7"),
        "edit": PatternFill("solid", fgColor="FFF2CC"),
        "derived": PatternFill("solid", fgColor="E2EFDA"),
        "wrap": Alignment(wrap_text=True, vertical="top"),
    }
    wb = openpyxl.Workbook()
    inputs = Sheet(wb.active, styles)
    inputs.ws.title = "Inputs"
    plan_ws = Sheet(wb.create_sheet("Plan"), styles)

    cells = write_inputs(inputs, target, plans, law)
    write_plan_sheet(plan_ws, target, plans, rows, axes, cells)

    # ---------------------------------------------------------------- Infeasible sheet (sweeps)
    if isinstance(target, SweepResult) and target.failures:
        fail = Sheet(wb.create_sheet("Infeasible"), styles)
        names = list(target.axes)
        fail.header(1, [*names, "Field", "Reason"])
        fail.ws.freeze_panes = "A2"
        for i, f in enumerate(target.failures, 2):
            for j, n in enumerate(names, 1):
                v = f.point.get(n)
                fail.put(i, j, v, FMT_SCI if isinstance(v, float) else None)
            fail.put(i, len(names) + 1, f.field)
            fail.put(i, len(names) + 2, f.reason)
        fail.ws.column_dimensions[col(len(names) + 2)].width = 120

    sheets = [inputs, plan_ws]

    def writer(tmp: Path) -> None:
        wb.save(tmp)
        add_cached_values(tmp, {i: sh.cached for i, sh in enumerate(sheets, 1) if sh.cached})

    return write_output(path, field, writer, outputs)
