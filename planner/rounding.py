"""Round a continuous plan to a concrete model shape and a concrete cluster layout.

The geometric program returns a parameter count N and a device count G as real numbers. This module turns
them into something one could launch: a decoder (layers, d_model, heads, FFN width ...) whose parameter count
is as close as possible to N, and a tensor/pipeline/data/expert parallel layout that fits device memory.

Shape conventions (Llama-style decoder): d_model a multiple of 128; head_dim 128 (64 below d_model 1024);
heads = d_model / head_dim; 8 KV heads (GQA) once heads >= 16, otherwise one KV head per query head (MHA) --
so from d_model 2048 up, d_model is a multiple of 1024 (heads a multiple of 8), as in every Llama/OPT/GPT-3
width at that scale; SwiGLU FFN width 8/3·d_model rounded up to a multiple of 256 (Llama 2 7B: 11008), GELU
4·d_model; MoE models are MoE in every layer with experts as wide as the dense FFN.

Depth vs width: the aspect-ratio rule below (``preferred_layers``) is a curve through published
(d_model, layers) pairs; among candidate shapes whose counts are close to the target, the one nearest that
curve wins. Kaplan et al. 2020 (Fig. 5) found loss within a few percent over aspect ratios d_model/layers of
roughly 20-200, so the rule is a convention that matches practice, not an optimum.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import (
    ModelShape,
    active_non_embedding_params,
    active_params,
    non_embedding_params,
    total_params,
)
from cost_models.memory import USABLE_MEMORY_FRACTION, MemoryBreakdown, Recompute, memory_breakdown_for_shape

Count = Literal["total", "non_embedding", "active", "active_non_embedding"]

COUNTERS: dict[str, Callable[[ModelShape], int]] = {
    "total": total_params,
    "non_embedding": non_embedding_params,
    "active": active_params,
    "active_non_embedding": active_non_embedding_params,
}

LLAMA3_VOCAB = 128256  # Llama 3 tokenizer (Dubey et al. 2024 §3.1.1 / HF config vocab_size)

# --------------------------------------------------------------------------------------------------------------
# Aspect-ratio rule: published (layers, d_model) pairs. Anchors are strictly increasing in d_model and
# non-decreasing in layers; preferred_layers(d) interpolates log(layers) linearly in log(d_model) between them
# and holds the end anchors' aspect ratio d_model/layers beyond them.
#
# | layers × d_model | d/L   | used by (paper / config)                                                       |
# |------------------|-------|--------------------------------------------------------------------------------|
# |   6 ×   512      |  85   | Pythia-70M (Biderman et al. 2023, Table 1)                                     |
# |  12 ×   768      |  64   | GPT-3 Small 125M (Brown et al. 2020, Table 2.1), OPT-125M, Pythia-160M         |
# |  24 ×  1024      |  43   | GPT-3 Medium 350M, OPT-350M (Zhang et al. 2022, Table 1), Pythia-410M          |
# |  24 ×  1536      |  64   | GPT-3 Large 760M                                                               |
# |  24 ×  2048      |  85   | GPT-3 XL 1.3B, OPT-1.3B, Pythia-1.4B                                           |
# |  32 ×  2560      |  80   | GPT-3 2.7B, OPT-2.7B, Pythia-2.8B                                              |
# |  32 ×  4096      | 128   | Llama 2 7B (Touvron et al. 2023, Table 1 / HF config), Llama 3 8B, GPT-3 6.7B, |
# |                  |       | OPT-6.7B, Pythia-6.9B                                                          |
# |  40 ×  5120      | 128   | Llama 2 13B, OPT-13B, GPT-3 13B (5140)                                         |
# |  48 ×  7168      | 149   | OPT-30B                                                                        |
# |  80 ×  8192      | 102   | Llama 2 70B, Llama 3 70B, Chinchilla 70B (Hoffmann et al. 2022, Table 4)       |
# |  96 × 12288      | 128   | GPT-3 175B, OPT-175B                                                           |
# | 126 × 16384      | 130   | Llama 3 405B (Dubey et al. 2024, Table 3)                                      |
#
# Published shapes off the curve (not anchors; they show the spread): Llama 3.2 1B 16×2048 (d/L 128),
# Llama 3.2 3B 28×3072 (110), Pythia-12B 36×5120 (142), Llama 2 34B 48×8192 (171), OPT-66B 64×9216 (144),
# Gopher 280B 80×16384 (205), PaLM 540B 118×18432 (156).
# --------------------------------------------------------------------------------------------------------------
ASPECT_ANCHORS: tuple[tuple[int, int, str], ...] = (
    (6, 512, "Pythia-70M"),
    (12, 768, "GPT-3 Small / OPT-125M / Pythia-160M"),
    (24, 1024, "GPT-3 Medium / OPT-350M / Pythia-410M"),
    (24, 1536, "GPT-3 Large"),
    (24, 2048, "GPT-3 XL / OPT-1.3B / Pythia-1.4B"),
    (32, 2560, "GPT-3 2.7B / OPT-2.7B / Pythia-2.8B"),
    (32, 4096, "Llama 2 7B / Llama 3 8B / GPT-3 6.7B / OPT-6.7B / Pythia-6.9B"),
    (40, 5120, "Llama 2 13B / OPT-13B / GPT-3 13B"),
    (48, 7168, "OPT-30B"),
    (80, 8192, "Llama 2 70B / Llama 3 70B / Chinchilla 70B"),
    (96, 12288, "GPT-3 175B / OPT-175B"),
    (126, 16384, "Llama 3 405B"),
)
_LOG_D = np.log([d for _, d, _ in ASPECT_ANCHORS])
_LOG_L = np.log([layers for layers, _, _ in ASPECT_ANCHORS])

# Search: at each width the count is exactly linear in layers, count(L) = intercept + slope·L, so the
# continuous depth L*(d) that hits the target is known. The width whose L*(d) is nearest the rule (smallest
# |log(L*(d) / preferred_layers(d))|) wins and L*(d) is rounded to the nearer count. Two hard preferences
# come first: at least MIN_LAYERS layers (Pythia-70M, the smallest anchor, has 6) and a count within
# MAX_REL_ERROR of the target; each is dropped only when no width meets it (tiny or embedding-bound targets).
# Choosing the width from the continuous depth makes d_model non-decreasing in the target (see fit_shape).
MAX_REL_ERROR = 0.03
MIN_LAYERS = 4
# MoE layouts may move the device count by up to this fraction so that dp is a multiple of a larger ep.
MOE_DEVICE_SLACK = 0.05
_MAX_D_MODEL = 1 << 17


def preferred_layers(d_model: float) -> float:
    """Layers the aspect-ratio rule prefers at width ``d_model`` (continuous; see the anchor table)."""
    x = math.log(d_model)
    if x <= _LOG_D[0]:
        return math.exp(_LOG_L[0] + x - _LOG_D[0])  # constant aspect ratio below the smallest anchor
    if x >= _LOG_D[-1]:
        return math.exp(_LOG_L[-1] + x - _LOG_D[-1])  # ... and above the largest
    return float(math.exp(np.interp(x, _LOG_D, _LOG_L)))


def head_layout(d_model: int) -> tuple[int, int, int] | None:
    """(heads, kv_heads, head_dim) for ``d_model`` under the conventions above; None if it has no valid layout."""
    if d_model % 128:
        return None
    head_dim = 64 if d_model < 1024 else 128
    heads = d_model // head_dim
    if heads < 16:
        return heads, heads, head_dim
    if heads % 8:
        return None
    return heads, 8, head_dim


def ffn_width(d_model: int, ffn_type: str = "swiglu") -> int:
    """SwiGLU: 8/3·d_model rounded up to a multiple of 256 (Llama: 4096 -> 11008); GELU: 4·d_model."""
    if ffn_type == "gelu":
        return 4 * d_model
    return -(-8 * d_model // (3 * 256)) * 256


def make_shape(d_model: int, layers: int, *, experts: int = 1, top_k: int = 1, vocab: int = LLAMA3_VOCAB,
               seq_len: int = 4096, ffn_type: Literal["swiglu", "gelu"] = "swiglu",
               tied_embeddings: bool = False) -> ModelShape:
    """The shape the conventions give for (d_model, layers)."""
    layout = head_layout(d_model)
    if layout is None:
        raise ValueError(f"d_model {d_model} has no head layout (multiple of 128; of 1024 from 2048 up)")
    heads, kv_heads, head_dim = layout
    return ModelShape(layers=layers, d_model=d_model, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                      ffn_hidden=ffn_width(d_model, ffn_type), ffn_type=ffn_type, vocab=vocab,
                      tied_embeddings=tied_embeddings, experts=experts, top_k=top_k if experts > 1 else 1,
                      dense_layers=0, seq_len=seq_len)


class ShapeFit(BaseModel):
    """A rounded shape and how well it matches the requested count."""

    model_config = ConfigDict(frozen=True)

    shape: ModelShape
    count: Count
    target: float = Field(description="requested parameter count")
    achieved: int = Field(description="the shape's parameter count of the requested kind")
    rel_error: float = Field(description="(achieved - target) / target")
    aspect_ratio: float = Field(description="d_model / layers")
    preferred_layers: float = Field(description="layers the aspect-ratio rule prefers at this d_model")


@lru_cache(maxsize=4096)
def _line(d_model: int, count: str, experts: int, top_k: int, vocab: int, seq_len: int, ffn_type: str,
          tied: bool) -> tuple[int, int]:
    """(intercept, slope) of the count in layers at width d_model: count(L) = intercept + slope·L exactly."""
    kw = dict(experts=experts, top_k=top_k, vocab=vocab, seq_len=seq_len, ffn_type=ffn_type, tied_embeddings=tied)
    counter = COUNTERS[count]
    one = counter(make_shape(d_model, 1, **kw))
    two = counter(make_shape(d_model, 2, **kw))
    return one - (two - one), two - one


def fit_shape(params: float, *, count: Count = "total", experts: int = 1, top_k: int = 1,
              vocab: int = LLAMA3_VOCAB, seq_len: int = 4096, ffn_type: Literal["swiglu", "gelu"] = "swiglu",
              tied_embeddings: bool = False) -> ShapeFit:
    """Search (d_model, layers) for a shape whose ``count`` of params is close to ``params`` (see "Search").

    Every valid width is tried (multiples of 128; of 1024 from 2048 up, see ``head_layout``). Why d_model is
    monotone: m(d, T) = log(L*(d, T) / preferred_layers(d)) decreases in d and increases in the target T, and
    faster for wider d (dm/dlogT = T / (T - intercept), larger with larger embeddings), so once a wider width
    overtakes a narrower one it stays ahead as T grows -- except where a hard preference (MIN_LAYERS,
    MAX_REL_ERROR) decides, which happens only for embedding-bound targets (e.g. MoE with many experts below
    ~1e9 total params). Depth is not monotone on a fine grid: it drops when the width steps up.
    """
    if count not in COUNTERS:
        raise ValueError(f"count must be one of {sorted(COUNTERS)}, got {count!r}")
    if isinstance(params, bool) or not (isinstance(params, numbers.Real) and math.isfinite(params) and params > 0):
        raise ValueError(f"params must be a positive finite number, got {params!r}")
    if experts < 1 or top_k < 1 or top_k > experts:
        raise ValueError(f"need 1 <= top_k <= experts, got experts={experts}, top_k={top_k}")
    if experts == 1:
        top_k = 1
    spec = (count, experts, top_k, vocab, seq_len, ffn_type, tied_embeddings)
    target = float(params)
    best: tuple[tuple[bool, float, float], int, int] | None = None  # (rank, d_model, layers)
    d = 128
    while d <= _MAX_D_MODEL:
        intercept, slope = _line(d, *spec)
        if intercept + slope * MIN_LAYERS > target * (1 + MAX_REL_ERROR) and best is not None and not best[0][0]:
            break  # every term of the count grows with d_model: wider widths only overshoot more
        x = (target - intercept) / slope  # continuous depth that hits the target
        floor_, ceil_ = max(1, math.floor(x)), max(1, math.ceil(x))
        layers = min((floor_, ceil_), key=lambda n: (n < MIN_LAYERS, abs(intercept + slope * n - target)))
        err = (intercept + slope * layers - target) / target
        rank = (layers < MIN_LAYERS, max(0.0, abs(err) - MAX_REL_ERROR),
                abs(math.log(max(x, 1e-3) / preferred_layers(d))))
        if best is None or rank < best[0]:
            best = (rank, d, layers)
        d += 128 if d < 2048 else 1024
    assert best is not None
    _, d, layers = best
    shape = make_shape(d, layers, experts=experts, top_k=top_k, vocab=vocab, seq_len=seq_len, ffn_type=ffn_type,
                       tied_embeddings=tied_embeddings)
    achieved = COUNTERS[count](shape)
    return ShapeFit(shape=shape, count=count, target=target, achieved=achieved,
                    rel_error=(achieved - target) / target, aspect_ratio=d / layers,
                    preferred_layers=preferred_layers(d))


def round_shape(params: float, *, count: Count = "total", experts: int = 1, top_k: int = 1,
                vocab: int = LLAMA3_VOCAB, seq_len: int = 4096, ffn_type: Literal["swiglu", "gelu"] = "swiglu",
                tied_embeddings: bool = False) -> ModelShape:
    """A concrete decoder whose ``count`` of params is closest to ``params`` (``fit_shape(...).shape``)."""
    return fit_shape(params, count=count, experts=experts, top_k=top_k, vocab=vocab, seq_len=seq_len,
                     ffn_type=ffn_type, tied_embeddings=tied_embeddings).shape


# --------------------------------------------------------------------------------------------------------------
# Cluster layout
# --------------------------------------------------------------------------------------------------------------


class Parallelism(BaseModel):
    """A concrete training layout: world = tp · pp · dp devices, memory per device of the most loaded rank."""

    model_config = ConfigDict(frozen=True)

    tp: int = Field(description="tensor parallel degree (within a node; sequence parallel when > 1)")
    pp: int = Field(description="pipeline stages (1F1B)")
    dp: int = Field(description="data parallel degree")
    ep: int = Field(description="expert parallel degree (1 for a dense model)")
    devices: int = Field(description="devices used = tp · pp · dp (the request rounded)")
    nodes: int
    devices_per_node: int
    micro_batch: int = Field(description="sequences per micro-batch per data-parallel rank")
    grad_accum_steps: int = Field(description="micro-batches per step per data-parallel rank")
    global_batch_sequences: int = Field(description="sequences per optimizer step (a multiple of dp)")
    global_batch_tokens: int = Field(description="global_batch_sequences · seq_len")
    sequence_parallel: bool
    stage_layers: int = Field(description="layers on the most loaded pipeline stage")
    pipeline_bubble: float = Field(description="1F1B idle fraction (pp - 1) / grad_accum_steps")
    memory: MemoryBreakdown = Field(description="bytes per device of the most loaded rank")
    memory_per_device_gb: float = Field(description="memory.total in GB (1e9 bytes)")
    usable_memory_gb: float = Field(description="device memory × the usable fraction")
    fits: bool
    notes: list[str] = Field(default_factory=list)


def _pow2_upto(n: int) -> list[int]:
    out, k = [], 1
    while k <= n:
        out.append(k)
        k *= 2
    return out


def _largest_pow2_dividing(*values: int) -> int:
    k = 1
    while all(v % (2 * k) == 0 for v in values):
        k *= 2
    return k


def _round_to_multiple(x: int, unit: int) -> int:
    return max(unit, int(math.floor(x / unit + 0.5)) * unit)


def _round_devices(devices: int, unit: int, per_node: int) -> int:
    """Nearest multiple of ``unit`` (and of whole nodes from one node up)."""
    return _round_to_multiple(devices, math.lcm(unit, per_node) if devices >= per_node else unit)


def _tp_ok(shape: ModelShape, tp: int) -> bool:
    """tp divides the query heads and the FFN width; KV heads are split (tp | kv) or replicated (kv | tp)."""
    kv = shape.kv_heads
    return shape.heads % tp == 0 and shape.ffn_hidden % tp == 0 and (kv % tp == 0 or tp % kv == 0)


def plan_parallelism(shape: ModelShape, devices: int, accelerator, *, global_batch_tokens: float,
                     precision: str = "bf16", zero_stage: int = 1, recompute: Recompute = "selective",
                     max_tp: int | None = None, micro_batch: int = 1, optimizer: str = "adam") -> Parallelism:
    """The smallest model-parallel footprint tp · pp that fits ``shape`` on ``devices`` of ``accelerator``.

    Candidates: tp a power of two up to ``max_tp`` (default and cap: devices per node) dividing the heads (KV
    heads split or replicated); pp a power of two below the layer count, or the layer count itself -- stages
    may be uneven (Llama 3 405B: 126 layers on 16 stages), and memory is that of the most loaded stage,
    ceil(layers / pp) layers with pp micro-batches in flight (1F1B). Ordered by tp·pp, then by smaller pp
    (tensor parallel within a node before pipeline stages). Sequence parallelism is on whenever tp > 1
    (Megatron-LM practice; Korthikanti et al. 2022). MoE: ep = the largest power of two dividing both the
    expert count and dp; routed-expert weights are sharded over ep. ``devices`` is rounded to a multiple of
    tp·pp (and to whole nodes from one node up). The memory model is ``cost_models.memory`` (mixed precision:
    16-bit weights and grads, fp32 master and optimizer states, ZeRO over dp), the same at every ``precision``.
    """
    if isinstance(devices, bool) or not isinstance(devices, numbers.Integral) or devices < 1:
        raise ValueError(f"devices must be a positive integer, got {devices!r}")
    devices = int(devices)
    if not (math.isfinite(global_batch_tokens) and global_batch_tokens > 0):
        raise ValueError(f"global_batch_tokens must be positive, got {global_batch_tokens!r}")
    if micro_batch < 1:
        raise ValueError(f"micro_batch must be >= 1, got {micro_batch!r}")
    accelerator.peak_flops(precision)  # raises CatalogError if the device has no such precision
    per_node = accelerator.devices_per_node
    if max_tp is not None and max_tp < 1:
        raise ValueError(f"max_tp must be >= 1, got {max_tp!r}")
    tps = [t for t in _pow2_upto(min(per_node, max_tp or per_node)) if _tp_ok(shape, t)]
    pps = [p for p in _pow2_upto(shape.layers) if p < shape.layers] + [shape.layers]

    def footprint(tp_pp: tuple[int, int]) -> tuple[int, int]:
        return tp_pp[0] * tp_pp[1], tp_pp[1]  # fewest devices per replica; tensor before pipeline parallel

    args = (global_batch_tokens, zero_stage, recompute, micro_batch, optimizer)

    batch_seqs = max(1, round(global_batch_tokens / shape.seq_len))

    def search(n: int) -> tuple[Parallelism | None, list[tuple[int, int]]]:
        splits = sorted(((t, p) for t in tps for p in pps if t * p <= n), key=footprint)
        # First the splits whose data-parallel ranks the batch can feed (dp · micro_batch <= batch sequences),
        # so rounding never inflates the planned batch; then any split that fits memory.
        fed = [(t, p) for t, p in splits if n // (t * p) * micro_batch <= batch_seqs]
        for group in (fed, splits):
            for tp, pp in group:
                plan = _evaluate(shape, n, accelerator, tp, pp, *args)
                if plan.fits:
                    return plan, splits
        return None, splits

    chosen, splits = search(devices)
    notes: list[str] = []
    if chosen is None:  # nothing fits: report the largest split the cluster allows
        tp, pp = max(splits, key=lambda tp_pp: (tp_pp[0] * tp_pp[1], tp_pp[0]))
        chosen = _evaluate(shape, devices, accelerator, tp, pp, *args)
        mem = chosen.memory
        short = chosen.memory_per_device_gb - chosen.usable_memory_gb
        limit = ("the largest split allowed" if tp == tps[-1] and pp == shape.layers
                 else f"the largest split {devices} devices allow")
        notes.append(f"does not fit: {chosen.memory_per_device_gb:.1f} GB per device at tp={tp}, pp={pp} ({limit}; "
                     f"model states {mem.model_states / 1e9:.1f} GB, activations {mem.activations / 1e9:.1f} GB) "
                     f"vs {chosen.usable_memory_gb:.1f} GB usable on {accelerator.id}: {short:.1f} GB missing; "
                     "try more devices, ZeRO-3, full recomputation or a smaller model")
        more = devices
        for _ in range(24):  # more devices help through larger splits, ZeRO over dp and expert parallelism
            more *= 2
            bigger, _ = search(more)
            if bigger is not None:
                notes.append(f"it would fit on {bigger.devices} devices (tp={bigger.tp}, pp={bigger.pp}, "
                             f"dp={bigger.dp}, ep={bigger.ep})")
                break
        else:
            notes.append(f"it does not fit on any number of devices at recompute={recompute!r}, "
                         f"zero_stage={zero_stage}")
    else:
        notes.append(f"fits: {chosen.memory_per_device_gb:.1f} GB of {chosen.usable_memory_gb:.1f} GB usable "
                     f"({USABLE_MEMORY_FRACTION:.0%} of {accelerator.memory_gb:g} GB) on the most loaded rank")
    notes.extend(chosen.notes)
    if precision not in ("bf16", "fp16"):
        notes.append(f"memory assumes 16-bit weights and grads with fp32 master and optimizer states; {precision} "
                     "compute (e.g. Transformer Engine) keeps that layout")
    return chosen.model_copy(update={"notes": notes})


def _evaluate(shape: ModelShape, devices: int, accelerator, tp: int, pp: int, global_batch_tokens: float,
              zero_stage: int, recompute: Recompute, micro_batch: int, optimizer: str) -> Parallelism:
    per_node = accelerator.devices_per_node
    notes: list[str] = []
    ep_want = 1
    if shape.is_moe:  # the largest power-of-two ep (dividing the experts) reachable within the rounding slack
        ep_want = _largest_pow2_dividing(shape.experts)
        while ep_want > 1 and abs(_round_devices(devices, tp * pp * ep_want, per_node) - devices) > (
                MOE_DEVICE_SLACK * devices):
            ep_want //= 2
    used = _round_devices(devices, tp * pp * ep_want, per_node)
    if used != devices:
        what = f"tp·pp = {tp * pp}" if ep_want == 1 else f"tp·pp·ep = {tp * pp * ep_want}"
        whole = " and whole nodes" if devices >= per_node else ""
        notes.append(f"devices rounded from {devices} to {used} (a multiple of {what}{whole})")
    dp = used // (tp * pp)

    ep = _largest_pow2_dividing(shape.experts, dp) if shape.is_moe else 1
    if shape.is_moe:
        ranks = "rank" if ep == 1 else "ranks"
        notes.append(f"expert parallel ep={ep}: routed experts sharded over {ep} data-parallel {ranks} "
                     f"({shape.experts // ep} experts per rank)")

    stage_layers = -(-shape.layers // pp)
    if shape.layers % pp:
        notes.append(f"uneven pipeline stages: {shape.layers} layers on {pp} stages, at most {stage_layers} per "
                     "stage (memory is that of the fullest stage)")
    seq_par = tp > 1
    # The fullest stage holds stage_layers/layers of the weights: pass an effective pp = layers / stage_layers
    # so that params/(tp·pp_eff) and activations per_layer·(layers/pp_eff)·pp are those of that stage.
    pp_eff = shape.layers / stage_layers
    mem = memory_breakdown_for_shape(shape, micro_batch=micro_batch, optimizer=optimizer, zero_stage=zero_stage,
                                     dp=dp, tp=tp, pp=pp_eff, ep=ep, recompute=recompute,
                                     sequence_parallel=seq_par, inflight_microbatches=pp)

    wanted = max(1, round(global_batch_tokens / shape.seq_len))
    seqs = _round_to_multiple(wanted, dp * micro_batch)
    if seqs != wanted:
        notes.append(f"global batch {wanted} sequences rounded to {seqs} (a multiple of dp·micro_batch = "
                     f"{dp * micro_batch})")
    accum = -(-seqs // (dp * micro_batch))
    if 1 < pp and accum < pp:
        notes.append(f"only {accum} micro-batches for {pp} pipeline stages: the 1F1B bubble (pp-1)/m = "
                     f"{(pp - 1) / accum:.0%} of compute time; raise the batch or lower pp")
    usable = USABLE_MEMORY_FRACTION * accelerator.memory_bytes
    return Parallelism(tp=tp, pp=pp, dp=dp, ep=ep, devices=used, nodes=-(-used // per_node),
                       devices_per_node=per_node, micro_batch=micro_batch, grad_accum_steps=accum,
                       global_batch_sequences=seqs, global_batch_tokens=seqs * shape.seq_len,
                       sequence_parallel=seq_par, stage_layers=stage_layers, pipeline_bubble=(pp - 1) / accum,
                       memory=mem, memory_per_device_gb=mem.total / 1e9, usable_memory_gb=usable / 1e9,
                       fits=mem.total <= usable, notes=notes)
