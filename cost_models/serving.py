"""Serving model: prefill and decode time, KV cache, tensor-parallel all-reduce, memory fit, $ per token.

One replica of a model runs on ``tp`` devices with Megatron-style tensor parallelism and serves ``batch``
sequences at once (continuous batching), each with a ``prompt_tokens`` prompt and ``output_tokens`` generated.

Decode step (seconds, one token for each of the ``batch`` sequences), at the mean cache length
c = prompt + output/2 over a generation:

    step = max(memory, compute) + θ · min(memory, compute) + all-reduce
    memory  = weight bytes read / (bandwidth · eta_bw) + batch · KV bytes per token per device · c
              / (bandwidth · eta_kv)     (weights stream through GEMMs, the KV cache through attention kernels)
    compute = batch · (2 · matmul params / (peak · eta_flop) + 4 · layers · d_attn · c / (bf16 peak · eta_16))
              / tp         (attention runs in 16-bit whatever the weight dtype)

Weight bytes read per step (per device, / tp): every parameter except the input-embedding table (a lookup
reads ``batch`` rows) and, for MoE, the routed experts that no token of the batch picked (see
``moe_experts_touched``). Matmul params are the active non-embedding params plus the output head (Kaplan et
al. 2020, Table 1: 2N forward FLOPs per token plus 2·n_layer·n_ctx·d_attn for attention per token; a decode
token attends to c cached tokens, a causal prefill token to P/2 on average).

Prefill of one P-token prompt: compute P · (2 · matmul params + 2 · layers · d_attn · P) / tp at the same
efficiencies, memory = one read of the weights, combined like a decode step (max + θ · min) plus the
all-reduce of P tokens. Time to first token (TTFT) is that time for a prompt alone; queueing behind other
requests is not modelled. Input tokens are priced at their prefill compute and
all-reduce only: under continuous batching many prompts share one read of the weights.

KV cache per token (``kv_elements_per_token``): K and V, 2 · layers · kv_heads · head_dim elements (MHA when
kv_heads = heads, GQA otherwise); MLA caches its compressed latent plus the decoupled RoPE key,
layers · (kv_lora_rank + qk_rope_head_dim) (DeepSeek-AI 2024, DeepSeek-V2 §2.1.3). Tensor parallelism
splits KV heads over devices; with fewer KV heads than devices each head is replicated (each device needs
the K/V of its query heads), and the MLA latent is replicated on every device (it is shared by all heads).

Tensor-parallel all-reduce: two per layer in the forward pass, after the attention and after the MLP block
(Shoeybi et al. 2019, Megatron-LM §3, Fig. 4), each of batch · d_model activations in bf16. Ring all-reduce of
S bytes over t devices: 2(t−1)/t · S / link bandwidth (Patarasuk & Yuan 2009; the NCCL "bus bandwidth"
convention) plus a latency of 2(t−1) steps. The link is the catalog's ``scaleup_bandwidth_gbs``, which is
bidirectional per device, so one direction carries half of it.

Memory per device: weights of all experts (all resident for MoE) / tp + batch · KV bytes per token per device
· (prompt + output), within ``USABLE_MEMORY_FRACTION`` of HBM.

Cost: a replica of tp devices produces batch / step output tokens per second, so one output token takes
tp · step / batch device-seconds and one input token tp · (prefill compute + all-reduce) / P. Dollars are
device-seconds × price / 3600. Every reported figure (tokens/s, TPOT, TTFT, $) is at the calibrated
efficiencies; nothing is priced at another efficiency than the one reported.

θ (``OVERLAP_PENALTY``) is the share of the shorter roof not hidden under the longer one: 0 is the pure
roofline max. The published throughputs are fitted best at θ = 1, so step = memory + compute + all-reduce:
a posynomial as it stands (both branches coincide).

Every time above is a sum of shape features (``FEATURES``) times constants that depend only on the
accelerator, the configuration and the workload (``LinearForm``). ``evaluate`` sums them for a concrete
shape (``cost_models.serving_point`` evaluates a configuration and sizes it); ``cost_models.serving_terms``
turns the same forms into posynomials in the parameter count.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import ModelShape, active_non_embedding_params, expert_params_per_layer, total_params

Precision = Literal["bf16", "fp8", "fp4"]
PRECISION_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}
SECONDS_PER_HOUR = 3600.0

# Calibrated roofline efficiencies (achieved / peak) for continuous-batching serving engines: see
# cost_models.serving_calibration and docs/serving.md, which refit them from the published throughputs and
# latencies in serving_calibration.toml (TensorRT-LLM performance tables, vLLM benchmark runs).
# Compute efficiency is per matmul dtype: 8- and 4-bit matmuls reach a smaller fraction of their (doubled,
# quadrupled) peak. The 4-bit value rests on B200 points only.
BANDWIDTH_EFFICIENCY = 0.67
KV_BANDWIDTH_EFFICIENCY = 0.94
COMPUTE_EFFICIENCY = 0.73
COMPUTE_EFFICIENCY_8BIT = 0.50
COMPUTE_EFFICIENCY_4BIT = 0.33
# Fraction of the shorter of the memory and compute times that is not hidden under the longer one (0: the
# pure roofline max; 1: no overlap, the sum). Calibrated with the efficiencies: the published points are
# fitted best at 1 (docs/serving.md, "Overlap of memory and compute time": refitting the other efficiencies
# at θ = 0, 0.5 and 1, the sum of absolute log errors is smallest at 1), i.e. a step costs its memory time
# plus its compute time.
OVERLAP_PENALTY = 1.0
# vLLM reserves this fraction of device memory for weights, activations and KV cache (engine argument
# --gpu-memory-utilization, default 0.9, vLLM documentation "Engine Arguments").
USABLE_MEMORY_FRACTION = 0.9
# All-reduce payload: activations stay bf16 in fp8/fp4 serving (weight/KV quantization only).
ACTIVATION_BYTES = 2.0
ALLREDUCES_PER_LAYER = 2  # Megatron-LM tensor parallelism, forward pass (Shoeybi et al. 2019 §3)
# Latency of one step of a ring all-reduce on the scale-up link. Estimate (not calibrated: no published
# figure in the calibration set isolates it); it adds 2(t−1) · 2 · layers of these to every step.
ALLREDUCE_STEP_LATENCY_S = 1e-6
# Largest number of sequences a replica batches: the largest batch in the TensorRT-LLM performance tables
# (1024, TensorRT-LLM docs/source/performance.md for v0.6.1) -- schedulers cap it, and past the roofline
# crossover a larger batch no longer lowers the cost per token.
DEFAULT_MAX_BATCH = 1024

FEATURES = ("weight_params", "read_params", "prefill_read_params", "matmul_params", "kv_elements", "attn_coef",
            "layers", "layer_width")
LinearForm = dict[str, float]  # feature name -> constant; the quantity is sum(constant · feature)


class ServingConfig(BaseModel):
    """One serving configuration: devices per replica (tensor parallel), batch and storage precisions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tensor_parallel: int = Field(ge=1, le=1024, description="devices per replica")
    batch: int = Field(ge=1, le=1_000_000, description="sequences decoded together")
    precision: Precision = Field(default="bf16", description="weights and compute dtype")
    kv_precision: Precision | None = Field(default=None, description="KV-cache dtype (default: precision)")

    @property
    def weight_bytes(self) -> float:
        return PRECISION_BYTES[self.precision]

    @property
    def kv_bytes(self) -> float:
        return PRECISION_BYTES[self.kv_precision or self.precision]


