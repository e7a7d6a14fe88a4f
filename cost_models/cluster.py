"""The cluster model: step time and memory per device of one training layout.

One layout is a discrete choice: tensor parallel ``tp`` (within a node, sequence parallel when > 1), pipeline
stages ``pp`` (1F1B), sequences per micro-batch ``micro_batch``, activation recomputation, ZeRO stage and, for
MoE, expert parallel ``ep``. For a fixed layout every term below is a monomial or a posynomial in params N,
batch tokens B and devices G, so the same function evaluates plain numbers (``planner cost``, rounding, the
spreadsheet) and builds the cvxpy geometric program (``planner.program``). The functions use only ``+ * / **``;
the layout's numbers (tp − 1, pp − 1, ...) are precomputed in ``LayoutNumbers`` so no subtraction touches a
variable.

Per optimizer step, per device (seconds):
- compute: hardware FLOPs / (peak × matmul efficiency). Hardware FLOPs per token: 6N (forward 2N, backward 4N;
  Kaplan et al. 2020 §2.1) + attention scores and values 6·s·L·d_attn (Kaplan et al. 2020 Table 1). Matmul
  efficiency E per accelerator generation (calibrated). The calibration runs show no width penalty
  (TinyLlama at d_model 2048 ran at 56% MFU), so none is modelled.
- recompute: the forward recomputed in the backward pass (Korthikanti et al. 2022 §5): selective (flash
  attention / selective recomputation) repeats the attention core, 2·s·L·d_attn per token; full repeats the
  whole forward, 2N + 2·s·L·d_attn.
- tp_comm: Megatron tensor + sequence parallelism moves, per layer and micro-batch, 4 all-gathers / reduce-
  scatters forward and 4 backward of the s·b·h activation (Korthikanti et al. 2022 §4.2.2), each (t−1)/t of 2
  bytes·s·b·h per device over the scale-up link: 16·(t−1)·B·L·h / (G·bw_up) per step; a fraction
  ``TP_OVERLAP`` of it hides behind compute. Full recomputation repeats the forward's 4 (×1.5).
- pp_bubble: 1F1B idles (pp − 1) micro-batch slots of every stage (Narayanan et al. 2021 §2.2): (pp − 1)/m
  of the compute + tp time, m = B·tp·pp / (s·b·G) micro-batches per data-parallel rank.
- dp_comm: gradients reduce-scattered and parameters all-gathered once per step over the scale-out link
  (Rajbhandari et al. 2020 §7: 2Ψ per device for stages 0–2, 3Ψ for stage 3), Ψ = 2 bytes × the device's
  model-parallel shard; (dp − 1)/dp is bounded by 1 (exact for large dp, conservative for a few ranks). A
  fraction ``DP_OVERLAP`` hides behind the backward pass.
- ep_comm (MoE): token dispatch and combine all-to-alls, forward and backward, 4 × top_k × 2 bytes × h per
  token and MoE layer ((ep − 1)/ep bounded by 1), over the scale-up link when tp·ep fits in a node, else the
  scale-out link; a fraction ``EP_OVERLAP`` hides.
Memory per device (bytes), the most loaded (first) pipeline stage:
- model states, mixed-precision Adam (16 bytes/param: Rajbhandari et al. 2020 §3.1), ZeRO stage z over the
  data-parallel ranks: weights and grads (4 bytes) on the tp·pp shard unless sharded, fp32 master + moments
  (12 bytes) over all G devices (ZeRO-1), grads too (ZeRO-2), everything (ZeRO-3). MoE experts are split over
  pp·ep instead of tp·pp.
- activations (Korthikanti et al. 2022 Table 2, sequence parallel): selective 34·s·b·h per layer / tp; full
  2·s·b·h per layer / tp plus one layer's 34·s·b·h / tp being recomputed; 1F1B keeps pp micro-batches of L/pp
  layers on the first stage, i.e. L layers' worth. Output logits in fp32: 4·s·b·vocab / tp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import ModelShape, active_params, expert_params, total_params

Recompute = Literal["selective", "full"]

# ---- calibrated efficiency constants (benchmarks/calibrate_cluster.py; per-run errors in docs/calibration.md)
# Achievable matmul efficiency of wide models (fraction of dense peak) per accelerator generation: ampere,
# hopper and tpu are calibrated (ampere on LLaMA-65B and TinyLlama, hopper on Nemotron-4 15B, tpu on Gopher);
# the others are assumptions (volta as ampere; blackwell and other vendors as hopper).
MATMUL_EFFICIENCY = {"volta": 0.60, "ampere": 0.60, "hopper": 0.44, "blackwell": 0.44, "tpu": 0.33,
                     "other": 0.44}
TP_OVERLAP = 0.0      # share of tensor-parallel collectives hidden behind compute
DP_OVERLAP = 0.80     # share of data-parallel gradient/parameter traffic hidden behind the backward pass
EP_OVERLAP = 0.50     # share of expert all-to-all hidden (DeepSeek-V3 overlaps it almost fully; others less)

# Fraction of device memory a plan may fill (CUDA context, NCCL buffers, fragmentation take the rest).
USABLE_MEMORY_FRACTION = 0.9
ACT_BYTES = 2.0       # bf16 activations
GRAD_BYTES = 2.0      # bf16 gradients on the wire

# activation bytes per layer per token per unit width (Korthikanti et al. 2022 Table 2, sequence parallel)
_ACT_SELECTIVE = 34.0
_ACT_FULL = 2.0
# state bytes per param: (replicated on the model-parallel shard, sharded over all devices) per ZeRO stage
_STATE_BYTES = {0: (16.0, 0.0), 1: (4.0, 12.0), 2: (2.0, 14.0), 3: (0.0, 16.0)}
_DP_VOLUME = {0: 2.0, 1: 2.0, 2: 2.0, 3: 3.0}  # × Ψ per device per step (ZeRO paper §7)


class Layout(BaseModel):
    """A training layout (fixed during one solve)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tp: int = Field(default=1, ge=1, le=64, description="tensor parallel degree (within a node)")
    pp: int = Field(default=1, ge=1, le=1024, description="pipeline stages (1F1B)")
    micro_batch: int = Field(default=1, ge=1, le=1024, description="sequences per micro-batch")
    recompute: Recompute = "selective"
    zero_stage: Literal[0, 1, 2, 3] = 1
    ep: int = Field(default=1, ge=1, le=1024, description="expert parallel degree (1 for dense)")

    @property
    def model_parallel(self) -> int:
        return self.tp * self.pp

    def label(self) -> str:
        ep = f" ep{self.ep}" if self.ep > 1 else ""
        return (f"tp{self.tp} pp{self.pp}{ep} mb{self.micro_batch} {self.recompute} recompute, "
                f"ZeRO-{self.zero_stage}")


