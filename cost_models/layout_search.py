"""Evaluate a concrete run on a concrete layout, and search the layouts for the fastest that fits.

``evaluate_layout`` is the plain-number reading of ``cost_models.cluster`` for one shape, layout, batch and
device count; ``best_layout`` tries every layout of ``cluster.candidate_layouts`` (pinned dimensions stay
fixed) and keeps the one with the shortest step whose memory fits. ``planner cost``, the planner's rounding
and the calibration all use these two functions. ``fastest_layout`` finds ``best_layout``'s winner over arrays
of every layout's numbers at once (``steps_and_memory``: the same terms summed in the same order, bit for bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import ModelShape
from cost_models.cluster import (
    Hardware,
    Layout,
    LayoutNumbers,
    ModelTerms,
    as_numbers,
    candidate_layouts,
    layout_numbers,
    memory_parts,
    step_breakdown,
    terms_of_shape,
)


class LayoutEstimate(BaseModel):
    """One layout's step time (seconds) by cause, memory per device (bytes) and predicted MFU."""

    model_config = ConfigDict(frozen=True)

    layout: Layout
    devices: int
    batch_tokens: float
    step_seconds: float
    step_breakdown: dict[str, float] = Field(description="seconds per step: compute, recompute, tp_comm, "
                                                         "ep_comm, pp_bubble, dp_comm")
    memory_bytes: float
    memory_breakdown: dict[str, float]
    usable_memory_bytes: float
    fits: bool
    mfu: float = Field(description="model FLOPs (6·N_active per token) / (devices × step × peak)")
    tokens_per_second_per_device: float
    problems: list[str] = Field(default_factory=list, description="why the layout cannot run as given")


