"""What every launcher config shares: the plan's cluster and schedule (``Launch``), the AdamW settings the
planner does not choose, and the one-line summary each config starts with."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import InputError
from planner.plan import ClusterPlan

TARGETS = ("torchtitan", "megatron", "nanogpt", "hf")

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.95
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
ADAM_EPS = 1e-8
RMS_NORM_EPS = 1e-5
ROPE_THETA = 500000.0  # Llama 3


class Launch(BaseModel):
    """What one launcher runs: the cluster (``ClusterPlan``: layout, devices, batch) and the schedule."""

    model_config = ConfigDict(frozen=True)

    cluster: ClusterPlan
    seq_len: int
    steps: int
    warmup_steps: int
    notes: list[str] = Field(default_factory=list)

    @property
    def global_batch_tokens(self) -> int:
        return self.cluster.global_batch_sequences * self.seq_len

    @property
    def tokens(self) -> int:
        return self.steps * self.global_batch_tokens


def optimizer_settings(plan) -> tuple[float, float, int, str]:
    try:
        return (float(plan.learning_rate), float(plan.min_learning_rate), int(plan.warmup_steps),
                str(plan.lr_schedule))
    except AttributeError:
        raise InputError("emit", "this plan has no optimizer settings (learning_rate, warmup_steps)") from None


def launch(plan, *, data_parallel_only: bool = False) -> Launch:
    """The plan's cluster and schedule; with ``data_parallel_only`` (nanoGPT, HF Trainer) every device is a
    data-parallel rank and accumulation is re-chosen to stay closest to the plan's global batch."""
    par = plan.parallelism
    cluster = ClusterPlan(**{k: getattr(par, k) for k in ClusterPlan.model_fields})  # without the predictions
    seq = int(plan.seq_len)
    steps = int(plan.rounded.steps)
    _lr, _min_lr, warmup, _sched = optimizer_settings(plan)
    notes: list[str] = []
    if data_parallel_only and cluster.tp * cluster.pp > 1:
        world = cluster.devices
        want = cluster.global_batch_sequences
        mb = cluster.micro_batch
        accum = max(1, round(want / (mb * world)))
        gbs = mb * accum * world
        tokens = steps * want * seq
        new_steps = max(1, round(tokens / (gbs * seq)))
        notes.append(
            f"no tensor/pipeline parallelism here: data parallel over all {world} devices (the plan used "
            f"TP{cluster.tp} x PP{cluster.pp} x DP{cluster.dp}); global batch {gbs} sequences (plan: {want}), "
            f"{new_steps} steps (plan: {steps})"
        )
        warmup = max(1, round(warmup * want / gbs)) if warmup else 0
        cluster = cluster.model_copy(update={
            "layout": cluster.layout.model_copy(update={"tp": 1, "pp": 1}), "dp": world, "grad_accum_steps": accum,
            "global_batch_sequences": gbs, "global_batch_tokens": gbs * seq})
        steps = new_steps
    return Launch(cluster=cluster, seq_len=seq, steps=steps, warmup_steps=min(warmup, max(steps - 1, 0)),
                  notes=notes)


def summary_line(plan) -> str:
    return (f"planner plan: {plan.total_params:.4g} params, {plan.rounded.tokens:.4g} tokens, predicted loss "
            f"{plan.rounded.loss:.4g} ({plan.law}), {plan.rounded.gpus} x {plan.gpu} {plan.precision}, "
            f"{plan.rounded.hours:,.0f} h, ${plan.rounded.cost_usd:,.0f}")