@dataclass(frozen=True)
class Hardware:
    """What the cluster model needs of one accelerator at one precision (SI units, per device)."""

    id: str
    peak: float               # dense FLOP/s at the training precision
    scaleup: float            # bytes/s per direction on the scale-up link (NVLink, ICI, ...)
    scaleout: float           # bytes/s per direction on the scale-out network (per device)
    devices_per_node: int
    memory: float             # bytes usable (USABLE_MEMORY_FRACTION of capacity)

    @classmethod
    def of(cls, acc: Any, precision: str = "bf16") -> Hardware:
        return cls(id=acc.id, peak=acc.peak_flops(precision), scaleup=acc.scaleup_bytes_per_s,
                   scaleout=acc.scaleout_bytes_per_s, devices_per_node=acc.devices_per_node,
                   memory=USABLE_MEMORY_FRACTION * acc.memory_bytes)


@dataclass(frozen=True)
class LayoutNumbers:
    """The layout's numbers as the formulas use them (plain floats, or cvxpy Parameters in the program).

    Terms that vanish (tp = 1, pp = 1, dense, ZeRO-3's replicated states) are None and are left out, so
    every remaining coefficient is positive (a geometric program has no zero or negative coefficients).
    """

    tp: Any
    mp: Any                   # tp · pp
    mb_seq: Any               # micro_batch · seq_len (tokens per micro-batch)
    tp_comm: Any | None       # 8 (t − 1) × 2 bytes × (1.5 with full recompute) × (1 − TP_OVERLAP) / bw_up
    pp_idle: Any | None       # (pp − 1) · micro_batch · seq_len / (tp · pp)                      [tokens]
    dp_comm: Any | None       # volume × 2 bytes × (1 − DP_OVERLAP) / (bw_out · tp · pp)          [s/param]
    ep_comm: Any | None       # 4 · top_k × 2 bytes × (1 − EP_OVERLAP) / bw_ep
    dp_comm_expert: Any | None  # volume × 2 bytes × (1 − DP_OVERLAP) / (bw_out · pp · ep)       [s/param]
    inv_peak: Any             # 1 / (E · peak), E = MATMUL_EFFICIENCY of the generation
    attention: Any | None     # FLOP multiplier of the attention scores and values term (1; None: not counted)
    recompute_dense: Any | None  # extra dense forward FLOPs per token per param: 2 (full) else None
    act_layer: Any            # activation bytes per token per unit L·h on a device: 34 or 2 (bytes) / tp
    act_work: Any | None      # full recompute: one layer's 34 / tp bytes per token per unit h
    logits: Any               # 4 bytes × vocab / tp per token
    state_rep: Any | None     # bytes/param on the tp·pp shard (None under ZeRO-3)
    state_shard: Any | None   # bytes/param over all devices (None under ZeRO-0)
    state_rep_expert: Any | None  # expert bytes/param on the pp·ep shard
    seq_len: Any


_GENERATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("volta", ("v100",)),
    ("ampere", ("a100", "a800", "a10", "a30", "a40")),
    ("hopper", ("h100", "h200", "h800", "h20", "gh200")),
    ("blackwell", ("b100", "b200", "b300", "gb200", "gb300")),
    ("tpu", ("tpu",)),
)


def generation(accelerator_id: str) -> str:
    """Generation key of MATMUL_EFFICIENCY for an accelerator id."""
    key = accelerator_id.lower()
    for gen, prefixes in _GENERATIONS:
        if key.startswith(prefixes):
            return gen
    return "other"


def matmul_efficiency(accelerator_id: str) -> float:
    """Achievable fraction of dense peak for wide matmuls on this accelerator's generation."""
    return MATMUL_EFFICIENCY[generation(accelerator_id)]


def layout_numbers(layout: Layout, hw: Hardware, seq_len: int, vocab: int, top_k: int = 1,
                   moe: bool = False, mfu: float | None = None) -> LayoutNumbers:
    """The numbers of ``layout`` on ``hw`` (plain floats).

    With ``mfu`` given, the step is model FLOPs (6N per token) at mfu × peak and nothing else: the user's MFU
    already includes every overhead; memory still follows the layout. Memoized (a pure function of its
    arguments; the result is frozen).
    """
    key = (layout.tp, layout.pp, layout.micro_batch, layout.recompute, layout.zero_stage, layout.ep)
    return _layout_numbers(key, hw, seq_len, vocab, top_k, moe, mfu)


@lru_cache(maxsize=8192)
def _layout_numbers(layout: tuple, hw: Hardware, seq_len: int, vocab: int, top_k: int, moe: bool,
                    mfu: float | None) -> LayoutNumbers:
    """``layout_numbers`` of ``layout`` = (tp, pp, micro_batch, recompute, zero_stage, ep) (tuples hash and
    compare fast)."""
    tp, pp, micro_batch, recompute, zero_stage, ep = layout
    if mfu is not None:
        base = _layout_numbers(layout, hw, seq_len, vocab, top_k, moe, None)
        return replace(base, tp_comm=None, pp_idle=None, dp_comm=None, ep_comm=None, dp_comm_expert=None,
                       inv_peak=1.0 / (mfu * hw.peak), attention=None, recompute_dense=None)
    mp = tp * pp
    full = recompute == "full"
    rep, shard = _STATE_BYTES[zero_stage]
    vol = _DP_VOLUME[zero_stage] * GRAD_BYTES * (1.0 - DP_OVERLAP)
    ep_link = hw.scaleup if tp * ep <= hw.devices_per_node else hw.scaleout
    return LayoutNumbers(
        tp=float(tp), mp=float(mp), mb_seq=float(micro_batch * seq_len),
        tp_comm=(8.0 * (tp - 1) * (1.5 if full else 1.0) * ACT_BYTES * (1.0 - TP_OVERLAP) / hw.scaleup
                 if tp > 1 and TP_OVERLAP < 1 else None),
        pp_idle=(pp - 1) * micro_batch * seq_len / mp if pp > 1 else None,
        dp_comm=vol / (hw.scaleout * mp),
        ep_comm=(4.0 * top_k * ACT_BYTES * (1.0 - EP_OVERLAP) / ep_link if moe and ep > 1 else None),
        dp_comm_expert=vol / (hw.scaleout * pp * ep) if moe else None,
        inv_peak=1.0 / (matmul_efficiency(hw.id) * hw.peak), attention=1.0,
        recompute_dense=2.0 if full else None,
        act_layer=(_ACT_FULL if full else _ACT_SELECTIVE) / tp,
        act_work=_ACT_SELECTIVE / tp if full else None,
        logits=4.0 * vocab / tp,
        state_rep=rep / mp if rep else None, state_shard=shard or None,
        state_rep_expert=rep / (pp * ep) if (rep and moe) else None,
        seq_len=float(seq_len),
    )


