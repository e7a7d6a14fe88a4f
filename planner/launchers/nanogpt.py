"""nanoGPT: the ``train.py`` globals a ``config/train_*.py`` file sets (data parallel over every device)."""

from __future__ import annotations

from typing import Any

from planner.launchers.common import (
    ADAM_BETA1,
    ADAM_BETA2,
    GRAD_CLIP,
    WEIGHT_DECAY,
    launch,
    optimizer_settings,
    summary_line,
)


def nanogpt_config(plan) -> dict[str, Any]:
    """nanoGPT train.py globals (assignments a config/train_*.py file sets)."""
    lr, min_lr, _w, _sched = optimizer_settings(plan)
    run = launch(plan, data_parallel_only=True)
    sh = plan.shape
    return {
        "out_dir": "out-planner",
        "init_from": "scratch",
        "dataset": "openwebtext",
        "n_layer": int(sh.layers),
        "n_head": int(sh.heads),
        "n_embd": int(sh.d_model),
        "block_size": run.seq_len,
        "bias": bool(sh.bias),
        "dropout": 0.0,
        "batch_size": run.cluster.micro_batch,
        # train.py divides this by the DDP world size: tokens per iteration = this x batch_size x block_size
        "gradient_accumulation_steps": run.cluster.grad_accum_steps * run.cluster.devices,
        "max_iters": run.steps,
        "lr_decay_iters": run.steps,
        "learning_rate": lr,
        "min_lr": min_lr,
        "warmup_iters": run.warmup_steps,
        "decay_lr": True,
        "weight_decay": WEIGHT_DECAY,
        "beta1": ADAM_BETA1,
        "beta2": ADAM_BETA2,
        "grad_clip": GRAD_CLIP,
        "dtype": "bfloat16",
        "compile": True,
    }


def nanogpt_text(plan) -> str:
    cfg = nanogpt_config(plan)
    run = launch(plan, data_parallel_only=True)
    sh = plan.shape
    lines = [
        "# nanoGPT config written by planner: python train.py config/train_planner.py",
        f"# {summary_line(plan)}",
        f"# launch: torchrun --nnodes {run.cluster.nodes} --nproc_per_node {run.cluster.nproc_per_node} train.py "
        "config/train_planner.py",
        f"# tokens per iteration = gradient_accumulation_steps x batch_size x block_size = "
        f"{run.global_batch_tokens:,}",
        f"# nanoGPT's GPT is GPT-2 style (multi-head attention, GELU MLP 4 x n_embd, learned positions, vocab "
        f"from the dataset's meta.pkl or 50304); the plan's model has {sh.kv_heads} KV heads, FFN "
        f"{sh.ffn_hidden} ({sh.ffn_type}), vocab {sh.vocab}",
        "# DDP keeps a full copy of the model and optimizer on every device (no sharding)",
    ]
    if plan.precision != "bf16":
        lines.append(f"# {plan.precision}: nanoGPT trains in bfloat16/float16 only; this config uses bfloat16")
    for note in run.notes:
        lines.append(f"# note: {note}")
    lines.append("")
    for k, v in cfg.items():
        lines.append(f"{k} = {v!r}")
    return "\n".join(lines) + "\n"
