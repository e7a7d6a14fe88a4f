"""Hugging Face: ``TrainingArguments`` keywords and a ``LlamaConfig`` / ``MixtralConfig`` (data parallel, FSDP)."""

from __future__ import annotations

from typing import Any

from planner.launchers.common import (
    ADAM_BETA1,
    ADAM_BETA2,
    ADAM_EPS,
    GRAD_CLIP,
    RMS_NORM_EPS,
    ROPE_THETA,
    WEIGHT_DECAY,
    launch,
    optimizer_settings,
    summary_line,
)


def hf_config(plan) -> dict[str, Any]:
    """``training_arguments`` (transformers.TrainingArguments keywords), ``model_config`` (LlamaConfig, or
    MixtralConfig for MoE) and ``launch`` (world size, nodes, global batch, tokens)."""
    lr, min_lr, _w, _sched = optimizer_settings(plan)
    run = launch(plan, data_parallel_only=True)
    sh = plan.shape
    args: dict[str, Any] = {
        "output_dir": "out-planner",
        "per_device_train_batch_size": run.cluster.micro_batch,
        "gradient_accumulation_steps": run.cluster.grad_accum_steps,
        "max_steps": run.steps,
        "learning_rate": lr,
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": {"min_lr": min_lr},
        "warmup_steps": run.warmup_steps,
        "weight_decay": WEIGHT_DECAY,
        "adam_beta1": ADAM_BETA1,
        "adam_beta2": ADAM_BETA2,
        "adam_epsilon": ADAM_EPS,
        "max_grad_norm": GRAD_CLIP,
        "bf16": True,
        "gradient_checkpointing": True,
        "logging_steps": 10,
        "save_steps": max(1, run.steps // 20),
    }
    if run.cluster.devices > 1:
        args["fsdp"] = "full_shard auto_wrap"
    moe = sh.experts > 1
    model: dict[str, Any] = {
        "model_type": "mixtral" if moe else "llama",
        "architectures": ["MixtralForCausalLM" if moe else "LlamaForCausalLM"],
        "hidden_size": int(sh.d_model),
        "intermediate_size": int(sh.moe_ffn_hidden or sh.ffn_hidden) if moe else int(sh.ffn_hidden),
        "num_hidden_layers": int(sh.layers),
        "num_attention_heads": int(sh.heads),
        "num_key_value_heads": int(sh.kv_heads),
        "head_dim": int(sh.head_dim),
        "vocab_size": int(sh.vocab),
        "max_position_embeddings": run.seq_len,
        "hidden_act": "silu",
        "rms_norm_eps": RMS_NORM_EPS,
        "rope_theta": ROPE_THETA,
        "tie_word_embeddings": bool(sh.tied_embeddings),
        "attention_bias": bool(sh.bias),
        "torch_dtype": "bfloat16",
    }
    if moe:
        model["num_local_experts"] = int(sh.experts)
        model["num_experts_per_tok"] = int(sh.top_k)
    notes = list(run.notes)
    if plan.precision != "bf16":
        notes.append(f"{plan.precision}: set it in accelerate (mixed_precision) / Transformer Engine; "
                     "TrainingArguments here say bf16")
    return {
        "training_arguments": args,
        "model_config": model,
        "launch": {"world_size": run.cluster.devices, "nnodes": run.cluster.nodes,
                   "nproc_per_node": run.cluster.nproc_per_node,
                   "global_batch_sequences": run.cluster.global_batch_sequences,
                   "global_batch_tokens": run.global_batch_tokens, "tokens": run.tokens, "seq_len": run.seq_len},
        "planner": {"summary": summary_line(plan), "notes": notes},
    }