@dataclass(frozen=True)
class ModelTerms:
    """How the model enters the cluster model (plain numbers, or cvxpy expressions of N in the program).

    params: params that do FLOPs per token (N, active for MoE); dense_params / expert_params: what memory holds
    (non-expert and routed-expert params); layers_width: layers × d_model (L·h); attn_width: layers × d_attn;
    moe_layers_width: MoE layers × d_model; width: d_model.
    """

    params: Any
    dense_params: Any
    expert_params: Any | None
    layers_width: Any
    attn_width: Any
    moe_layers_width: Any | None
    width: Any


@lru_cache(maxsize=4096)
def terms_of_shape(shape: ModelShape) -> ModelTerms:
    """Exact terms of a concrete shape."""
    experts = float(expert_params(shape)) if shape.is_moe else None
    return ModelTerms(params=float(active_params(shape)), dense_params=float(total_params(shape)) - (experts or 0.0),
                      expert_params=experts, layers_width=float(shape.layers * shape.d_model),
                      attn_width=float(shape.layers * shape.d_attn),
                      moe_layers_width=float(shape.moe_layers * shape.d_model) if shape.is_moe else None,
                      width=float(shape.d_model))


def _sum(*terms):
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


def _mul(x, y):
    return None if (x is None or y is None) else x * y


def per_token_seconds(m: ModelTerms, n: LayoutNumbers) -> dict[str, Any]:
    """Seconds per token per device-share (× B/G gives one step's seconds): compute, recompute, tp, ep."""
    flops = 6.0 * m.params
    extra = None
    if n.attention is not None:
        flops = flops + 6.0 * n.attention * n.seq_len * m.attn_width
        extra = 2.0 * n.attention * n.seq_len * m.attn_width
    if n.recompute_dense is not None:
        extra = _sum(extra, n.recompute_dense * m.params)
    return {
        "compute": flops * n.inv_peak,
        "recompute": _mul(extra, n.inv_peak),
        "tp_comm": _mul(n.tp_comm, m.layers_width),
        "ep_comm": _mul(n.ep_comm, m.moe_layers_width),
    }


def per_step_seconds(m: ModelTerms, n: LayoutNumbers) -> dict[str, Any]:
    """Seconds per step that do not scale with the batch: the dp gradient/parameter traffic (the bubble is
    returned by ``step_breakdown``, since it is a share of the per-token time)."""
    dp = _mul(n.dp_comm, m.dense_params)
    if n.dp_comm_expert is not None and m.expert_params is not None:
        dp = _sum(dp, n.dp_comm_expert * m.expert_params)
    return {"dp_comm": dp}


def step_breakdown(m: ModelTerms, n: LayoutNumbers, batch_tokens, devices) -> dict[str, Any]:
    """One optimizer step's seconds by cause: compute, recompute, tp_comm, ep_comm, pp_bubble, dp_comm.

    Absent terms (tp = 1, pp = 1, dense) are 0 for plain numbers and None for cvxpy expressions.
    """
    tok = per_token_seconds(m, n)
    share = batch_tokens / devices
    out = {k: (None if v is None else v * share) for k, v in tok.items()}
    busy = _sum(*tok.values())
    out["pp_bubble"] = None if n.pp_idle is None else n.pp_idle * busy
    out.update(per_step_seconds(m, n))
    return out


def step_seconds(m: ModelTerms, n: LayoutNumbers, batch_tokens, devices):
    """Seconds per optimizer step (a posynomial in N, B, 1/G for a fixed layout)."""
    return _sum(*step_breakdown(m, n, batch_tokens, devices).values())


def step_seconds_at(m: ModelTerms, n: LayoutNumbers, batches: list[float], devices: int) -> list[float]:
    """``sum(as_numbers(step_breakdown(m, n, b, devices)).values())`` at each batch b, the per-token terms
    taken once (plain numbers; the same terms summed in the same order)."""
    tok = per_token_seconds(m, n)
    busy = _sum(*tok.values())
    tail = [0.0 if n.pp_idle is None else n.pp_idle * busy, *as_numbers(per_step_seconds(m, n)).values()]
    per = [0.0 if v is None else v for v in tok.values()]
    out = []
    for b in batches:
        share = b / devices
        out.append(sum([v * share for v in per] + tail))
    return out


