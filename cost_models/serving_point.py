"""Evaluate a serving configuration on a concrete shape (``cost_models.serving`` forms summed for the shape),
and size it: tensor-parallel degrees, the largest batch in memory, the fewest devices that hold a model.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import ModelShape, total_params
from cost_models.serving import (
    PRECISION_BYTES,
    SECONDS_PER_HOUR,
    USABLE_MEMORY_FRACTION,
    Efficiency,
    ServingConfig,
    Workload,
    decode_branch_forms,
    decode_forms,
    evaluate,
    kv_elements_per_token,
    kv_elements_per_token_per_device,
    memory_form,
    prefill_branch_forms,
    prefill_forms,
    shape_features,
)

# ------------------------------------------------------------------------------------------------ evaluation


class ServingPoint(BaseModel):
    """A serving configuration evaluated on one shape. Times in seconds, memory in bytes, money in USD."""

    model_config = ConfigDict(frozen=True)

    accelerator: str
    tensor_parallel: int
    batch: int
    precision: str
    kv_precision: str
    prompt_tokens: int
    output_tokens: int
    weight_bytes: float = Field(description="all weights (all experts), bytes")
    kv_bytes_per_token: float = Field(description="KV cache per token of the whole model, bytes")
    kv_bytes_per_token_per_device: float
    memory_per_device_bytes: float
    memory_usable_bytes: float = Field(description="device memory × USABLE_MEMORY_FRACTION")
    fits: bool
    decode_memory_s: float
    decode_compute_s: float
    decode_allreduce_s: float
    decode_bound: Literal["memory", "compute"]
    tpot_s: float = Field(description="decode step time = time per output token")
    ttft_s: float = Field(description="prefill of one prompt alone")
    prefill_s_per_token: float = Field(description="device-seconds per input token (compute + all-reduce)")
    tokens_per_second_per_device: float = Field(description="output tokens/s per device")
    input_tokens_per_second_per_device: float
    usd_per_device_hour: float
    usd_per_million_output_tokens: float
    usd_per_million_input_tokens: float
    bandwidth_efficiency: float
    compute_efficiency: float = Field(description="of the matmul dtype's peak")


def serving_point(shape: ModelShape, accelerator, config: ServingConfig, workload: Workload,
                  usd_per_device_hour: float, eff: Efficiency | None = None) -> ServingPoint:
    """Evaluate ``config`` for ``shape`` on ``accelerator``: times, memory fit, throughput, $ per M tokens."""
    eff = eff or Efficiency()
    f = shape_features(shape, config, workload)
    d = {k: evaluate(v, f) for k, v in decode_forms(accelerator, config, workload, eff).items()}
    p = {k: evaluate(v, f) for k, v in prefill_forms(accelerator, config, workload, eff).items()}
    step = max(evaluate(v, f) for v in decode_branch_forms(accelerator, config, workload, eff).values())
    ttft = max(evaluate(v, f) for v in prefill_branch_forms(accelerator, config, workload, eff).values())
    t = config.tensor_parallel
    s_in = t * (p["compute"] + p["allreduce"]) / workload.prompt_tokens  # device-seconds per input token
    tps_dev = config.batch / step / t
    mem = evaluate(memory_form(config, workload), f)
    usable = USABLE_MEMORY_FRACTION * accelerator.memory_bytes
    per_m = usd_per_device_hour / SECONDS_PER_HOUR * 1e6
    return ServingPoint(
        accelerator=accelerator.id, tensor_parallel=t, batch=config.batch, precision=config.precision,
        kv_precision=config.kv_precision or config.precision, prompt_tokens=workload.prompt_tokens,
        output_tokens=workload.output_tokens, weight_bytes=f["weight_params"] * config.weight_bytes,
        kv_bytes_per_token=kv_elements_per_token(shape) * config.kv_bytes,
        kv_bytes_per_token_per_device=f["kv_elements"] * config.kv_bytes, memory_per_device_bytes=mem,
        memory_usable_bytes=usable, fits=mem <= usable, decode_memory_s=d["memory"], decode_compute_s=d["compute"],
        decode_allreduce_s=d["allreduce"], decode_bound="compute" if d["compute"] > d["memory"] else "memory",
        tpot_s=step, ttft_s=ttft, prefill_s_per_token=s_in, tokens_per_second_per_device=tps_dev,
        input_tokens_per_second_per_device=1.0 / s_in, usd_per_device_hour=usd_per_device_hour,
        usd_per_million_output_tokens=per_m / tps_dev, usd_per_million_input_tokens=per_m * s_in,
        bandwidth_efficiency=eff.bandwidth,
        compute_efficiency=eff.for_precision(config.precision),
    )


def static_batch_throughput(shape: ModelShape, accelerator, config: ServingConfig, workload: Workload,
                            eff: Efficiency | None = None) -> float:
    """Output tokens/s per device when ``batch`` requests are prefilled together then decoded to the end
    (how TensorRT-LLM's gptSessionBenchmark measures): batch · output / (tp · (prefill + output · step))."""
    eff = eff or Efficiency()
    f = shape_features(shape, config, workload)
    step = max(evaluate(v, f) for v in decode_branch_forms(accelerator, config, workload, eff).values())
    prefill = max(evaluate(v, f) for v in prefill_branch_forms(accelerator, config, workload, eff,
                                                               config.batch).values())
    return config.batch * workload.output_tokens / (config.tensor_parallel * (prefill + workload.output_tokens * step))


# ------------------------------------------------------------------------------------------------ sizing


def tp_degrees(shape: ModelShape, accelerator) -> list[int]:
    """Tensor-parallel degrees 1..devices per node that split the heads evenly (and need a scale-up link)."""
    top = accelerator.devices_per_node if accelerator.scaleup_bandwidth_gbs is not None else 1
    kv = shape.kv_heads
    return [t for t in range(1, top + 1)
            if shape.heads % t == 0 and (shape.is_mla or kv % t == 0 or t % kv == 0)]


def max_batch_in_memory(shape: ModelShape, accelerator, config: ServingConfig, workload: Workload) -> int:
    """Largest whole batch whose weights + KV cache at the final context fit (0 if not even one)."""
    f = shape_features(shape, config, workload)
    usable = USABLE_MEMORY_FRACTION * accelerator.memory_bytes
    free = usable - f["weight_params"] * config.weight_bytes / config.tensor_parallel
    per_seq = f["kv_elements"] * config.kv_bytes * workload.context
    return max(0, math.floor(free / per_seq))


def fewest_devices(shape: ModelShape, accelerator, precision: str, kv_precision: str | None,
                   workload: Workload, limit: int = 10_000_000) -> int | None:
    """Fewest devices whose usable memory holds the weights plus one sequence's KV cache at the final context
    (weights and KV heads split evenly, KV heads replicated below one per device); None past ``limit``."""
    usable = USABLE_MEMORY_FRACTION * accelerator.memory_bytes
    w = total_params(shape) * PRECISION_BYTES[precision]
    kvb = PRECISION_BYTES[kv_precision or precision] * workload.context

    def fits(k: int) -> bool:
        return w / k + kv_elements_per_token_per_device(shape, k) * kvb <= usable

    if not fits(limit):
        return None
    lo, hi = 1, limit  # memory per device is non-increasing in k: bisect for the first k that fits
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
