"""Calibrate the serving model's two efficiencies on published throughputs and latencies.

Data: ``serving_calibration.toml`` (package data; every row cites its page and date). Each row is predicted
with ``cost_models.serving`` at trial efficiencies; the fit minimizes the sum of absolute log errors over a
grid of (bandwidth, compute) efficiencies in steps of 0.01. ``docs/serving.md`` prints the table.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import ModelShape
from cost_models.catalog import load_catalog
from cost_models.serving import Efficiency, ServingConfig, Workload, shape_features
from cost_models.serving_point import serving_point, static_batch_throughput

# Published model configurations (Hugging Face config.json of each checkpoint; Touvron et al. 2023 Table 1
# for Llama 2, Dubey et al. 2024 Table 3 for Llama 3.1).
SHAPES: dict[str, ModelShape] = {
    "llama2-7b": ModelShape(layers=32, d_model=4096, heads=32, ffn_hidden=11008, vocab=32000),
    "llama2-70b": ModelShape(layers=80, d_model=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000),
    "llama3.1-8b": ModelShape(layers=32, d_model=4096, heads=32, kv_heads=8, ffn_hidden=14336, vocab=128256),
    "llama3-70b": ModelShape(layers=80, d_model=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=128256),
}


class CalibrationPoint(BaseModel):
    """One published serving measurement (see the TOML header for the kinds and units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["throughput", "max_load", "tpot", "ttft"]
    model: str
    gpu: str
    tp: int = Field(ge=1)
    batch: int = Field(ge=0, description="0: not published (max_load: predicted from memory)")
    prompt_tokens: int = Field(ge=1)
    output_tokens: int = Field(ge=1)
    precision: Literal["bf16", "fp8", "fp4"]
    kv_precision: Literal["bf16", "fp8", "fp4"]
    published: float = Field(gt=0)
    reported: Literal["per_gpu", "total"] = "per_gpu"
    held_out: bool = Field(default=False, description="a validation point: not used by the fit")
    engine: str
    source: str
    date: str

    @property
    def unit(self) -> str:
        return "tokens/s/GPU" if self.kind in ("throughput", "max_load") else "ms"

    @property
    def published_per_gpu(self) -> float:
        """The published value, per GPU for throughputs reported for all ``tp`` GPUs."""
        return self.published / self.tp if self.reported == "total" else self.published


# trtllm-bench defaults quoted on the perf-overview page: KV cache in 0.90 of the memory left after the
# weights, CUDA-graph batch sizes up to 8192.
KV_FREE_FRACTION = 0.90
MAX_LOAD_BATCH = 8192


def max_load_throughput(shape: ModelShape, accelerator, config: ServingConfig, workload: Workload,
                        eff: Efficiency | None = None) -> float:
    """Output tokens/s per GPU of an engine kept full (in-flight batching at maximum load): the batch is the
    sequences whose KV cache at the mean length fits in ``KV_FREE_FRACTION`` of the memory left after the
    weights (at most ``MAX_LOAD_BATCH``); each request costs output · tp · step / batch + prompt · (device-
    seconds per input token) device-seconds -- the serving model's price per token, inverted."""
    f = shape_features(shape, config, workload)
    free = KV_FREE_FRACTION * (accelerator.memory_bytes - f["weight_params"] * config.weight_bytes
                               / config.tensor_parallel)
    batch = min(MAX_LOAD_BATCH, math.floor(free / (f["kv_elements"] * config.kv_bytes * workload.mean_context)))
    pt = serving_point(shape, accelerator, config.model_copy(update={"batch": max(batch, 1)}), workload, 1.0, eff)
    s_out = config.tensor_parallel * pt.tpot_s / pt.batch
    o, p = workload.output_tokens, workload.prompt_tokens
    return o / (o * s_out + p * pt.prefill_s_per_token)


def load_points(held_out: bool = False) -> list[CalibrationPoint]:
    """The fitted rows of ``serving_calibration.toml``, or with ``held_out`` the validation rows."""
    text = resources.files("cost_models").joinpath("serving_calibration.toml").read_text(encoding="utf-8")
    rows = [CalibrationPoint(**row) for row in tomllib.loads(text)["point"]]
    return [r for r in rows if r.held_out == held_out]


def predict(point: CalibrationPoint, eff: Efficiency | None = None) -> float:
    """The serving model's value for ``point`` (tokens/s per GPU or milliseconds)."""
    acc = load_catalog().get(point.gpu)
    shape = SHAPES[point.model]
    cfg = ServingConfig(tensor_parallel=point.tp, batch=max(point.batch, 1), precision=point.precision,
                        kv_precision=point.kv_precision)
    work = Workload(prompt_tokens=point.prompt_tokens, output_tokens=point.output_tokens)
    if point.kind == "throughput":
        return static_batch_throughput(shape, acc, cfg, work, eff)
    if point.kind == "max_load":
        return max_load_throughput(shape, acc, cfg, work, eff)
    sp = serving_point(shape, acc, cfg, work, 1.0, eff)
    return 1e3 * (sp.tpot_s if point.kind == "tpot" else sp.ttft_s)


def log_errors(points: list[CalibrationPoint], eff: Efficiency | None = None) -> list[float]:
    """ln(predicted / published) per point, with the sign flipped for latencies so that > 0 means the
    model is optimistic (too fast) for every kind."""
    out = []
    for p in points:
        e = math.log(predict(p, eff) / p.published_per_gpu)
        out.append(e if p.unit != "ms" else -e)
    return out


def fit_efficiencies(points: list[CalibrationPoint] | None = None, step: float = 0.01,
                     start: Efficiency | None = None) -> Efficiency:
    """Weight-read and KV-read bandwidth, 16/8/4-bit compute efficiencies and the overlap penalty on a ``step``
    grid minimizing the sum of absolute log errors (robust to outliers). Coordinate descent: each in turn over
    the whole grid, until no change."""
    points = load_points() if points is None else points
    grid = [round(step * i, 6) for i in range(int(0.2 / step), int(1.0 / step) + 1)]
    penalty_grid = [round(step * i, 6) for i in range(int(1.0 / step) + 1)]
    start = start or Efficiency()
    names = ("bandwidth", "kv_bandwidth", "compute", "compute_8bit", "compute_4bit", "overlap_penalty")
    cur = {k: getattr(start, k) for k in names}

    def loss(values: dict[str, float]) -> float:
        return sum(abs(e) for e in log_errors(points, Efficiency(**values)))

    for _ in range(10):
        before = dict(cur)
        for name in cur:
            values = penalty_grid if name == "overlap_penalty" else grid
            cur[name] = min(values, key=lambda v: (loss({**cur, name: v}), v))
        if cur == before:
            break
    return Efficiency(**cur)
