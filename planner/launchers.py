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
from dataclasses import dataclass, field
from typing import Any

from planner.errors import InputError

TARGETS = ("torchtitan", "megatron", "nanogpt", "hf")

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.95
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
ADAM_EPS = 1e-8
RMS_NORM_EPS = 1e-5
ROPE_THETA = 500000.0  # Llama 3


@dataclass
class Layout:
    """Batch layout for one launcher: ranks, micro-batch, accumulation, global batch and steps."""

    world_size: int
    tp: int
    pp: int
    dp: int
    ep: int
    nodes: int
    devices_per_node: int
    micro_batch: int
    grad_accum: int
    global_batch_sequences: int
    seq_len: int
    steps: int
    warmup_steps: int
    notes: list[str] = field(default_factory=list)

    @property
    def nproc_per_node(self) -> int:
        """Processes (devices) per node: the cluster fills whole nodes, or one partial node."""
        return self.world_size // self.nodes if self.nodes and self.world_size % self.nodes == 0 else min(
            self.devices_per_node, self.world_size)

    @property
    def global_batch_tokens(self) -> int:
        return self.global_batch_sequences * self.seq_len

    @property
    def tokens(self) -> int:
        return self.steps * self.global_batch_tokens


def _optimizer(plan) -> tuple[float, float, int, str]:
    try:
        return (float(plan.learning_rate), float(plan.min_learning_rate), int(plan.warmup_steps),
                str(plan.lr_schedule))
    except AttributeError:
        raise InputError("emit", "this plan has no optimizer settings (learning_rate, warmup_steps)") from None


def layout(plan, *, data_parallel_only: bool = False) -> Layout:
    """The plan's cluster and batch; with ``data_parallel_only`` (nanoGPT, HF Trainer) every device is a
    data-parallel rank and accumulation is re-chosen to stay closest to the plan's global batch."""
    par = plan.parallelism
    seq = int(plan.seq_len)
    steps = int(plan.rounded.steps)
    _lr, _min_lr, warmup, _sched = _optimizer(plan)
    lay = Layout(world_size=int(par["devices"]), tp=int(par["tp"]), pp=int(par["pp"]), dp=int(par["dp"]),
                 ep=int(par.get("ep", 1)), nodes=int(par["nodes"]), devices_per_node=int(par["devices_per_node"]),
                 micro_batch=int(par["micro_batch"]), grad_accum=int(par["grad_accum_steps"]),
                 global_batch_sequences=int(par["global_batch_sequences"]), seq_len=seq, steps=steps,
                 warmup_steps=warmup)
    if data_parallel_only and lay.tp * lay.pp > 1:
        world = lay.world_size
        want = lay.global_batch_sequences
        accum = max(1, round(want / (lay.micro_batch * world)))
        gbs = lay.micro_batch * accum * world
        tokens = steps * want * seq
        new_steps = max(1, round(tokens / (gbs * seq)))
        lay.notes.append(
            f"no tensor/pipeline parallelism here: data parallel over all {world} devices (the plan used "
            f"TP{lay.tp} x PP{lay.pp} x DP{lay.dp}); global batch {gbs} sequences (plan: {want}), "
            f"{new_steps} steps (plan: {steps})"
        )
        lay.warmup_steps = max(1, round(warmup * want / gbs)) if warmup else 0
        lay.tp = lay.pp = 1
        lay.dp, lay.grad_accum, lay.global_batch_sequences, lay.steps = world, accum, gbs, new_steps
    lay.warmup_steps = min(lay.warmup_steps, max(lay.steps - 1, 0))
    return lay


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
    lay = layout(plan)
    training: dict[str, Any] = {
        "dataset": "c4",
        "seq_len": lay.seq_len,
        "steps": lay.steps,
        "max_norm": GRAD_CLIP,
        "mixed_precision_param": "bfloat16",
    }
    if lay.pp > 1:  # the per-rank batch is split into pipeline micro-batches
        training["local_batch_size"] = lay.micro_batch * lay.grad_accum
    else:  # torchtitan accumulates global / (local · dp) micro-batches
        training["local_batch_size"] = lay.micro_batch
    training["global_batch_size"] = lay.global_batch_sequences
    parallelism: dict[str, Any] = {
        "data_parallel_replicate_degree": 1,
        "data_parallel_shard_degree": lay.dp,
        "tensor_parallel_degree": lay.tp,
        "pipeline_parallel_degree": lay.pp,
        "context_parallel_degree": 1,
        "expert_parallel_degree": lay.ep,
    }
    if lay.pp > 1:
        parallelism["pipeline_parallel_microbatch_size"] = lay.micro_batch
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
        "lr_scheduler": {"warmup_steps": lay.warmup_steps, "decay_type": sched,
                         "lr_min": min_lr / lr},
        "training": training,
        "parallelism": parallelism,
        "activation_checkpoint": {"mode": "selective", "selective_ac_option": "op"},
        **({"float8": {"recipe_name": "rowwise"}} if plan.precision == "fp8" else {}),
    }


