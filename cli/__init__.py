"""planner command line: a thin typer + rich shell over the planner, laws and cost_models APIs.

Heavy modules (numpy, pydantic models, cvxpy) are imported inside commands so ``planner --help`` is instant.
Every error is one line on stderr with exit code 2.

Modules: ``common`` (the app, one-line errors, console and JSON helpers), ``options`` (shared option types),
``outputs`` (files of optimize and sweep), one module per command group: ``optimize``, ``costs`` (cost,
serve-cost), ``fitting`` (fit, example), ``sweep``, ``ladder`` (ladder, robust-plan), ``catalogs`` (gpus, laws).
Importing this package registers every command, in the order ``planner --help`` lists them.
"""

from importlib import import_module

from cli.common import _plural, app, laws_app

for _module in ("optimize", "costs", "fitting", "sweep", "ladder", "catalogs"):  # the order of `planner --help`
    import_module(f"cli.{_module}")  # registers the module's commands on ``app``

__all__ = ["_plural", "app", "laws_app"]