class Workload(BaseModel):
    """Per-request lengths: prompt tokens in, output tokens generated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_tokens: int = Field(default=1024, ge=1, le=10_000_000)
    output_tokens: int = Field(default=256, ge=1, le=10_000_000)

    @property
    def context(self) -> int:
        """Final cache length: prompt + output tokens."""
        return self.prompt_tokens + self.output_tokens

    @property
    def mean_context(self) -> float:
        """Mean cache length over the generation: prompt + output / 2."""
        return self.prompt_tokens + self.output_tokens / 2.0


class Efficiency(BaseModel):
    """Achieved fraction of peak memory bandwidth (weight reads; KV reads by the attention kernels) and of
    peak FLOP/s (16-bit, 8-bit and 4-bit matmuls), and the all-reduce step latency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bandwidth: float = Field(default=BANDWIDTH_EFFICIENCY, gt=0, le=1, description="weight reads")
    kv_bandwidth: float = Field(default=KV_BANDWIDTH_EFFICIENCY, gt=0, le=1, description="KV-cache reads (attention)")
    compute: float = Field(default=COMPUTE_EFFICIENCY, gt=0, le=1)
    compute_8bit: float = Field(default=COMPUTE_EFFICIENCY_8BIT, gt=0, le=1)
    compute_4bit: float = Field(default=COMPUTE_EFFICIENCY_4BIT, gt=0, le=1)
    overlap_penalty: float = Field(default=OVERLAP_PENALTY, ge=0, le=1)
    allreduce_step_latency_s: float = Field(default=ALLREDUCE_STEP_LATENCY_S, ge=0, le=1e-2)

    def matmul_flops(self, accelerator, precision: str) -> float:
        """Achieved FLOP/s of the weight matmuls in ``precision``."""
        return accelerator.peak_flops(precision) * self.for_precision(precision)

    def for_precision(self, precision: str) -> float:
        """Compute efficiency of matmuls in ``precision`` (16-bit, 8-bit or 4-bit)."""
        b = PRECISION_BYTES[precision]
        return self.compute if b >= 2 else self.compute_8bit if b >= 1 else self.compute_4bit

    def attention_flops(self, accelerator) -> float:
        """Achieved FLOP/s of attention (QK^T and ·V), which engines run in 16-bit whatever the weights."""
        return accelerator.peak_flops("bf16") * self.compute


