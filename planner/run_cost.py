"""Price a given training run with the cluster model (``planner cost``).

The run is a model (params, rounded to a shape, or a shape), tokens, an accelerator and optionally the
cluster: devices, tensor/pipeline parallel, micro-batch, batch, recomputation and ZeRO stage. Whatever is not
given is chosen by the same layout search the planner uses (``cost_models.layout_search``): the fastest
layout that fits memory; devices default to the fewest whole nodes that hold the model and finish in 30 days.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import ModelShape, active_params
from cost_models.cluster import Hardware
from cost_models.layout_search import LayoutEstimate, fastest_layout
from cost_models.throughput import DEFAULT_GOODPUT, energy_kwh
from cost_models.training import training_flops
from planner.errors import InputError
from planner.request import Request, days_to_hours, hours_to_days

SIZING_DAYS = 30.0


def _num(gt: float = 0, le: float | None = None, doc: str = "") -> Any:
    return Field(default=None, gt=gt, le=le, allow_inf_nan=False, description=doc)


class RunRequest(Request):
    """A training run to price. ``params`` or ``shape`` (or both: the shape's counts then win)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: float | None = _num(le=1e16, doc="parameters (active for MoE)")
    tokens: float = Field(gt=0, le=1e17, allow_inf_nan=False, description="training tokens")
    gpu: str = "h100"
    gpus: int | None = Field(default=None, ge=1, le=10_000_000)
    mfu: float | None = _num(le=1, doc="model FLOPs utilization (default: predicted by the cluster model)")
    goodput: float = Field(default=DEFAULT_GOODPUT, gt=0, le=1, allow_inf_nan=False)
    price: float | None = _num(le=1000, doc="USD per device-hour")
    price_tier: Literal["hyperscaler", "gpu_cloud", "committed"] | None = None
    precision: Literal["native", "bf16", "fp16", "fp8", "fp4"] = "native"
    shape: ModelShape | None = None
    experts: int = Field(default=1, ge=1, le=1024, description="experts when the shape is rounded from params")
    top_k: int = Field(default=1, ge=1, le=1024)
    seq_len: int = Field(default=4096, ge=1, le=1_048_576)
    catalog: tuple[str, ...] = ()
    zero_stage: Literal[0, 1, 2, 3] | None = None
    recompute: Literal["none", "selective", "full"] | None = None
    tensor_parallel: int | None = Field(default=None, ge=1, le=64)
    pipeline_parallel: int | None = Field(default=None, ge=1, le=1024)
    micro_batch: int | None = Field(default=None, ge=1, le=1024)
    batch_tokens: float | None = _num(le=1e10, doc="global batch, tokens (default: the Step Law optimum)")


class RunEstimate(BaseModel):
    """What a training run costs. Units in names: hours, usd, kwh, gb, seconds."""

    model_config = ConfigDict(frozen=True)

    params: float
    total_params: float
    tokens: float
    flops: float
    flops_counting: str
    gpu: str
    gpus: int
    precision: str
    mfu: float
    mfu_source: str
    goodput: float
    batch_tokens: float
    steps: int
    step_seconds: float
    step_breakdown: dict[str, float]
    layout: dict[str, Any]
    hours: float
    days: float
    gpu_hours: float
    price_usd_per_gpu_hour: float
    price_source: str
    cost_usd: float
    energy_kwh: float | None
    memory_per_gpu_gb: float
    memory_breakdown_gb: dict[str, float]
    memory_fits: bool
    notes: list[str] = Field(default_factory=list)


def _pinned(req: RunRequest) -> dict[str, Any]:
    rc = "selective" if req.recompute == "none" else req.recompute
    return {"tp": req.tensor_parallel, "pp": req.pipeline_parallel, "micro_batch": req.micro_batch,
            "recompute": rc, "zero_stage": req.zero_stage}


def _batch(req: RunRequest, shape: ModelShape, devices: int) -> float:
    """The batch: given, else the Step Law optimum, in whole sequences and at least one per device."""
    from planner.hyperparams import law_batch_tokens

    want = req.batch_tokens or law_batch_tokens("steplaw-2025", req.tokens, 6 * float(active_params(shape)) *
                                                req.tokens)[0]
    seqs = max(1, round(want / shape.seq_len))
    return float(seqs * shape.seq_len) if req.batch_tokens else float(max(seqs, devices) * shape.seq_len)


def _search(req: RunRequest, shape: ModelShape, hw: Hardware, devices: int) -> LayoutEstimate | None:
    return fastest_layout(shape, hw, batch_tokens=_batch(req, shape, devices), devices=devices, mfu=req.mfu,
                          **_pinned(req))


def _fewest(req: RunRequest, shape: ModelShape, hw: Hardware, limit: int = 1 << 21) -> int | None:
    g = 1
    while g <= limit:
        if _search(req, shape, hw, g) is not None:
            return g
        g = g * 2 if g < hw.devices_per_node else g + max(hw.devices_per_node, (g // 8) // hw.devices_per_node *
                                                           hw.devices_per_node)
    return None


def estimate_run(req: RunRequest, shape: ModelShape, acc: Any, precision: str, price: float,
                 price_source: str) -> RunEstimate:
    """Price one training run on the cluster model (see module docstring)."""
    hw = Hardware.of(acc, precision)
    notes: list[str] = []
    if req.recompute == "none":
        notes.append("recompute none: with flash attention the stored activations equal selective recomputation "
                     "(Korthikanti et al. 2022 Table 2; flash attention recomputes the attention core)")
    n_act = float(active_params(shape))
    if req.gpus:
        gpus = req.gpus
        est = _search(req, shape, hw, gpus)
        if est is None:
            fewest = _fewest(req, shape, hw)
            where = f"the fewest devices that hold it: {fewest}" if fewest else "it fits on no number of devices"
            raise InputError("gpus", f"the model does not fit on {gpus} x {acc.id} in any layout allowed "
                                     f"(memory or divisibility); {where}")
    else:
        g0 = _fewest(req, shape, hw)
        if g0 is None:
            raise InputError("params", f"the model fits on no number of {acc.id} devices in any layout allowed")
        gpus, est = g0, _search(req, shape, hw, g0)
        for _ in range(60):  # grow by whole nodes until the run finishes within SIZING_DAYS
            hours = req.tokens / (est.tokens_per_second_per_device * gpus * req.goodput) / 3600.0
            if hours <= days_to_hours(SIZING_DAYS):
                break
            want = math.ceil(gpus * hours / days_to_hours(SIZING_DAYS))
            unit = hw.devices_per_node if want >= hw.devices_per_node else 1
            nxt = max(gpus + unit, math.ceil(want / unit) * unit)
            e2 = None
            for _try in range(64):
                e2 = _search(req, shape, hw, nxt)
                if e2 is not None:
                    break
                nxt += unit
            if e2 is None:
                break
            gpus, est = nxt, e2
        notes.append(f"--gpus not given: fewest whole nodes that fit memory and finish in {SIZING_DAYS:g} days")
    assert est is not None
    mfu_pred = est.mfu
    if req.mfu:
        per_token = 6.0 * n_act / (req.mfu * hw.peak)
        mfu, source = req.mfu, "given"
    else:
        per_token = est.step_seconds / est.batch_tokens * gpus
        mfu, source = mfu_pred, f"predicted by the cluster model ({est.layout.label()})"
    steps = max(1, math.ceil(req.tokens / est.batch_tokens))
    hours = req.tokens * per_token / (gpus * req.goodput) / 3600.0
    gh = hours * gpus
    lay = est.layout
    layout = {"tp": lay.tp, "pp": lay.pp, "dp": gpus // (lay.tp * lay.pp), "ep": lay.ep,
              "micro_batch": lay.micro_batch, "recompute": lay.recompute, "zero_stage": lay.zero_stage,
              "label": lay.label()}
    return RunEstimate(
        params=n_act, total_params=float(shape_total(shape)), tokens=req.tokens,
        flops=float(training_flops(n_act, req.tokens)),
        flops_counting="6·N·D with N the active params incl. embeddings (model FLOPs; the step time also counts "
                       "attention and recomputation)",
        gpu=acc.id, gpus=gpus, precision=precision, mfu=mfu, mfu_source=source, goodput=req.goodput,
        batch_tokens=est.batch_tokens, steps=steps, step_seconds=est.step_seconds, step_breakdown=est.step_breakdown,
        layout=layout, hours=hours, days=hours_to_days(hours), gpu_hours=gh, price_usd_per_gpu_hour=price,
        price_source=price_source, cost_usd=gh * price,
        energy_kwh=float(energy_kwh(gpus, acc.tdp_w, hours)) if acc.tdp_w else None,
        memory_per_gpu_gb=est.memory_bytes / 1e9,
        memory_breakdown_gb={k: v / 1e9 for k, v in est.memory_breakdown.items()}, memory_fits=est.fits,
        notes=notes,
    )


def shape_total(shape: ModelShape) -> float:
    from cost_models.architecture import total_params

    return float(total_params(shape))
