"""Learning rate, warmup, schedule and the law-optimal batch for a plan.

Laws (DeepSeek LLM 2024 §3, Step Law 2025, Joint MoE 2025 eq. 8; coefficients and citations in the law catalog):
- ``steplaw-2025`` (default, dense): eta = 1.79·N^-0.713·D^0.307 with N non-embedding params; B_opt = 0.58·D^0.571
  tokens (Li et al. 2025, Step Law).
- ``deepseek-2024``: eta = 0.3118·C^-0.125, B_opt = 0.2920·C^0.3271 tokens, C in FLOPs (Bi et al. 2024, eq. 1).
- ``joint-moe-2025`` (default for MoE): LR = exp(8.39)·N_act\\e^-0.81·E^-0.25, N_act\\e active non-embedding
  params (Ludziejewski et al. 2025, eq. 8). It has no batch law; the batch comes from Step Law, which its
  authors report holds for MoE models too.
Schedule: 2,000 warmup steps (DeepSeek LLM §2.3; Llama 3 §3.2.1), at most 10% of the run (an assumption for
short runs), then cosine decay to 10% of the peak (Llama 3 §3.2.1; Chinchilla: cosine ×10 decay).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

WARMUP_STEPS = 2000
WARMUP_MAX_FRACTION = 0.10
MIN_LR_FRACTION = 0.10
BATCH_LAW_FALLBACK = "steplaw-2025"


class Hyperparameters(BaseModel):
    """Optimizer settings for a plan. Learning rates are peak and final values of the schedule."""

    model_config = ConfigDict(frozen=True)

    lr_law: str
    learning_rate: float
    min_learning_rate: float
    lr_schedule: str
    warmup_steps: int


def _inputs(non_embedding_params: float, tokens: float, flops: float, experts: int) -> dict[str, float]:
    return {"params": non_embedding_params, "non_embedding_params": non_embedding_params, "tokens": tokens,
            "flops": flops, "experts": float(experts)}


def law_batch_tokens(lr_law: str, tokens: float, flops: float) -> tuple[float, str]:
    """(optimal batch in tokens, law id) from ``lr_law``'s batch law, or Step Law's when it has none."""
    from laws.catalog import get_law

    law = get_law(lr_law)
    if "batch_tokens" not in law.outputs:
        law = get_law(BATCH_LAW_FALLBACK)
    given = _inputs(0.0, tokens, flops, 1)
    return float(law.evaluate("batch_tokens", **{k: given[k] for k in law.inputs_for("batch_tokens")})), law.id


def law_hyperparameters(lr_law: str, non_embedding_params: float, tokens: float, flops: float, steps: float,
                        experts: int = 1) -> Hyperparameters:
    """Peak LR from ``lr_law`` at (N non-embedding active params, D tokens, C FLOPs, E experts), and the schedule."""
    from laws.catalog import get_law

    law = get_law(lr_law)
    given = _inputs(non_embedding_params, tokens, flops, experts)
    lr = float(law.evaluate("learning_rate", **{k: given[k] for k in law.inputs_for("learning_rate")}))
    warmup = int(min(WARMUP_STEPS, math.ceil(WARMUP_MAX_FRACTION * steps)))
    return Hyperparameters(lr_law=lr_law, learning_rate=lr, min_learning_rate=MIN_LR_FRACTION * lr,
                           lr_schedule="cosine", warmup_steps=max(warmup, 1))
