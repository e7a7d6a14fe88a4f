"""Evaluate a given training run or serving setup with the cost models (``planner cost`` / ``serve-cost``).

The planner's program optimizes; these functions only price what the user specifies: FLOPs (6ND, or
Kaplan counting with attention when a shape is given), wall-clock, GPU-hours, dollars, energy and memory
per device, and for serving the prefill/decode roofline and $ per million tokens.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from cost_models.architecture import ModelShape
from cost_models.catalog import Accelerator, CatalogError, load_catalog
from planner.errors import InputError
from planner.request import input_error
from planner.run_cost import RunEstimate, RunRequest
from planner.run_cost import estimate_run as _estimate_run

__all__ = ["RunEstimate", "RunRequest", "ServeEstimate", "ServeRequest", "estimate_run", "estimate_serving",
           "load_shape", "parse"]

SIZING_DAYS = 30.0


def _num(gt: float = 0, le: float | None = None, doc: str = "") -> Any:
    return Field(default=None, gt=gt, le=le, allow_inf_nan=False, description=doc)


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


# Serving lives in planner.serve_eval (the serving model is cost_models.serving); re-exported here.
from planner.serve_eval import ServeEstimate, ServeRequest, estimate_serving  # noqa: E402
