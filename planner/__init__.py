"""planner: choose model size, tokens and cluster jointly under compute, money and time limits.

    from planner import optimize, PlanRequest
    plan = optimize(PlanRequest(budget_flops=1e22, gpu="h100"))
"""

from planner.errors import InfeasiblePlanError, InputError
from planner.fitting import FitReport, fit
from planner.ladder_design import Ladder, ladder
from planner.optimize import optimize
from planner.plan import Alternative, ConstraintReport, InferenceCost, Plan
from planner.request import PlanRequest
from planner.robust import RobustAllocation, robust_allocation


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
