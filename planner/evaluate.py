"""Evaluate a given training run or serving setup with the cost models (``planner cost`` / ``serve-cost``).

The planner's program optimizes; these functions only price what the user specifies: FLOPs (6ND, or
Kaplan counting with attention when a shape is given), wall-clock, GPU-hours, dollars, energy and memory
per device, and for serving the prefill/decode roofline and $ per million tokens.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cost_models.architecture import ModelShape, total_params
from cost_models.catalog import Accelerator, CatalogError, load_catalog
from cost_models.inference import estimate_inference
from planner.errors import InputError
from planner.request import Request, input_error
from planner.run_cost import RunEstimate, RunRequest
from planner.run_cost import estimate_run as _estimate_run

__all__ = ["RunEstimate", "RunRequest", "estimate_run", "estimate_serving", "load_shape", "parse"]

SIZING_DAYS = 30.0
_WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}


def _num(gt: float = 0, le: float | None = None, doc: str = "") -> Any:
    return Field(default=None, gt=gt, le=le, allow_inf_nan=False, description=doc)


class ServeRequest(Request):
    """A serving setup to price: a model (params or shape) on ``gpus`` devices at a fixed batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: float | None = _num(le=1e16, doc="total parameters (a shape is rounded from it)")
    shape: ModelShape | None = None
    gpu: str = "h100"
    gpus: int = Field(default=1, ge=1, le=1_000_000)
    batch: int = Field(default=1, ge=1, le=1_000_000)
    prompt_tokens: int = Field(default=1024, ge=1, le=10_000_000)
    output_tokens: int = Field(default=256, ge=1, le=10_000_000)
    precision: Literal["bf16", "fp8", "fp4"] = "bf16"
    price: float | None = _num(le=1000, doc="USD per device-hour")
    price_tier: Literal["hyperscaler", "gpu_cloud", "committed"] | None = None
    catalog: tuple[str, ...] = ()


def parse(model: type[BaseModel], **fields: Any) -> Any:
    """Validate ``fields`` into ``model``; InputError naming the field and range otherwise."""
    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        raise input_error(e) from None


