"""The Inputs sheet: the assumptions a person edits (goodput, power utilization, PUE), the request's limits,
the law with its coefficients and citation, accelerators (price, TDP), throughput (peak, MFU) and notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.errors import InputError
from planner.plan import Plan
from planner.sweep import SweepResult
from planner.workbook.cells import FMT_FRAC, FMT_INT, FMT_PLAIN, FMT_SCI, FMT_USD_CENTS, Sheet


@dataclass(frozen=True)
class InputCells:
    """Where the Plan sheet's formulas find the Inputs: ``ref`` of each scalar (absolute reference), ``given``
    its value, and the row of each accelerator (gpu, price) and throughput (gpu, precision, peak, mfu)."""

    ref: dict[str, str]
    given: dict[str, Any]
    acc_row: dict[tuple[str, float], int]
    thr_row: dict[tuple[str, str, float, float], int]


def write_inputs(inputs: Sheet, target: Plan | SweepResult, plans: list[Plan], law: Any = None) -> InputCells:
    """Fill the Inputs sheet for ``plans`` (see the module docstring)."""
    from cost_models.throughput import DEFAULT_POWER_UTILIZATION, DEFAULT_PUE

    # ---------------------------------------------------------------- Inputs: scalar assumptions
    inputs.header(1, ["Input", "Value", "Unit", "Source / note"])
    inputs.ws.freeze_panes = "A2"
    goodputs = {p.goodput for p in plans} or {0.9}
    scalars = [
        ("goodput", "Goodput", next(iter(goodputs)), "fraction of paid device-hours that make progress",
         "planner default 0.90 (restarts, failures, checkpointing); cost_models.throughput", FMT_FRAC),
        ("power_utilization", "Power utilization", DEFAULT_POWER_UTILIZATION, "fraction of TDP drawn on average",
         "StarCoderBase: 280 W average on 400 W A100s; cost_models.throughput", FMT_FRAC),
        ("pue", "PUE", DEFAULT_PUE, "facility power / IT power",
         "estimate for a modern colocation facility; cost_models.throughput", FMT_PLAIN),
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
    for label, value, unit in limit_rows(target):
        inputs.put(r, 1, label)
        fmt = FMT_SCI if isinstance(value, float) and (value >= 1e6 or value < 1e-2) else None
        inputs.put(r, 2, value, fmt)
        inputs.put(r, 3, unit)
        r += 1

    # ---------------------------------------------------------------- Inputs: law
    r += 1
    law0 = plans[0] if plans else None
    inputs.put(r, 1, "Law", bold=True)
    r += 1
    laws = laws_of(target, law)
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
        tdp = device_tdp(p)
        inputs.put(r, 1, p.gpu, bold=True)
        inputs.put(r, 2, p.price_usd_per_gpu_hour, FMT_USD_CENTS, edit=True)
        inputs.put(r, 3, tdp, FMT_INT, edit=True)
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
        inputs.put(r, 3, p.peak_flops_per_gpu, FMT_SCI, edit=True)
        inputs.put(r, 4, p.mfu, FMT_FRAC, edit=True)
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
    return InputCells(ref=ref, given=given, acc_row=acc_row, thr_row=thr_row)


def limit_rows(target: Plan | SweepResult) -> list[tuple[str, Any, str]]:
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


def laws_of(target: Plan | SweepResult, law: Any = None) -> list:
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


def device_tdp(p: Plan) -> float | None:
    """TDP per device (W), recovered exactly from the plan's energy at the default assumptions (the plan does
    not carry its catalog); None when the catalog has no TDP for the accelerator."""
    from cost_models.throughput import DEFAULT_POWER_UTILIZATION, DEFAULT_PUE

    if not p.energy_kwh or p.hours <= 0:
        return None
    return round(p.energy_kwh * 1000 / (p.gpus * p.hours * DEFAULT_POWER_UTILIZATION * DEFAULT_PUE), 6)
