"""Launcher configs: each target's documented key names, and numbers consistent with the plan.

Key sets are typed from each project's source: torchtitan ``torchtitan/config/job_config.py`` (JobConfig
dataclasses), Megatron-LM ``megatron/training/arguments.py``, nanoGPT ``train.py`` globals, and
transformers ``TrainingArguments`` / ``LlamaConfig`` / ``MixtralConfig``. Outputs are parsed as data only:
tomllib, json, ast (never executed) and shlex.
"""

import ast
import json
import math
import re
import shlex
import tomllib

import pytest
from typer.testing import CliRunner

from cli import app
from cost_models.architecture import ModelShape
from planner import InputError, optimize
from planner.plan import Plan


def test_plan_has_the_fields_launchers_need():
    """Launchers read the plan's optimizer settings; a renamed field fails here instead of skipping the module."""
    assert {"learning_rate", "min_learning_rate", "warmup_steps", "lr_schedule"} <= set(Plan.model_fields)

runner = CliRunner()

TORCHTITAN = {
    "job": {"config_file", "dump_folder", "description", "use_for_integration_test", "print_args"},
    "model": {"name", "flavor", "tokenizer_path", "converters", "print_after_conversion"},
    "optimizer": {"name", "lr", "beta1", "beta2", "eps", "weight_decay", "implementation", "early_step_in_backward"},
    "lr_scheduler": {"warmup_steps", "decay_ratio", "decay_type", "lr_min"},
    "training": {"dataset", "dataset_path", "local_batch_size", "global_batch_size", "seq_len", "max_norm", "steps",
                 "enable_cpu_offload", "mixed_precision_param", "mixed_precision_reduce", "compile", "gc_freq",
                 "gc_debug", "seed", "deterministic"},
    "parallelism": {"data_parallel_replicate_degree", "enable_compiled_autograd", "data_parallel_shard_degree",
                    "fsdp_reshard_after_forward", "tensor_parallel_degree", "disable_loss_parallel",
                    "enable_async_tensor_parallel", "pipeline_parallel_degree", "pipeline_parallel_split_points",
                    "pipeline_parallel_layers_per_stage", "pipeline_parallel_schedule",
                    "pipeline_parallel_schedule_csv", "pipeline_parallel_microbatch_size", "context_parallel_degree",
                    "context_parallel_rotate_method", "expert_parallel_degree"},
    "activation_checkpoint": {"mode", "selective_ac_option", "per_op_sac_force_recompute_mm_shapes_by_fqns"},
    "float8": {"enable_fsdp_float8_all_gather", "precompute_float8_dynamic_scale_for_fsdp",
               "force_recompute_fp8_weight_in_bwd", "recipe_name", "filter_fqns", "emulate", "moe_fqns_prototype"},
}
MEGATRON_FLAGS = {
    "--num-layers", "--hidden-size", "--num-attention-heads", "--kv-channels", "--group-query-attention",
    "--num-query-groups", "--ffn-hidden-size", "--swiglu", "--normalization", "--position-embedding-type",
    "--rotary-base", "--disable-bias-linear", "--untie-embeddings-and-output-weights", "--vocab-size",
    "--seq-length", "--max-position-embeddings", "--micro-batch-size", "--global-batch-size", "--train-iters",
    "--lr", "--min-lr", "--lr-warmup-iters", "--lr-decay-iters", "--lr-decay-style", "--adam-beta1", "--adam-beta2",
    "--weight-decay", "--clip-grad", "--bf16", "--fp8-format", "--fp4-format", "--tensor-model-parallel-size",
    "--pipeline-model-parallel-size", "--use-distributed-optimizer", "--sequence-parallel", "--num-experts",
    "--moe-router-topk", "--moe-ffn-hidden-size", "--expert-model-parallel-size",
}
MEGATRON_SWITCHES = {"--group-query-attention", "--swiglu", "--disable-bias-linear",
                     "--untie-embeddings-and-output-weights", "--bf16", "--use-distributed-optimizer",
                     "--sequence-parallel"}
