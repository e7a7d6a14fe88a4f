"""``planner gpus`` and ``planner laws`` (list, show, eval): the accelerator and law catalogs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import _console, _emit_json, _g, app, laws_app


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