def load_shape(path: str | Path) -> ModelShape:
    """A ModelShape from a TOML or JSON file of its fields (parsed as data only)."""
    from planner.safe_io import MAX_SHAPE_FILE, read_text_limited

    p = Path(path)
    text = read_text_limited(p, "shape", MAX_SHAPE_FILE)
    try:
        if p.suffix == ".json":
            import json

            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (ValueError, RecursionError) as e:
        raise InputError("shape", f"{path}: not valid {'JSON' if p.suffix == '.json' else 'TOML'} ({e})") from None
    if not isinstance(data, dict):
        raise InputError("shape", f"{path}: expected a table of ModelShape fields")
    try:
        return ModelShape(**data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "shape"
        raise InputError("shape", f"{path}: {loc}: {err['msg'].removeprefix('Value error, ')}") from None
    except (TypeError, ValueError, ArithmeticError) as e:  # e.g. heads = 0 in the defaults' d_model // heads
        raise InputError("shape", f"{path}: {e}") from None


def shape_from_options(layers: int | None, d_model: int | None, heads: int | None = None,
                       kv_heads: int | None = None, ffn_hidden: int | None = None, vocab: int | None = None,
                       experts: int = 1, top_k: int = 1, seq_len: int = 4096) -> ModelShape | None:
    """A ModelShape from command-line sizes; None when neither layers nor d_model is given.

    Defaults: head_dim 128 (heads = d_model/128), SwiGLU width 8/3·d_model rounded up to 256, vocab 128256
    (Llama 3 tokenizer).
    """
    if layers is None and d_model is None:
        return None
    if layers is None or d_model is None:
        raise InputError("layers" if layers is None else "d_model", "give both --layers and --d-model")
    heads = heads or max(d_model // 128, 1)
    ffn = ffn_hidden or int(math.ceil(8 * d_model / 3 / 256) * 256)
    try:
        return ModelShape(layers=layers, d_model=d_model, heads=heads, kv_heads=kv_heads, ffn_hidden=ffn,
                          vocab=vocab or 128256, experts=experts, top_k=top_k, seq_len=seq_len)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "shape"
        raise InputError("shape", f"{loc}: {err['msg'].removeprefix('Value error, ')}") from None


def _accelerator(gpu: str, catalog: tuple[str, ...]) -> Accelerator:
    try:
        return load_catalog(catalog).get(gpu)
    except CatalogError as e:
        raise InputError("catalog" if e.field == "catalog" else "gpu", str(e)) from None


def _price(acc: Accelerator, price: float | None, tier: str | None) -> tuple[float, str]:
    if price:
        return price, "given"
    try:
        entry = acc.price(tier)
    except CatalogError as e:
        raise InputError("price_tier", str(e)) from None
    return entry.usd_per_hour, f"{acc.id} {entry.tier}: {entry.source} ({entry.date}, {entry.status})"


def _check_precision(acc: Accelerator, precision: str) -> None:
    try:
        acc.peak_flops(precision)
    except CatalogError as e:
        raise InputError("precision", str(e)) from None


def estimate_run(req: RunRequest) -> RunEstimate:
    """Price one training run on the cluster model (``planner.run_cost``): shape, accelerator and price resolved
    here; a params-only MoE run is rounded to an MoE shape (experts, top_k), never priced as dense."""
    acc = _accelerator(req.gpu, req.catalog)
    precision = req.precision
    if precision == "native":
        precision = "bf16" if "bf16" in acc.peak_tflops or "fp16" not in acc.peak_tflops else "fp16"
    _check_precision(acc, precision)
    shape = req.shape
    if shape is None:
        if req.params is None:
            raise InputError("params", "give --params or a model shape (--shape or --layers/--d-model/...)")
        from planner.rounding import fit_shape

        count = "active" if req.experts > 1 else "total"
        shape = fit_shape(req.params, count=count, experts=req.experts, top_k=min(req.top_k, req.experts),
                          seq_len=req.seq_len).shape
    price, price_source = _price(acc, req.price, req.price_tier)
    est = _estimate_run(req, shape, acc, precision, price, price_source)
    if req.params is not None and req.shape is not None and abs(req.params / est.params - 1) > 0.02:
        est = est.model_copy(update={"notes": est.notes + [
            f"--params {req.params:.4g} differs from the shape's {est.params:.4g} active params; using the shape"]})
    return est


class ServeEstimate(BaseModel):
    """Roofline serving estimate plus the shape it was computed for."""

    model_config = ConfigDict(frozen=True)

    gpu: str
    gpus: int
    precision: str
    total_params: float
    shape: dict[str, Any]
    estimate: dict[str, Any]
    usd_per_million_output_tokens: float
    usd_per_million_input_tokens: float
    decode_tokens_per_s_per_gpu: float
    fits: bool
    notes: list[str] = Field(default_factory=list)


def estimate_serving(req: ServeRequest) -> ServeEstimate:
    """Price serving one model: prefill/decode roofline, KV cache, memory fit, $ per million tokens."""
    acc = _accelerator(req.gpu, req.catalog)
    _check_precision(acc, req.precision)
    notes: list[str] = []
    shape = req.shape
    if shape is None:
        if req.params is None:
            raise InputError("params", "give --params or a model shape (--shape or --layers/--d-model/...)")
        from planner.rounding import round_shape

        shape = round_shape(req.params)
        notes.append(f"shape rounded from --params: {shape.layers} layers × d_model {shape.d_model}")
    price, _ = _price(acc, req.price, req.price_tier)
    est = estimate_inference(shape, acc, devices=req.gpus, batch=req.batch, prompt_tokens=req.prompt_tokens,
                             output_tokens=req.output_tokens, bytes_per_param=_WEIGHT_BYTES[req.precision],
                             dtype=req.precision, usd_per_hour=price)
    if not est.fits:
        notes.append(f"does not fit: needs {est.memory_needed_bytes / 1e9:.1f} GB, has "
                     f"{est.memory_available_bytes / 1e9:.1f} GB; add devices or lower the batch/context")
    return ServeEstimate(
        gpu=acc.id, gpus=req.gpus, precision=req.precision, total_params=float(total_params(shape)),
        shape=shape.model_dump(), estimate=est.model_dump(),
        usd_per_million_output_tokens=est.usd_per_million_output_tokens,
        usd_per_million_input_tokens=est.usd_per_million_input_tokens,
        decode_tokens_per_s_per_gpu=est.decode_tokens_per_s_per_device, fits=est.fits, notes=notes,
    )
