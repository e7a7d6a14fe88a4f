"""planner: choose model size, tokens and cluster jointly under compute, money and time limits.

    from planner import optimize, PlanRequest
    plan = optimize(PlanRequest(budget_flops=1e22, gpu="h100"))
"""

from importlib import import_module
from typing import TYPE_CHECKING

from planner.errors import InfeasiblePlanError, InputError
from planner.optimize import optimize  # eager: the submodule's name would otherwise shadow the function

# Imported on first use (PEP 562), so a cold `planner optimize` loads neither the fitting nor the ladder code.
_LAZY = {
    "FitReport": "planner.fitting", "fit": "planner.fitting",
    "Ladder": "planner.ladder_design", "ladder": "planner.ladder_design",
    "Alternative": "planner.plan", "ConstraintReport": "planner.plan", "InferenceCost": "planner.plan",
    "Plan": "planner.plan",
    "PlanRequest": "planner.request",
    "RobustAllocation": "planner.robust", "robust_allocation": "planner.robust",
}

if TYPE_CHECKING:
    from planner.fitting import FitReport, fit
    from planner.ladder_design import Ladder, ladder
    from planner.plan import Alternative, ConstraintReport, InferenceCost, Plan
    from planner.request import PlanRequest
    from planner.robust import RobustAllocation, robust_allocation


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'planner' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def backtest(runs, holdout: float = 0.2, **options):
    """Backtest fits on ``runs``: see ``laws.backtest.backtest``."""
    from laws.backtest import backtest as _backtest

    return _backtest(runs, holdout, **options)


__all__ = [
    "Alternative",
    "ConstraintReport",
    "FitReport",
    "InferenceCost",
    "InfeasiblePlanError",
    "InputError",
    "Ladder",
    "Plan",
    "PlanRequest",
    "RobustAllocation",
    "backtest",
    "fit",
    "ladder",
    "optimize",
    "robust_allocation",
]
