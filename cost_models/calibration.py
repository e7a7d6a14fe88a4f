"""The cluster model against published runs: predicted steady-state MFU and device-hours per run.

Runs and their reported hours are in ``calibration_runs.toml``; the cluster each trained on (devices, batch,
sequence length, vocabulary and the layout dimensions it reports) in ``calibration_layouts.toml``. The model
shape is rounded from the run's parameter count (the repository's shape conventions at the run's vocabulary);
undisclosed layout dimensions are chosen by the layout search. Hours = tokens / (tokens per second per device ×
devices × goodput). ``MATMUL_EFFICIENCY`` for ampere, hopper and tpu was fitted on the four steady-state MFUs
(LLaMA-65B, TinyLlama, Nemotron-4 15B, Gopher), so their errors are in-sample; the hours of every other run are
out of sample.
"""

from __future__ import annotations

import math
import statistics
import tomllib
from importlib import resources

from pydantic import BaseModel, ConfigDict

from cost_models.architecture import ModelShape
from cost_models.catalog import load_catalog
from cost_models.cluster import Hardware
from cost_models.layout_search import best_layout
from cost_models.throughput import DEFAULT_GOODPUT, CalibrationRun, load_calibration_runs


class RunLayout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    gpus: int
    gpus_status: str
    batch_tokens: float
    batch_status: str = "reported"
    seq_len: int
    vocab: int
    tp: int | None = None
    pp: int | None = None
    zero_stage: int | None = None
    experts: int = 1
    top_k: int = 1
    shape: dict | None = None
    note: str = ""


class ClusterCalibrationRow(BaseModel):
    """Predicted vs reported for one run."""

    model_config = ConfigDict(frozen=True)

    name: str
    accelerator: str
    gpus: int
    gpus_status: str
    layout: str
    predicted_mfu: float
    reported_mfu: float | None
    mfu_kind: str | None
    predicted_gpu_hours: float
    reported_gpu_hours: float
    hours_status: str

    @property
    def hours_ratio(self) -> float:
        return self.predicted_gpu_hours / self.reported_gpu_hours

    @property
    def mfu_ratio(self) -> float | None:
        return None if self.reported_mfu is None else self.predicted_mfu / self.reported_mfu


def load_layouts() -> dict[str, RunLayout]:
    text = resources.files("cost_models").joinpath("calibration_layouts.toml").read_text(encoding="utf-8")
    return {r["name"]: RunLayout.model_validate(r) for r in tomllib.loads(text)["run"]}


def predict(run: CalibrationRun, lay: RunLayout, goodput: float = DEFAULT_GOODPUT) -> ClusterCalibrationRow:
    """The cluster model's MFU and device-hours for one published run."""
    from planner.rounding import fit_shape  # shapes follow the planner's conventions

    acc = load_catalog().get(run.accelerator)
    precision = "bf16" if "bf16" in acc.peak_tflops else "fp16"
    count = "active" if lay.experts > 1 else "total"
    if lay.shape is not None:  # the run's published shape
        shape = ModelShape(**lay.shape)
    else:
        shape = fit_shape(run.params, count=count, experts=lay.experts, top_k=lay.top_k, seq_len=lay.seq_len,
                          vocab=lay.vocab).shape
    hw = Hardware.of(acc, precision)
    est, _ = best_layout(shape, hw, batch_tokens=lay.batch_tokens, devices=lay.gpus, tp=lay.tp, pp=lay.pp,
                         zero_stage=lay.zero_stage)
    if est is None:
        raise ValueError(f"{run.name}: no layout fits {lay.gpus} x {acc.id}")
    # MFU on the run's own basis: 6·N·D with the run's N (the rounded shape is within 3% of it)
    mfu = 6.0 * run.params * est.tokens_per_second_per_device / hw.peak
    hours = run.tokens / (est.tokens_per_second_per_device * goodput) / 3600.0
    return ClusterCalibrationRow(
        name=run.name, accelerator=acc.id, gpus=lay.gpus, gpus_status=lay.gpus_status, layout=est.layout.label(),
        predicted_mfu=mfu, reported_mfu=run.mfu, mfu_kind=run.mfu_kind, predicted_gpu_hours=hours,
        reported_gpu_hours=run.gpu_hours, hours_status=run.gpu_hours_status,
    )


def calibrate_cluster(goodput: float = DEFAULT_GOODPUT) -> list[ClusterCalibrationRow]:
    """One row per run that has a cluster in ``calibration_layouts.toml``."""
    layouts = load_layouts()
    return [predict(r, layouts[r.name], goodput) for r in load_calibration_runs() if r.name in layouts]


def median_abs_log(values: list[float]) -> float:
    return statistics.median(abs(math.log(v)) for v in values)