def _torchtitan_toml(plan) -> str:
    cfg = torchtitan_config(plan)
    sh = plan.shape
    mult, multiple_of = torchtitan_ffn(int(sh["d_model"]), int(sh["ffn_hidden"]))
    lay = layout(plan)
    lines = [
        "# torchtitan job config written by planner (keys: torchtitan/config/job_config.py)",
        f"# {_summary(plan)}",
        f"# launch: NGPU={lay.nproc_per_node} on {lay.nodes} node(s), {lay.world_size} ranks = "
        f"DP {lay.dp} x TP {lay.tp} x PP {lay.pp}",
        '# the model shape is a torchtitan "flavor"; register it in torchtitan/models/llama3/__init__.py:',
        f'#   llama3_args["planner"] = TransformerModelArgs(dim={sh["d_model"]}, n_layers={sh["layers"]}, '
        f'n_heads={sh["heads"]}, n_kv_heads={sh["kv_heads"]}, vocab_size={sh["vocab"]}, '
        f'ffn_dim_multiplier={mult!r}, multiple_of={multiple_of}, rope_theta={ROPE_THETA:g}, '
        f'max_seq_len={lay.seq_len})',
        f"#   (head_dim {sh['head_dim']}, FFN width {sh['ffn_hidden']})",
    ]
    if int(sh.get("experts", 1)) > 1:
        lines.append(f"#   MoE: {sh['experts']} routed experts, top-{sh['top_k']} (use a MoE model such as "
                     f"deepseek_v3 or llama4 with these counts)")
    if plan.precision == "fp4":
        lines.append("# fp4: torchtitan's job config has no fp4 training recipe; this config trains in bf16")
    for note in lay.notes:
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
    lay = layout(plan)
    sh = plan.shape
    a: list[str] = [
        "--num-layers", str(sh["layers"]),
        "--hidden-size", str(sh["d_model"]),
        "--num-attention-heads", str(sh["heads"]),
        "--kv-channels", str(sh["head_dim"]),
    ]
    if int(sh["kv_heads"]) != int(sh["heads"]):
        a += ["--group-query-attention", "--num-query-groups", str(sh["kv_heads"])]
    a += ["--ffn-hidden-size", str(sh["ffn_hidden"])]
    if sh.get("ffn_type", "swiglu") == "swiglu":
        a.append("--swiglu")
    a += ["--normalization", "RMSNorm" if sh.get("norm", "rmsnorm") == "rmsnorm" else "LayerNorm"]
    if not sh.get("learned_positions", False):
        a += ["--position-embedding-type", "rope", "--rotary-base", f"{ROPE_THETA:g}"]
    if not sh.get("bias", False):
        a.append("--disable-bias-linear")
    if not sh.get("tied_embeddings", False):
        a.append("--untie-embeddings-and-output-weights")
    a += [
        "--vocab-size", str(sh["vocab"]),
        "--seq-length", str(lay.seq_len),
        "--max-position-embeddings", str(lay.seq_len),
        "--micro-batch-size", str(lay.micro_batch),
        "--global-batch-size", str(lay.global_batch_sequences),
        "--train-iters", str(lay.steps),
        "--lr", repr(lr),
        "--min-lr", repr(min_lr),
        "--lr-warmup-iters", str(lay.warmup_steps),
        "--lr-decay-iters", str(lay.steps),
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
        "--tensor-model-parallel-size", str(lay.tp),
        "--pipeline-model-parallel-size", str(lay.pp),
        "--use-distributed-optimizer",
    ]
    if lay.tp > 1:
        a.append("--sequence-parallel")
    if int(sh.get("experts", 1)) > 1:
        a += ["--num-experts", str(sh["experts"]), "--moe-router-topk", str(sh["top_k"]),
              "--moe-ffn-hidden-size", str(sh.get("moe_ffn_hidden") or sh["ffn_hidden"]),
              "--expert-model-parallel-size", str(lay.ep)]
    return a


