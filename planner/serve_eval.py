"""``planner serve-cost``: price serving one model with the serving model (cost_models.serving).

Given devices per replica (``gpus`` = the tensor-parallel degree) and a batch, it evaluates that
configuration; given a TPOT limit instead of a batch, it takes the largest batch that fits and meets it;
given neither, the largest batch that fits. Without ``gpus`` the tensor-parallel degree is chosen as well
(``planner.serving.choose_serving``). Every figure is at the calibrated efficiencies, and so is the price.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from cost_models.architecture import ModelShape, total_params
from cost_models.serving import DEFAULT_MAX_BATCH, ServingConfig
from cost_models.serving_point import fewest_devices, max_batch_in_memory, serving_point, tp_degrees
from planner.errors import InputError
from planner.request import Request
from planner.serving import ServingDemand, ServingSummary, choose_serving, rounded_shape, split_context, summarize

Precision = Literal["bf16", "fp8", "fp4"]


class ServeRequest(Request):
    """A serving setup to price: a model (params or shape), devices per replica, batch or latency limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: float | None = Field(default=None, gt=0, le=1e16, allow_inf_nan=False,
                                 description="total parameters (a shape is rounded from it)")
    shape: ModelShape | None = None
    gpu: str = "h100"
    gpus: int | None = Field(default=None, ge=1, le=1_000_000, description="devices per replica (TP degree)")
    batch: int | None = Field(default=None, ge=1, le=1_000_000)
    tpot_ms: float | None = Field(default=None, gt=0, le=1e6, allow_inf_nan=False)
    ttft_ms: float | None = Field(default=None, gt=0, le=1e7, allow_inf_nan=False)
    context: int | None = Field(default=None, ge=2, le=20_000_000, description="prompt + output tokens")
    prompt_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    output_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    tokens: float | None = Field(default=None, gt=0, le=1e18, allow_inf_nan=False, description="output tokens")
    input_tokens: float | None = Field(default=None, ge=0, le=1e19, allow_inf_nan=False)
    precision: Precision = "bf16"
    kv_precision: Precision | None = None
    price: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False, description="USD per device-hour")
    price_tier: Literal["hyperscaler", "gpu_cloud", "committed"] | None = None
    max_batch: int = Field(default=DEFAULT_MAX_BATCH, ge=1, le=1_000_000)
    experts: int = Field(default=1, ge=1, le=1024, description="routed experts (with params: an MoE shape)")
    top_k: int = Field(default=1, ge=1, le=1024, description="experts per token (with params)")
    catalog: tuple[str, ...] = ()


class ServeEstimate(ServingSummary):
    """What serving costs: the plan-facing summary plus the model and memory details."""

    context: int
    total_params: float
    memory_per_gpu_gb: float
    usable_memory_per_gpu_gb: float
    kv_cache_gb_per_token: float
    decode_bound: str
    bandwidth_efficiency: float
    compute_efficiency: float
    price_usd_per_gpu_hour: float
    shape: dict[str, Any]
    notes: list[str] = Field(default_factory=list)


def _lengths(req: ServeRequest) -> tuple[int, int]:
    if req.context is None:
        return req.prompt_tokens or 1024, req.output_tokens or 256
    if req.prompt_tokens is not None and req.output_tokens is not None:
        if req.prompt_tokens + req.output_tokens != req.context:
            raise InputError("context", f"{req.context} differs from prompt + output tokens "
                                        f"({req.prompt_tokens} + {req.output_tokens}); give two of the three")
        return req.prompt_tokens, req.output_tokens
    if req.prompt_tokens is not None or req.output_tokens is not None:
        given = req.prompt_tokens if req.prompt_tokens is not None else req.output_tokens
        if given >= req.context:
            raise InputError("context", f"must exceed the prompt or output tokens given ({given}), got {req.context}")
        other = req.context - given
        return (given, other) if req.prompt_tokens is not None else (other, given)
    return split_context(req.context, req.tokens, req.input_tokens)


