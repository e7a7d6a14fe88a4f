"""The editable xlsx capacity plan (openpyxl): ``write_xlsx(plan_or_sweep, path)``.

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

Modules: ``book`` (the workbook and its writing), ``inputs_sheet``, ``plan_sheet``, ``cells`` (formats, safe
text, the sheet writer), ``cached`` (formula values written as cached results).
"""

from planner.workbook.book import write_xlsx
from planner.workbook.cells import XLSX_MAX_TEXT, xlsx_text

__all__ = ["XLSX_MAX_TEXT", "write_xlsx", "xlsx_text"]
