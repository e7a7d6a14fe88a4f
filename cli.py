"""planner command line: a thin typer + rich shell over the planner, laws and cost_models APIs.

Heavy modules (numpy, pydantic models, cvxpy) are imported inside commands so ``planner --help`` is instant.
Every error is one line on stderr with exit code 2.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from planner_errors import FieldError

# API field -> CLI option, for error messages.
OPTION_OF = {
    "budget_flops": "--budget",
    "dollars": "--dollars",
    "gpu_hours": "--gpu-hours",
    "deadline_days": "--deadline-days",
    "max_gpus": "--max-gpus",
    "gpu": "--gpu",
    "law": "--law",
    "mfu": "--mfu",
    "price": "--price",
    "price_tier": "--price-tier",
    "precision": "--precision",
    "catalog": "--catalog",
    "min_params": "--min-params",
    "max_params": "--max-params",
    "min_tokens": "--min-tokens",
    "max_tokens": "--max-tokens",
    "sizing_days": "--sizing-days",
    "bytes_per_param": "--bytes-per-param",
    "objective": "--objective",
    "target_loss": "--target-loss",
    "inference_tokens": "--inference-tokens",
    "goodput": "--goodput",
    "serve_precision": "--serve-precision",
    "serve_gpu": "--serve-gpu",
    "inference_input_tokens": "--inference-input-tokens",
    "batch_coupling": "--batch-coupling",
    "seq_len": "--seq-len",
    "tensor_parallel": "--tensor-parallel",
    "min_step_seconds": "--min-step-seconds",
    "tokens": "--tokens",
    "params": "--params",
    "gpus": "--gpus",
    "shape": "--shape",
    "layers": "--layers",
    "d_model": "--d-model",
    "zero_stage": "--zero-stage",
    "recompute": "--recompute",
    "pipeline_parallel": "--pipeline-parallel",
    "micro_batch": "--micro-batch",
    "batch_tokens": "--batch-tokens",
    "form": "--form",
    "flops": "--flops",
    "unique_tokens": "--unique-tokens",
    "experts": "--experts",
    "moe": "--moe/--dense",
    "noise_scale": "--noise-scale",
    "non_embedding_params": "--non-embedding-params",
    "min_steps": "--min-steps",
    "max_experts": "--max-experts",
    "max_epochs": "--max-epochs",
    "lr_law": "--lr-law",
    "loss": "--loss",
    "steps": "--steps",
    "output": "--output",
    "batch": "--batch",
    "prompt_tokens": "--prompt-tokens",
    "output_tokens": "--output-tokens",
    "tpot_ms": "--tpot-ms",
    "ttft_ms": "--ttft-ms",
    "context": "--context",
    "input_tokens": "--input-tokens",
    "kv_precision": "--kv-precision",
    "top_k": "--top-k",
    "max_batch": "--max-batch",
    "out": "--out",
    "runs_file": "RUNS.csv",
    "id": "--id",
}
NO_LIMIT = (
    "no limit given: pass at least one of --budget, --dollars, --gpu-hours, "
    "or both --deadline-days and --max-gpus"
)


def _message(e: FieldError) -> str:
    field, detail = e.field, e.detail or str(e)
    if field == "limits" and detail.startswith("no limit given"):
        return NO_LIMIT
    if getattr(e, "relaxations", None) is not None:  # infeasible plan: name the options to relax
        for f in e.relaxations:
            detail = detail.replace(f"{f} from", f"{OPTION_OF.get(f, f)} from")
            detail = detail.replace(f"raise {f} to", f"raise {OPTION_OF.get(f, f)} to")
            detail = detail.replace(f"lower {f} to", f"lower {OPTION_OF.get(f, f)} to")
        return f"infeasible: {detail}"
    return f"{OPTION_OF[field]}: {detail}" if field in OPTION_OF else detail


class _OneLineErrors(TyperGroup):
    """Run the command; turn usage errors and input errors into one line on stderr and exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except typer.TyperException as e:  # usage errors (typer vendors click's exceptions)
            typer.echo(f"error: {e.format_message()}".replace("\n", " "), err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except FieldError as e:  # every input error of laws, cost_models and planner (planner_errors.py)
            typer.echo(f"error: {_message(e)}".replace("\n", " "), err=True)
            sys.exit(2)
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return rv


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Plan LLM training jointly: params, tokens and cluster under FLOP, dollar, GPU-hour and deadline limits.",
)
laws_app = typer.Typer(cls=_OneLineErrors, help="Scaling laws: list, show, evaluate.", invoke_without_command=True)
app.add_typer(laws_app, name="laws")


def _console():
    from rich.console import Console

    return Console()


def _json_safe(obj: Any) -> Any:
    """Non-finite floats (e.g. a stderr without a bootstrap) become null: JSON output never holds NaN."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _emit_json(obj: Any) -> None:
    typer.echo(json.dumps(_json_safe(obj), allow_nan=False))


def _g(x: float) -> str:
    return f"{x:.4g}"


def _plural(n: int, word: str) -> str:
    """'1 node', '2 nodes'."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


GpuHoursOpt = Annotated[float | None, typer.Option("--gpu-hours", help="Device-hours limit.")]
MaxGpusOpt = Annotated[int | None, typer.Option("--max-gpus", help="Most devices at once.")]
LawOpt = Annotated[str | None, typer.Option(help="Law id (see `planner laws`) or a law .toml file.")]
MfuOpt = Annotated[float | None, typer.Option(help="Model FLOPs utilization in (0, 1].")]
PriceOpt = Annotated[float | None, typer.Option(help="USD per device-hour (default: catalog).")]
PriceTierOpt = Annotated[str | None, typer.Option("--price-tier", help="hyperscaler, gpu_cloud or committed.")]
PrecisionOpt = Annotated[str, typer.Option(help="native (bf16; fp16 where there is no bf16), bf16, fp16, fp8, "
                                                "fp4, or any (bf16/fp16/fp8; fp4 only when named).")]
ObjectiveOpt = Annotated[str, typer.Option(help="loss (min loss), cost or time (need --target-loss).")]
TargetLossOpt = Annotated[float | None, typer.Option("--target-loss", help="Loss to reach.")]
GoodputOpt = Annotated[float | None, typer.Option(help="Fraction of paid hours that make progress.")]
BatchCouplingOpt = Annotated[bool | None, typer.Option(
    "--batch-coupling/--no-batch-coupling",
    help="Choose batch, critical-batch overhead and devices jointly (default: with a deadline).")]
SeqLenOpt = Annotated[int, typer.Option("--seq-len", help="Training sequence length (tokens).")]
TensorParallelOpt = Annotated[int | None, typer.Option(
    "--tensor-parallel", help="Tensor-parallel degree (default min(8, node)).")]
MinStepOpt = Annotated[float | None, typer.Option("--min-step-seconds", help="Floor on one optimizer step (s).")]
CatalogOpt = Annotated[list[str] | None, typer.Option(
    "--catalog", help="Extra accelerator catalog TOML (repeatable).")]
MinParamsOpt = Annotated[float | None, typer.Option("--min-params", help="Lower bound on params.")]
MaxParamsOpt = Annotated[float | None, typer.Option("--max-params", help="Upper bound on params.")]
MinTokensOpt = Annotated[float | None, typer.Option("--min-tokens", help="Lower bound on tokens.")]
MaxTokensOpt = Annotated[float | None, typer.Option("--max-tokens", help="Upper bound on tokens.")]
MoeOpt = Annotated[bool | None, typer.Option(
    "--moe/--dense", help="Allow mixture-of-experts (expert counts enumerated) or forbid it (default dense).")]
ExpertsOpt = Annotated[int | None, typer.Option(help="Fix the number of experts (top-1, Joint MoE law).")]
MaxExpertsOpt = Annotated[int, typer.Option("--max-experts", help="Largest expert count tried with --moe.")]
UniqueTokensOpt = Annotated[float | None, typer.Option(
    "--unique-tokens", help="Unique tokens available (data-constrained; Muennighoff law, epochs enumerated).")]