# ------------------------------------------------------------------------------------------------ shape features


def kv_elements_per_token(shape: ModelShape) -> float:
    """KV-cache elements per token of the whole model (GQA/MHA: 2·L·kv_heads·head_dim; MLA: L·(rank + rope))."""
    if shape.is_mla:
        return float(shape.layers * (shape.kv_lora_rank + shape.qk_rope_head_dim))
    return float(2 * shape.layers * shape.kv_heads * shape.head_dim)


def kv_elements_per_token_per_device(shape: ModelShape, tp: int) -> float:
    """KV elements per token one device holds at tensor-parallel degree ``tp`` (heads split, else replicated)."""
    if shape.is_mla:
        return kv_elements_per_token(shape)
    heads_per_device = math.ceil(shape.kv_heads / tp)
    return float(2 * shape.layers * heads_per_device * shape.head_dim)


def moe_experts_touched(experts: int, top_k: int, tokens: float) -> float:
    """Expected distinct experts per MoE layer that ``tokens`` tokens route to: E·(1 − (1 − k/E)^tokens).

    Each token picks k of E experts; with uniform routing an expert escapes one token with probability
    1 − k/E and all of them independently with (1 − k/E)^tokens (linearity of expectation over experts).
    For any routing distribution with the same mean load k/E per expert, sum_e 1 − (1 − p_e)^tokens is
    concave in p, so uniform routing touches the most experts: the bytes read are an upper bound.
    """
    if experts <= 1:
        return float(experts)
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


class ShapeNumbers(NamedTuple):
    """The per-shape numbers the serving features are built from (``shape_numbers``): param counts (floats
    as the features use them) and the attention/KV dimensions."""

    weight_params: float  # every parameter
    read_all: float  # every parameter but the untied input-embedding table
    moe_layers: int
    experts: int
    top_k: int
    expert_params: int  # params of one expert
    matmul_params: float
    is_mla: bool
    layer_count: int
    kv_heads: int
    head_dim: int
    kv_whole: float  # KV elements per token of the whole model
    attn_coef: float
    layers: float
    layer_width: float


