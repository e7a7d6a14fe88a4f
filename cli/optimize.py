"""``planner optimize``: the plan under the given limits, and its table."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import _console, _emit_json, _g, _plural, app
from cli.options import (
    BatchCouplingOpt,
    CatalogOpt,
    CsvPath,
    ExpertsOpt,
    GoodputOpt,
    GpuHoursOpt,
    JsonOut,
    LawOpt,
    LrLawOpt,
    MaxEpochsOpt,
    MaxExpertsOpt,
    MaxGpusOpt,
    MaxParamsOpt,
    MaxTokensOpt,
    MfuOpt,
    MinParamsOpt,
    MinStepOpt,
    MinTokensOpt,
    MoeOpt,
    ObjectiveOpt,
    PlotPath,
    PrecisionOpt,
    PriceOpt,
    PriceTierOpt,
    SeqLenOpt,
    TargetLossOpt,
    TensorParallelOpt,
    UniqueTokensOpt,
    XlsxPath,
)
from cli.outputs import _check_emit, _check_outputs, _write_plan_outputs


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
    robust: Annotated[str | None, typer.Option(help="Robust plan over the law's samples: mean or worst.")] = None,
    confidence: Annotated[float, typer.Option(help="Central share of samples (--robust worst, intervals).")] = 0.9,
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
        serve_gpu=serve_gpu, serve_precision=serve_precision, robust=robust, confidence=confidence,
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
    if plan.robust:  # robust plan next to the point-estimate plan (planner.robust_plan)
        r = plan.robust
        rt = Table(title=f"{r.mode}-robust vs point-estimate plan: loss over {r.n_samples} samples")
        for col in ("plan", "params", "tokens", "median loss", f"{r.confidence:.0%} interval", "mean", "worst"):
            rt.add_column(col, justify="right")
        for name, d in (("robust", r.robust), ("point estimate", r.point)):
            rt.add_row(name, f"{d.params:.4g}", f"{d.tokens:.4g}", f"{d.median:.4f}",
                       f"[{d.interval[0]:.4f}, {d.interval[1]:.4f}]", f"{d.mean:.4f}", f"{d.worst_central:.4f}")
        con.print(rt)
        con.print(f"cost of robustness: {r.cost_of_robustness:+.5f} median loss; central worst case "
                  f"{-r.worst_gain:+.5f}")
        po = r.program_optimum
        con.print(f"[dim]robust program optimum (continuous): {po['params']:.4g} params, {po['tokens']:.4g} tokens, "
                  f"robust loss {po['objective_value']:.5f} vs {po['point_objective_value']:.5f} at the point "
                  "plan's optimum[/dim]")
    for n in plan.notes:
        con.print(f"[dim]note: {n}[/dim]")
    con.print(f"[dim]law: {plan.law_citation}[/dim]")
    con.print(f"[dim]MFU: {plan.mfu_source}; price: {plan.price_source}[/dim]")