def _megatron_text(plan) -> str:
    lay = layout(plan)
    args = megatron_args(plan)
    head = [
        "# Megatron-LM arguments written by planner (names: megatron/training/arguments.py)",
        f"# {_summary(plan)}",
        f"# launch: torchrun --nnodes {lay.nodes} --nproc-per-node {lay.nproc_per_node} pretrain_gpt.py "
        "<these args> <data and tokenizer args>",
        f"# world {lay.world_size} = TP {lay.tp} x PP {lay.pp} x DP {lay.dp}; Megatron accumulates "
        f"{lay.grad_accum} micro-batch(es) per step",
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
    lay = layout(plan, data_parallel_only=True)
    sh = plan.shape
    return {
        "out_dir": "out-planner",
        "init_from": "scratch",
        "dataset": "openwebtext",
        "n_layer": int(sh["layers"]),
        "n_head": int(sh["heads"]),
        "n_embd": int(sh["d_model"]),
        "block_size": lay.seq_len,
        "bias": bool(sh.get("bias", False)),
        "dropout": 0.0,
        "batch_size": lay.micro_batch,
        # train.py divides this by the DDP world size: tokens per iteration = this x batch_size x block_size
        "gradient_accumulation_steps": lay.grad_accum * lay.world_size,
        "max_iters": lay.steps,
        "lr_decay_iters": lay.steps,
        "learning_rate": lr,
        "min_lr": min_lr,
        "warmup_iters": lay.warmup_steps,
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
    lay = layout(plan, data_parallel_only=True)
    sh = plan.shape
    lines = [
        "# nanoGPT config written by planner: python train.py config/train_planner.py",
        f"# {_summary(plan)}",
        f"# launch: torchrun --nnodes {lay.nodes} --nproc_per_node {lay.nproc_per_node} train.py "
        "config/train_planner.py",
        f"# tokens per iteration = gradient_accumulation_steps x batch_size x block_size = "
        f"{lay.global_batch_tokens:,}",
        f"# nanoGPT's GPT is GPT-2 style (multi-head attention, GELU MLP 4 x n_embd, learned positions, vocab "
        f"from the dataset's meta.pkl or 50304); the plan's model has {sh['kv_heads']} KV heads, FFN "
        f"{sh['ffn_hidden']} ({sh.get('ffn_type', 'swiglu')}), vocab {sh['vocab']}",
        "# DDP keeps a full copy of the model and optimizer on every device (no sharding)",
    ]
    if plan.precision != "bf16":
        lines.append(f"# {plan.precision}: nanoGPT trains in bfloat16/float16 only; this config uses bfloat16")
    for note in lay.notes:
        lines.append(f"# note: {note}")
    lines.append("")
    for k, v in cfg.items():
        lines.append(f"{k} = {v!r}")
    return "\n".join(lines) + "\n"


def hf_config(plan) -> dict[str, Any]:
    """``training_arguments`` (transformers.TrainingArguments keywords), ``model_config`` (LlamaConfig, or
    MixtralConfig for MoE) and ``launch`` (world size, nodes, global batch, tokens)."""
    lr, min_lr, _w, _sched = _optimizer(plan)
    lay = layout(plan, data_parallel_only=True)
    sh = plan.shape
    args: dict[str, Any] = {
        "output_dir": "out-planner",
        "per_device_train_batch_size": lay.micro_batch,
        "gradient_accumulation_steps": lay.grad_accum,
        "max_steps": lay.steps,
        "learning_rate": lr,
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": {"min_lr": min_lr},
        "warmup_steps": lay.warmup_steps,
        "weight_decay": WEIGHT_DECAY,
        "adam_beta1": ADAM_BETA1,
        "adam_beta2": ADAM_BETA2,
        "adam_epsilon": ADAM_EPS,
        "max_grad_norm": GRAD_CLIP,
        "bf16": True,
        "gradient_checkpointing": True,
        "logging_steps": 10,
        "save_steps": max(1, lay.steps // 20),
    }
    if lay.world_size > 1:
        args["fsdp"] = "full_shard auto_wrap"
    moe = int(sh.get("experts", 1)) > 1
    model: dict[str, Any] = {
        "model_type": "mixtral" if moe else "llama",
        "architectures": ["MixtralForCausalLM" if moe else "LlamaForCausalLM"],
        "hidden_size": int(sh["d_model"]),
        "intermediate_size": int(sh.get("moe_ffn_hidden") or sh["ffn_hidden"]) if moe else int(sh["ffn_hidden"]),
        "num_hidden_layers": int(sh["layers"]),
        "num_attention_heads": int(sh["heads"]),
        "num_key_value_heads": int(sh["kv_heads"]),
        "head_dim": int(sh["head_dim"]),
        "vocab_size": int(sh["vocab"]),
        "max_position_embeddings": lay.seq_len,
        "hidden_act": "silu",
        "rms_norm_eps": RMS_NORM_EPS,
        "rope_theta": ROPE_THETA,
        "tie_word_embeddings": bool(sh.get("tied_embeddings", False)),
        "attention_bias": bool(sh.get("bias", False)),
        "torch_dtype": "bfloat16",
    }
    if moe:
        model["num_local_experts"] = int(sh["experts"])
        model["num_experts_per_tok"] = int(sh["top_k"])
    notes = list(lay.notes)
    if plan.precision != "bf16":
        notes.append(f"{plan.precision}: set it in accelerate (mixed_precision) / Transformer Engine; "
                     "TrainingArguments here say bf16")
    return {
        "training_arguments": args,
        "model_config": model,
        "launch": {"world_size": lay.world_size, "nnodes": lay.nodes, "nproc_per_node": lay.nproc_per_node,
                   "global_batch_sequences": lay.global_batch_sequences,
                   "global_batch_tokens": lay.global_batch_tokens, "tokens": lay.tokens, "seq_len": lay.seq_len},
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
