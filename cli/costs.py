"""``planner cost`` and ``planner serve-cost``: price a given training run or a serving deployment."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import _console, _emit_json, app
from cli.options import DModel, Experts, FfnHidden, Heads, KvHeads, Layers, ShapeFile, TopK, Vocab


def _shape_options(shape_file, layers, d_model, heads, kv_heads, ffn_hidden, vocab, experts, top_k, seq_len):
    from planner.evaluate import load_shape, shape_from_options

    if shape_file:
        return load_shape(shape_file)
    return shape_from_options(layers, d_model, heads, kv_heads, ffn_hidden, vocab, experts, top_k, seq_len)


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
