"""Plan: the chosen allocation, what it costs, what binds and what each limit is worth."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from cost_models.architecture import ModelShape
from cost_models.cluster import Layout

# the layout's fields as they appear, flat, in the JSON of a cluster (the object's "layout" is the label)
_LAYOUT_KEYS = ("tp", "pp", "micro_batch", "recompute", "zero_stage", "ep")


class ServingSummary(BaseModel):
    """A serving configuration's figures as a plan reports them (the ``inference`` object). Tokens are output
    tokens unless named input; money in USD; latencies in ms."""

    model_config = ConfigDict(frozen=True)

    tokens: float | None = Field(description="output tokens served (None: price only)")
    input_tokens: float | None
    cost_usd: float | None = Field(description="tokens · $/output token + input_tokens · $/input token")
    usd_per_million_tokens: float = Field(description="$ per million output tokens")
    usd_per_million_input_tokens: float
    gpu: str
    gpus: int = Field(description="devices per replica (= tensor_parallel)")
    batch: int
    tensor_parallel: int
    precision: str
    kv_precision: str
    tokens_per_second_per_gpu: float = Field(description="output tokens/s per device")
    tpot_ms: float
    ttft_ms: float
    binding: list[str] = Field(description="what limits the batch: memory, tpot, max_batch, given; ttft")
    prompt_tokens: int
    output_tokens: int
    gpu_hours: float | None = Field(description="device-hours to serve the tokens (cost_usd / price)")
    gpu_seconds_per_token: float = Field(description="device-seconds per output token: $/M = price · this / 3600 · 1e6")
    gpu_seconds_per_input_token: float = Field(description="device-seconds per input token")


class ConstraintReport(BaseModel):
    """One named constraint at the optimum.

    ``elasticity`` is −d ln(objective) / d ln(limit) from the geometric program's dual value (for lower
    bounds, +d ln(objective)/d ln(limit)); ``objective_change_per_10pct`` is the predicted change of the
    objective (loss, dollars or hours) if the limit is raised by 10% (negative = it falls).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    limit: float
    value: float
    unit: str
    sense: str = Field(description="'<=' for limits, '>=' for lower bounds")
    slack: float = Field(description="relative slack at the reported plan, 0 = tight")
    elasticity: float
    objective_change_per_10pct: float
    binding: bool


InferenceCost = ServingSummary  # the serving fleet a plan reports (name kept for the public API)


class Alternative(BaseModel):
    """Another discrete choice that was solved (accelerator × precision) and how it scored."""

    model_config = ConfigDict(frozen=True)

    gpu: str
    precision: str
    experts: int = 1
    epochs: float | None = None
    feasible: bool
    objective_value: float
    loss: float
    cost_usd: float
    hours: float


class RoundedPlan(BaseModel):
    """The continuous optimum rounded to a concrete model and cluster, re-evaluated with the same laws.

    ``limits`` maps each user limit to (limit, value after rounding); rounding to whole layers, widths,
    devices and sequences can move a value slightly past its limit, and this says by how much.
    """

    model_config = ConfigDict(frozen=True)

    params: float = Field(description="the rounded shape's count of the kind the law uses")
    params_counted_as: str
    total_params: float
    active_params: float
    shape_rel_error: float
    tokens: float
    batch_tokens: float
    steps: int
    loss: float
    flops: float
    gpus: int
    hours: float
    gpu_hours: float
    cost_usd: float
    memory_per_gpu_gb: float
    memory_fits: bool
    limits: dict[str, tuple[float, float]]


