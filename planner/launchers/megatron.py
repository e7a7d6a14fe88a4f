"""Megatron-LM: ``pretrain_gpt.py`` arguments (names: ``megatron/training/arguments.py``)."""

from __future__ import annotations

from planner.launchers.common import (
    ADAM_BETA1,
    ADAM_BETA2,
    GRAD_CLIP,
    ROPE_THETA,
    WEIGHT_DECAY,
    launch,
    optimizer_settings,
    summary_line,
)


def megatron_args(plan) -> list[str]:
    """Megatron-LM pretrain_gpt.py arguments (model, batch, schedule, precision, parallelism)."""
    lr, min_lr, _w, sched = optimizer_settings(plan)
    run = launch(plan)
    sh = plan.shape
    a: list[str] = [
        "--num-layers", str(sh.layers),
        "--hidden-size", str(sh.d_model),
        "--num-attention-heads", str(sh.heads),
        "--kv-channels", str(sh.head_dim),
    ]
    if int(sh.kv_heads) != int(sh.heads):
        a += ["--group-query-attention", "--num-query-groups", str(sh.kv_heads)]
    a += ["--ffn-hidden-size", str(sh.ffn_hidden)]
    if sh.ffn_type == "swiglu":
        a.append("--swiglu")
    a += ["--normalization", "RMSNorm" if sh.norm == "rmsnorm" else "LayerNorm"]
    if not sh.learned_positions:
        a += ["--position-embedding-type", "rope", "--rotary-base", f"{ROPE_THETA:g}"]
    if not sh.bias:
        a.append("--disable-bias-linear")
    if not sh.tied_embeddings:
        a.append("--untie-embeddings-and-output-weights")
    a += [
        "--vocab-size", str(sh.vocab),
        "--seq-length", str(run.seq_len),
        "--max-position-embeddings", str(run.seq_len),
        "--micro-batch-size", str(run.cluster.micro_batch),
        "--global-batch-size", str(run.cluster.global_batch_sequences),
        "--train-iters", str(run.steps),
        "--lr", repr(lr),
        "--min-lr", repr(min_lr),
        "--lr-warmup-iters", str(run.warmup_steps),
        "--lr-decay-iters", str(run.steps),
        "--lr-decay-style", sched,
        "--adam-beta1", repr(ADAM_BETA1),
        "--adam-beta2", repr(ADAM_BETA2),
        "--weight-decay", repr(WEIGHT_DECAY),
        "--clip-grad", repr(GRAD_CLIP),
        "--bf16",
    ]
    if plan.precision == "fp8":
        a += ["--fp8-format", "hybrid"]
    elif plan.precision == "fp4":
        a += ["--fp4-format", "e2m1"]
    a += [
        "--tensor-model-parallel-size", str(run.cluster.tp),
        "--pipeline-model-parallel-size", str(run.cluster.pp),
        "--use-distributed-optimizer",
    ]
    if run.cluster.tp > 1:
        a.append("--sequence-parallel")
    if sh.experts > 1:
        a += ["--num-experts", str(sh.experts), "--moe-router-topk", str(sh.top_k),
              "--moe-ffn-hidden-size", str(sh.moe_ffn_hidden or sh.ffn_hidden),
              "--expert-model-parallel-size", str(run.cluster.ep)]
    return a


def megatron_text(plan) -> str:
    run = launch(plan)
    c = run.cluster
    args = megatron_args(plan)
    head = [
        "# Megatron-LM arguments written by planner (names: megatron/training/arguments.py)",
        f"# {summary_line(plan)}",
        f"# launch: torchrun --nnodes {c.nodes} --nproc-per-node {c.nproc_per_node} pretrain_gpt.py "
        "<these args> <data and tokenizer args>",
        f"# world {c.devices} = TP {c.tp} x PP {c.pp} x DP {c.dp}; Megatron accumulates "
        f"{c.grad_accum_steps} micro-batch(es) per step",
    ]
    # one flag per line with its value, continued with backslashes
    lines, i = [], 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            lines.append(f"{args[i]} {args[i + 1]}")
            i += 2
        else:
            lines.append(args[i])
            i += 1
    return "\n".join(head) + "\n" + " \\\n".join(lines) + "\n"