@lru_cache(maxsize=2048)
def shape_numbers(shape: ModelShape) -> ShapeNumbers:
    """``ShapeNumbers`` of ``shape``, memoized (the shape is frozen; its param counts are pure functions of it)."""
    total = float(total_params(shape))
    read = total
    if not shape.tied_embeddings:
        read -= shape.vocab * shape.d_model
    return ShapeNumbers(
        weight_params=total, read_all=read, moe_layers=shape.moe_layers,
        experts=shape.experts, top_k=shape.top_k, expert_params=expert_params_per_layer(shape) if shape.is_moe else 0,
        matmul_params=matmul_params(shape), is_mla=shape.is_mla, layer_count=shape.layers,
        kv_heads=shape.kv_heads, head_dim=shape.head_dim,
        kv_whole=kv_elements_per_token(shape), attn_coef=4.0 * shape.layers * shape.d_attn,
        layers=float(shape.layers), layer_width=float(shape.layers * shape.d_model))


def _read(s: ShapeNumbers, tokens: float) -> float:
    read = s.read_all
    if s.experts > 1:
        untouched = s.experts - moe_experts_touched(s.experts, s.top_k, tokens)
        read -= s.moe_layers * untouched * s.expert_params
    return read


def params_read_per_step(shape: ModelShape, tokens: float) -> float:
    """Params a forward pass over ``tokens`` tokens reads from memory: all but the input-embedding table
    (untied) and the routed experts no token picked."""
    return _read(shape_numbers(shape), tokens)


def matmul_params(shape: ModelShape) -> float:
    """Params in the matmuls of one token: active non-embedding params plus the output head (vocab·d_model)."""
    return float(active_non_embedding_params(shape) + shape.vocab * shape.d_model)


def shape_features(shape: ModelShape, config: ServingConfig, workload: Workload) -> dict[str, float]:
    """The shape-dependent numbers the serving forms multiply (keys: ``FEATURES``); the per-shape counts come
    from ``shape_numbers`` (memoized)."""
    s = shape_numbers(shape)
    tp = config.tensor_parallel
    kv = s.kv_whole if s.is_mla else float(2 * s.layer_count * math.ceil(s.kv_heads / tp) * s.head_dim)
    return {
        "weight_params": s.weight_params,
        "read_params": _read(s, config.batch),
        "prefill_read_params": _read(s, workload.prompt_tokens),
        "matmul_params": s.matmul_params,
        "kv_elements": kv,
        "attn_coef": s.attn_coef,  # decode attention FLOPs per cached token
        "layers": s.layers,
        "layer_width": s.layer_width,
    }


def evaluate(form: LinearForm, features: dict[str, float]) -> float:
    """sum(constant · feature) over the form."""
    return float(sum(c * features[k] for k, c in form.items()))


# ------------------------------------------------------------------------------------------------ linear forms


def _scale(form: LinearForm, factor: float) -> LinearForm:
    return {k: v * factor for k, v in form.items()}


def _add(*forms: LinearForm) -> LinearForm:
    out: LinearForm = {}
    for f in forms:
        for k, v in f.items():
            out[k] = out.get(k, 0.0) + v
    return out


def allreduce_form(accelerator, tp: int, tokens: float, eff: Efficiency) -> LinearForm:
    """Seconds of tensor-parallel all-reduce in one forward pass over ``tokens`` tokens (0 when tp = 1)."""
    if tp == 1:
        return {}
    if accelerator.scaleup_bandwidth_gbs is None:
        raise ValueError(f"{accelerator.id} has no scale-up link in the catalog; serve it with tensor_parallel=1")
    one_way = accelerator.scaleup_bandwidth_gbs * 1e9 / 2.0
    steps = 2.0 * (tp - 1)
    per_layer_bytes = tokens * ACTIVATION_BYTES  # × d_model: carried by the layer_width feature
    return {
        "layers": ALLREDUCES_PER_LAYER * steps * eff.allreduce_step_latency_s,
        "layer_width": ALLREDUCES_PER_LAYER * steps / tp * per_layer_bytes / one_way,
    }


def decode_forms(accelerator, config: ServingConfig, workload: Workload, eff: Efficiency) -> dict[str, LinearForm]:
    """Seconds of one decode step in parts: ``memory``, ``compute`` and ``allreduce`` (see ``branch_forms``)."""
    t, b, c = config.tensor_parallel, config.batch, workload.mean_context
    bw = accelerator.memory_bandwidth_tbs * 1e12 * eff.bandwidth
    bw_kv = accelerator.memory_bandwidth_tbs * 1e12 * eff.kv_bandwidth
    mm, att = eff.matmul_flops(accelerator, config.precision), eff.attention_flops(accelerator)
    return {
        "memory": {"read_params": config.weight_bytes / (t * bw), "kv_elements": b * c * config.kv_bytes / bw_kv},
        "compute": {"matmul_params": 2.0 * b / (t * mm), "attn_coef": b * c / (t * att)},
        "allreduce": allreduce_form(accelerator, t, b, eff),
    }