MaxEpochsOpt = Annotated[float, typer.Option("--max-epochs", help="Most epochs over the unique tokens.")]
LrLawOpt = Annotated[str | None, typer.Option(
    "--lr-law", help="LR law: steplaw-2025 (default), deepseek-2024, joint-moe-2025 (default for MoE).")]


@app.command()
def optimize(
    budget: Annotated[float | None, typer.Option("--budget", help="Training FLOPs limit (6·N·D).")] = None,
    dollars: Annotated[float | None, typer.Option(help="Training dollars limit (USD).")] = None,
    gpu_hours: GpuHoursOpt = None,
    deadline_days: Annotated[float | None, typer.Option("--deadline-days", help="Wall-clock limit (days).")] = None,
    max_gpus: MaxGpusOpt = None,
    gpu: Annotated[str, typer.Option(help="Accelerator id, comma-separated ids, or 'any'.")] = "h100",
    law: LawOpt = None,
    mfu: MfuOpt = None,
    price: PriceOpt = None,
    price_tier: PriceTierOpt = None,
    precision: PrecisionOpt = "native",
    objective: ObjectiveOpt = "loss",
    target_loss: TargetLossOpt = None,
    inference_tokens: Annotated[
        float | None, typer.Option("--inference-tokens", help="Output tokens served over the model's life.")
    ] = None,
    inference_input_tokens: Annotated[float | None, typer.Option(
        "--inference-input-tokens", help="Prompt tokens served (default: output tokens × prompt/output).")] = None,
    context: Annotated[int | None, typer.Option(help="Prompt + output tokens per request (default 1280).")] = None,
    tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", help="Serving target: ms per output token.")] = None,
    ttft_ms: Annotated[float | None, typer.Option("--ttft-ms", help="Serving target: ms to first token.")] = None,
    serve_gpu: Annotated[str | None, typer.Option("--serve-gpu", help="Serving accelerator (default: the "
                                                                      "training one).")] = None,
    serve_precision: Annotated[str, typer.Option("--serve-precision", help="Serving weights/KV dtype: bf16, fp8, "
                                                                           "fp4.")] = "bf16",
    goodput: GoodputOpt = None,
    batch_coupling: BatchCouplingOpt = None,
    seq_len: SeqLenOpt = 4096,
    tensor_parallel: TensorParallelOpt = None,
    min_step_seconds: MinStepOpt = None,
    catalog: CatalogOpt = None,
    min_params: MinParamsOpt = None,
    max_params: MaxParamsOpt = None,
    min_tokens: MinTokensOpt = None,
    max_tokens: MaxTokensOpt = None,
    moe: MoeOpt = None,
    experts: ExpertsOpt = None,
    max_experts: MaxExpertsOpt = 64,
    unique_tokens: UniqueTokensOpt = None,
    max_epochs: MaxEpochsOpt = 64.0,
    lr_law: LrLawOpt = None,
    csv_path: CsvPath = None,
    json_out: JsonOut = None,
    xlsx_path: XlsxPath = None,
    plot_path: PlotPath = None,
    emit: Annotated[
        str | None, typer.Option(help="Write a launcher config: torchtitan, megatron, nanogpt or hf.")
    ] = None,
    emit_out: Annotated[str | None, typer.Option(
        "--emit-out", help="File for --emit (default stdout); an existing file is replaced.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Loss-optimal params, tokens and cluster under the given limits."""
    from planner import PlanRequest
    from planner import optimize as run

    request = PlanRequest.parse(
        budget_flops=budget, dollars=dollars, gpu_hours=gpu_hours, deadline_days=deadline_days,
        max_gpus=max_gpus, gpu=gpu, law=law, mfu=mfu, price=price, price_tier=price_tier,
        precision=precision, catalog=tuple(catalog or ()), min_params=min_params, max_params=max_params,
        min_tokens=min_tokens, max_tokens=max_tokens, objective=objective, target_loss=target_loss,
        inference_tokens=inference_tokens, goodput=goodput, batch_coupling=batch_coupling, seq_len=seq_len,
        tensor_parallel=tensor_parallel, min_step_seconds=min_step_seconds, moe=moe, experts=experts,
        max_experts=max_experts, unique_tokens=unique_tokens, max_epochs=max_epochs, lr_law=lr_law,
        inference_input_tokens=inference_input_tokens, context=context, tpot_ms=tpot_ms, ttft_ms=ttft_ms,
        serve_gpu=serve_gpu, serve_precision=serve_precision,
    )
    _check_emit(emit, emit_out, as_json)
    _check_outputs(csv=csv_path, json_out=json_out, xlsx=xlsx_path, plot=plot_path, emit_out=emit_out)
    plan = run(request)
    if _write_plan_outputs(plan, csv_path, json_out, xlsx_path, plot_path, emit, emit_out, law=request.law):
        return  # the launcher config went to stdout
    if as_json:
        _emit_json(plan.summary())
        return
    _render_plan(plan)


def _render_plan(plan) -> None:
    from rich.table import Table

    con = _console()
    t = Table(title=f"Plan: min {plan.objective} ({plan.law}, {plan.gpu_name}, {plan.precision})",
              show_header=False)
    t.add_column("quantity", style="bold")
    t.add_column("value", justify="right")
    loss = _g(plan.loss) + (f"  (95% {plan.loss_ci[0]:.4g}..{plan.loss_ci[1]:.4g})" if plan.loss_ci else "")
    rows = [
        ("params", f"{plan.params:.4g}"),
        ("tokens", f"{plan.tokens:.4g}"),
        ("tokens / param", f"{plan.tokens_per_param:.1f}"),
        ("batch", f"{plan.batch_tokens:.3g} tokens ({plan.batch_sequences:,.0f} × {plan.seq_len}), "
                  f"{plan.steps:,.0f} steps"),
        ("batch law", f"optimum {plan.law_batch_tokens:.3g} tokens ({plan.batch_law}); effective tokens "
                      f"{plan.effective_tokens:.4g}"
                      + ("" if plan.batch_coupling else " (batch fixed at the optimum)")),
        ("learning rate", f"{plan.learning_rate:.3g} peak ({plan.lr_law}), {plan.warmup_steps:,} warmup steps, "
                          f"{plan.lr_schedule} to {plan.min_learning_rate:.3g}"),
        ("training FLOPs", f"{plan.flops:.4g}"),
        ("predicted loss", loss),
        ("devices", f"{plan.gpus:,} × {plan.gpu}"),
        ("wall-clock", f"{plan.hours:,.1f} h ({plan.days:.1f} days)"),
        ("device-hours", f"{plan.gpu_hours:,.0f}"),
        ("training cost", f"${plan.cost_usd:,.0f} at ${plan.price_usd_per_gpu_hour:.2f}/device-hour"),
        ("MFU × goodput", f"{plan.mfu:.0%} × {plan.goodput:.0%}"),
        ("step", f"{plan.step_seconds:.3g} s (" + ", ".join(f"{k} {v:.3g}" for k, v in plan.step_breakdown.items()
                                                          if v) + ")"),
        ("memory / device", f"{plan.memory_per_gpu_gb:.1f} GB"),
    ]
    sh, par, r = plan.shape, plan.parallelism, plan.rounded
    rows.append(("model shape", f"{sh.layers} layers × d_model {sh.d_model}, {sh.heads} heads "
                                f"({sh.kv_heads} KV), ffn {sh.ffn_hidden}, vocab {sh.vocab}"
                                + (f", {sh.experts} experts top-{sh.top_k}" if sh.experts > 1 else "")))
    rows.append(("cluster", f"{_plural(par.nodes, 'node')} × {par.devices_per_node}: TP{par.tp} "
                            f"PP{par.pp} DP{par.dp}" + (f" EP{par.ep}" if par.ep > 1 else "")
                            + f", {par.layout.recompute} recompute, ZeRO-{par.layout.zero_stage}, "
                            f"{par.grad_accum_steps} micro-batches/step"))
    c = plan.continuous
    if c:
        rows.append(("program optimum", f"{c['params']:.4g} params, {c['tokens']:.4g} tokens on {c['devices']:.4g} "
                                        "devices (continuous; the plan above is its whole cluster)"))
    if plan.unique_tokens is not None:
        rows.append(("data", f"{plan.epochs:.3g} epochs over {plan.unique_tokens:.3g} unique tokens"))
    if plan.inference:
        inf = plan.inference
        rows.append(("serving cost", f"${inf.cost_usd:,.0f} for {inf.tokens:.3g} tokens "
                                     f"(${inf.usd_per_million_tokens:.3g}/M)"))
        rows.append(("total cost", f"${plan.total_cost_usd:,.0f}"))
    if plan.energy_kwh:
        rows.append(("energy", f"{plan.energy_kwh:,.0f} kWh"))
    for k, v in rows:
        t.add_row(k, v)
    con.print(t)
    if plan.alternatives:
        a = Table(title=f"Alternatives by {plan.objective}")
        extra = plan.objective != "loss"  # the objective's own column, unless it is the loss column
        for col in ("gpu", "precision", "experts", "epochs", *((plan.objective,) if extra else ()), "loss", "cost $",
                    "hours"):
            a.add_column(col)
        for alt in plan.alternatives[:10]:
            a.add_row(alt.gpu, alt.precision, str(alt.experts), "" if alt.epochs is None else f"{alt.epochs:g}",
                      *((f"{alt.objective_value:.4g}",) if extra else ()), f"{alt.loss:.4g}", f"{alt.cost_usd:,.0f}",
                      f"{alt.hours:,.1f}")
        con.print(a)
    c = Table(title=f"Constraints (shadow price = {plan.shadow_price_unit})")
    for col in ("constraint", "limit", "value", "slack", "binds", "Δ per +10%"):
        c.add_column(col, justify="right" if col not in ("constraint",) else "left")
    for r in plan.constraints:
        c.add_row(
            r.name, f"{r.limit:.4g}", f"{r.value:.4g}", f"{r.slack:.1%}", "yes" if r.binding else "",
            f"{r.objective_change_per_10pct:+.3g}",
        )
    con.print(c)
    for n in plan.notes:
        con.print(f"[dim]note: {n}[/dim]")
    con.print(f"[dim]law: {plan.law_citation}[/dim]")
    con.print(f"[dim]MFU: {plan.mfu_source}; price: {plan.price_source}[/dim]")


def _shape_options(shape_file, layers, d_model, heads, kv_heads, ffn_hidden, vocab, experts, top_k, seq_len):
    from planner.evaluate import load_shape, shape_from_options

    if shape_file:
        return load_shape(shape_file)
    return shape_from_options(layers, d_model, heads, kv_heads, ffn_hidden, vocab, experts, top_k, seq_len)


ShapeFile = Annotated[str | None, typer.Option("--shape", help="Model shape file (TOML/JSON of ModelShape fields).")]
Layers = Annotated[int | None, typer.Option(help="Layers (with --d-model instead of --shape).")]
DModel = Annotated[int | None, typer.Option("--d-model", help="Model width.")]
Heads = Annotated[int | None, typer.Option(help="Attention heads (default d_model/128).")]
KvHeads = Annotated[int | None, typer.Option("--kv-heads", help="KV heads (GQA; default = heads).")]
FfnHidden = Annotated[int | None, typer.Option("--ffn-hidden", help="FFN width (default SwiGLU 8/3·d_model).")]
Vocab = Annotated[int | None, typer.Option(help="Vocabulary size (default 128256).")]
Experts = Annotated[int, typer.Option(help="Routed experts per layer (1 = dense).")]
TopK = Annotated[int, typer.Option("--top-k", help="Experts active per token.")]


@app.command()
def cost(
    tokens: Annotated[float, typer.Option(help="Training tokens.")],
    params: Annotated[float | None, typer.Option(help="Parameters (active for MoE).")] = None,
    gpu: Annotated[str, typer.Option(help="Accelerator id (see `planner gpus`).")] = "h100",
    gpus: Annotated[int | None, typer.Option(help="Devices (default: fewest whole nodes that fit and finish in "
                                                  "30 days).")] = None,
    mfu: Annotated[float | None, typer.Option(help="Model FLOPs utilization in (0, 1] (default: predicted).")] = None,
    goodput: Annotated[float | None, typer.Option(help="Fraction of paid hours that make progress.")] = None,
    price: Annotated[float | None, typer.Option(help="USD per device-hour (default: catalog).")] = None,
    price_tier: Annotated[str | None, typer.Option("--price-tier", help="hyperscaler, gpu_cloud, committed.")] = None,
    precision: Annotated[str, typer.Option(help="native (bf16, fp16 on V100), bf16, fp16, fp8 or fp4.")] = "native",
    zero_stage: Annotated[int | None, typer.Option("--zero-stage", help="ZeRO stage 0-3 (default: searched).")] = None,
    recompute: Annotated[str | None, typer.Option(help="Activation recomputation: none, selective, full "
                                                       "(default: searched).")] = None,
    tensor_parallel: Annotated[int | None, typer.Option("--tensor-parallel", help="Tensor-parallel degree "
                                                                                  "(default: searched).")] = None,
    pipeline_parallel: Annotated[int | None, typer.Option("--pipeline-parallel", help="Pipeline stages "
                                                                                      "(default: searched).")] = None,
    micro_batch: Annotated[int | None, typer.Option("--micro-batch", help="Sequences per micro-batch.")] = None,
    batch_tokens: Annotated[float | None, typer.Option("--batch-tokens", help="Global batch in tokens (default: the "
                                                                              "Step Law optimum).")] = None,
    shape_file: ShapeFile = None, layers: Layers = None, d_model: DModel = None, heads: Heads = None,
    kv_heads: KvHeads = None, ffn_hidden: FfnHidden = None, vocab: Vocab = None, experts: Experts = 1,
    top_k: TopK = 1,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Sequence length (tokens).")] = 4096,
    catalog: Annotated[list[str] | None, typer.Option("--catalog", help="Extra accelerator catalog TOML.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Price a given training run on the cluster model: step time by cause, MFU, hours, dollars, memory."""
    from planner.evaluate import RunRequest, estimate_run, parse

    shape = _shape_options(shape_file, layers, d_model, heads, kv_heads, ffn_hidden, vocab, experts, top_k, seq_len)
    req = parse(RunRequest, params=params, tokens=tokens, gpu=gpu, gpus=gpus, mfu=mfu, goodput=goodput, price=price,
                price_tier=price_tier, precision=precision, shape=shape, catalog=tuple(catalog or ()),
                zero_stage=zero_stage, recompute=recompute, tensor_parallel=tensor_parallel,
                pipeline_parallel=pipeline_parallel, micro_batch=micro_batch, batch_tokens=batch_tokens,
                experts=experts, top_k=top_k, seq_len=seq_len)
    est = estimate_run(req)
    if as_json:
        _emit_json(est.model_dump(mode="json"))
        return
    br = ", ".join(f"{k} {v:.3g}" for k, v in est.step_breakdown.items() if v)
    rows = [
        ("params", f"{est.params:.4g} active, {est.total_params:.4g} total"), ("tokens", f"{est.tokens:.4g}"),
        ("training FLOPs", f"{est.flops:.4g}  ({est.flops_counting})"),
        ("devices", f"{est.gpus:,} × {est.gpu} ({est.precision})"),
        ("layout", est.layout["label"] + f", dp {est.layout['dp']}"),
        ("batch", f"{est.batch_tokens:.4g} tokens, {est.steps:,} steps"),
        ("step", f"{est.step_seconds:.3g} s ({br})"),
        ("wall-clock", f"{est.hours:,.1f} h ({est.days:.1f} days)"), ("device-hours", f"{est.gpu_hours:,.0f}"),
        ("cost", f"${est.cost_usd:,.0f} at ${est.price_usd_per_gpu_hour:.2f}/device-hour"),
        ("MFU × goodput", f"{est.mfu:.0%} × {est.goodput:.0%} ({est.mfu_source})"),
        ("energy", f"{est.energy_kwh:,.0f} kWh" if est.energy_kwh else "n/a (no TDP in catalog)"),
        ("memory / device", f"{est.memory_per_gpu_gb:.1f} GB"),
    ]
    _render_rows("Training run", rows, est.notes)


@app.command("serve-cost")
def serve_cost(
    params: Annotated[float | None, typer.Option(help="Total parameters (a shape is rounded from it).")] = None,
    gpu: Annotated[str, typer.Option(help="Accelerator id (see `planner gpus`).")] = "h100",
    gpus: Annotated[int | None, typer.Option(
        help="Devices per replica = tensor-parallel degree (default: chosen).")] = None,
    batch: Annotated[int | None, typer.Option(
        help="Concurrent sequences (default: the largest that fits and meets --tpot-ms).")] = None,
    tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", help="Time-per-output-token limit, ms.")] = None,
    ttft_ms: Annotated[float | None, typer.Option("--ttft-ms", help="Time-to-first-token limit, ms.")] = None,
    context: Annotated[int | None, typer.Option(help="Prompt + output tokens per request.")] = None,
    prompt_tokens: Annotated[int | None, typer.Option("--prompt-tokens", help="Prompt length (default 1024).")] = None,
    output_tokens: Annotated[int | None, typer.Option("--output-tokens",
                                                      help="Generated tokens (default 256).")] = None,
    tokens: Annotated[float | None, typer.Option(help="Output tokens to serve (prices cost_usd).")] = None,
    input_tokens: Annotated[float | None, typer.Option("--input-tokens", help="Prompt tokens to serve.")] = None,
    precision: Annotated[str, typer.Option(help="Weights and KV-cache dtype: bf16, fp8 or fp4.")] = "bf16",
    kv_precision: Annotated[str | None, typer.Option("--kv-precision", help="KV-cache dtype if different.")] = None,
    max_batch: Annotated[int | None, typer.Option("--max-batch", help="Largest batch a replica runs (default 1024).")
                         ] = None,
    price: Annotated[float | None, typer.Option(help="USD per device-hour (default: catalog).")] = None,
    price_tier: Annotated[str | None, typer.Option("--price-tier", help="hyperscaler, gpu_cloud, committed.")] = None,
    shape_file: ShapeFile = None, layers: Layers = None, d_model: DModel = None, heads: Heads = None,
    kv_heads: KvHeads = None, ffn_hidden: FfnHidden = None, vocab: Vocab = None, experts: Experts = 1,
    top_k: TopK = 1,
    catalog: Annotated[list[str] | None, typer.Option("--catalog", help="Extra accelerator catalog TOML.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Price serving: batch and tensor parallelism under latency limits, TPOT, TTFT, $ per million tokens."""
    from planner.evaluate import ServeRequest, estimate_serving, parse

    seq = context or ((prompt_tokens or 1024) + (output_tokens or 256))
    shape = _shape_options(shape_file, layers, d_model, heads, kv_heads, ffn_hidden, vocab, experts, top_k, seq)
    req = parse(ServeRequest, params=params, shape=shape, gpu=gpu, gpus=gpus, batch=batch, tpot_ms=tpot_ms,
                ttft_ms=ttft_ms, context=context, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                tokens=tokens, input_tokens=input_tokens, precision=precision, kv_precision=kv_precision,
                price=price, price_tier=price_tier, catalog=tuple(catalog or ()),
                experts=experts if shape is None else None, top_k=top_k if shape is None else None,
                max_batch=max_batch)
    est = estimate_serving(req)
    if as_json:
        _emit_json(est.model_dump(mode="json"))
        return
    rows = [
        ("model", f"{est.total_params:.4g} params, {est.shape['layers']} layers × {est.shape['d_model']}"),
        ("replica", f"{est.gpus} × {est.gpu} (tensor parallel), {est.precision} weights, {est.kv_precision} KV"),
        ("batch", f"{est.batch} sequences of {est.prompt_tokens} + {est.output_tokens} tokens"
                  f" (limited by {', '.join(est.binding)})"),
        ("decode", f"{est.tokens_per_second_per_gpu:,.0f} tokens/s per device ({est.decode_bound}-bound)"),
        ("TPOT / TTFT", f"{est.tpot_ms:.3g} ms / {est.ttft_ms:.3g} ms"),
        ("memory / device", f"{est.memory_per_gpu_gb:.1f} of {est.usable_memory_per_gpu_gb:.1f} GB usable"),
        ("$ / M output tokens", f"{est.usd_per_million_tokens:.3g}"),
        ("$ / M input tokens", f"{est.usd_per_million_input_tokens:.3g}"),
    ]
    if est.cost_usd is not None:
        rows.append(("cost", f"${est.cost_usd:,.0f} for {est.tokens:.3g} output + {est.input_tokens:.3g} input tokens"))
    eff = (f"efficiency {est.bandwidth_efficiency:.0%} of peak bandwidth, {est.compute_efficiency:.0%} of peak "
           "FLOP/s (calibrated, docs/serving.md)")
    _render_rows("Serving", rows, est.notes + [eff])


def _render_rows(title: str, rows: list[tuple[str, str]], notes: list[str]) -> None:
    from rich.table import Table

    t = Table(title=title, show_header=False)
    t.add_column("quantity", style="bold")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    con = _console()
    con.print(t)
    for n in notes:
        con.print(f"[dim]note: {n}[/dim]")


@app.command()
def fit(
    runs_file: Annotated[str, typer.Argument(metavar="RUNS.csv", help="CSV with params,tokens,loss columns.")],
    form: Annotated[str, typer.Option(help="chinchilla, kaplan, muennighoff or power.")] = "chinchilla",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for confidence intervals.", min=0,
                                           max=100_000)] = 0,
    seed: Annotated[int, typer.Option(help="Random seed for the bootstrap.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes for the bootstrap (the same numbers for any count).",
                                         min=1, max=256)] = 1,
    budget: Annotated[float | None, typer.Option(help="FLOPs at which to report optimal N, D.")] = None,
    y: Annotated[str | None, typer.Option(help="Power law: the column to fit (e.g. lr, batch_tokens).")] = None,
    x: Annotated[str, typer.Option(help="Power law: comma-separated input columns.")] = "params,tokens",
    out: Annotated[str | None, typer.Option(
        help="Write the fitted law as a TOML law file; an existing file is replaced.")] = None,
    law_id: Annotated[str | None, typer.Option("--id", help="Law id in the written file.")] = None,
    plot_path: Annotated[str | None, typer.Option(
        "--plot", help="Write a PNG of the fitted law against the runs (needs planner\\[plot]); an existing file "
        "is replaced.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    backtest: Annotated[bool, typer.Option(
        "--backtest", help="Fit on the lowest-compute runs, predict the held-out largest (each form).")] = False,
    holdout: Annotated[float, typer.Option(help="Backtest: share of runs held out, by compute.")] = 0.2,
    compute_floor: Annotated[float | None, typer.Option(
        help="Backtest option: drop training runs below this many FLOPs.")] = None,
    fix_e: Annotated[float | None, typer.Option("--fix-e", help="Backtest option: E held at this value.")] = None,
    e_bounds: Annotated[str | None, typer.Option(
        "--e-bounds", help="Backtest option: LO,HI bounds on E.")] = None,
) -> None:
    """Fit a scaling law to your own runs (Huber on log loss from a grid of starts; bootstrap CIs)."""
    import math
    import sys as _sys
    from pathlib import Path

    from laws.fit import FORMS, fit_runs
    from laws.runs import check_identifiable, read_runs
    from planner.errors import InputError
    from planner.safe_io import Outputs, check_output

    if form not in FORMS:
        raise InputError("form", f"unknown form {form!r}; allowed: {', '.join(FORMS)}")
    if budget is not None and not (math.isfinite(budget) and 0 < budget <= 1e32):
        raise InputError("budget_flops", f"must be a number of FLOPs in (0, 1e32], got {budget}")
    if backtest and not 0 < holdout < 1:
        raise InputError("holdout", f"must be a share in (0, 1), got {holdout}")
    for path, f in ((out, "out"), (plot_path, "plot")):
        check_output(path, f)  # before the fit: a bad path fails in a second, not after minutes
    if law_id is not None and not (0 < len(law_id.strip()) <= 200):
        raise InputError("id", f"a law id of 1 to 200 characters, got {len(law_id.strip()):,}")
    try:
        runs = read_runs(runs_file)
        xs = tuple(c.strip() for c in x.split(",") if c.strip())
        check_identifiable(runs, *_FIT_NEEDS[form](xs))
        kwargs = {"bootstrap": bootstrap, "seed": seed, "workers": workers}
        if form in ("chinchilla", "kaplan"):
            kwargs["budget"] = budget
        if form == "power":
            kwargs.update(y=y, x=xs)
        show = bootstrap > 0 and not as_json and _sys.stderr.isatty()
        if show:
            from rich.progress import Progress

            with Progress(console=_console_err(), transient=True) as bar:
                task = bar.add_task(f"bootstrap × {bootstrap}", total=bootstrap)
                result = fit_runs(runs, form, progress=lambda done, total: bar.update(task, completed=done),
                                  **kwargs)
        else:
            result = fit_runs(runs, form, **kwargs)
    except ValueError as e:  # RunsError / FitError: line-numbered, one line
        if hasattr(e, "field") and not isinstance(e, InputError):
            raise InputError("runs_file", str(e)) from None
        raise
    written = None
    with Outputs() as outs:  # the law file and the plot: both or neither
        if out:
            name = law_id or Path(out).stem[:200] or "law"
            try:
                outs.write(out, "out", lambda tmp: result.to_toml(tmp, name, samples=True))
            except ValueError as e:  # FitError: a bad law id
                if hasattr(e, "field") and not isinstance(e, InputError):
                    raise InputError("id", str(e)) from None
                raise
            written = out
        if plot_path:
            from planner.plots import plot_fit

            plot_fit(result, runs, plot_path, outputs=outs)
    _wrote([p for p in (out, plot_path) if p])
    extra_warnings, bt = _fit_checks(result, runs, budget, backtest, holdout, compute_floor, fix_e, e_bounds)
    if as_json:
        _emit_json({**result.to_dict(), "warnings": list(runs.warnings) + extra_warnings, "law_file": written,
                    **({"backtest": bt.model_dump()} if bt is not None else {})})
        return
    from rich.table import Table

    t = Table(title=f"{form} fit to {runs_file}: {result.n_runs} runs, Huber objective {result.objective:.6g}")
    for col in ("coefficient", "value", "stderr", "95% interval"):
        t.add_column(col, justify="left" if col == "coefficient" else "right")
    for k, v in result.coefficients.items():
        se = result.stderr.get(k, math.nan)
        lo, hi = result.ci95.get(k, (math.nan, math.nan))
        t.add_row(k, f"{v:.6g}", "-" if math.isnan(se) else f"{se:.3g}",
                  "-" if math.isnan(lo) else f"[{lo:.4g}, {hi:.4g}]")
    con = _console()
    con.print(t)
    from laws.fit import DERIVED_MEANING

    for k, v in result.derived.items():
        lo_hi = result.derived_ci95.get(k)
        meaning = f"  [dim]({DERIVED_MEANING[k]})[/dim]" if k in DERIVED_MEANING else ""
        con.print(f"{k} = {v:.4g}" + (f"  95% [{lo_hi[0]:.4g}, {lo_hi[1]:.4g}]" if lo_hi else "") + meaning)
    for k, v in result.stats.items():
        con.print(f"[dim]{k} = {v:.4g}[/dim]")
    for d in list(result.diagnostics) + list(runs.warnings):
        con.print(f"[yellow]diagnostic:[/yellow] {d}")
    for w in extra_warnings:
        con.print(f"[yellow]warning:[/yellow] {w}")
    if bt is not None:
        _render_backtest(bt)
    if written:
        from planner.safe_io import shown

        written = shown(written)
        use = f"planner laws eval {written}" if form == "power" else f"planner optimize --law {written}"
        con.print(f"law written to {written}: use it with `{use}`")


def _fit_checks(result, runs, budget, backtest, holdout, compute_floor, fix_e, e_bounds):
    """``planner fit`` extras: the extrapolation warning at --budget and the --backtest result."""
    from laws.backtest import backtest as run_backtest
    from laws.backtest import extrapolation_warning
    from planner.errors import InputError

    warnings = []
    if budget is not None:
        w = extrapolation_warning(result, runs, budget)
        if w:
            warnings.append(w)
    if not backtest:
        return warnings, None
    bounds = None
    if e_bounds is not None:
        try:
            lo, hi = (float(v) for v in e_bounds.split(","))
        except ValueError:
            raise InputError("e_bounds", f"must be LO,HI (two numbers), got {e_bounds!r}") from None
        bounds = (lo, hi)
    try:
        return warnings, run_backtest(runs, holdout, compute_floor=compute_floor, E_fixed=fix_e, E_bounds=bounds)
    except ValueError as e:
        field = getattr(e, "field", "runs_file")
        raise InputError("runs_file" if field == "runs" else field, str(e)) from None


def _render_backtest(bt) -> None:
    from rich.table import Table

    con = _console()
    forms = list(bt.per_form)
    t = Table(title=f"backtest: fit on {bt.n_train} runs (<= {bt.train_max_flops:.3g} FLOPs), predict the "
                    f"{bt.n_holdout} largest ({bt.holdout_flops[0]:.3g}..{bt.holdout_flops[1]:.3g} FLOPs)")
    for col in ("params", "tokens", "FLOPs", "loss", *[f"{f} err" for f in forms]):
        t.add_column(col, justify="right")
    for r in bt.holdout_runs:
        t.add_row(f"{r.params:.3g}", f"{r.tokens:.3g}", f"{r.flops:.3g}", f"{r.loss:.4g}",
                  *[f"{100 * r.rel_error[f]:.2f}%" for f in forms])
    t.add_row("mean", "", "", "", *[f"{100 * bt.per_form[f].mean_rel_error:.2f}%" for f in forms])
    con.print(t)
    con.print(f"extrapolated best: [bold]{bt.best_form}[/bold] (mean relative error "
              f"{100 * bt.mean_rel_error:.2f}%)")
    for k, o in bt.options.items():
        con.print(f"  chinchilla option {k}: {100 * o.mean_rel_error:.2f}% ({o.description}; {o.n_train} runs)")
    if bt.best_option:
        con.print(f"best fitting option: {bt.best_option}")
    for n in bt.notes:
        con.print(f"[dim]note: {n}[/dim]")


@app.command()
def example(
    path: Annotated[str, typer.Argument(metavar="PATH", help="Where to write the example runs CSV.")] = "runs.csv",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a small SYNTHETIC runs CSV to try `planner fit` on (a known Chinchilla-form law plus noise)."""
    from importlib import resources
    from pathlib import Path

    from laws.fit.result import write_atomic
    from planner.errors import InputError

    target = Path(path)
    if target.exists() and not force:
        raise InputError("path", f"{path} exists; pass --force to overwrite it")
    text = resources.files("laws").joinpath("examples", "runs.csv").read_text(encoding="utf-8")
    try:
        write_atomic(target, text)
    except ValueError as e:
        raise InputError("path", str(e)) from None
    typer.echo(f"wrote {path}: 45 synthetic runs (params, tokens, loss) from Besiroglu et al. 2024's Chinchilla "
               "refit plus 0.5% noise; try `planner fit " + path + "`", err=True)
# What a form's fit needs to be identifiable: (input columns that must vary, number of fitted coefficients).
_FIT_NEEDS = {
    "chinchilla": lambda xs: (("params", "tokens"), 5),  # E, A, B, alpha, beta
    "kaplan": lambda xs: (("params", "tokens"), 4),  # Nc, Dc, alpha_N, alpha_D
    "muennighoff": lambda xs: ((), 2),  # R_D*, R_N* (the base law is held fixed)
    "power": lambda xs: (xs, len(xs) + 1),  # k and one exponent per input
}


def _console_err():
    from rich.console import Console

    return Console(stderr=True)


# ---- sweeps, exports, plots and launcher configs (planner.sweep / export / plots / launchers) ----------------

OPTION_OF.update({"csv": "--csv", "json_out": "--json-out", "xlsx": "--xlsx", "plot": "--plot", "emit": "--emit",
                  "emit_out": "--emit-out", "pareto": "--pareto", "export": "--csv/--json-out/--xlsx"})
CsvPath = Annotated[str | None, typer.Option("--csv", help="Write a CSV file (one row per plan).")]
JsonOut = Annotated[str | None, typer.Option("--json-out", help="Write the JSON object to this file.")]
XlsxPath = Annotated[str | None, typer.Option("--xlsx", help="Write an editable xlsx capacity plan (live formulas).")]
PlotPath = Annotated[str | None, typer.Option("--plot", help="Write a PNG plot (needs planner\\[plot]).")]
_REPLACED = "; an existing file is replaced"
CsvPath = Annotated[str | None, typer.Option("--csv", help="Write a CSV file (one row per plan)" + _REPLACED + ".")]
JsonOut = Annotated[str | None, typer.Option("--json-out", help="Write the JSON object to this file" + _REPLACED
                                             + ".")]
XlsxPath = Annotated[str | None, typer.Option("--xlsx", help="Write an editable xlsx capacity plan (live formulas)"
                                              + _REPLACED + ".")]
PlotPath = Annotated[str | None, typer.Option("--plot", help="Write a PNG plot (needs planner\\[plot])" + _REPLACED
                                              + ".")]


def _check_emit(emit: str | None, emit_out: str | None, as_json: bool) -> None:
    from planner.errors import InputError
    from planner.launchers import TARGETS

    if emit is None:
        if emit_out is not None:
            raise InputError("emit_out", "needs --emit TARGET (torchtitan, megatron, nanogpt or hf)")
        return
    if emit.strip().lower() not in (*TARGETS, "huggingface", "transformers"):
        raise InputError("emit", f"unknown launcher {emit!r}; allowed: {', '.join(TARGETS)}")
    if as_json and emit_out is None:
        raise InputError("emit_out", "with --json, stdout holds the JSON: give --emit-out PATH for the config")


def _check_outputs(**paths: str | None) -> None:
    """Refuse output paths that cannot be written (a directory, a device, a missing folder) before planning."""
    from planner.safe_io import check_output

    for field, path in paths.items():
        check_output(path, field)


def _write_exports(outs, target, csv_path, json_out, xlsx_path, law=None) -> list[str]:
    """Stage the CSV, JSON and xlsx files in ``outs`` (renamed into place together on its commit)."""
    from planner import export

    if csv_path:
        export.write_csv(target, csv_path, outputs=outs)
    if json_out:
        export.write_json(target, json_out, outputs=outs)
    if xlsx_path:
        export.write_xlsx(target, xlsx_path, law=law, outputs=outs)
    return [p for p in (csv_path, json_out, xlsx_path) if p]


def _wrote(written: list[str]) -> None:
    from planner.safe_io import shown

    for w in written:
        typer.echo(f"wrote {shown(w)}", err=True)


def _write_plan_outputs(plan, csv_path, json_out, xlsx_path, plot_path, emit, emit_out, law=None) -> bool:
    """Write the requested files for ``planner optimize`` (all or none: each goes to a temporary file first,
    renamed into place only when every one is written); True when the launcher config went to stdout."""
    from planner.safe_io import Outputs

    text = plan.to_config(emit) if emit else None
    with Outputs() as outs:
        written = _write_exports(outs, plan, csv_path, json_out, xlsx_path, law=law)
        if plot_path:
            from planner.plots import plot_isoflop

            plot_isoflop(plan, plot_path, law=law, outputs=outs)
            written.append(plot_path)
        if text is not None and emit_out:
            outs.write_text(emit_out, "emit_out", text)
            written.append(emit_out)
    _wrote(written)
    if text is not None and not emit_out:
        typer.echo(text, nl=False)
        return True
    return False


@app.command()
def sweep(
    budget: Annotated[str | None, typer.Option("--budget", help="FLOPs axis: 1e20:1e25:50 (log grid), "
                                               "1e21,1e22 or one value.")] = None,
    dollars: Annotated[str | None, typer.Option(help="Dollar-limit axis (USD), same grid syntax.")] = None,
    deadline_days: Annotated[str | None, typer.Option("--deadline-days", help="Deadline axis (days).")] = None,
    inference_tokens: Annotated[
        str | None, typer.Option("--inference-tokens", help="Served-tokens axis (tokens).")
    ] = None,
    gpus_axis: Annotated[
        str | None, typer.Option("--gpus", help="Accelerator axis: comma-separated ids (h100,b200) or any.")
    ] = None,
    gpu_hours: GpuHoursOpt = None,
    max_gpus: MaxGpusOpt = None,
    gpu: Annotated[str, typer.Option(help="Accelerator when --gpus is not swept.")] = "h100",
    law: LawOpt = None,
    mfu: MfuOpt = None,
    price: PriceOpt = None,
    price_tier: PriceTierOpt = None,
    precision: PrecisionOpt = "native",
    objective: ObjectiveOpt = "loss",
    target_loss: TargetLossOpt = None,
    goodput: GoodputOpt = None,
    batch_coupling: BatchCouplingOpt = None,
    seq_len: SeqLenOpt = 4096,
    tensor_parallel: TensorParallelOpt = None,
    min_step_seconds: MinStepOpt = None,
    catalog: CatalogOpt = None,
    min_params: MinParamsOpt = None,
    max_params: MaxParamsOpt = None,
    min_tokens: MinTokensOpt = None,
    max_tokens: MaxTokensOpt = None,
    moe: MoeOpt = None,
    experts: ExpertsOpt = None,
    max_experts: MaxExpertsOpt = 64,
    unique_tokens: UniqueTokensOpt = None,
    max_epochs: MaxEpochsOpt = 64.0,
    lr_law: LrLawOpt = None,
    pareto: Annotated[str | None, typer.Option(help="Show only a frontier: loss-cost or time-cost.")] = None,
    rows: Annotated[int, typer.Option(help="Most rows shown in the table.", min=1)] = 40,
    csv_path: CsvPath = None,
    json_out: JsonOut = None,
    xlsx_path: XlsxPath = None,
    plot_path: PlotPath = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Plan every point of a grid (budgets x dollars x deadlines x demand x accelerators); Pareto frontiers."""
    from planner import PlanRequest
    from planner.errors import InputError
    from planner.sweep import FRONTIERS, parse_grid
    from planner.sweep import sweep as run_sweep

    if pareto is not None and pareto not in FRONTIERS:
        raise InputError("pareto", f"unknown frontier {pareto!r}; allowed: {', '.join(FRONTIERS)}")
    grids = {f: parse_grid(spec, f) for f, spec in (("budget_flops", budget), ("dollars", dollars),
                                                   ("deadline_days", deadline_days),
                                                   ("inference_tokens", inference_tokens)) if spec is not None}
    base = PlanRequest.parse(
        **{f: v[0] for f, v in grids.items()}, gpu_hours=gpu_hours, max_gpus=max_gpus,
        gpu=gpus_axis.split(",")[0].strip() if gpus_axis and gpus_axis.strip() != "any" else gpu, law=law,
        mfu=mfu, price=price, price_tier=price_tier, precision=precision, catalog=tuple(catalog or ()),
        min_params=min_params, max_params=max_params, min_tokens=min_tokens, max_tokens=max_tokens,
        objective=objective, target_loss=target_loss, goodput=goodput, batch_coupling=batch_coupling,
        seq_len=seq_len, tensor_parallel=tensor_parallel, min_step_seconds=min_step_seconds, moe=moe,
        experts=experts, max_experts=max_experts, unique_tokens=unique_tokens, max_epochs=max_epochs, lr_law=lr_law,
    )
    _check_outputs(csv=csv_path, json_out=json_out, xlsx=xlsx_path, plot=plot_path)
    axes = dict(budgets=grids.get("budget_flops"), dollars=grids.get("dollars"),
                deadlines=grids.get("deadline_days"), inference_tokens=grids.get("inference_tokens"), gpus=gpus_axis)
    if not as_json and sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=_console_err(), transient=True) as bar:
            task = bar.add_task("sweep", total=None)
            result = run_sweep(base, **axes,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        result = run_sweep(base, **axes)

    from planner.safe_io import Outputs

    with Outputs() as outs:  # all files or none: renamed into place only when every one is written
        written = _write_exports(outs, result, csv_path, json_out, xlsx_path)
        if plot_path:
            from planner.plots import plot_pareto

            plot_pareto(result, plot_path, outputs=outs)
            written.append(plot_path)
    _wrote(written)
    if as_json:
        from planner.export import to_json

        _emit_json(to_json(result))
        return
    _render_sweep(result, pareto, rows)


def _short(x: float) -> str:
    """1.23e9 -> '1.23B' (K, M, B, T; larger in e-notation)."""
    x = float(f"{x:.3g}")
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}" if abs(x) < 1e3 * div or suffix == "T" and abs(x) < 1e15 else f"{x:.3g}"
    return f"{x:.3g}"


def _money(x: float) -> str:
    return f"${x:,.0f}" if abs(x) < 1e4 else "$" + _short(x)


def _render_sweep(result, pareto: str | None, max_rows: int) -> None:
    from rich import box
    from rich.table import Table

    con = _console()
    if not con.is_terminal:  # piped: do not squeeze the table into 80 columns
        con.width = max(con.width, 160)
    shown = result.frontier(pareto) if pareto else result.rows
    swept = [k for k in ("budget_flops", "dollars", "deadline_days", "inference_tokens", "gpu") if k in result.axes]
    title = (f"Sweep: {result.points:,} points, {len(result.rows):,} feasible"
             + (f"; {pareto} frontier ({len(shown)} points)" if pareto else ""))
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    heads = {"budget_flops": "FLOPs", "dollars": "$ limit", "deadline_days": "days max",
             "inference_tokens": "served", "gpu": "gpu", "total_cost_usd": "total $", "gpus": "devices"}
    cols = [*swept, "params", "tokens", "loss", "gpus", "hours", "total_cost_usd", "binding"]
    for c in cols:
        t.add_column(heads.get(c, c), justify="left" if c in ("gpu", "binding") else "right",
                     no_wrap=True)
    internal = {"throughput", "critical_batch", "dp_min", "step_time"}  # always or jointly binding: not limits
    fmt = {"binding": lambda b: " ".join(x for x in b.split(";") if x not in internal) or "-",
           "params": _short, "tokens": _short, "loss": "{:.4f}".format, "gpus": "{:,}".format,
           "hours": "{:,.0f}".format, "total_cost_usd": _money, "budget_flops": "{:.3g}".format, "dollars": _money,
           "deadline_days": "{:.3g}".format, "inference_tokens": _short}
    for row in shown[:max_rows]:
        t.add_row(*[("-" if row.get(c) is None else fmt[c](row[c]) if c in fmt else str(row[c])) for c in cols])
    con.print(t)
    if len(shown) > max_rows:
        con.print(f"[dim]... {len(shown) - max_rows:,} more rows (--rows N, or --csv / --xlsx / --json for all)[/dim]")
    for f in result.failures[:3]:
        con.print(f"[yellow]infeasible:[/yellow] {f.point}: {f.reason}")
    if len(result.failures) > 3:
        con.print(f"[dim]... {len(result.failures) - 3} more infeasible points[/dim]")
    con.print(f"[dim]{result.points:,} points in {result.elapsed_s:.2f} s "
              f"({result.elapsed_s / max(result.points, 1) * 1e3:.1f} ms/point)[/dim]")


# option names of the backtest and ladder fields (issue 15)
OPTION_OF.update({"target_flops": "--target-flops", "probe_budget": "--probe-budget", "noise": "--noise",
                  "runs": "--runs", "holdout": "--holdout", "E_fixed": "--fix-e", "E_bounds": "--e-bounds",
                  "e_bounds": "--e-bounds", "vocab": "--vocab", "robust": "--robust",
                  "confidence": "--confidence"})


@app.command()
def ladder(
    target_flops: Annotated[float, typer.Option(help="FLOPs of the run you are planning (the target C).")],
    probe_budget: Annotated[float, typer.Option(help="FLOPs you can spend on the small runs (P).")],
    runs_file: Annotated[str | None, typer.Option("--runs", help="CSV of runs already done (sequential).")] = None,
    gpu: Annotated[str, typer.Option(help="Accelerator for device-hours and dollars.")] = "h100",
    law: Annotated[str | None, typer.Option(help="Prior law id or law file (default: the default law).")] = None,
    noise: Annotated[float | None, typer.Option(
        help="Log-loss SD per run (default: from --runs, else 0.01).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the interval draws.")] = 0,
    csv_path: Annotated[str | None, typer.Option("--csv", help="Write the runs of both designs as CSV.")] = None,
    plot_path: Annotated[str | None, typer.Option(
        "--plot", help="PNG of the predicted intervals at the target (needs planner[plot]).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Propose the small runs that best pin down the optimal plan at --target-flops, vs an IsoFLOP ladder."""
    from planner.errors import InputError
    from planner.ladder_design import ladder as make_ladder
    from planner.ladder_report import plot_ladder, write_ladder_csv

    runs = None
    if runs_file is not None:
        from laws.runs import read_runs

        try:
            runs = read_runs(runs_file, min_rows=1)
        except ValueError as e:
            raise InputError("runs", str(e)) from None
    result = make_ladder(target_flops, probe_budget, runs=runs, gpu=gpu, law=law, noise=noise, seed=seed)
    if csv_path:
        write_ladder_csv(result, csv_path)
    if plot_path:
        plot_ladder(result, plot_path)
    if as_json:
        _emit_json(result.model_dump())
        return
    _render_ladder(result)


def _render_ladder(result) -> None:
    from rich.table import Table

    con = _console()
    d = result.design
    t = Table(title=f"proposed ladder: {int(d['levels'])} budgets x{d['ratio']:g} apart, {int(d['sizes'])} sizes "
                    f"x{d['step']:g} apart ({len(result.runs)} runs, {result.total_flops:.3g} FLOPs)")
    for col in ("params", "tokens", "FLOPs", "device-hours", "$", "layers", "d_model"):
        t.add_column(col, justify="right")
    for r in result.runs:
        t.add_row(f"{r.params:.3g}", f"{r.tokens:.3g}", f"{r.flops:.3g}", f"{r.gpu_hours:,.0f}",
                  f"{r.cost_usd:,.0f}", str(r.shape["layers"]), str(r.shape["d_model"]))
    con.print(t)
    for name, p in (("proposed", result.predicted), ("IsoFLOP baseline", result.baseline.predicted)):
        con.print(f"{name:>17}: loss at {result.target_flops:.3g} FLOPs 95% [{p.loss_ci[0]:.4f}, {p.loss_ci[1]:.4f}]"
                  f", N_opt 95% [{p.params_opt_ci[0]:.3g}, {p.params_opt_ci[1]:.3g}]")
    con.print(f"[dim]law {result.law}; noise {result.noise:.3g} ({result.noise_source}); {result.method}[/dim]")
    for n in result.notes:
        con.print(f"[dim]note: {n}[/dim]")


@app.command("robust-plan")
def robust_plan(
    budget: Annotated[float, typer.Option(help="Training FLOPs (6ND <= budget).")],
    law: Annotated[str | None, typer.Option(help="Law id or law file with [law.bootstrap] (default law: "
                                                 "its published uncertainty).")] = None,
    robust: Annotated[str, typer.Option(help="mean (sample-mean loss) or worst (central worst case).")] = "mean",
    confidence: Annotated[float, typer.Option(help="Central share of samples for worst and the intervals.")] = 0.9,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Robust params and tokens for a compute budget, next to the point-estimate plan (compute only)."""
    from planner.robust import robust_allocation

    r = robust_allocation(law, budget, robust, confidence)
    if as_json:
        _emit_json(r.model_dump())
        return
    from rich.table import Table

    t = Table(title=f"{r.mode}-robust plan for {r.budget_flops:.3g} FLOPs ({r.law}, {r.n_samples} samples)")
    for col in ("plan", "params", "tokens", "median loss", f"{100 * r.confidence:g}% interval", "worst (central)"):
        t.add_column(col, justify="right")
    for name, d in (("robust", r.robust), ("point estimate", r.point)):
        t.add_row(name, f"{d.params:.4g}", f"{d.tokens:.4g}", f"{d.median:.4f}",
                  f"[{d.interval[0]:.4f}, {d.interval[1]:.4f}]", f"{d.worst_central:.4f}")
    con = _console()
    con.print(t)
    con.print(f"cost of robustness: {r.cost_of_robustness:+.5f} in median loss")
    for n in r.notes:
        con.print(f"[dim]note: {n}[/dim]")


@app.command()
def gpus(
    catalog: Annotated[
        list[str] | None, typer.Option("--catalog", help="Extra accelerator catalog TOML (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the accelerator catalog (dense peak TFLOP/s, memory, bandwidth, default price)."""
    from cost_models.catalog import load_catalog

    cat = load_catalog(tuple(catalog or ()))
    if as_json:
        _emit_json({"accelerators": [a.model_dump(mode="json") for a in cat.accelerators.values()]})
        return
    from rich.table import Table

    t = Table(title="Accelerators (dense peak; prices USD per device-hour)")
    for col in ("id", "name", "bf16 TF/s", "fp8 TF/s", "fp4 TF/s", "HBM GB", "TB/s", "TDP W", "$/h", "tier"):
        t.add_column(col, justify="left" if col in ("id", "name", "tier") else "right")
    for a in cat.accelerators.values():
        pk = a.peak_tflops
        p = a.price()
        t.add_row(
            a.id, a.name, _g(pk.get("bf16", pk.get("fp16", 0))), _g(pk["fp8"]) if "fp8" in pk else "-",
            _g(pk["fp4"]) if "fp4" in pk else "-", _g(a.memory_gb), _g(a.memory_bandwidth_tbs),
            _g(a.tdp_w) if a.tdp_w else "-", f"{p.usd_per_hour:.2f}", p.tier,
        )
    _console().print(t)


@laws_app.callback()
def laws_main(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the law catalog (run `planner laws show ID` for one law)."""
    if ctx.invoked_subcommand is not None:
        return
    from laws.catalog import catalog

    laws = catalog()
    if as_json:
        _emit_json({"laws": [_law_json(law) for law in laws.values()]})
        return
    from rich.table import Table

    t = Table(title="Scaling laws")
    for col in ("id", "form", "title", "status"):
        t.add_column(col)
    for law in laws.values():
        t.add_row(law.id, law.form, law.info.title, law.info.status)
    _console().print(t)


@laws_app.command("show")
def laws_show(
    law_id: Annotated[str, typer.Argument(metavar="ID", help="Law id (see `planner laws`) or a law .toml file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One law: form, coefficients with units, citation, validity, outputs and their inputs."""
    import laws

    law = _get_law(law_id)
    info = laws.describe(law)
    if as_json:
        _emit_json(info)
        return
    from rich.table import Table

    t = Table(title=f"{law.id}: {law.info.title}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    for key in ("form", "citation", "status", "params_counts", "tokens_counts", "loss_units", "validity"):
        if info.get(key):
            t.add_row(key, str(info[key]))
    for k, v in info.get("coefficients", {}).items():
        t.add_row(f"coefficient {k}", f"{v:.6g}")
    for name, inputs in info.get("outputs", {}).items():
        t.add_row(f"output {name}", "inputs: " + ", ".join(inputs))
    t.add_row("geometric program", "yes" if info.get("dgp") else "no (treated as a discrete choice)")
    _console().print(t)


@laws_app.command("eval")
def laws_eval(
    law_id: Annotated[str, typer.Argument(metavar="ID", help="Law id or a law .toml file.")],
    params: Annotated[float | None, typer.Option(help="Parameters N (as the law counts them).")] = None,
    tokens: Annotated[float | None, typer.Option(help="Training tokens D.")] = None,
    flops: Annotated[float | None, typer.Option(help="Training FLOPs C.")] = None,
    unique_tokens: Annotated[float | None, typer.Option("--unique-tokens", help="Unique tokens U.")] = None,
    experts: Annotated[float | None, typer.Option(help="Experts E (MoE laws).")] = None,
    batch_tokens: Annotated[float | None, typer.Option("--batch-tokens", help="Batch size in tokens.")] = None,
    loss: Annotated[float | None, typer.Option(help="Loss (for laws of the loss, e.g. critical batch).")] = None,
    steps: Annotated[float | None, typer.Option(help="Optimizer steps.")] = None,
    non_embedding_params: Annotated[float | None, typer.Option(
        "--non-embedding-params", help="Non-embedding (active) params (Joint MoE LR law).")] = None,
    noise_scale: Annotated[float | None, typer.Option(
        "--noise-scale", help="Gradient noise scale B_noise, tokens (McCandlish).")] = None,
    min_steps: Annotated[float | None, typer.Option("--min-steps", help="S_min: steps at infinite batch.")] = None,
    min_tokens: Annotated[float | None, typer.Option("--min-tokens", help="E_min: tokens at tiny batch.")] = None,
    output: Annotated[str | None, typer.Option(help="Only this output (default: every computable one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate a law at the given inputs (every output computable from them)."""
    import laws

    law = _get_law(law_id)
    given = {"params": params, "tokens": tokens, "flops": flops, "unique_tokens": unique_tokens,
             "experts": experts, "batch_tokens": batch_tokens, "loss": loss, "steps": steps,
             "non_embedding_params": non_embedding_params, "noise_scale": noise_scale, "min_steps": min_steps,
             "min_tokens": min_tokens}
    values = laws.evaluate(law, output, **{k: v for k, v in given.items() if v is not None})
    units = laws.describe(law).get("units", {})
    if as_json:
        _emit_json({"law": law.id, "inputs": {k: v for k, v in given.items() if v is not None}, "outputs": values,
                    "units": {k: units.get(k, "") for k in values}})
        return
    for k, v in values.items():
        unit = units.get(k, "")
        typer.echo(f"{k} = {v:.6g}" + (f" {unit}" if unit else ""))


def _get_law(law_id: str):
    from laws import LawError, get_law
    from planner.errors import InputError

    try:
        return get_law(law_id)
    except LawError as e:
        raise InputError("law", str(e)) from None


def _law_json(law) -> dict[str, Any]:
    from dataclasses import asdict

    return {**asdict(law.info), "coefficients": dict(law.coefficients), "inputs": list(law.inputs),
            "output": law.output, "dgp": law.dgp, "bootstrap_samples": 0 if law.bootstrap is None
            else len(next(iter(law.bootstrap.values())))}


if __name__ == "__main__":  # pragma: no cover
    app()
