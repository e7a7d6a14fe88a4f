"""Training time helpers: goodput, energy, and the published runs used to calibrate the cluster model.

Throughput itself (step time, MFU) is predicted by the cluster model (``cost_models.cluster``) from the
parallel layout; this module keeps what sits around it.

``goodput`` is the fraction of paid device-hours that make progress (restarts, failures, evaluation, ramp-up).
Default 0.90: TinyLlama implied/reported MFU 51%/56% = 0.91 (its README's 56% steady-state MFU against
16 GPUs × 90 days); Dubey et al. 2024 (Llama 3) report more than 90% effective training time
(recalled, not re-verified).

Energy: kWh = devices × TDP × power utilisation × hours × PUE / 1000, defaults power utilisation 0.70
(StarCoderBase: 280 W average on 400 W A100s, Li et al. 2023 §5.7) and PUE 1.2 (an estimate: Google reports
a ~1.1 fleet average, industry surveys ~1.5; 1.2 is a modern colocation figure).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cost_models.training import gpu_hours, training_flops

SECONDS_PER_HOUR = 3600.0

DEFAULT_GOODPUT = 0.90
DEFAULT_POWER_UTILIZATION = 0.70
DEFAULT_PUE = 1.2


def wall_clock_hours(flops, devices, peak_flops_per_s, mfu, goodput=DEFAULT_GOODPUT):
    """Hours on ``devices`` devices at mfu × goodput × peak FLOP/s each (a monomial)."""
    return flops / (devices * peak_flops_per_s * mfu * goodput * SECONDS_PER_HOUR)


def device_hours(flops, peak_flops_per_s, mfu, goodput=DEFAULT_GOODPUT):
    """Device-hours (GPU-hours) to run ``flops``, restarts and downtime included via ``goodput``."""
    return gpu_hours(flops, peak_flops_per_s, mfu * goodput)


def energy_kwh(devices, tdp_w, hours, utilization=DEFAULT_POWER_UTILIZATION, pue=DEFAULT_PUE):
    """kWh = devices × TDP (W) × power utilisation × hours × PUE / 1000."""
    return devices * tdp_w * utilization * hours * pue / 1000.0


# ---------------------------------------------------------------------------------------------------------
# Calibration against published runs (data in calibration_runs.toml)


class CalibrationRun(BaseModel):
    """One published training run with its reported (or derivable) device-hours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: float = Field(gt=0, description="active params used for 6ND")
    total_params: float | None = Field(default=None, gt=0)
    tokens: float = Field(gt=0)
    accelerator: str = Field(description="catalog id (tpu-v3 is not in the catalog)")
    peak_tflops: float = Field(gt=0, description="dense bf16/fp16 peak used for MFU (runs.md §0)")
    gpu_hours: float = Field(gt=0)
    gpu_hours_status: str
    moe: bool = False
    flops_reported: float | None = Field(default=None, gt=0)
    mfu: float | None = Field(default=None, gt=0, le=1)
    mfu_kind: Literal["steady-state", "implied"] | None = None
    mfu_basis: Literal["6nd", "reported"] = "6nd"
    mfu_source: str = ""
    source: str
    status: str
    notes: str = ""

    @property
    def flops_6nd(self) -> float:
        return training_flops(self.params, self.tokens)


def load_calibration_runs(path: str | Path | None = None) -> list[CalibrationRun]:
    """Runs from ``calibration_runs.toml`` (package data) or from ``path``."""
    if path is None:
        text = resources.files("cost_models").joinpath("calibration_runs.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return [CalibrationRun.model_validate(row) for row in tomllib.loads(text)["run"]]