def training_seconds(m: ModelTerms, n: LayoutNumbers, tokens, batch_tokens, devices):
    """Wall-clock seconds of steady training on ``tokens``: steps × step time (a posynomial)."""
    return tokens / batch_tokens * step_seconds(m, n, batch_tokens, devices)


def memory_parts(m: ModelTerms, n: LayoutNumbers, devices) -> dict[str, Any]:
    """Bytes per device on the most loaded rank: replicated states, sharded states, activations, logits."""
    rep = _mul(n.state_rep, m.dense_params)
    if n.state_rep_expert is not None and m.expert_params is not None:
        rep = _sum(rep, n.state_rep_expert * m.expert_params)
    params_all = m.dense_params if m.expert_params is None else m.dense_params + m.expert_params
    acts = n.act_layer * n.mb_seq * m.layers_width
    if n.act_work is not None:
        acts = acts + n.act_work * n.mb_seq * m.width
    return {"states_replicated": rep, "states_sharded": _mul(n.state_shard, params_all / devices),
            "activations": acts, "logits": n.logits * n.mb_seq}


def memory_bytes(m: ModelTerms, n: LayoutNumbers, devices):
    """Bytes per device (a posynomial in N and 1/G for a fixed layout)."""
    return _sum(*memory_parts(m, n, devices).values())


def as_numbers(parts: dict[str, Any]) -> dict[str, float]:
    """A breakdown with absent terms as 0.0 (plain numbers only)."""
    return {k: 0.0 if v is None else float(v) for k, v in parts.items()}


def mfu(model_flops_per_token: float, batch_tokens: float, devices: float, step: float, peak: float) -> float:
    """Model FLOPs utilization: model FLOPs per step / (devices × step seconds × peak)."""
    return model_flops_per_token * batch_tokens / (devices * step * peak)


# ---- layouts to enumerate


@lru_cache(maxsize=8192)
def with_tp_for_heads(layout: Layout, heads: int, top: int) -> Layout:
    """``layout`` with the largest power-of-two tensor parallel up to ``top`` that divides ``heads`` (pass
    ``shape.tp_heads``: the K/V heads the degree must split). Memoized (layouts are immutable, shared)."""
    tp = max(t for t in (1, 2, 4, 8, 16, 32, 64) if t <= max(top, 1) and heads % t == 0)
    return layout if tp == layout.tp else layout.model_copy(update={"tp": tp})


def candidate_layouts(devices_per_node: int, *, moe_experts: int = 1, tp: int | None = None,
                      pp: int | None = None, micro_batch: int | None = None,
                      recompute: Recompute | None = None, zero_stage: int | None = None,
                      ep: int | None = None, max_pp: int = 64) -> list[Layout]:
    """Every layout of the search: powers of two for tp (≤ a node) and pp (≤ max_pp), micro-batch 1,
    selective or full recomputation, ZeRO-1 or ZeRO-3, ep the largest power of two ≤ experts and ≤ 64;
    a given option pins its dimension."""
    # the same layouts for every max_pp between two powers of two: one cache entry for them (a sweep's shapes
    # have every depth)
    top_pp = max((p for p in (1, 2, 4, 8, 16, 32, 64) if p <= max_pp), default=0)
    return list(_candidate_layouts(devices_per_node, moe_experts, tp, pp, micro_batch, recompute, zero_stage, ep,
                                   top_pp))


@lru_cache(maxsize=512)
def _candidate_layouts(devices_per_node: int, moe_experts: int, tp: int | None, pp: int | None,
                       micro_batch: int | None, recompute: Recompute | None, zero_stage: int | None, ep: int | None,
                       max_pp: int) -> tuple[Layout, ...]:
    tps = [tp] if tp else [t for t in (1, 2, 4, 8) if t <= devices_per_node]
    pps = [pp] if pp else [p for p in (1, 2, 4, 8, 16, 32, 64) if p <= max_pp]
    mbs = [micro_batch] if micro_batch else [1]
    rcs = [recompute] if recompute else ["selective", "full"]
    zs = [zero_stage] if zero_stage is not None else [1, 3]
    if moe_experts > 1:
        eps = [ep] if ep else [min(2 ** int(math.log2(moe_experts)), 64)]
    else:
        eps = [1]
    return tuple(Layout(tp=t, pp=p, micro_batch=b, recompute=r, zero_stage=z, ep=e)
                 for t in tps for p in pps for b in mbs for r in rcs for z in zs for e in eps)
