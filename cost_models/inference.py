"""Roofline primitives (plain numbers or cvxpy expressions): FLOPs, bytes, times, memory fit, $/M tokens.

The serving model that ``serve-cost``, the chooser and the program use is ``cost_models.serving`` (TP
all-reduce, KV per device, calibrated efficiencies); these are the generic pieces it shares.

Roofline: a step takes max(FLOPs / peak FLOP/s, bytes moved / memory bandwidth). Model-parallel devices
are assumed to split FLOPs, weights and KV cache evenly, with communication not modelled.

FLOPs (Kaplan et al. 2020 Table 1 counting, forward only; N = active non-embedding params):
- prefill of a P-token prompt: 2N + 2·L·P·d_attn per token (= QKᵀ and ·V, 4·L·d_attn per attended token,
  over the causal average of P/2 attended tokens);
- decode with c tokens in the cache: 2N + 4·L·c·d_attn per generated token.
Bytes per decode step: all weights read once (MoE: the experts the batch touches) plus every sequence's KV
cache read once. KV cache per token = 2 (K and V) · layers · kv_heads · head_dim · bytes per element (GQA);
MLA caches the latent instead: layers · (kv_lora_rank + qk_rope_head_dim) · bytes.

Throughput and cost: the roofline is an upper bound. ``efficiency`` (achieved / roofline throughput) turns
it into a planning figure; default ``DEFAULT_EFFICIENCY`` = 0.5 is an estimate (memory-bandwidth
utilisation of good decode kernels is ~60–80% of peak, and a serving fleet does not run at full batch all
the time). $ per million tokens = usd_per_device_hour / (tokens/s/device × efficiency × 3600) × 1e6.

The FLOPs, KV-cache, ``compute_time_s``, ``memory_time_s`` and ``usd_per_million_tokens`` formulas use only
``+ * / **`` (posynomials), so the planner can bound a time variable by the compute and the memory term
separately; ``decode_step_time_s``/``prefill_time_s`` (their maximum), ``max_batch`` (a difference) and
``moe_params_read_per_step`` are for plain numbers.
"""

from __future__ import annotations

import numpy as np

from cost_models.architecture import ModelShape, expert_params_per_layer, total_params
from cost_models.serving import kv_elements_per_token, moe_experts_touched

SECONDS_PER_HOUR = 3600.0
DEFAULT_EFFICIENCY = 0.5


def kv_cache_bytes_per_token(layers, kv_heads, head_dim, bytes_per_elem=2.0):
    """KV-cache bytes per token: 2 (K and V) × layers × kv_heads × head_dim × bytes per element."""
    return 2.0 * layers * kv_heads * head_dim * bytes_per_elem


def kv_cache_bytes_per_token_for_shape(shape: ModelShape, bytes_per_elem=2.0) -> float:
    """KV-cache bytes per token of ``shape`` (GQA-aware; MLA caches its compressed latent + RoPE key)."""
    return kv_elements_per_token(shape) * bytes_per_elem


def weight_bytes(params, bytes_per_param=2.0):
    """Bytes of weights: params × bytes per param (bf16 2, fp8 1, int4 0.5)."""
    return params * bytes_per_param


def prefill_flops_per_token(params, n_layer, prompt_tokens, d_attn):
    """Forward FLOPs per prompt token: 2N + 2·n_layer·prompt_tokens·d_attn (Kaplan's C_forward)."""
    return 2.0 * params + 2.0 * n_layer * prompt_tokens * d_attn


def decode_flops_per_token(params, n_layer, context, d_attn):
    """Forward FLOPs for one generated token with ``context`` tokens cached: 2N + 4·n_layer·context·d_attn."""
    return 2.0 * params + 4.0 * n_layer * context * d_attn


def compute_time_s(flops, devices, peak_flops_per_s):
    """Seconds to execute ``flops`` at the devices' peak (the compute roof)."""
    return flops / (devices * peak_flops_per_s)


def memory_time_s(bytes_moved, devices, bandwidth_bytes_per_s):
    """Seconds to move ``bytes_moved`` through HBM at peak bandwidth (the memory roof)."""
    return bytes_moved / (devices * bandwidth_bytes_per_s)


def decode_step_time_s(batch, flops_per_token, weight_bytes_read, kv_bytes_read, devices, peak_flops_per_s,
                       bandwidth_bytes_per_s):
    """One decode step for ``batch`` sequences: max(compute, memory) seconds (roofline).

    ``kv_bytes_read`` is the KV cache of the whole batch (bytes per token × context × batch).
    """
    compute = compute_time_s(batch * flops_per_token, devices, peak_flops_per_s)
    memory = memory_time_s(weight_bytes_read + kv_bytes_read, devices, bandwidth_bytes_per_s)
    return np.maximum(compute, memory)


def prefill_time_s(prompt_tokens_total, flops_per_token, weight_bytes_read, devices, peak_flops_per_s,
                   bandwidth_bytes_per_s):
    """Prefill of ``prompt_tokens_total`` tokens (batch × prompt): max(compute, weight read) seconds."""
    compute = compute_time_s(prompt_tokens_total * flops_per_token, devices, peak_flops_per_s)
    memory = memory_time_s(weight_bytes_read, devices, bandwidth_bytes_per_s)
    return np.maximum(compute, memory)


def usd_per_million_tokens(usd_per_device_hour, tokens_per_s_per_device, efficiency=DEFAULT_EFFICIENCY):
    """Dollars per 1e6 tokens at ``tokens_per_s_per_device`` (roofline) × ``efficiency``."""
    return usd_per_device_hour / (tokens_per_s_per_device * efficiency * SECONDS_PER_HOUR) * 1e6


def kv_cache_fits(weight_bytes_total, kv_bytes_per_token, batch, context, memory_bytes_per_device, devices):
    """Whether weights + KV cache (batch × context tokens) fit in devices × memory."""
    return weight_bytes_total + kv_bytes_per_token * batch * context <= memory_bytes_per_device * devices


def max_batch(weight_bytes_total, kv_bytes_per_token, context, memory_bytes_per_device, devices):
    """Largest batch (real-valued) whose KV cache at ``context`` tokens fits beside the weights."""
    return (memory_bytes_per_device * devices - weight_bytes_total) / (kv_bytes_per_token * context)


def moe_params_read_per_step(shape: ModelShape, batch) -> float:
    """Params a decode step reads from HBM: everything except the routed experts no token in the batch
    picked (``cost_models.serving.moe_experts_touched``); the embedding table counted as read."""
    if not shape.is_moe:
        return float(total_params(shape))
    untouched = shape.experts - moe_experts_touched(shape.experts, shape.top_k, batch)
    return float(total_params(shape)) - shape.moe_layers * untouched * expert_params_per_layer(shape)
