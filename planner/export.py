"""Export a Plan or a SweepResult: CSV (csv module), JSON, and an editable xlsx capacity plan (openpyxl).

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.plan import Plan
from planner.safe_io import Outputs, write_output
from planner.sweep import ROW_KEYS, SweepResult, plan_row

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


# -------------------------------------------------------------------------------------------------- xlsx

_FMT_SCI = "0.000E+00"
_FMT_USD = "#,##0"
_FMT_USD_CENTS = "#,##0.00"
_FMT_HOURS = "#,##0.0"
_FMT_INT = "#,##0"
_FMT_LOSS = "0.0000"
_FMT_FRAC = "0.0%"
_FMT_PLAIN = "0.00"


def _openpyxl():
    try:
        import openpyxl
    except ImportError:
        raise InputError("xlsx", "writing .xlsx needs openpyxl: install planner[xlsx]") from None
    return openpyxl


XLSX_MAX_TEXT = 32_767  # characters in one cell (Excel's limit)


def xlsx_text(s: str) -> str:
    """Text an xlsx cell can hold: control characters XML forbids shown as \\xNN, at most 32,767 characters."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    s = ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return s if len(s) <= XLSX_MAX_TEXT else s[: XLSX_MAX_TEXT - 1] + "…"


class _Sheet:
    """A worksheet writer that escapes text, styles headers and remembers each formula's computed value."""

    def __init__(self, ws, styles):
        self.ws = ws
        self.st = styles
        self.cached: dict[str, float] = {}  # cell reference -> the formula's value, written as its cached value

    def put(self, row: int, col: int, value: Any, fmt: str | None = None, *, bold: bool = False,
            edit: bool = False):
        c = self.ws.cell(row=row, column=col)
        if isinstance(value, str):
            value = xlsx_text(value)
        c.value = value
        if isinstance(value, str) and value.startswith(FORMULA_START):
            c.data_type = "s"  # text, never a formula
            c.quotePrefix = True
        if fmt:
            c.number_format = fmt
        if bold:
            c.font = self.st["bold"]
        if edit:
            c.fill = self.st["edit"]
        return c

    def formula(self, row: int, col: int, text: str, fmt: str | None = None, value: float | None = None):
        """A live formula; ``value`` (the same arithmetic on the same inputs) is stored as its cached result."""
        c = self.ws.cell(row=row, column=col)
        c.value = text if text.startswith("=") else "=" + text
        if value is not None and math.isfinite(value):
            self.cached[c.coordinate] = float(value)
        if fmt:
            c.number_format = fmt
        c.fill = self.st["derived"]
        return c

    def header(self, row: int, values: Sequence[str]) -> None:
        for j, v in enumerate(values, 1):
            c = self.put(row, j, v)
            c.font = self.st["bold"]
            c.fill = self.st["header"]
            c.alignment = self.st["wrap"]


def _text(s: Any) -> str:
    return "" if s is None else str(s)