NANOGPT = {
    "out_dir", "eval_interval", "log_interval", "eval_iters", "eval_only", "always_save_checkpoint", "init_from",
    "wandb_log", "wandb_project", "wandb_run_name", "dataset", "gradient_accumulation_steps", "batch_size",
    "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "learning_rate", "max_iters", "weight_decay",
    "beta1", "beta2", "grad_clip", "decay_lr", "warmup_iters", "lr_decay_iters", "min_lr", "backend", "device",
    "dtype", "compile",
}
HF_TRAINING_ARGS = {
    "output_dir", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "learning_rate",
    "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "warmup_ratio", "weight_decay", "adam_beta1",
    "adam_beta2", "adam_epsilon", "max_grad_norm", "bf16", "fp16", "gradient_checkpointing", "logging_steps",
    "save_steps", "fsdp", "fsdp_config", "deepspeed", "seed", "num_train_epochs", "optim",
}
HF_SCHEDULERS = {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "warmup_stable_decay"}
LLAMA_CONFIG = {
    "model_type", "architectures", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "hidden_act", "rms_norm_eps",
    "rope_theta", "tie_word_embeddings", "attention_bias", "torch_dtype", "initializer_range",
}
MIXTRAL_EXTRA = {"num_local_experts", "num_experts_per_tok"}


