"""``planner ladder`` and ``planner robust-plan``: which small runs to do, and plans robust to the law."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import OPTION_OF, _console, _emit_json, app

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
