"""Plan: the chosen allocation, what it costs, what binds and what each limit is worth."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from planner.serving import ServingSummary


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
    shape: dict = Field(description="the rounded model (ModelShape fields)")
    parallelism: dict = Field(description="the cluster: TP/PP/DP/EP, nodes, micro-batches, recompute, ZeRO stage, "
                              "predicted mfu, step breakdown, memory per device")
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
