"""Solver discipline: Clarabel first, SCS on any failure, inaccurate answers never returned as a plan."""

import cvxpy as cp
import pytest

from planner import optimize
from planner.errors import InputError


def test_clarabel_solves_by_default():
    plan = optimize(budget_flops=1e22, gpu="h100")
    assert (plan.status, plan.solver) == ("optimal", "CLARABEL")


@pytest.mark.parametrize("error", [cp.error.SolverError, RuntimeError, ValueError])
def test_falls_back_to_scs_when_clarabel_raises(monkeypatch, error):
    real = cp.Problem.solve

    def failing(self, *args, solver=None, **kw):
        if solver == "CLARABEL":
            raise error("simulated failure")
        return real(self, *args, solver=solver, **kw)

    monkeypatch.setattr(cp.Problem, "solve", failing)
    reference = optimize(budget_flops=2e22, gpu="a100-80gb", batch_coupling=False)
    monkeypatch.setattr(cp.Problem, "solve", failing)
    plan = optimize(budget_flops=1e22, gpu="a100-80gb")
    assert plan.solver == "SCS" and plan.status == "optimal"
    assert plan.flops <= 1e22 * (1 + 1e-9)
    assert reference.flops > 0


def test_inaccurate_answers_are_a_solver_failure(monkeypatch):
    """Before: an optimal_inaccurate plan came back with exit 0 (flops 8e-4, loss 10,255 with a tiny
    iteration limit). Now no solver certifying the request is an InputError naming the solver field."""
    real = cp.Problem.solve

    def inaccurate(self, *args, **kw):
        out = real(self, *args, **kw)
        self._status = cp.OPTIMAL_INACCURATE
        return out

    monkeypatch.setattr(cp.Problem, "solve", inaccurate)
    with pytest.raises(InputError, match="solver could not certify a plan"):
        optimize(budget_flops=3e21, gpu="a100-80gb")
