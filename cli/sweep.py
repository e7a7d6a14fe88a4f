"""``planner sweep``: plan every point of a grid; Pareto frontiers."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.common import _console, _console_err, _emit_json, app
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
from cli.outputs import _check_outputs, _write_exports, _wrote


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
    workers: Annotated[int | None, typer.Option(
        help="Worker processes for a large grid (default: every core; 1 solves in this process).", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Plan every point of a grid (budgets x dollars x deadlines x demand x accelerators); Pareto frontiers.

    Without --json, --json-out, --xlsx or --plot the points are streamed: the CSV is written row by row (to a
    temporary file renamed at the end) and only the rows shown and the frontiers are kept in memory."""
    from planner import PlanRequest
    from planner.errors import InputError
    from planner.safe_io import Outputs
    from planner.sweep import FRONTIERS, iter_sweep, parse_grid
    from planner.sweep import sweep as run_sweep
    from planner.sweep_digest import SweepDigest, write_csv_rows
    from planner.sweep_pool import default_workers

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
                deadlines=grids.get("deadline_days"), inference_tokens=grids.get("inference_tokens"), gpus=gpus_axis,
                workers=workers or default_workers())
    full = as_json or json_out or xlsx_path or plot_path  # these need every row and plan
    with _progress_bar(as_json) as progress, _exit_on_sigterm(), Outputs() as outs:  # all files or none
        if full:
            result = run_sweep(base, **axes, progress=progress)
            digest = SweepDigest.of_result(result, keep_rows=rows)
            written = _write_exports(outs, result, csv_path, json_out, xlsx_path)
            if plot_path:
                from planner.plots import plot_pareto

                plot_pareto(result, plot_path, outputs=outs)
                written.append(plot_path)
        else:
            stream = iter_sweep(base, **axes)
            digest = SweepDigest(stream.axes, keep_rows=rows)
            try:
                if csv_path:
                    outs.write(csv_path, "csv", lambda tmp: write_csv_rows(tmp, digest.rows_of(stream, progress,
                                                                                           stream.total)))
                else:
                    digest.consume(stream, progress, stream.total)
            finally:
                stream.close()
            written = [csv_path] if csv_path else []
    _wrote(written)
    if as_json:
        from planner.export import to_json

        _emit_json(to_json(result))
        return
    _render_sweep(digest, pareto, rows)


def _exit_on_sigterm():
    """A context in which SIGTERM ends the command as an exception would (exit code 143): the temporary output
    files are removed and the sweep's worker processes stopped. Only in the main thread (where signals go)."""
    import signal
    import threading
    from contextlib import contextmanager, nullcontext

    if threading.current_thread() is not threading.main_thread():
        return nullcontext()

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    @contextmanager
    def handler():
        old = signal.signal(signal.SIGTERM, stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, old)

    return handler()


def _progress_bar(as_json: bool):
    """A progress bar on a terminal's stderr (none with --json or when piped): a context manager yielding the
    sweep's ``progress(done, total)`` callback, or None."""
    from contextlib import contextmanager, nullcontext

    if as_json or not sys.stderr.isatty():
        return nullcontext()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    @contextmanager
    def bar():
        with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=_console_err(), transient=True) as p:
            task = p.add_task("sweep", total=None)
            yield lambda done, total: p.update(task, completed=done, total=total)

    return bar()


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
    """Print a sweep's table from its digest (planner.sweep_digest.SweepDigest)."""
    from rich import box
    from rich.table import Table

    con = _console()
    if not con.is_terminal:  # piped: do not squeeze the table into 80 columns
        con.width = max(con.width, 160)
    shown = result.frontier(pareto) if pareto else result.rows
    swept = [k for k in ("budget_flops", "dollars", "deadline_days", "inference_tokens", "gpu") if k in result.axes]
    title = (f"Sweep: {result.points:,} points, {result.feasible:,} feasible"
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
    n_shown = len(shown) if pareto else result.feasible
    if n_shown > max_rows:
        con.print(f"[dim]... {n_shown - max_rows:,} more rows (--rows N, or --csv / --xlsx / --json for all)[/dim]")
    for f in result.failures[:3]:
        con.print(f"[yellow]infeasible:[/yellow] {f.point}: {f.reason}")
    if result.failed > 3:
        con.print(f"[dim]... {result.failed - 3:,} more infeasible points[/dim]")
    con.print(f"[dim]{result.points:,} points in {result.elapsed_s:.2f} s "
              f"({result.elapsed_s / max(result.points, 1) * 1e3:.1f} ms/point)[/dim]")