def prefill_forms(accelerator, config: ServingConfig, workload: Workload, eff: Efficiency,
                  sequences: int = 1) -> dict[str, LinearForm]:
    """Seconds to prefill ``sequences`` prompts together: ``memory``, ``compute`` and ``allreduce`` parts."""
    t, p = config.tensor_parallel, workload.prompt_tokens
    bw = accelerator.memory_bandwidth_tbs * 1e12 * eff.bandwidth
    mm, att = eff.matmul_flops(accelerator, config.precision), eff.attention_flops(accelerator)
    tokens = sequences * p
    return {
        "memory": {"prefill_read_params": config.weight_bytes / (t * bw)},
        # causal attention: a prompt token attends to P/2 tokens on average -> attn_coef · P/2 per token
        "compute": {"matmul_params": 2.0 * tokens / (t * mm), "attn_coef": tokens * p / 2.0 / (t * att)},
        "allreduce": allreduce_form(accelerator, t, tokens, eff),
    }


def branch_forms(parts: dict[str, LinearForm], eff: Efficiency) -> dict[str, LinearForm]:
    """The two roofline branches of a step, each with the all-reduce: ``memory`` = m + θ·c + a and
    ``compute`` = c + θ·m + a (θ = ``eff.overlap_penalty``); the step time is the larger of the two,
    = max(m, c) + θ·min(m, c) + a."""
    th = eff.overlap_penalty
    m, c, a = parts["memory"], parts["compute"], parts["allreduce"]
    return {"memory": _add(m, _scale(c, th), a), "compute": _add(c, _scale(m, th), a)}


def decode_branch_forms(accelerator, config: ServingConfig, workload: Workload,
                        eff: Efficiency) -> dict[str, LinearForm]:
    """Seconds of one decode step on each branch (``branch_forms``); TPOT = the larger."""
    return branch_forms(decode_forms(accelerator, config, workload, eff), eff)


def prefill_branch_forms(accelerator, config: ServingConfig, workload: Workload, eff: Efficiency,
                         sequences: int = 1) -> dict[str, LinearForm]:
    """Seconds to prefill ``sequences`` prompts on each branch; TTFT (one prompt) = the larger."""
    return branch_forms(prefill_forms(accelerator, config, workload, eff, sequences), eff)


def memory_form(config: ServingConfig, workload: Workload) -> LinearForm:
    """Bytes per device: all weights / tp + batch · KV per token per device · (prompt + output)."""
    return {"weight_params": config.weight_bytes / config.tensor_parallel,
            "kv_elements": config.batch * workload.context * config.kv_bytes}


def usd_per_output_token_forms(accelerator, config: ServingConfig, workload: Workload, eff: Efficiency,
                               usd_per_device_hour: float) -> dict[str, LinearForm]:
    """$ per output token on each branch: cost = max(form["memory"], form["compute"]) (see
    ``branch_forms``), i.e. usd_per_device_hour / 3600 · tp · step / batch."""
    d = decode_branch_forms(accelerator, config, workload, eff)
    k = usd_per_device_hour / SECONDS_PER_HOUR * config.tensor_parallel / config.batch
    return {b: _scale(d[b], k) for b in ("memory", "compute")}


def usd_per_input_token_form(accelerator, config: ServingConfig, workload: Workload, eff: Efficiency,
                             usd_per_device_hour: float) -> LinearForm:
    """$ per input token: prefill compute + all-reduce device-seconds per prompt token × price / 3600."""
    p = prefill_forms(accelerator, config, workload, eff)
    k = usd_per_device_hour / SECONDS_PER_HOUR * config.tensor_parallel / workload.prompt_tokens
    return _scale(_add(p["compute"], p["allreduce"]), k)
