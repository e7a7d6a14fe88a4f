"""torchtitan: the JobConfig sections (keys: ``torchtitan/config/job_config.py``) and their TOML."""

from __future__ import annotations

import json
import math
from typing import Any

from planner.launchers.common import (
    ADAM_BETA1,
    ADAM_BETA2,
    ADAM_EPS,
    GRAD_CLIP,
    ROPE_THETA,
    WEIGHT_DECAY,
    launch,
    optimizer_settings,
    summary_line,
)


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
    lr, min_lr, _w, sched = optimizer_settings(plan)
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
        "job": {"dump_folder": "./outputs", "description": summary_line(plan)},
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


def torchtitan_toml(plan) -> str:
    cfg = torchtitan_config(plan)
    sh = plan.shape
    mult, multiple_of = torchtitan_ffn(int(sh.d_model), int(sh.ffn_hidden))
    run = launch(plan)
    lines = [
        "# torchtitan job config written by planner (keys: torchtitan/config/job_config.py)",
        f"# {summary_line(plan)}",
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
