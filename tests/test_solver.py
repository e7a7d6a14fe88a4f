"""Solver discipline: Clarabel first, SCS on any failure, inaccurate answers never returned as a plan.

Each test runs on both solve paths: the direct cone path (planner.cone, Clarabel called without cvxpy) and
cvxpy's own solve (``planner.program.DIRECT = False``, the reference)."""

import cvxpy as cp
import pytest

import planner.program as program
from planner import optimize
from planner.cone import ConeProgram
from planner.errors import InputError

PATHS = ("direct", "cvxpy")


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    monkeypatch.setattr(program, "DIRECT", request.param == "direct")
    return request.param


def _fail_clarabel(monkeypatch, path, error):
    """Clarabel raises ``error`` on the given path (SCS, through cvxpy, still works)."""
    real = cp.Problem.solve

    def failing(self, *args, solver=None, **kw):
        if solver == "CLARABEL":
            raise error("simulated failure")
        return real(self, *args, solver=solver, **kw)

    def failing_direct(self, *args, **kw):
        raise error("simulated failure")

    monkeypatch.setattr(cp.Problem, "solve", failing)
    if path == "direct":
        monkeypatch.setattr(ConeProgram, "solve_data", failing_direct)


def test_clarabel_solves_by_default(path):
    plan = optimize(budget_flops=1e22, gpu="h100")
    assert (plan.status, plan.solver) == ("optimal", "CLARABEL")


@pytest.mark.parametrize("error", [cp.error.SolverError, RuntimeError, ValueError])
def test_falls_back_to_scs_when_clarabel_raises(monkeypatch, path, error):
    _fail_clarabel(monkeypatch, path, error)
    reference = optimize(budget_flops=2e22, gpu="a100-80gb", batch_coupling=False)
    plan = optimize(budget_flops=1e22, gpu="a100-80gb")
    assert plan.solver == "SCS" and plan.status == "optimal"
    assert plan.flops <= 1e22 * (1 + 1e-9)
    assert reference.flops > 0


def test_inaccurate_answers_are_a_solver_failure(monkeypatch, path):
    """Before: an optimal_inaccurate plan came back with exit 0 (flops 8e-4, loss 10,255 with a tiny
    iteration limit). Now no solver certifying the request is an InputError naming the solver field."""
    real = cp.Problem.solve
    real_direct = ConeProgram.solve_data

    def inaccurate(self, *args, **kw):
        out = real(self, *args, **kw)
        self._status = cp.OPTIMAL_INACCURATE
        return out

    def inaccurate_direct(self, *args, **kw):
        ans = real_direct(self, *args, **kw)
        ans.status = "optimal_inaccurate"
        return ans

    monkeypatch.setattr(cp.Problem, "solve", inaccurate)
    monkeypatch.setattr(ConeProgram, "solve_data", inaccurate_direct)
    with pytest.raises(InputError, match="solver could not certify a plan"):
        optimize(budget_flops=3e21, gpu="a100-80gb")


def test_direct_path_reports_what_each_solver_did(monkeypatch):
    """Clarabel failing on the direct path and SCS answering inaccurately: solver_error naming both."""
    from cost_models.catalog import load_catalog
    from planner.optimize import _law, _variants
    from planner.request import PlanRequest
    from planner.solve import Candidate, probe_layout, program_inputs, shape_for

    monkeypatch.setattr(program, "DIRECT", True)
    request = PlanRequest.parse(budget_flops=1e22, gpu="h100")
    var = _variants(request, _law(request))[0]
    acc = load_catalog(request.catalog).get("h100")
    cand = Candidate(acc, "bf16", acc.peak_flops("bf16"), 2.0, "given")
    lay = probe_layout(request, cand, 1)
    st, values = program_inputs(request, var, cand, lay, shape_for(var, 1e9, request.seq_len), 1e9,
                                frozenset({"flops"}))
    prog = program.TrainingProgram(var.law, st)
    assert prog.solve(values).status == "optimal"

    def failing_direct(self, *args, **kw):
        raise RuntimeError("simulated failure")

    real = cp.Problem.solve

    def inaccurate(self, *args, **kw):
        out = real(self, *args, **kw)
        self._status = cp.OPTIMAL_INACCURATE
        return out

    monkeypatch.setattr(ConeProgram, "solve_data", failing_direct)
    monkeypatch.setattr(cp.Problem, "solve", inaccurate)
    sol = prog.solve(values)
    assert sol.status == "solver_error" and sol.solver == "none"
    assert sol.errors[0].startswith("CLARABEL: RuntimeError")
    assert sol.errors[1].startswith("CLARABEL (static_regularization_constant=1e-07): RuntimeError")
    assert sol.errors[2].startswith("CLARABEL (max_step_fraction=0.9): RuntimeError")
    assert sol.errors[3:] == ["SCS: optimal_inaccurate"]
