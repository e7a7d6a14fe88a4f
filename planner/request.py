"""PlanRequest: what the user asks for, validated at the boundary (pydantic)."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from laws.catalog import DEFAULT_LAW
from planner.errors import InputError

HOURS_PER_DAY = 24.0  # the one conversion between the days users give and the hours the planner computes in


def days_to_hours(days: float) -> float:
    return days * HOURS_PER_DAY


def hours_to_days(hours: float) -> float:
    return hours / HOURS_PER_DAY


# Allowed ranges, quoted in error messages. FLOPs: 1e32 is ~1e6x the largest run to date (~5e26); 1e12 FLOPs is
# a 1e3-parameter model on 1.7e8 tokens. The floors (MINIMUM) keep every derived hour, dollar and device count
# finite: a subnormal MFU (5e-324) or budget (1e-308) would otherwise give "inf h, $inf".
ALLOWED: dict[str, str] = {
    "budget_flops": "a number of FLOPs in [1e12, 1e32]",
    "dollars": "US dollars in [1, 1e13]",
    "gpu_hours": "device-hours in [0.01, 1e12]",
    "deadline_days": "days in [1/24 (one hour), 3650]",
    "max_gpus": "a whole number of devices in [1, 10,000,000]",
    "mfu": "a fraction in [0.001, 1]",
    "price": "US dollars per device-hour in [0.001, 1000]",
    "min_params": "parameters in [1e3, 1e16]",
    "max_params": "parameters in [1e3, 1e16]",
    "min_tokens": "tokens in [1e3, 1e17]",
    "max_tokens": "tokens in [1e3, 1e17]",
    "sizing_days": "days in [1/24, 3650]",
    "bytes_per_param": "bytes in [0.5, 64]",
    "precision": "native, bf16, fp16, fp8, fp4 or any",
    "objective": "loss, cost or time",
    "target_loss": "nats/token in [0.01, 20]",
    "inference_tokens": "tokens served over the model's life in [1, 1e18]",
    "goodput": "a fraction in [0.01, 1]",
    "gpu": "an accelerator id, a comma-separated list of ids, or any (at most 200 characters)",
    "law": "a law id or a law .toml file path (at most 4096 characters)",
    "inference_input_tokens": "prompt tokens in [0, 1e19]",
    "context": "tokens per request in [2, 10,000,000]",
    "tpot_ms": "milliseconds in (0, 1e6]",
    "ttft_ms": "milliseconds in (0, 1e7]",
    "serve_gpu": "an accelerator id (planner gpus)",
    "serve_precision": "bf16, fp8 or fp4",
    "seq_len": "tokens per sequence in [1, 1,048,576]",
    "tensor_parallel": "devices in [1, 64]",
    "min_step_seconds": "seconds in [0.001, 3600]",
    "tokens": "tokens in [1, 1e17]",
    "params": "parameters in [1, 1e16]",
    "gpus": "a whole number of devices in [1, 10,000,000]",
    "batch": "a whole number of sequences in [1, 1,000,000]",
    "prompt_tokens": "tokens in [1, 10,000,000]",
    "output_tokens": "tokens in [1, 10,000,000]",
    "zero_stage": "0, 1, 2 or 3",
    "recompute": "none, selective or full",
    "pipeline_parallel": "devices in [1, 1024]",
    "price_tier": "hyperscaler, gpu_cloud or committed",
    "lr_law": "steplaw-2025, deepseek-2024 or joint-moe-2025",
    "experts": "a whole number of experts in [1, 1024]",
    "max_experts": "a whole number of experts in [2, 1024]",
    "unique_tokens": "unique tokens available in [1e6, 1e17]",
    "max_epochs": "epochs in [1, 1000]",
    "robust": "mean or worst",
    "confidence": "a share in (0, 1]",
}


# Floors applied to every request model's field of that name (the fields themselves say only "> 0").
MINIMUM: dict[str, float] = {
    "budget_flops": 1e12, "dollars": 1.0, "gpu_hours": 0.01, "mfu": 1e-3, "price": 1e-3, "bytes_per_param": 0.5,
    "target_loss": 0.01, "inference_tokens": 1.0, "goodput": 0.01, "min_step_seconds": 1e-3, "tokens": 1.0,
    "params": 1.0,
}
# Longest text per field (characters): an id is short; a path is at most PATH_MAX.
MAX_TEXT: dict[str, int] = {"gpu": 200, "law": 4096, "catalog": 4096, "price_tier": 40, "precision": 40}


def _admits_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    return any(_admits_bool(a) for a in get_args(annotation))


def _numeric(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    if get_origin(annotation) is Literal:
        return all(isinstance(a, int | float) and not isinstance(a, bool) for a in get_args(annotation))
    return any(_numeric(a) for a in get_args(annotation) if a is not type(None))


class Request(BaseModel):
    """Base of the request models (PlanRequest, RunRequest, ServeRequest).

    Constructing one with a bad field raises InputError (a ValueError naming the field and its allowed range),
    never a raw pydantic ValidationError. Numbers must be numbers: ``True`` is not 1 dollar. Fields named in
    MINIMUM are floored there; text fields named in MAX_TEXT are bounded in length.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, /, **data: Any) -> None:
        _check_raw(type(self), data)
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise input_error(e, type(self)) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 (pydantic's)
        if isinstance(obj, dict):
            _check_raw(cls, obj)
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as e:
            raise input_error(e, cls) from None

    @model_validator(mode="after")
    def _floors(self) -> Request:
        for name, lo in MINIMUM.items():
            v = getattr(self, name, None)
            if isinstance(v, int | float) and v < lo:
                raise ValueError(f"{name}: must be {ALLOWED.get(name, f'at least {lo:g}')} (got {v:g})")
        for name, n in MAX_TEXT.items():
            v = getattr(self, name, None)
            for text in (v if isinstance(v, tuple) else (v,)):
                if isinstance(text, str) and len(text) > n:
                    raise ValueError(f"{name}: must be {ALLOWED.get(name, f'at most {n} characters')} "
                                     f"(got {len(text):,} characters)")
        return self


def _check_raw(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Refuse a bool for a numeric field (pydantic would read True as 1)."""
    for name, value in data.items():
        info = model.model_fields.get(name)
        if isinstance(value, bool) and info is not None and _numeric(info.annotation) \
                and not _admits_bool(info.annotation):
            raise InputError(name, f"must be {ALLOWED.get(name, 'a number')} (got {value!r}, not a number)")


def _f(gt: float | None = None, ge: float | None = None, le: float | None = None, doc: str = "") -> Any:
    return Field(default=None, gt=gt, ge=ge, le=le, allow_inf_nan=False, description=doc)


class PlanRequest(Request):
    """Limits, hardware and law for one plan. At least one limit must bound total compute."""

    budget_flops: float | None = _f(gt=0, le=1e32, doc="training FLOPs limit (6·N·D)")
    dollars: float | None = _f(gt=0, le=1e13, doc="training dollars limit, USD")
    gpu_hours: float | None = _f(gt=0, le=1e12, doc="device-hours limit")
    deadline_days: float | None = _f(ge=1 / 24, le=3650, doc="wall-clock limit, days")
    max_gpus: int | None = Field(default=None, ge=1, le=10_000_000, description="most devices at once")
    gpu: str = Field(default="h100", min_length=1, description="accelerator id, comma-separated ids, or 'any'")
    law: str = Field(default=DEFAULT_LAW, min_length=1, description="law id (planner laws) or law .toml file")
    mfu: float | None = _f(gt=0, le=1, doc="model FLOPs utilization; default from the throughput model")
    price: float | None = _f(gt=0, le=1000, doc="USD per device-hour; default from the catalog")
    price_tier: Literal["hyperscaler", "gpu_cloud", "committed"] | None = None
    precision: Literal["native", "bf16", "fp16", "fp8", "fp4", "any"] = Field(
        default="native", description="training precision: native (bf16, or fp16 where there is no bf16), a dtype, "
        "or any (bf16/fp16/fp8; fp4 only when asked for)")
    objective: Literal["loss", "cost", "time"] = "loss"
    target_loss: float | None = _f(gt=0, le=20, doc="loss to reach (objectives cost and time)")
    inference_tokens: float | None = _f(gt=0, le=1e18, doc="tokens served over the model's life")
    inference_input_tokens: float | None = _f(ge=0, le=1e19, doc="prompt tokens served over the model's life "
                                              "(default: inference_tokens × prompt/output of the context)")
    context: int | None = Field(default=None, ge=2, le=10_000_000, description="prompt + output tokens per request "
                                "(default 1,280: 1,024 + 256)")
    tpot_ms: float | None = _f(gt=0, le=1e6, doc="serving target: time per output token, ms")
    ttft_ms: float | None = _f(gt=0, le=1e7, doc="serving target: time to first token, ms")
    serve_gpu: str | None = Field(default=None, min_length=1, description="serving accelerator (default: training)")
    serve_precision: Literal["bf16", "fp8", "fp4"] = Field(default="bf16", description="serving weights and KV dtype")
    goodput: float | None = _f(gt=0, le=1, doc="fraction of paid device-hours that make progress")
    batch_coupling: bool | None = Field(
        default=None, description="couple batch size, critical batch and devices in the program; "
        "default: on when a deadline is given or the objective is time",
    )
    seq_len: int = Field(default=4096, ge=1, le=1_048_576, description="training sequence length, tokens")
    tensor_parallel: int | None = Field(
        default=None, ge=1, le=64, description="tensor-parallel degree; default min(8, devices per node)"
    )
    min_step_seconds: float | None = _f(gt=0, le=3600, doc="floor on one optimizer step's wall-clock")
    catalog: tuple[str, ...] = Field(default=(), description="extra accelerator catalog TOML files")
    min_params: float | None = _f(ge=1e3, le=1e16, doc="lower bound on parameters")
    max_params: float | None = _f(ge=1e3, le=1e16, doc="upper bound on parameters")
    min_tokens: float | None = _f(ge=1e3, le=1e17, doc="lower bound on training tokens")
    max_tokens: float | None = _f(ge=1e3, le=1e17, doc="upper bound on training tokens")
    check_memory: bool = Field(default=True, description="require optimizer states to fit in device memory")
    bytes_per_param: float = Field(default=16.0, gt=0, le=64, allow_inf_nan=False)
    sizing_days: float = Field(default=30.0, ge=1 / 24, le=3650, allow_inf_nan=False)
    lr_law: Literal["steplaw-2025", "deepseek-2024", "joint-moe-2025"] | None = Field(
        default=None, description="law for the peak learning rate; default steplaw-2025 (joint-moe-2025 for MoE)"
    )
    moe: bool | None = Field(
        default=None, description="True: also consider mixture-of-experts models (expert counts enumerated); "
        "False: dense only; default dense unless experts is given"
    )
    experts: int | None = Field(default=None, ge=1, le=1024, description="fix the number of experts (top-1)")
    max_experts: int = Field(default=64, ge=2, le=1024, description="largest expert count enumerated with moe")
    unique_tokens: float | None = _f(ge=1e6, le=1e17, doc="unique training tokens available (data-constrained)")
    max_epochs: float = Field(default=64.0, ge=1, le=1000, allow_inf_nan=False,
                              description="most epochs over the unique tokens considered")
    # robust plans (planner.robust_plan): the loss over the law's coefficient samples instead of its point value
    robust: Literal["mean", "worst"] | None = Field(
        default=None, description="minimize the sample-mean loss (mean) or the largest loss over the central "
        "`confidence` share of the law's samples (worst); needs a law with bootstrap or published uncertainty")
    confidence: float = Field(default=0.9, gt=0, le=1, allow_inf_nan=False,
                              description="central share of samples for robust worst and the reported intervals")

    @model_validator(mode="after")
    def _bounded(self) -> PlanRequest:
        if self.objective != "loss" and self.target_loss is None:
            raise ValueError(f"target_loss: objective {self.objective!r} needs target_loss (the loss to reach)")
        if self.objective == "loss" and self.target_loss is not None:
            raise ValueError("target_loss: applies to objectives cost and time; with objective loss use a limit")
        if self.robust is None and "confidence" in self.model_fields_set and self.confidence != 0.9:
            raise ValueError("confidence: applies to robust plans; give robust (--robust mean|worst) as well")
        if self.objective == "time" and not self.max_gpus:
            raise ValueError("max_gpus: objective time needs max_gpus (unlimited devices have no minimum wall-clock)")
        if self.price is not None and (self.gpu == "any" or "," in self.gpu):
            raise ValueError("price: applies to one accelerator; with several use price_tier or a catalog file")
        if self.objective == "loss" and not (
            self.budget_flops
            or self.dollars
            or self.gpu_hours
            or (self.deadline_days and self.max_gpus)
            or (self.max_params and self.max_tokens)
        ):
            raise ValueError(
                "no limit given: set at least one of budget_flops, dollars, gpu_hours, "
                "or both deadline_days and max_gpus"
            )
        if self.moe is False and self.experts is not None and self.experts > 1:
            raise ValueError("experts: a dense plan (moe off) has 1 expert; drop experts or allow MoE")
        if self.lr_law == "joint-moe-2025" and not self.is_moe:
            raise ValueError("lr_law: joint-moe-2025 is the MoE learning-rate law; use it with moe or experts")
        serving = ("inference_input_tokens", "context", "tpot_ms", "ttft_ms", "serve_gpu")
        if self.inference_tokens is None and any(getattr(self, f) is not None for f in serving):
            field = next(f for f in serving if getattr(self, f) is not None)
            raise ValueError(f"{field}: applies to serving demand; give inference_tokens (--inference-tokens) too")
        if self.unique_tokens is not None and self.is_moe:
            raise ValueError("unique_tokens: data-constrained plans are dense only (no law joins repetition and MoE)")
        for lo, hi in (("min_params", "max_params"), ("min_tokens", "max_tokens")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{lo}: {lo} ({a:g}) is above {hi} ({b:g})")
        return self

    @property
    def deadline_hours(self) -> float | None:
        """``deadline_days`` in hours (None without a deadline)."""
        return None if self.deadline_days is None else days_to_hours(self.deadline_days)

    @property
    def sizing_hours(self) -> float:
        """``sizing_days`` in hours."""
        return days_to_hours(self.sizing_days)

    @property
    def is_moe(self) -> bool:
        """The Joint MoE law plans this request: moe on, or experts given (E = 1 then is its dense point)."""
        return self.moe is True or (self.moe is None and self.experts is not None)

    @classmethod
    def parse(cls, **fields: Any) -> PlanRequest:
        """Validate ``fields``; raise InputError with a one-line message naming the field and its range."""
        return cls(**{k: v for k, v in fields.items() if v is not None})


def input_error(e: ValidationError, model: type[BaseModel] | None = None) -> InputError:
    """The first pydantic error as a one-line InputError (``model``: the request model, default PlanRequest)."""
    model = model or PlanRequest
    err = e.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else "request"
    if field == "request" or not err["loc"]:
        msg = err["msg"].removeprefix("Value error, ")
        head, sep, rest = msg.partition(": ")
        if sep and head in model.model_fields:
            return InputError(head, rest)
        return InputError("limits" if msg.startswith("no limit") else "request", msg)
    got = err.get("input")
    if isinstance(got, float) and math.isnan(got):
        got_s = "nan"
    else:
        got_s = repr(got)
    allowed = ALLOWED.get(field)
    if allowed:
        return InputError(field, f"must be {allowed} (got {got_s})")
    return InputError(field, f"{err['msg'].removeprefix('Value error, ').lower()} (got {got_s})")