def estimate_serving(req: ServeRequest) -> ServeEstimate:
    """Price serving: the configuration (given or chosen), its latencies, throughput and $ per million tokens."""
    from planner.evaluate import _accelerator, _check_precision, _price

    if req.batch is not None and req.tpot_ms is not None:
        raise InputError("batch", "give --batch or --tpot-ms, not both")
    acc = _accelerator(req.gpu, req.catalog)
    _check_precision(acc, req.precision)
    notes: list[str] = []
    shape = req.shape
    if shape is None:
        if req.params is None:
            raise InputError("params", "give --params or a model shape (--shape or --layers/--d-model/...)")
        if req.top_k > req.experts:
            raise InputError("top_k", f"cannot exceed --experts ({req.experts}), got {req.top_k}")
        shape = rounded_shape(req.params, experts=req.experts)
        if req.experts > 1:  # total params do not depend on top_k: route k experts per token
            shape = shape.model_copy(update={"top_k": req.top_k})
        notes.append(f"shape rounded from --params: {shape.layers} layers × d_model {shape.d_model}"
                     + (f", {shape.experts} experts (top-{shape.top_k})" if shape.is_moe else ""))
    prompt, output = _lengths(req)
    demand = ServingDemand(tokens=req.tokens, input_tokens=req.input_tokens, prompt_tokens=prompt,
                           output_tokens=output, tpot_ms=req.tpot_ms, ttft_ms=req.ttft_ms)
    work = demand.workload
    price, _ = _price(acc, req.price, req.price_tier)
    need = fewest_devices(shape, acc, req.precision, req.kv_precision, work)
    degrees = tp_degrees(shape, acc)
    if req.gpus is not None and req.gpus not in degrees:
        raise InputError("gpus", f"{req.gpus} devices cannot split {shape.heads} heads / {shape.kv_heads} KV heads "
                                 f"by tensor parallelism on {acc.id}; allowed: {degrees}")
    fitting = [t for t in degrees if need is not None and t >= need]
    if need is None or (req.gpus or max(degrees)) < need or not fitting:
        where = f"--gpus {req.gpus}" if req.gpus else f"a {max(degrees)}-device tensor-parallel replica"
        raise InputError("gpus", f"the model plus one sequence's KV cache ({prompt + output} tokens) does not fit "
                                 f"on {where} × {acc.id}; it needs at least "
                                 f"{need if need is not None else 'more than 10,000,000'} devices")
    if req.batch is not None:
        cfg = ServingConfig(tensor_parallel=req.gpus or min(fitting), batch=req.batch, precision=req.precision,
                            kv_precision=req.kv_precision)
        b_mem = max_batch_in_memory(shape, acc, cfg, work)
        if req.batch > b_mem:
            raise InputError("batch", f"at most {b_mem} sequences of {prompt + output} tokens fit on "
                                      f"{cfg.tensor_parallel} × {acc.id}, got {req.batch}")
        pt = serving_point(shape, acc, cfg, work, price)
        binding = ["given"]
    else:
        choice = choose_serving(shape, acc, demand, precision=req.precision, kv_precision=req.kv_precision,
                                price=price, tensor_parallel=req.gpus, max_batch=req.max_batch)
        cfg, pt, binding = choice.config, choice.point, choice.binding
    if req.ttft_ms is not None and pt.ttft_s * 1e3 > req.ttft_ms:
        notes.append(f"TTFT {pt.ttft_s * 1e3:.3g} ms exceeds --ttft-ms {req.ttft_ms:g}")
    summary = summarize(pt, demand, binding)
    return ServeEstimate(
        **summary.model_dump(), context=prompt + output, total_params=float(total_params(shape)),
        memory_per_gpu_gb=pt.memory_per_device_bytes / 1e9, usable_memory_per_gpu_gb=pt.memory_usable_bytes / 1e9,
        kv_cache_gb_per_token=pt.kv_bytes_per_token / 1e9, decode_bound=pt.decode_bound,
        bandwidth_efficiency=pt.bandwidth_efficiency, compute_efficiency=pt.compute_efficiency,
        price_usd_per_gpu_hour=price, shape=shape.model_dump(), notes=notes,
    )