def layout_problems(shape: ModelShape, layout: Layout, devices: int, batch_tokens: float,
                    devices_per_node: int) -> list[str]:
    """Why ``layout`` cannot run ``shape`` on ``devices`` with ``batch_tokens`` (empty if it can)."""
    out = []
    mp = layout.tp * layout.pp
    if layout.tp > devices_per_node:
        out.append(f"tp={layout.tp} exceeds the {devices_per_node} devices of a node")
    if devices % mp:
        out.append(f"{devices} devices are not a multiple of tp·pp = {mp}")
    if layout.pp > shape.layers:
        out.append(f"pp={layout.pp} exceeds the {shape.layers} layers")
    if shape.tp_heads % layout.tp:
        out.append(f"tp={layout.tp} does not divide the {shape.tp_heads} "
                   f"{'heads' if shape.tp_heads == shape.heads else 'K/V heads'}")
    dp = max(devices // mp, 1)
    seqs = batch_tokens / shape.seq_len
    if seqs + 1e-9 < dp * layout.micro_batch:
        out.append(f"batch of {seqs:.4g} sequences is below one micro-batch of {layout.micro_batch} per "
                   f"data-parallel rank (dp = {dp})")
    if shape.is_moe and (shape.experts % layout.ep or dp % layout.ep):
        out.append(f"ep={layout.ep} must divide the {shape.experts} experts and dp = {dp}")
    return out


def evaluate_layout(shape: ModelShape, layout: Layout, hw: Hardware, *, batch_tokens: float,
                    devices: int, mfu: float | None = None) -> LayoutEstimate:
    """Step time, memory and MFU of ``shape`` trained on ``devices`` × ``hw`` in ``layout`` (``mfu`` given:
    the step is model FLOPs at that MFU; see ``cluster.layout_numbers``)."""
    m = terms_of_shape(shape)
    n = layout_numbers(layout, hw, shape.seq_len, shape.vocab, shape.top_k + shape.shared_experts, shape.is_moe,
                       mfu)
    steps = as_numbers(step_breakdown(m, n, batch_tokens, devices))
    mem = as_numbers(memory_parts(m, n, devices))
    step = sum(steps.values())
    total_mem = sum(mem.values())
    model_flops = 6.0 * m.params * batch_tokens
    return LayoutEstimate(
        layout=layout, devices=devices, batch_tokens=batch_tokens, step_seconds=step, step_breakdown=steps,
        memory_bytes=total_mem, memory_breakdown=mem, usable_memory_bytes=hw.memory, fits=total_mem <= hw.memory,
        mfu=model_flops / (devices * step * hw.peak), tokens_per_second_per_device=batch_tokens / (step * devices),
        problems=layout_problems(shape, layout, devices, batch_tokens, hw.devices_per_node),
    )


def _search_space(shape: ModelShape, hw: Hardware, pinned: dict) -> list[Layout]:
    fixed = tuple(sorted((k, v) for k, v in pinned.items() if v is not None))
    return list(_space(hw.devices_per_node, shape.experts, shape.is_moe, shape.layers, fixed))


@lru_cache(maxsize=256)
def _space(devices_per_node: int, experts: int, moe: bool, max_pp: int, fixed: tuple) -> tuple[Layout, ...]:
    pinned = dict(fixed)
    layouts = candidate_layouts(devices_per_node, moe_experts=experts, max_pp=max_pp, **pinned)
    if moe and pinned.get("ep") is None:  # ep must divide dp: try the powers of two that could
        layouts = [lay.model_copy(update={"ep": e}) for lay in layouts for e in _pow2_down(lay.ep)]
    return tuple(layouts)


@dataclass(frozen=True)
class _Table:
    """Every layout of a search space (pp up to 64: deeper than the model is a problem like any other) with its
    ``LayoutNumbers`` as arrays, absent terms as 0.0 (adding or multiplying an exact 0.0 leaves the plain-number
    sums of ``cluster`` bit for bit)."""

    layouts: tuple[Layout, ...]
    ints: dict[str, np.ndarray]     # tp, pp, mp, micro_batch, ep
    nums: dict[str, np.ndarray]     # LayoutNumbers fields


@lru_cache(maxsize=256)
def _table(hw: Hardware, seq_len: int, vocab: int, top_k: int, experts: int, moe: bool, mfu: float | None,
           fixed: tuple) -> _Table:
    layouts = _space(hw.devices_per_node, experts, moe, 64, fixed)
    numbers = [layout_numbers(lay, hw, seq_len, vocab, top_k, moe, mfu) for lay in layouts]
    ints = {"tp": [lay.tp for lay in layouts], "pp": [lay.pp for lay in layouts],
            "micro_batch": [lay.micro_batch for lay in layouts], "ep": [lay.ep for lay in layouts]}
    ints = {k: np.array(v, dtype=np.int64) for k, v in ints.items()}
    ints["mp"] = ints["tp"] * ints["pp"]
    for a in ints.values():
        a.setflags(write=False)
    return _Table(layouts, ints, numbers_columns(numbers))


NUMBER_FIELDS = tuple(f.name for f in fields(LayoutNumbers))


def numbers_columns(numbers: list[LayoutNumbers]) -> dict[str, np.ndarray]:
    """The ``LayoutNumbers`` of many layouts as read-only float columns by field, absent terms 0.0 (adding or
    multiplying an exact 0.0 gives the plain-number sums of ``cluster`` bit for bit)."""
    out = {}
    for k in NUMBER_FIELDS:
        col = np.array([0.0 if getattr(n, k) is None else float(getattr(n, k)) for n in numbers])
        col.setflags(write=False)
        out[k] = col
    return out


def numbers_row(layout: Layout, hw: Hardware, seq_len: int, vocab: int, top_k: int, moe: bool,
                mfu: float | None) -> tuple[float, ...]:
    """``layout_numbers`` as floats in NUMBER_FIELDS order (absent terms 0.0)."""
    key = (layout.tp, layout.pp, layout.micro_batch, layout.recompute, layout.zero_stage, layout.ep)
    return _numbers_row(key, hw, seq_len, vocab, top_k, moe, mfu)


@lru_cache(maxsize=8192)
def _numbers_row(key: tuple, hw: Hardware, seq_len: int, vocab: int, top_k: int, moe: bool,
                 mfu: float | None) -> tuple[float, ...]:
    tp, pp, micro_batch, recompute, zero_stage, ep = key
    lay = Layout(tp=tp, pp=pp, micro_batch=micro_batch, recompute=recompute, zero_stage=zero_stage, ep=ep)
    n = layout_numbers(lay, hw, seq_len, vocab, top_k, moe, mfu)
    return tuple(0.0 if getattr(n, k) is None else float(getattr(n, k)) for k in NUMBER_FIELDS)


def _fixed_terms(n: dict[str, np.ndarray], m: ModelTerms) -> dict:
    """The terms of ``cluster.step_breakdown`` and ``cluster.memory_parts`` that depend on neither the batch nor
    the devices (arrays; see ``steps_and_memory``)."""
    expert = 0.0 if m.expert_params is None else m.expert_params
    flops = 6.0 * m.params + 6.0 * n["attention"] * n["seq_len"] * m.attn_width
    extra = 2.0 * n["attention"] * n["seq_len"] * m.attn_width + n["recompute_dense"] * m.params
    compute = flops * n["inv_peak"]
    recompute = extra * n["inv_peak"]
    tp_c = n["tp_comm"] * m.layers_width
    ep_c = n["ep_comm"] * (0.0 if m.moe_layers_width is None else m.moe_layers_width)
    return {"compute": compute, "recompute": recompute, "tp": tp_c, "ep": ep_c,
            "bubble": n["pp_idle"] * (compute + recompute + tp_c + ep_c),
            "dp": n["dp_comm"] * m.dense_params + n["dp_comm_expert"] * expert,
            "rep": n["state_rep"] * m.dense_params + n["state_rep_expert"] * expert,
            "shard": n["state_shard"], "params": m.dense_params + expert,
            "acts": n["act_layer"] * n["mb_seq"] * m.layers_width + n["act_work"] * n["mb_seq"] * m.width,
            "logits": n["logits"] * n["mb_seq"]}


def _step_at(f: dict, batch, devices):
    share = batch / devices
    return f["compute"] * share + f["recompute"] * share + f["tp"] * share + f["ep"] * share + f["bubble"] + f["dp"]


def _memory_at(f: dict, devices):
    return f["rep"] + f["shard"] * (f["params"] / devices) + f["acts"] + f["logits"]


def steps_and_memory(n: dict[str, np.ndarray], m: ModelTerms, batches: list, devices) -> tuple[list, np.ndarray]:
    """(step seconds at each of ``batches``, memory bytes per device) over arrays: ``cluster.step_seconds`` and
    ``cluster.memory_bytes`` term by term in the same order. ``n``: ``LayoutNumbers`` fields as arrays (absent
    terms 0.0); ``m``: ``ModelTerms`` fields as numbers or arrays (None as 0.0); ``devices``: a number or array."""
    f = _fixed_terms(n, m)
    return [_step_at(f, b, devices) for b in batches], _memory_at(f, devices)


@lru_cache(maxsize=128)
def _shape_table(hw: Hardware, mfu: float | None, fixed: tuple, shape: ModelShape) -> tuple[_Table, dict, np.ndarray]:
    """The search space of ``shape`` (``_table``), its fixed terms and which layouts the shape itself allows
    (tp within a node and dividing the heads, pp within the layers, ep dividing the experts)."""
    t = _table(hw, shape.seq_len, shape.vocab, shape.top_k + shape.shared_experts, shape.experts, shape.is_moe,
               mfu, fixed)
    i = t.ints
    ok = (i["tp"] <= hw.devices_per_node) & (i["pp"] <= shape.layers) & (shape.tp_heads % i["tp"] == 0)
    if shape.is_moe:
        ok &= shape.experts % i["ep"] == 0
    f = _fixed_terms(t.nums, terms_of_shape(shape))
    for a in (ok, *f.values()):
        if isinstance(a, np.ndarray):
            a.setflags(write=False)  # shared by every caller (and thread)
    return t, f, ok


def fastest_layout_of(shape: ModelShape, hw: Hardware, *, batch_tokens: float, devices: int,
                      mfu: float | None = None, **pinned) -> Layout | None:
    """The layout ``fastest_layout`` evaluates: step time and memory read as plain sums of the same cluster-model
    terms over every layout at once (numpy); the fastest valid layout that fits memory, the least memory
    among equally fast ones, the first of the search order among equals (None if none fits). Memoized: a plan's
    search asks the same question for each shape and target several times (layouts are immutable, shared)."""
    fixed = tuple(sorted((k, v) for k, v in pinned.items() if v is not None))
    return _fastest_layout_of(shape, hw, batch_tokens, devices, mfu, fixed)


@lru_cache(maxsize=4096)
def _fastest_layout_of(shape: ModelShape, hw: Hardware, batch_tokens: float, devices: int, mfu: float | None,
                       fixed: tuple) -> Layout | None:
    t, f, ok = _shape_table(hw, mfu, fixed, shape)
    i = t.ints
    dp = np.maximum(devices // i["mp"], 1)  # ``layout_problems``
    ok = ok & (devices % i["mp"] == 0) & ~(batch_tokens / shape.seq_len + 1e-9 < dp * i["micro_batch"])
    if shape.is_moe:
        ok &= dp % i["ep"] == 0
    memory = _memory_at(f, devices)
    ok &= ~(memory > hw.memory)
    if not ok.any():
        return None
    idx = np.flatnonzero(ok)
    step = _step_at(f, batch_tokens, devices)[idx]
    idx = idx[step == step.min()]
    return t.layouts[int(idx[np.argmin(memory[idx])])]  # the first of the fastest with the least memory


def fastest_layout(shape: ModelShape, hw: Hardware, *, batch_tokens: float, devices: int,
                   mfu: float | None = None, **pinned) -> LayoutEstimate | None:
    """``best_layout``'s winner without evaluating every layout in full (``fastest_layout_of``): only the winner
    is evaluated (None if no valid layout fits)."""
    lay = fastest_layout_of(shape, hw, batch_tokens=batch_tokens, devices=devices, mfu=mfu, **pinned)
    if lay is None:
        return None
    return evaluate_layout(shape, lay, hw, batch_tokens=batch_tokens, devices=devices, mfu=mfu)


def best_layout(shape: ModelShape, hw: Hardware, *, batch_tokens: float, devices: int, mfu: float | None = None,
                **pinned) -> tuple[LayoutEstimate | None, list[LayoutEstimate]]:
    """The fastest valid layout that fits memory (None if none does) and every valid layout evaluated.

    ``pinned`` fixes layout dimensions (tp, pp, micro_batch, recompute, zero_stage, ep); None leaves one free.
    """
    layouts = _search_space(shape, hw, pinned)
    valid = []
    for lay in layouts:
        est = evaluate_layout(shape, lay, hw, batch_tokens=batch_tokens, devices=devices, mfu=mfu)
        if not est.problems:
            valid.append(est)
    fitting = [e for e in valid if e.fits]
    best = min(fitting, key=lambda e: (e.step_seconds, e.memory_bytes)) if fitting else None
    return best, valid


def _pow2_down(n: int) -> list[int]:
    out = []
    while n >= 1:
        out.append(n)
        n //= 2
    return out


def fewest_devices(shape: ModelShape, hw: Hardware, *, batch_tokens: float | None = None,
                   max_devices: int = 1 << 22, **pinned) -> int | None:
    """The fewest devices (whole nodes from one node up) on which some layout holds ``shape`` in memory."""
    g = 1
    while g <= max_devices:
        batch = batch_tokens if batch_tokens is not None else float(g * shape.seq_len)
        best = fastest_layout_of(shape, hw, batch_tokens=max(batch, g * shape.seq_len), devices=g, **pinned)
        if best is not None:
            return g
        g = g * 2 if g < hw.devices_per_node else g + hw.devices_per_node * max(1, g // (8 * hw.devices_per_node))
        if g > hw.devices_per_node:
            g = math.ceil(g / hw.devices_per_node) * hw.devices_per_node
    return None
