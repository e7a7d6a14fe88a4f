"""The Plan sheet: one row per scenario. Params, tokens, loss and devices are the planner's values; the derived
cells are live formulas of the Inputs sheet (see ``planner.workbook``), each with its computed value."""

from __future__ import annotations

from typing import Any

from planner.plan import Plan
from planner.sweep import SweepResult
from planner.workbook.cells import (
    FMT_FRAC,
    FMT_HOURS,
    FMT_INT,
    FMT_LOSS,
    FMT_PLAIN,
    FMT_SCI,
    FMT_USD,
    FMT_USD_CENTS,
    Sheet,
    col,
)
from planner.workbook.inputs_sheet import InputCells, device_tdp

AXIS_HEADERS = {
    "budget_flops": ("Budget (FLOP)", FMT_SCI),
    "dollars": ("Dollar limit (USD)", FMT_USD),
    "deadline_days": ("Deadline (days)", FMT_PLAIN),
}


def write_plan_sheet(plan_ws: Sheet, target: Plan | SweepResult, plans: list[Plan], rows: list[dict[str, Any]],
                     axes: dict[str, list[Any]], cells: InputCells) -> None:
    """One row per scenario, the derived columns as formulas of the Inputs ``cells``."""
    ref, given, acc_row, thr_row = cells.ref, cells.given, cells.acc_row, cells.thr_row
    axis_cols = [a for a in ("budget_flops", "dollars", "deadline_days") if a in axes]
    columns: list[tuple[str, str, str | None]] = [("scenario", "Scenario", None)]
    columns += [(f"axis:{a}", AXIS_HEADERS[a][0], AXIS_HEADERS[a][1]) for a in axis_cols]
    columns += [
        ("gpu", "Accelerator", None),
        ("precision", "Precision", None),
        ("params", "Params N (count)", FMT_SCI),
        ("tokens", "Tokens D (count)", FMT_SCI),
        ("tokens_per_param", "Tokens per param", FMT_PLAIN),
        ("flops", "Training FLOPs (FLOP)", FMT_SCI),
        ("loss", "Predicted loss (nats/token)", FMT_LOSS),
        ("gpus", "Devices (count)", FMT_INT),
        ("peak", "Peak (FLOP/s per device)", FMT_SCI),
        ("mfu", "MFU (fraction)", FMT_FRAC),
        ("price", "Price (USD per device-hour)", FMT_USD_CENTS),
        ("gpu_hours", "Device-hours (h)", FMT_INT),
        ("hours", "Wall-clock (h)", FMT_HOURS),
        ("days", "Wall-clock (days)", FMT_PLAIN),
        ("cost_usd", "Training cost (USD)", FMT_USD),
        ("served_tokens", "Served tokens (count)", FMT_SCI),
        ("served_input_tokens", "Served input tokens (count)", FMT_SCI),
        ("serve_s_per_token", "Serving device-seconds per output token", FMT_SCI),
        ("serve_s_per_input", "Serving device-seconds per input token", FMT_SCI),
        ("serve_price", "Serving price (USD per device-hour)", FMT_USD_CENTS),
        ("usd_per_m", "Serving (USD per million tokens)", "#,##0.0000"),
        ("serve_usd", "Serving cost (USD)", FMT_USD),
        ("total_cost_usd", "Total cost (USD)", FMT_USD),
        ("energy_kwh", "Energy (kWh)", FMT_INT),
        ("binding", "Binding limits", None),
        ("frontier", "On loss-cost frontier", None),
        ("layers", "Layers", FMT_INT),
        ("d_model", "d_model", FMT_INT),
        ("total_params", "Rounded model params (count)", FMT_SCI),
        ("law", "Law", None),
    ]
    col_of = {key: col(j) for j, (key, _h, _f) in enumerate(columns, 1)}
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
            "scenario": scenario_label(i, row, list(axes)),
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
        tdp_w = device_tdp(p) or 0.0  # an empty TDP cell reads as 0
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
        plan_ws.ws.column_dimensions[col(j)].width = 24 if key in ("scenario", "binding", "law") else 15


def scenario_label(i: int, row: dict[str, Any], axis_cols: list[str]) -> str:
    parts = [f"{i + 1}"]
    for a in axis_cols:
        v = row.get(a)
        if v is None:
            continue
        parts.append(f"{a}={v:.3g}" if isinstance(v, float) else f"{a}={v}")
    return " ".join(parts)
