"""``planner fit`` (with --backtest) and ``planner example``: fit a scaling law to runs."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import _console, _console_err, _emit_json, app
from cli.outputs import _wrote


@app.command()
def fit(
    runs_file: Annotated[str, typer.Argument(metavar="RUNS.csv", help="CSV with params,tokens,loss columns.")],
    form: Annotated[str, typer.Option(help="chinchilla, kaplan, muennighoff or power.")] = "chinchilla",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for confidence intervals.", min=0,
                                           max=100_000)] = 0,
    seed: Annotated[int, typer.Option(help="Random seed for the bootstrap.")] = 0,
    workers: Annotated[int | None, typer.Option(
        help="Processes for the bootstrap (default: every core when it is large enough to pay for starting them, "
             "bootstraps x runs >= 1e6; the same numbers for any count).", min=1, max=256)] = None,
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