class ClusterPlan(BaseModel):
    """Where a run goes: one layout (``cost_models.cluster.Layout``) on whole devices, and its batch.

    devices = tp · pp · dp; dp ranks each run ``grad_accum_steps`` micro-batches of ``layout.micro_batch``
    sequences per optimizer step. JSON: the layout's fields flat (tp, pp, ep, micro_batch, recompute,
    zero_stage), ``layout`` its label.
    """

    model_config = ConfigDict(frozen=True)

    layout: Layout
    dp: int = Field(ge=1, description="data parallel degree")
    devices: int = Field(ge=1, description="devices used = tp · pp · dp")
    nodes: int = Field(ge=1)
    devices_per_node: int = Field(ge=1)
    grad_accum_steps: int = Field(ge=0, description="micro-batches per step per data-parallel rank")
    global_batch_sequences: int = Field(ge=1, description="sequences per optimizer step")
    global_batch_tokens: int = Field(ge=1, description="tokens per optimizer step")

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, data: Any) -> Any:
        """Accept the JSON form: the layout's fields flat and ``layout`` as its label."""
        if isinstance(data, dict) and not isinstance(data.get("layout"), Layout | dict):
            data = dict(data)
            data["layout"] = {k: data.pop(k) for k in _LAYOUT_KEYS if k in data}
            data.pop("sequence_parallel", None)
            data.pop("pipeline_bubble", None)
        return data

    @model_validator(mode="after")
    def _whole(self) -> ClusterPlan:
        if self.devices != self.layout.tp * self.layout.pp * self.dp:
            raise ValueError(f"devices ({self.devices}) must equal tp·pp·dp = {self.layout.tp}·{self.layout.pp}·"
                             f"{self.dp}")
        return self

    @property
    def tp(self) -> int:
        return self.layout.tp

    @property
    def pp(self) -> int:
        return self.layout.pp

    @property
    def ep(self) -> int:
        return self.layout.ep

    @property
    def micro_batch(self) -> int:
        return self.layout.micro_batch

    @property
    def sequence_parallel(self) -> bool:
        """Sequence parallel whenever tensor parallel (Megatron-LM practice; Korthikanti et al. 2022)."""
        return self.layout.tp > 1

    @property
    def pipeline_bubble(self) -> float:
        """1F1B idle fraction (pp − 1) / micro-batches per step (Narayanan et al. 2021 §2.2)."""
        return (self.pp - 1) / self.grad_accum_steps if self.grad_accum_steps else 0.0

    @property
    def nproc_per_node(self) -> int:
        """Processes (devices) per node: the cluster fills whole nodes, or one partial node."""
        whole = self.nodes and self.devices % self.nodes == 0
        return self.devices // self.nodes if whole else min(self.devices_per_node, self.devices)

    def _flat(self) -> dict[str, Any]:
        lay = self.layout
        return {"tp": lay.tp, "pp": lay.pp, "dp": self.dp, "ep": lay.ep, "devices": self.devices,
                "nodes": self.nodes, "devices_per_node": self.devices_per_node, "micro_batch": lay.micro_batch,
                "grad_accum_steps": self.grad_accum_steps, "global_batch_sequences": self.global_batch_sequences,
                "global_batch_tokens": self.global_batch_tokens, "sequence_parallel": self.sequence_parallel,
                "recompute": lay.recompute, "zero_stage": lay.zero_stage}

    @model_serializer(mode="plain")
    def _serialize(self) -> dict[str, Any]:
        return {**self._flat(), "pipeline_bubble": self.pipeline_bubble, "layout": self.layout.label()}


class ParallelismPlan(ClusterPlan):
    """A cluster with what the cluster model (``cost_models.cluster``) predicts for it: MFU, step seconds by
    cause, memory per device (GB, 1e9 bytes) of the most loaded rank."""

    mfu: float = Field(description="model FLOPs (6·N_active per token) / (devices × step × peak)")
    step_seconds: float
    step_breakdown: dict[str, float] = Field(description="seconds per step: compute, recompute, tp_comm, "
                                                         "ep_comm, pp_bubble, dp_comm")
    memory_per_device_gb: float
    usable_memory_gb: float
    memory_breakdown_gb: dict[str, float]
    fits: bool

    @model_serializer(mode="plain")
    def _serialize(self) -> dict[str, Any]:
        return {**self._flat(), "pipeline_bubble": self.pipeline_bubble, "mfu": self.mfu,
                "step_seconds": self.step_seconds, "step_breakdown": dict(self.step_breakdown),
                "memory_per_device_gb": self.memory_per_device_gb, "usable_memory_gb": self.usable_memory_gb,
                "memory_breakdown_gb": dict(self.memory_breakdown_gb), "fits": self.fits,
                "layout": self.layout.label()}


class LossDistribution(BaseModel):
    """The loss of one (params, tokens) across the law's coefficient samples: median and central interval.

    Units: nats/token; ``tokens`` are the tokens the law sees (a plan's effective tokens).
    """

    model_config = ConfigDict(frozen=True)

    params: float
    tokens: float
    loss_point: float = Field(description="loss under the law's point coefficients")
    median: float
    interval: tuple[float, float] = Field(description="central `confidence` interval over the samples")
    mean: float
    worst_central: float = Field(description="largest loss over the central `confidence` share of samples")


