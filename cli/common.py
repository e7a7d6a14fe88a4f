"""The app, its one-line error handling, and the console and JSON helpers every command uses."""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

import typer
import typer.main
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


class _App(typer.Typer):
    """The app. Run as the ``planner`` program, it builds only the command named on the command line (building
    every command's options takes ~50 ms of a cold ``planner optimize``); anything else (no command, ``--help``,
    a command group, an unknown name) builds them all."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = sys.argv[1] if len(sys.argv) > 1 and not args and not kwargs else None
        chosen = [c for c in self.registered_commands
                  if name is not None and (c.name or c.callback.__name__.replace("_", "-")) == name]
        if len(chosen) != 1:
            return super().__call__(*args, **kwargs)
        one = copy.copy(self)  # the same app with one command, still a group: `planner NAME ...` parses as before
        one.registered_commands, one.registered_groups = chosen, []
        return typer.main.get_group(one)()


app = _App(
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


def _console_err():
    from rich.console import Console

    return Console(stderr=True)
