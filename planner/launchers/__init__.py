"""Launcher configs from a Plan: torchtitan (TOML), Megatron-LM (command-line arguments), nanoGPT (a Python
config file of assignments) and Hugging Face (TrainingArguments + LlamaConfig as JSON).

    plan = planner.optimize(budget_flops=1e22)
    print(plan.to_config("torchtitan"))

Every target gets the rounded model (``plan.shape``), the rounded cluster (``plan.parallelism``), the rounded
step count (``plan.rounded.steps``) and the optimizer settings (``plan.learning_rate``, ``min_learning_rate``,
``warmup_steps``, cosine decay). Key names follow each project's own documentation:

- torchtitan: ``torchtitan/config/job_config.py`` (JobConfig dataclasses: [job], [model], [optimizer],
  [lr_scheduler] with ``lr_min`` a ratio of ``optimizer.lr``, [training] ``local_batch_size`` /
  ``global_batch_size`` / ``seq_len`` / ``steps``, [parallelism] ``*_degree``). The model shape is not a TOML
  key in torchtitan (a flavor names it in code), so the TOML carries it as a comment with the
  ``TransformerModelArgs`` to register.
- Megatron-LM: ``megatron/training/arguments.py`` (``--num-layers``, ``--hidden-size``, ``--num-query-groups``,
  ``--micro-batch-size``, ``--global-batch-size``, ``--train-iters``, ``--lr-decay-style``, ``--fp8-format``,
  ``--tensor-model-parallel-size`` ...). Megatron derives data parallel = world / (TP · PP) and gradient
  accumulation = global / (micro · DP).
- nanoGPT: the globals of ``train.py`` that ``config/train_*.py`` files override (``n_layer``, ``n_head``,
  ``n_embd``, ``block_size``, ``batch_size``, ``gradient_accumulation_steps`` (total over all ranks: train.py
  divides it by the world size), ``max_iters``, ``lr_decay_iters``, ``warmup_iters``, ``min_lr``, ``dtype``).
- Hugging Face: ``transformers.TrainingArguments`` (``per_device_train_batch_size``,
  ``gradient_accumulation_steps``, ``max_steps``, ``lr_scheduler_type`` "cosine_with_min_lr" with
  ``lr_scheduler_kwargs.min_lr``, ``bf16``) and ``LlamaConfig`` / ``MixtralConfig`` keys.

nanoGPT and the HF Trainer have no tensor or pipeline parallelism: their configs run data parallel over all
the plan's devices (``world_size``), keep the plan's micro-batch, and choose the accumulation that comes
closest to the plan's global batch; steps are re-derived so steps × global batch ≈ the plan's tokens.
The AdamW settings not chosen by the planner are the common large-run values (beta1 0.9, beta2 0.95,
weight decay 0.1, gradient clipping 1.0: Llama 2 §2.2, Llama 3 §3.4).
"""

from __future__ import annotations

import json

from planner.errors import InputError
from planner.launchers.common import TARGETS, Launch, launch
from planner.launchers.hf import hf_config
from planner.launchers.megatron import megatron_args, megatron_text
from planner.launchers.nanogpt import nanogpt_config, nanogpt_text
from planner.launchers.torchtitan import torchtitan_config, torchtitan_ffn, torchtitan_toml


def to_config(plan, target: str) -> str:
    """The launcher config for ``target``: "torchtitan" (TOML), "megatron" (arguments, one flag per line),
    "nanogpt" (Python assignments) or "hf" (JSON). Unknown target: InputError naming ``emit``."""
    t = (target or "").strip().lower()
    if t == "torchtitan":
        return torchtitan_toml(plan)
    if t == "megatron":
        return megatron_text(plan)
    if t == "nanogpt":
        return nanogpt_text(plan)
    if t in ("hf", "huggingface", "transformers"):
        return json.dumps(hf_config(plan), indent=2) + "\n"
    raise InputError("emit", f"unknown launcher {target!r}; allowed: {', '.join(TARGETS)}")


__all__ = ["TARGETS", "Launch", "hf_config", "launch", "megatron_args", "nanogpt_config", "to_config",
           "torchtitan_config", "torchtitan_ffn"]