class RobustReport(BaseModel):
    """A robust plan (``robust`` mean or worst) next to the point-estimate plan of the same request.

    ``robust`` and ``point`` are the loss distributions of the two launchable plans over the same samples;
    ``cost_of_robustness`` is the robust plan's median loss minus the point plan's (what robustness costs in
    the typical case), ``worst_gain`` the point plan's central worst loss minus the robust plan's.
    """

    model_config = ConfigDict(frozen=True)

    mode: str = Field(description="mean: sample-mean loss; worst: largest loss over the central share")
    confidence: float
    n_samples: int
    samples_source: str
    objective_value: float = Field(description="the robust loss of the robust plan (nats/token)")
    robust: LossDistribution
    point: LossDistribution
    point_plan: dict[str, float] = Field(description="the point-estimate plan: params, tokens, gpus, hours, "
                                         "cost_usd, loss")
    cost_of_robustness: float
    worst_gain: float
    program_terms: int = Field(description="monomials (mean) or epigraph constraints (worst) in the program")
    compression_error: float = Field(description="largest relative error of the program's robust loss vs all "
                                     "samples on N in [1e5, 1e15], D in [1e6, 1e17] (worst: before cuts)")
    cutting_planes: int = Field(default=0, description="samples added after checking all central samples")
    program_optimum: dict[str, float] = Field(default_factory=dict, description="the robust program's continuous "
                                              "optimum: params, tokens (effective), objective_value (robust loss); "
                                              "point_objective_value: the robust loss at the point plan's optimum")


class Plan(BaseModel):
    """A training plan. Units: params and tokens are counts, flops FLOP, hours wall-clock, usd dollars."""

    model_config = ConfigDict(frozen=True)

    objective: str = "loss"
    objective_value: float
    target_loss: float | None = None
    law: str
    law_citation: str
    params: float
    tokens: float
    tokens_per_param: float
    effective_tokens: float = Field(description="tokens the loss law sees; tokens − effective = batch overhead")
    batch_tokens: float
    batch_sequences: float
    seq_len: int
    steps: float
    critical_batch_tokens: float = Field(description="Kaplan B_crit at the plan's loss")
    batch_coupling: bool = Field(description="batch, critical batch and devices were chosen jointly")
    law_batch_tokens: float = Field(description="the batch law's optimal batch at this plan (batch_law)")
    batch_law: str
    learning_rate: float = Field(description="peak learning rate from lr_law at the rounded model and tokens")
    min_learning_rate: float = Field(description="final learning rate of the schedule")
    lr_schedule: str = Field(description="linear warmup, then this decay to min_learning_rate")
    warmup_steps: int
    lr_law: str
    unique_tokens: float | None = Field(default=None, description="unique tokens available (data-constrained)")
    epochs: float | None = Field(default=None, description="tokens / unique_tokens (data-constrained plans)")
    tensor_parallel: int
    flops: float
    loss: float
    loss_ci: tuple[float, float] | None = Field(default=None, description="95% interval from bootstrap samples")
    gpu: str
    gpu_name: str
    precision: str
    peak_flops_per_gpu: float
    mfu: float
    mfu_source: str
    goodput: float = Field(description="fraction of paid device-hours that make progress")
    price_usd_per_gpu_hour: float
    price_source: str
    gpus: int
    hours: float
    days: float
    gpu_hours: float
    cost_usd: float = Field(description="training dollars")
    total_cost_usd: float = Field(description="training + serving dollars")
    energy_kwh: float | None = None
    memory_per_gpu_gb: float
    inference: ServingSummary | None = Field(default=None, description="the serving fleet and its cost "
                                             "(planner.serving): devices per replica, batch, $/M tokens, latency")
    binding: list[str]
    shadow_prices: dict[str, float] = Field(description="objective change per +10% of each limit")
    shadow_price_unit: str
    constraints: list[ConstraintReport]
    solver: str
    status: str
    notes: list[str] = Field(default_factory=list)
    alternatives: list[Alternative] = Field(default_factory=list)
    total_params: float = Field(description="total params of the rounded model")
    active_params: float = Field(description="active params of the rounded model (= total when dense)")
    experts: int = 1
    top_k: int = 1
    shape: ModelShape = Field(description="the rounded model")
    parallelism: ParallelismPlan = Field(description="the cluster: TP/PP/DP/EP, nodes, micro-batches, recompute, "
                                         "ZeRO stage, predicted mfu, step breakdown, memory per device")
    step_seconds: float = Field(default=0.0, description="one optimizer step, seconds (cluster model)")
    step_breakdown: dict[str, float] = Field(default_factory=dict, description="seconds per step by cause: "
                                             "compute, recompute, tp_comm, ep_comm, pp_bubble, dp_comm")
    rounded: RoundedPlan
    continuous: dict[str, float] = Field(default_factory=dict, description="the geometric program's continuous "
                                         "optimum (fractional devices) that the launchable plan was made from")
    robust: RobustReport | None = Field(default=None, description="robust plans (request.robust): the loss "
                                        "distribution of this plan and of the point-estimate plan")

    def summary(self) -> dict[str, object]:
        """The JSON object ``planner optimize --json`` prints."""
        return self.model_dump(mode="json")

    def to_config(self, target: str) -> str:
        """A launcher config for this plan: "torchtitan", "megatron", "nanogpt" or "hf" (planner.launchers)."""
        from planner.launchers import to_config

        return to_config(self, target)