def _col(n: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(n)


def _scenarios(target: Plan | SweepResult) -> tuple[list[Plan], list[dict[str, Any]], dict[str, list[Any]]]:
    if isinstance(target, SweepResult):
        return list(target.plans), list(target.rows), dict(target.axes)
    if isinstance(target, Plan):
        return [target], [plan_row(target)], {}
    raise TypeError(f"export needs a Plan or a SweepResult, got {type(target).__name__}")


_AXIS_HEADERS = {
    "budget_flops": ("Budget (FLOP)", _FMT_SCI),
    "dollars": ("Dollar limit (USD)", _FMT_USD),
    "deadline_days": ("Deadline (days)", _FMT_PLAIN),
}


def write_xlsx(target: Plan | SweepResult, path: str | Path, *, field: str = "xlsx", law: Any = None,
               outputs: Outputs | None = None) -> Path:
    """An editable capacity plan (see the module docstring for the layout). Needs openpyxl (planner[xlsx]).

    ``law``: the Law (or law id / file) the plan used, listed with its coefficients; default: the sweep's request
    law, or the plan's law id (give ``law`` when the plan came from a law file). Every formula cell also carries
    its computed value, so readers that do not recalculate (pandas, openpyxl ``data_only``) see the numbers.
    Written atomically, or staged in ``outputs`` (see ``write_csv``)."""
    from cost_models.throughput import DEFAULT_POWER_UTILIZATION, DEFAULT_PUE

    openpyxl = _openpyxl()
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
    inputs = _Sheet(wb.active, styles)
    inputs.ws.title = "Inputs"
    plan_ws = _Sheet(wb.create_sheet("Plan"), styles)

    # ---------------------------------------------------------------- Inputs: scalar assumptions
    inputs.header(1, ["Input", "Value", "Unit", "Source / note"])
    inputs.ws.freeze_panes = "A2"
    goodputs = {p.goodput for p in plans} or {0.9}
    scalars = [
        ("goodput", "Goodput", next(iter(goodputs)), "fraction of paid device-hours that make progress",
         "planner default 0.90 (restarts, failures, checkpointing); cost_models.throughput", _FMT_FRAC),
        ("power_utilization", "Power utilization", DEFAULT_POWER_UTILIZATION, "fraction of TDP drawn on average",
         "StarCoderBase: 280 W average on 400 W A100s; cost_models.throughput", _FMT_FRAC),
        ("pue", "PUE", DEFAULT_PUE, "facility power / IT power",
         "estimate for a modern colocation facility; cost_models.throughput", _FMT_PLAIN),
    ]
    ref: dict[str, str] = {}
    given = {key: value for key, _l, value, _u, _n, _f in scalars}  # the Inputs values the formulas read
    r = 2
    for key, label, value, unit, note, fmt in scalars:
        inputs.put(r, 1, label, bold=True)
        inputs.put(r, 2, value, fmt, edit=True)
        inputs.put(r, 3, unit)
        inputs.put(r, 4, note)
        ref[key] = f"Inputs!$B${r}"
        r += 1
    if len(goodputs) > 1:
        inputs.put(r, 4, f"scenarios used several goodputs ({', '.join(f'{g:g}' for g in sorted(goodputs))}); "
                         "the sheet applies this one to all")
        r += 1

    # ---------------------------------------------------------------- Inputs: request / limits
    r += 1
    inputs.put(r, 1, "Request", bold=True)
    r += 1
    request_rows = _request_rows(target)
    for label, value, unit in request_rows:
        inputs.put(r, 1, label)
        fmt = _FMT_SCI if isinstance(value, float) and (value >= 1e6 or value < 1e-2) else None
        inputs.put(r, 2, value, fmt)
        inputs.put(r, 3, unit)
        r += 1

    # ---------------------------------------------------------------- Inputs: law
    r += 1
    law0 = plans[0] if plans else None
    inputs.put(r, 1, "Law", bold=True)
    r += 1
    laws = _laws(target, law)
    for law in laws:
        inputs.put(r, 1, "law id")
        inputs.put(r, 2, law.id)
        inputs.put(r, 3, f"form {law.form}")
        inputs.put(r, 4, law.info.citation)
        r += 1
        for k, v in law.coefficients.items():
            inputs.put(r, 1, f"  {k}")
            inputs.put(r, 2, float(v), "0.000000")
            inputs.put(r, 3, "coefficient")
            r += 1
        if law.info.validity:
            inputs.put(r, 1, "  validity")
            inputs.put(r, 4, law.info.validity)
            r += 1
    if not laws and law0 is not None:
        inputs.put(r, 1, "law id")
        inputs.put(r, 2, law0.law)
        inputs.put(r, 4, law0.law_citation)
        r += 1

    # ---------------------------------------------------------------- Inputs: accelerators (price, TDP)
    r += 1
    inputs.put(r, 1, "Accelerators", bold=True)
    r += 1
    acc_header = r
    inputs.header(acc_header, ["Accelerator", "Price (USD per device-hour)", "TDP (W per device)", "Name",
                               "Price source"])
    r += 1
    acc_row: dict[tuple[str, float], int] = {}
    for p in plans:
        key = (p.gpu, p.price_usd_per_gpu_hour)
        if key in acc_row:
            continue
        acc_row[key] = r
        tdp = _tdp(p)
        inputs.put(r, 1, p.gpu, bold=True)
        inputs.put(r, 2, p.price_usd_per_gpu_hour, _FMT_USD_CENTS, edit=True)
        inputs.put(r, 3, tdp, _FMT_INT, edit=True)
        inputs.put(r, 4, p.gpu_name)
        inputs.put(r, 5, p.price_source)
        r += 1

    # ---------------------------------------------------------------- Inputs: throughput (peak, MFU)
    r += 1
    inputs.put(r, 1, "Throughput", bold=True)
    r += 1
    inputs.header(r, ["Accelerator", "Precision", "Peak (FLOP/s per device, dense)", "MFU (fraction)", "MFU source"])
    r += 1
    thr_row: dict[tuple[str, str, float, float], int] = {}
    for p in plans:
        key = (p.gpu, p.precision, p.peak_flops_per_gpu, p.mfu)
        if key in thr_row:
            continue
        thr_row[key] = r
        inputs.put(r, 1, p.gpu, bold=True)
        inputs.put(r, 2, p.precision)
        inputs.put(r, 3, p.peak_flops_per_gpu, _FMT_SCI, edit=True)
        inputs.put(r, 4, p.mfu, _FMT_FRAC, edit=True)
        inputs.put(r, 5, p.mfu_source)
        r += 1

    # ---------------------------------------------------------------- Inputs: assumptions
    r += 1
    inputs.put(r, 1, "Assumptions", bold=True)
    r += 1
    assumptions = [
        "Training FLOPs = 6 · params · tokens (attention FLOPs not counted).",
        "Device-hours = FLOPs / (peak · MFU · goodput · 3600); a step-time floor (--min-step-seconds) is not "
        "modelled in this sheet.",
        "Training cost = device-hours × price; wall-clock hours = device-hours / devices.",
        "Serving: $ per million tokens = price · 2N · 1e6 / (peak · serving efficiency · 3600) on the training "
        "accelerator; serving cost = (output tokens × s/token + input tokens × s/input token) × serving price / 3600.",
        "Energy kWh = devices × TDP × power utilization × hours × PUE / 1000.",
        "Loss, params, tokens and devices are the planner's optimum for each scenario; editing them does not "
        "re-optimize (run planner again for that).",
    ]
    seen: set[str] = set()
    for p in plans:
        for n in p.notes:
            if n not in seen and len(seen) < 20:
                seen.add(n)
                assumptions.append(n)
    for a in assumptions:
        inputs.put(r, 1, a)
        r += 1
    for col, width in zip("ABCDE", (34, 22, 26, 40, 60), strict=True):
        inputs.ws.column_dimensions[col].width = width

    # ---------------------------------------------------------------- Plan sheet
    axis_cols = [a for a in ("budget_flops", "dollars", "deadline_days") if a in axes]
    columns: list[tuple[str, str, str | None]] = [("scenario", "Scenario", None)]
    columns += [(f"axis:{a}", _AXIS_HEADERS[a][0], _AXIS_HEADERS[a][1]) for a in axis_cols]
    columns += [
        ("gpu", "Accelerator", None),
        ("precision", "Precision", None),
        ("params", "Params N (count)", _FMT_SCI),
        ("tokens", "Tokens D (count)", _FMT_SCI),
        ("tokens_per_param", "Tokens per param", _FMT_PLAIN),
        ("flops", "Training FLOPs (FLOP)", _FMT_SCI),
        ("loss", "Predicted loss (nats/token)", _FMT_LOSS),
        ("gpus", "Devices (count)", _FMT_INT),
        ("peak", "Peak (FLOP/s per device)", _FMT_SCI),
        ("mfu", "MFU (fraction)", _FMT_FRAC),
        ("price", "Price (USD per device-hour)", _FMT_USD_CENTS),
        ("gpu_hours", "Device-hours (h)", _FMT_INT),
        ("hours", "Wall-clock (h)", _FMT_HOURS),
        ("days", "Wall-clock (days)", _FMT_PLAIN),
        ("cost_usd", "Training cost (USD)", _FMT_USD),
        ("served_tokens", "Served tokens (count)", _FMT_SCI),
        ("served_input_tokens", "Served input tokens (count)", _FMT_SCI),
        ("serve_s_per_token", "Serving device-seconds per output token", _FMT_SCI),
        ("serve_s_per_input", "Serving device-seconds per input token", _FMT_SCI),
        ("serve_price", "Serving price (USD per device-hour)", _FMT_USD_CENTS),
        ("usd_per_m", "Serving (USD per million tokens)", "#,##0.0000"),
        ("serve_usd", "Serving cost (USD)", _FMT_USD),
        ("total_cost_usd", "Total cost (USD)", _FMT_USD),
        ("energy_kwh", "Energy (kWh)", _FMT_INT),
        ("binding", "Binding limits", None),
        ("frontier", "On loss-cost frontier", None),
        ("layers", "Layers", _FMT_INT),
        ("d_model", "d_model", _FMT_INT),
        ("total_params", "Rounded model params (count)", _FMT_SCI),
        ("law", "Law", None),
    ]
    col_of = {key: _col(j) for j, (key, _h, _f) in enumerate(columns, 1)}
    plan_ws.header(1, [h for _k, h, _f in columns])
    plan_ws.ws.freeze_panes = "B2"
    plan_ws.ws.row_dimensions[1].height = 45
    frontier = set(target.frontiers.get("loss-cost", [])) if isinstance(target, SweepResult) else {0}
    for i, (p, row) in enumerate(zip(plans, rows, strict=True)):
        rr = i + 2
        c = {k: f"{v}{rr}" for k, v in col_of.items()}
        acc = f"Inputs!$B${acc_row[(p.gpu, p.price_usd_per_gpu_hour)]}"
        tdp = f"Inputs!$C${acc_row[(p.gpu, p.price_usd_per_gpu_hour)]}"
        thr = thr_row[(p.gpu, p.precision, p.peak_flops_per_gpu, p.mfu)]
        peak, mfu = f"Inputs!$C${thr}", f"Inputs!$D${thr}"
        inf = p.inference
        served = inf.tokens if inf and inf.tokens else 0.0
        serve_price = (inf.usd_per_million_tokens / (inf.gpu_seconds_per_token * 1e6 / 3600.0)) if inf else \
            p.price_usd_per_gpu_hour
        values: dict[str, Any] = {
            "scenario": _scenario_label(i, row, list(axes)),
            "gpu": p.gpu,
            "precision": p.precision,
            "params": p.params,
            "tokens": p.tokens,
            "loss": p.loss,
            "gpus": p.gpus,
            "served_tokens": served,
            "served_input_tokens": (inf.input_tokens or 0.0) if inf else 0.0,
            "serve_s_per_token": inf.gpu_seconds_per_token if inf else 0.0,
            "serve_s_per_input": inf.gpu_seconds_per_input_token if inf else 0.0,
            "serve_price": serve_price,
            "binding": ", ".join(p.binding),
            "frontier": "yes" if i in frontier else "",
            "layers": p.shape.layers,
            "d_model": p.shape.d_model,
            "total_params": p.total_params,
            "law": p.law,
        }
        for a in axis_cols:
            values[f"axis:{a}"] = row.get(a)
        # Each formula with its value: the same arithmetic on the same Inputs, stored as the cell's cached result.
        tdp_w = _tdp(p) or 0.0  # an empty TDP cell reads as 0
        v_flops = 6 * p.params * p.tokens
        v_gpu_hours = v_flops / (p.peak_flops_per_gpu * p.mfu * given["goodput"] * 3600)
        v_hours = v_gpu_hours / p.gpus
        v_cost = v_gpu_hours * p.price_usd_per_gpu_hour
        v_per_m = serve_price * values["serve_s_per_token"] * 1e6 / 3600
        v_serve = (served * values["serve_s_per_token"] + values["served_input_tokens"] * values["serve_s_per_input"]
                   ) * serve_price / 3600
        formulas = {
            "tokens_per_param": (f"={c['tokens']}/{c['params']}", p.tokens / p.params),
            "flops": (f"=6*{c['params']}*{c['tokens']}", v_flops),
            "peak": (f"={peak}", p.peak_flops_per_gpu),
            "mfu": (f"={mfu}", p.mfu),
            "price": (f"={acc}", p.price_usd_per_gpu_hour),
            "gpu_hours": (f"={c['flops']}/({c['peak']}*{c['mfu']}*{ref['goodput']}*3600)", v_gpu_hours),
            "hours": (f"={c['gpu_hours']}/{c['gpus']}", v_hours),
            "days": (f"={c['hours']}/24", v_hours / 24),
            "cost_usd": (f"={c['gpu_hours']}*{c['price']}", v_cost),
            "usd_per_m": (f"={c['serve_price']}*{c['serve_s_per_token']}*1000000/3600", v_per_m),
            "serve_usd": (f"={c['served_tokens']}*{c['serve_s_per_token']}*{c['serve_price']}/3600"
                          f"+{c['served_input_tokens']}*{c['serve_s_per_input']}*{c['serve_price']}/3600", v_serve),
            "total_cost_usd": (f"={c['cost_usd']}+{c['serve_usd']}", v_cost + v_serve),
            "energy_kwh": (f"={c['gpus']}*{tdp}*{ref['power_utilization']}*{c['hours']}*{ref['pue']}/1000",
                           p.gpus * tdp_w * given["power_utilization"] * v_hours * given["pue"] / 1000),
        }
        for j, (key, _h, fmt) in enumerate(columns, 1):
            if key in formulas:
                text, value = formulas[key]
                plan_ws.formula(rr, j, text, fmt, value)
            else:
                plan_ws.put(rr, j, values.get(key), fmt)
    for j, (key, _h, _f) in enumerate(columns, 1):
        plan_ws.ws.column_dimensions[_col(j)].width = 24 if key in ("scenario", "binding", "law") else 15

    # ---------------------------------------------------------------- Infeasible sheet (sweeps)
    if isinstance(target, SweepResult) and target.failures:
        fail = _Sheet(wb.create_sheet("Infeasible"), styles)
        names = list(target.axes)
        fail.header(1, [*names, "Field", "Reason"])
        fail.ws.freeze_panes = "A2"
        for i, f in enumerate(target.failures, 2):
            for j, n in enumerate(names, 1):
                v = f.point.get(n)
                fail.put(i, j, v, _FMT_SCI if isinstance(v, float) else None)
            fail.put(i, len(names) + 1, f.field)
            fail.put(i, len(names) + 2, f.reason)
        fail.ws.column_dimensions[_col(len(names) + 2)].width = 120

    sheets = [inputs, plan_ws]

    def writer(tmp: Path) -> None:
        wb.save(tmp)
        _add_cached_values(tmp, {i: sh.cached for i, sh in enumerate(sheets, 1) if sh.cached})

    return write_output(path, field, writer, outputs)


def _add_cached_values(path: Path, cached: dict[int, dict[str, float]]) -> None:
    """Give each formula cell of worksheet i (openpyxl's ``xl/worksheets/sheet{i}.xml``) its computed value.

    openpyxl writes a formula cell as ``<c r="F2" ...><f>...</f><v />``; the empty ``<v />`` becomes
    ``<v>value</v>`` (SpreadsheetML's cached result, ECMA-376 Part 1 §18.3.1.96). Excel and LibreOffice still
    recalculate (openpyxl sets fullCalcOnLoad); pandas and openpyxl ``data_only=True`` read the cached value."""
    import re
    import zipfile

    cell = re.compile(rb'(<c r="([A-Z]+[0-9]+)"[^>]*><f>[^<]*</f>)<v\s*/>')
    with zipfile.ZipFile(path) as z:
        members = [(info, z.read(info)) for info in z.infolist()]
    names = {f"xl/worksheets/sheet{i}.xml": values for i, values in cached.items()}
    missing = set(names) - {info.filename for info, _ in members}
    if missing:
        raise RuntimeError(f"xlsx layout changed: no {', '.join(sorted(missing))}")  # openpyxl upgrade: a bug

    def fill(values: dict[str, float]):
        def sub(m: re.Match[bytes]) -> bytes:
            v = values.get(m.group(2).decode("ascii"))
            return m.group(0) if v is None else m.group(1) + b"<v>" + repr(v).encode("ascii") + b"</v>"
        return sub

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in members:
            if info.filename in names:
                data = cell.sub(fill(names[info.filename]), data)
            z.writestr(info, data)


def _scenario_label(i: int, row: dict[str, Any], axis_cols: list[str]) -> str:
    parts = [f"{i + 1}"]
    for a in axis_cols:
        v = row.get(a)
        if v is None:
            continue
        parts.append(f"{a}={v:.3g}" if isinstance(v, float) else f"{a}={v}")
    return " ".join(parts)


def _request_rows(target: Plan | SweepResult) -> list[tuple[str, Any, str]]:
    """(label, value, unit) rows describing the limits: the base request and axes for a sweep, the plan's
    constraint limits for a single plan."""
    units = {"budget_flops": "FLOP", "dollars": "USD", "gpu_hours": "device-hours", "deadline_days": "days",
             "max_gpus": "devices", "min_params": "params", "max_params": "params", "min_tokens": "tokens",
             "max_tokens": "tokens", "target_loss": "nats/token", "inference_tokens": "tokens served",
             "seq_len": "tokens", "mfu": "fraction (given)", "price": "USD per device-hour (given)",
             "goodput": "fraction (given)"}
    out: list[tuple[str, Any, str]] = []
    if isinstance(target, SweepResult):
        base = target.base.model_dump(exclude_defaults=True)
        for k, v in base.items():
            if k in target.axes:
                continue
            if isinstance(v, tuple | list):
                v = ", ".join(map(str, v))
            out.append((k, v, units.get(k, "")))
        for k, values in target.axes.items():
            if all(isinstance(v, float) for v in values):
                desc = (f"{len(values)} values, {min(values):.4g} .. {max(values):.4g}" if len(values) > 1
                        else f"{values[0]:.4g}")
            else:
                desc = ", ".join(map(str, values))
            out.append((f"swept: {k}", desc, units.get(k, "")))
        return out
    out.append(("objective", target.objective, ""))
    for c in target.constraints:
        if c.name == "throughput":
            continue
        out.append((f"{c.name} ({c.sense})", c.limit, c.unit))
    return out


def _laws(target: Plan | SweepResult, law: Any = None) -> list:
    from laws.base import Law, LawError
    from laws.catalog import get_law

    if isinstance(law, Law):
        return [law]
    key = law or (target.base.law if isinstance(target, SweepResult) else target.law)
    try:
        found = get_law(key)
    except (LawError, InputError):  # a plan from a law file that has moved: keep the id and citation only
        return []
    if isinstance(target, Plan) and (found.id != target.law or found.info.citation != target.law_citation):
        return []  # not the law this plan used (e.g. a law file that reuses a built-in id): no coefficients
    return [found]


def _tdp(p: Plan) -> float | None:
    """TDP per device (W), recovered exactly from the plan's energy at the default assumptions (the plan does
    not carry its catalog); None when the catalog has no TDP for the accelerator."""
    from cost_models.throughput import DEFAULT_POWER_UTILIZATION, DEFAULT_PUE

    if not p.energy_kwh or p.hours <= 0:
        return None
    return round(p.energy_kwh * 1000 / (p.gpus * p.hours * DEFAULT_POWER_UTILIZATION * DEFAULT_PUE), 6)


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
