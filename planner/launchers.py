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
import math
from typing import Any

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


def _optimizer(plan) -> tuple[float, float, int, str]:
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
    _lr, _min_lr, warmup, _sched = _optimizer(plan)
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


def _summary(plan) -> str:
    return (f"planner plan: {plan.total_params:.4g} params, {plan.rounded.tokens:.4g} tokens, predicted loss "
            f"{plan.rounded.loss:.4g} ({plan.law}), {plan.rounded.gpus} x {plan.gpu} {plan.precision}, "
            f"{plan.rounded.hours:,.0f} h, ${plan.rounded.cost_usd:,.0f}")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string for these contents
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def torchtitan_ffn(dim: int, ffn_hidden: int) -> tuple[float, int]:
    """(ffn_dim_multiplier, multiple_of) that make torchtitan's FeedForward width equal ``ffn_hidden``:
    hidden = int(2·4·dim/3); hidden = int(multiplier · hidden); hidden = multiple_of · ceil(hidden / multiple_of)."""
    base = int(2 * 4 * dim / 3)
    multiple_of = math.gcd(ffn_hidden, 256)
    mult = ffn_hidden / base
    for m in (mult, math.nextafter(mult, math.inf)):
        h = int(m * base)
        if multiple_of * ((h + multiple_of - 1) // multiple_of) == ffn_hidden:
            return m, multiple_of
    return mult, 1


def torchtitan_config(plan) -> dict[str, dict[str, Any]]:
    """The torchtitan JobConfig sections as a dict (see ``to_config`` for the TOML)."""
    lr, min_lr, _w, sched = _optimizer(plan)
    run = launch(plan)
    training: dict[str, Any] = {
        "dataset": "c4",
        "seq_len": run.seq_len,
        "steps": run.steps,
        "max_norm": GRAD_CLIP,
        "mixed_precision_param": "bfloat16",
    }
    if run.cluster.pp > 1:  # the per-rank batch is split into pipeline micro-batches
        training["local_batch_size"] = run.cluster.micro_batch * run.cluster.grad_accum_steps
    else:  # torchtitan accumulates global / (local · dp) micro-batches
        training["local_batch_size"] = run.cluster.micro_batch
    training["global_batch_size"] = run.cluster.global_batch_sequences
    parallelism: dict[str, Any] = {
        "data_parallel_replicate_degree": 1,
        "data_parallel_shard_degree": run.cluster.dp,
        "tensor_parallel_degree": run.cluster.tp,
        "pipeline_parallel_degree": run.cluster.pp,
        "context_parallel_degree": 1,
        "expert_parallel_degree": run.cluster.ep,
    }
    if run.cluster.pp > 1:
        parallelism["pipeline_parallel_microbatch_size"] = run.cluster.micro_batch
        parallelism["pipeline_parallel_schedule"] = "1F1B"
    model: dict[str, Any] = {"name": "llama3", "flavor": "planner",
                             "tokenizer_path": "./assets/tokenizer/Llama-3.1-8B"}
    if plan.precision == "fp8":
        model["converters"] = ["float8"]
    return {
        "job": {"dump_folder": "./outputs", "description": _summary(plan)},
        "model": model,
        "optimizer": {"name": "AdamW", "lr": lr, "beta1": ADAM_BETA1, "beta2": ADAM_BETA2, "eps": ADAM_EPS,
                      "weight_decay": WEIGHT_DECAY},
        "lr_scheduler": {"warmup_steps": run.warmup_steps, "decay_type": sched,
                         "lr_min": min_lr / lr},
        "training": training,
        "parallelism": parallelism,
        "activation_checkpoint": {"mode": "selective", "selective_ac_option": "op"},
        **({"float8": {"recipe_name": "rowwise"}} if plan.precision == "fp8" else {}),
    }


def _torchtitan_toml(plan) -> str:
    cfg = torchtitan_config(plan)
    sh = plan.shape
    mult, multiple_of = torchtitan_ffn(int(sh.d_model), int(sh.ffn_hidden))
    run = launch(plan)
    lines = [
        "# torchtitan job config written by planner (keys: torchtitan/config/job_config.py)",
        f"# {_summary(plan)}",
        f"# launch: NGPU={run.cluster.nproc_per_node} on {run.cluster.nodes} node(s), {run.cluster.devices} ranks = "
        f"DP {run.cluster.dp} x TP {run.cluster.tp} x PP {run.cluster.pp}",
        '# the model shape is a torchtitan "flavor"; register it in torchtitan/models/llama3/__init__.py:',
        f'#   llama3_args["planner"] = TransformerModelArgs(dim={sh.d_model}, n_layers={sh.layers}, '
        f'n_heads={sh.heads}, n_kv_heads={sh.kv_heads}, vocab_size={sh.vocab}, '
        f'ffn_dim_multiplier={mult!r}, multiple_of={multiple_of}, rope_theta={ROPE_THETA:g}, '
        f'max_seq_len={run.seq_len})',
        f"#   (head_dim {sh.head_dim}, FFN width {sh.ffn_hidden})",
    ]
    if sh.experts > 1:
        lines.append(f"#   MoE: {sh.experts} routed experts, top-{sh.top_k} (use a MoE model such as "
                     f"deepseek_v3 or llama4 with these counts)")
    if plan.precision == "fp4":
        lines.append("# fp4: torchtitan's job config has no fp4 training recipe; this config trains in bf16")
    for note in run.notes:
        lines.append(f"# note: {note}")
    for section, table in cfg.items():
        lines.append("")
        lines.append(f"[{section}]")
        for k, v in table.items():
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def megatron_args(plan) -> list[str]:
    """Megatron-LM pretrain_gpt.py arguments (model, batch, schedule, precision, parallelism)."""
    lr, min_lr, _w, sched = _optimizer(plan)
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


def _megatron_text(plan) -> str:
    run = launch(plan)
    c = run.cluster
    args = megatron_args(plan)
    head = [
        "# Megatron-LM arguments written by planner (names: megatron/training/arguments.py)",
        f"# {_summary(plan)}",
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


def nanogpt_config(plan) -> dict[str, Any]:
    """nanoGPT train.py globals (assignments a config/train_*.py file sets)."""
    lr, min_lr, _w, _sched = _optimizer(plan)
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


def _nanogpt_text(plan) -> str:
    cfg = nanogpt_config(plan)
    run = launch(plan, data_parallel_only=True)
    sh = plan.shape
    lines = [
        "# nanoGPT config written by planner: python train.py config/train_planner.py",
        f"# {_summary(plan)}",
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


def hf_config(plan) -> dict[str, Any]:
    """``training_arguments`` (transformers.TrainingArguments keywords), ``model_config`` (LlamaConfig, or
    MixtralConfig for MoE) and ``launch`` (world size, nodes, global batch, tokens)."""
    lr, min_lr, _w, _sched = _optimizer(plan)
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
        "planner": {"summary": _summary(plan), "notes": notes},
    }


def to_config(plan, target: str) -> str:
    """The launcher config for ``target``: "torchtitan" (TOML), "megatron" (arguments, one flag per line),
    "nanogpt" (Python assignments) or "hf" (JSON). Unknown target: InputError naming ``emit``."""
    t = (target or "").strip().lower()
    if t == "torchtitan":
        return _torchtitan_toml(plan)
    if t == "megatron":
        return _megatron_text(plan)
    if t == "nanogpt":
        return _nanogpt_text(plan)
    if t in ("hf", "huggingface", "transformers"):
        return json.dumps(hf_config(plan), indent=2) + "\n"
    raise InputError("emit", f"unknown launcher {target!r}; allowed: {', '.join(TARGETS)}")