def _plan(kind):
    if kind == "small":
        return optimize(budget_flops=1e21)
    if kind == "pipeline":  # 64 A100-40GB for a 1e24 run: the model needs TP8 x PP8
        return optimize(budget_flops=1e24, gpu="a100-40gb", max_gpus=64)
    if kind == "fp8":
        return optimize(budget_flops=1e24, precision="fp8")
    if kind == "coupled":
        return optimize(dollars=1e6, deadline_days=10)
    if kind == "moe":  # the rounded dense plan with its FFN swapped for 8 experts, top-2
        p = optimize(budget_flops=1e23)
        shape = ModelShape(**{**p.shape.model_dump(), "experts": 8, "top_k": 2,
                              "moe_ffn_hidden": p.shape.ffn_hidden // 2})
        par = p.parallelism
        return p.model_copy(update={"shape": shape, "parallelism": par.model_copy(
            update={"layout": par.layout.model_copy(update={"ep": 2})})})
    raise AssertionError(kind)


KINDS = ("small", "pipeline", "fp8", "coupled", "moe")


@pytest.fixture(scope="module", params=KINDS)
def plan(request):
    return _plan(request.param)


def _tokens_close(steps, global_batch_tokens, plan):
    """steps × global batch tokens equals the plan's rounded tokens to within half a step."""
    got = steps * global_batch_tokens
    assert abs(got - plan.rounded.tokens) <= 0.5 * global_batch_tokens + 1e-6 * plan.rounded.tokens
    assert got == pytest.approx(plan.tokens, rel=0.02)


def _optimizer_ok(lr, min_lr, warmup, steps, plan):
    assert lr == pytest.approx(plan.learning_rate, rel=1e-12)
    assert min_lr == pytest.approx(plan.min_learning_rate, rel=1e-12)
    assert 0 <= warmup < steps or steps == 1


# ---------------------------------------------------------------------------------------------- torchtitan


def torchtitan_hidden(dim, multiple_of, ffn_dim_multiplier):
    """torchtitan llama3 FeedForward width (SwiGLU), reimplemented from its model code."""
    hidden = int(2 * (4 * dim) / 3)
    hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def test_torchtitan(plan):
    text = plan.to_config("torchtitan")
    cfg = tomllib.loads(text)
    for section, keys in cfg.items():
        assert section in TORCHTITAN, section
        assert set(keys) <= TORCHTITAN[section], (section, set(keys) - TORCHTITAN[section])
    tr, par, sh = cfg["training"], cfg["parallelism"], plan.shape
    p = plan.parallelism
    assert tr["seq_len"] == plan.seq_len
    assert par["tensor_parallel_degree"] == p.tp and par["pipeline_parallel_degree"] == p.pp
    assert par["data_parallel_shard_degree"] * par["data_parallel_replicate_degree"] == p.dp
    assert par["data_parallel_shard_degree"] * p.tp * p.pp == p.devices
    dp = p.dp
    # torchtitan: gradient accumulation = global / (local · dp); with PP the local batch is split into
    # pipeline micro-batches of pipeline_parallel_microbatch_size
    accum = tr["global_batch_size"] // (tr["local_batch_size"] * dp)
    assert tr["global_batch_size"] == tr["local_batch_size"] * dp * accum
    micro = par.get("pipeline_parallel_microbatch_size", tr["local_batch_size"])
    assert tr["global_batch_size"] == p.micro_batch * p.grad_accum_steps * dp == p.global_batch_sequences
    assert micro == p.micro_batch
    _tokens_close(tr["steps"], tr["global_batch_size"] * tr["seq_len"], plan)
    lr = cfg["optimizer"]["lr"]
    _optimizer_ok(lr, lr * cfg["lr_scheduler"]["lr_min"], cfg["lr_scheduler"]["warmup_steps"], tr["steps"], plan)
    assert cfg["lr_scheduler"]["decay_type"] == "cosine"
    assert ("converters" in cfg["model"]) == (plan.precision == "fp8")
    # the flavor's model args, as a comment
    m = re.search(r"TransformerModelArgs\((.*)\)", text)
    args = dict(kv.split("=") for kv in m.group(1).split(", "))
    dim, heads = int(args["dim"]), int(args["n_heads"])
    assert dim == sh.d_model and int(args["n_layers"]) == sh.layers and int(args["n_kv_heads"]) == sh.kv_heads
    assert heads * sh.head_dim == dim
    assert torchtitan_hidden(dim, int(args["multiple_of"]), float(args["ffn_dim_multiplier"])) == sh.ffn_hidden


# ----------------------------------------------------------------------------------------------- megatron


def megatron(text):
    body = " ".join(line.rstrip("\\").strip() for line in text.splitlines() if not line.startswith("#"))
    tokens = shlex.split(body)
    args, i = {}, 0
    while i < len(tokens):
        flag = tokens[i]
        assert flag.startswith("--"), flag
        if flag in MEGATRON_SWITCHES:
            args[flag] = True
            i += 1
        else:
            args[flag] = tokens[i + 1]
            i += 2
    return args


def test_megatron(plan):
    a = megatron(plan.to_config("megatron"))
    assert set(a) <= MEGATRON_FLAGS, set(a) - MEGATRON_FLAGS
    sh, p = plan.shape, plan.parallelism
    tp, pp = int(a["--tensor-model-parallel-size"]), int(a["--pipeline-model-parallel-size"])
    assert (tp, pp) == (p.tp, p.pp)
    dp = p.devices // (tp * pp)  # Megatron: data parallel = world / (TP · PP)
    micro, gbs = int(a["--micro-batch-size"]), int(a["--global-batch-size"])
    assert gbs == micro * p.grad_accum_steps * dp
    assert int(a["--seq-length"]) == plan.seq_len == int(a["--max-position-embeddings"])
    _tokens_close(int(a["--train-iters"]), gbs * plan.seq_len, plan)
    assert int(a["--num-attention-heads"]) * int(a["--kv-channels"]) == int(a["--hidden-size"]) == sh.d_model
    assert int(a["--num-layers"]) == sh.layers and int(a["--ffn-hidden-size"]) == sh.ffn_hidden
    if sh.kv_heads < sh.heads:
        assert a["--group-query-attention"] and int(a["--num-query-groups"]) == sh.kv_heads
    _optimizer_ok(float(a["--lr"]), float(a["--min-lr"]), int(a["--lr-warmup-iters"]), int(a["--train-iters"]), plan)
    assert a["--lr-decay-style"] == "cosine" and int(a["--lr-decay-iters"]) == int(a["--train-iters"])
    assert a["--bf16"] and (a.get("--fp8-format") == "hybrid") == (plan.precision == "fp8")
    assert ("--sequence-parallel" in a) == (tp > 1)
    if sh.experts > 1:
        assert int(a["--num-experts"]) == sh.experts and int(a["--moe-router-topk"]) == sh.top_k
        assert int(a["--expert-model-parallel-size"]) == p.ep
        assert int(a["--moe-ffn-hidden-size"]) == sh.moe_ffn_hidden
    else:
        assert "--num-experts" not in a


# ------------------------------------------------------------------------------------------------ nanoGPT


def nanogpt(text):
    """Parse a config of plain assignments without executing it."""
    tree = ast.parse(text)
    out = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_nanogpt(plan):
    text = plan.to_config("nanogpt")
    c = nanogpt(text)
    assert set(c) <= NANOGPT, set(c) - NANOGPT
    sh, p = plan.shape, plan.parallelism
    world = p.devices  # DDP over every device
    assert c["gradient_accumulation_steps"] % world == 0  # train.py divides it by the world size
    per_rank = c["gradient_accumulation_steps"] // world
    tokens_per_iter = per_rank * world * c["batch_size"] * c["block_size"]  # as train.py computes it
    assert f"{tokens_per_iter:,}" in text
    assert c["batch_size"] == p.micro_batch and c["block_size"] == plan.seq_len
    if p.tp * p.pp == 1:
        assert tokens_per_iter == p.global_batch_tokens
    _tokens_close(c["max_iters"], tokens_per_iter, plan)
    assert c["n_layer"] == sh.layers and c["n_embd"] == sh.d_model and c["n_head"] * sh.head_dim == c["n_embd"]
    _optimizer_ok(c["learning_rate"], c["min_lr"], c["warmup_iters"], c["max_iters"], plan)
    assert c["lr_decay_iters"] == c["max_iters"] and c["decay_lr"] is True and c["dtype"] == "bfloat16"


# ----------------------------------------------------------------------------------------------------- HF


def test_hf(plan):
    cfg = json.loads(plan.to_config("hf"))
    ta, mc, launch = cfg["training_arguments"], cfg["model_config"], cfg["launch"]
    assert set(ta) <= HF_TRAINING_ARGS, set(ta) - HF_TRAINING_ARGS
    moe = plan.shape.experts > 1
    assert set(mc) <= LLAMA_CONFIG | (MIXTRAL_EXTRA if moe else set())
    assert ta["lr_scheduler_type"] in HF_SCHEDULERS
    sh, p = plan.shape, plan.parallelism
    assert launch["world_size"] == p.devices == launch["nnodes"] * launch["nproc_per_node"]
    gbs = ta["per_device_train_batch_size"] * ta["gradient_accumulation_steps"] * launch["world_size"]
    assert gbs == launch["global_batch_sequences"]
    assert launch["global_batch_tokens"] == gbs * plan.seq_len
    if p.tp * p.pp == 1:
        assert gbs == p.global_batch_sequences
    _tokens_close(ta["max_steps"], launch["global_batch_tokens"], plan)
    _optimizer_ok(ta["learning_rate"], ta["lr_scheduler_kwargs"]["min_lr"], ta["warmup_steps"], ta["max_steps"],
                  plan)
    assert mc["num_attention_heads"] * mc["head_dim"] == mc["hidden_size"] == sh.d_model
    assert mc["num_key_value_heads"] == sh.kv_heads and mc["num_hidden_layers"] == sh.layers
    assert mc["vocab_size"] == sh.vocab and mc["max_position_embeddings"] == plan.seq_len
    if moe:
        assert mc["model_type"] == "mixtral" and mc["num_local_experts"] == 8 and mc["num_experts_per_tok"] == 2
        assert mc["intermediate_size"] == sh.moe_ffn_hidden
    else:
        assert mc["model_type"] == "llama" and mc["intermediate_size"] == sh.ffn_hidden


# ---------------------------------------------------------------------------------------------- misc, CLI


def test_torchtitan_ffn_round_trip():
    from planner.launchers import torchtitan_ffn

    for dim in (512, 768, 1024, 2048, 3072, 4096, 5120, 8192, 10240, 16384):
        for ffn in (2 * dim, int(8 * dim / 3) // 128 * 128, 14336, 28672, 53248, 3 * dim + 64):
            mult, multiple_of = torchtitan_ffn(dim, ffn)
            assert torchtitan_hidden(dim, multiple_of, mult) == ffn, (dim, ffn)


def test_unknown_target_is_a_one_line_error():
    p = optimize(budget_flops=1e21)
    with pytest.raises(InputError) as ei:
        p.to_config("deepspeed")
    assert ei.value.field == "emit" and "torchtitan" in str(ei.value)


def test_cli_emit_to_stdout_and_file(tmp_path):
    r = runner.invoke(app, ["optimize", "--budget", "1e21", "--emit", "megatron"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("# Megatron-LM") and "--train-iters" in r.stdout and "Plan:" not in r.stdout
    out = tmp_path / "train.toml"
    r = runner.invoke(app, ["optimize", "--budget", "1e21", "--emit", "torchtitan", "--emit-out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["learning_rate"] == tomllib.loads(out.read_text())["optimizer"]["lr"]


@pytest.mark.parametrize("args,start", [
    (["--emit", "deepspeed"], "error: --emit: unknown launcher"),
    (["--emit-out", "x.toml"], "error: --emit-out: needs --emit"),
    (["--emit", "hf", "--json"], "error: --emit-out: with --json"),
])
def test_cli_emit_errors(args, start):
    r = runner.invoke(app, ["optimize", "--budget", "1e21", *args])
    assert r.exit_code == 2 and r.stderr.startswith(start) and r.stderr.count("\n") == 1, r.stderr


def test_warmup_is_a_fraction_of_short_runs():
    p = optimize(budget_flops=1e21)
    a = megatron(p.to_config("megatron"))
    assert int(a["--lr-warmup-iters"]) <= max(math.ceil(0.1 * p.steps), 1)
