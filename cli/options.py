"""Option types shared by several commands (typer ``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import OPTION_OF

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


ShapeFile = Annotated[str | None, typer.Option("--shape", help="Model shape file (TOML/JSON of ModelShape fields).")]
Layers = Annotated[int | None, typer.Option(help="Layers (with --d-model instead of --shape).")]
DModel = Annotated[int | None, typer.Option("--d-model", help="Model width.")]
Heads = Annotated[int | None, typer.Option(help="Attention heads (default d_model/128).")]
KvHeads = Annotated[int | None, typer.Option("--kv-heads", help="KV heads (GQA; default = heads).")]
FfnHidden = Annotated[int | None, typer.Option("--ffn-hidden", help="FFN width (default SwiGLU 8/3·d_model).")]
Vocab = Annotated[int | None, typer.Option(help="Vocabulary size (default 128256).")]
Experts = Annotated[int, typer.Option(help="Routed experts per layer (1 = dense).")]
TopK = Annotated[int, typer.Option("--top-k", help="Experts active per token.")]


# ---- sweeps, exports, plots and launcher configs (planner.sweep / export / plots / launchers) ----------------

OPTION_OF.update({"csv": "--csv", "json_out": "--json-out", "xlsx": "--xlsx", "plot": "--plot", "emit": "--emit",
                  "emit_out": "--emit-out", "pareto": "--pareto", "export": "--csv/--json-out/--xlsx",
                  "workers": "--workers"})
_REPLACED = "; an existing file is replaced"
CsvPath = Annotated[str | None, typer.Option("--csv", help="Write a CSV file (one row per plan)" + _REPLACED + ".")]
JsonOut = Annotated[str | None, typer.Option("--json-out", help="Write the JSON object to this file" + _REPLACED
                                             + ".")]
XlsxPath = Annotated[str | None, typer.Option("--xlsx", help="Write an editable xlsx capacity plan (live formulas)"
                                              + _REPLACED + ".")]
PlotPath = Annotated[str | None, typer.Option("--plot", help="Write a PNG plot (needs planner\\[plot])" + _REPLACED
                                              + ".")]
