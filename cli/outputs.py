"""Output files of optimize and sweep: checked before planning, written all or none, launcher configs."""

from __future__ import annotations

import typer


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
    if not (csv_path or json_out or xlsx_path):
        return []  # planner.export is imported only when a file is asked for
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
