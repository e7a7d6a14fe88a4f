"""The direct cone path (planner.cone) equals cvxpy's own solve of the same program.

For every program kind the planner builds (each objective, with and without serving, MoE, data-constrained,
fixed batch, robust mean and worst case, every limit kind, and the elastic programs that diagnose infeasible
requests) 100 random requests are turned into the program's inputs (planner.solve.program_inputs at a random
layout and size) and solved both ways: status, primal values, objective, duals and constraint sides must agree
to 1e-9 relative (both paths hand Clarabel the same data; the reference solves without warm start, so neither
depends on solve history)."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

import planner.program as program
from cost_models.catalog import load_catalog
from cost_models.cluster import candidate_layouts
from planner.optimize import _law, _variants
from planner.program import ALWAYS, DATA, Structure, get_program
from planner.request import PlanRequest
from planner.solve import Candidate, active_constraints, program_inputs, shape_for

REQUESTS = 100
RTOL = 1e-9


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _budget(rng):
    return {"budget_flops": _log_uniform(rng, 1e19, 1e25)}


# kind -> random request fields (every limit kind, each objective, serving, MoE, data-constrained, fixed batch)
KINDS = {
    "loss-flops": _budget,
    "loss-dollars": lambda r: {"dollars": _log_uniform(r, 1e3, 1e8)},
    "loss-gpu_hours": lambda r: {"gpu_hours": _log_uniform(r, 10, 1e7)},
    "loss-deadline-max_gpus": lambda r: {**_budget(r), "deadline_days": _log_uniform(r, 0.5, 200),
                                         "max_gpus": r.choice([8, 64, 512, 4096])},
    "loss-params-tokens": lambda r: {**_budget(r), "max_params": _log_uniform(r, 1e8, 1e11),
                                     "max_tokens": _log_uniform(r, 1e10, 1e13),
                                     "min_params": _log_uniform(r, 1e6, 1e8),
                                     "min_tokens": _log_uniform(r, 1e8, 1e10)},
    "loss-step_time": lambda r: {**_budget(r), "min_step_seconds": _log_uniform(r, 0.01, 100)},
    "cost-target": lambda r: {"objective": "cost", "target_loss": r.uniform(1.9, 2.8)},
    "time-target": lambda r: {"objective": "time", "target_loss": r.uniform(1.9, 2.8),
                              "dollars": _log_uniform(r, 1e4, 1e8), "max_gpus": r.choice([64, 512, 4096])},
    "loss-serving": lambda r: {**_budget(r), "inference_tokens": _log_uniform(r, 1e9, 1e14)},
    "cost-serving-latency": lambda r: {"objective": "cost", "target_loss": r.uniform(2.0, 2.6),
                                       "inference_tokens": _log_uniform(r, 1e9, 1e14),
                                       "tpot_ms": _log_uniform(r, 5, 200), "ttft_ms": _log_uniform(r, 50, 5000)},
    "moe": lambda r: {**_budget(r), "experts": r.choice([2, 8, 32])},
    "data-constrained": lambda r: {**_budget(r), "unique_tokens": _log_uniform(r, 1e9, 1e12),
                                   "max_epochs": r.choice([4.0, 16.0, 100.0])},
    "fixed-batch": lambda r: {**_budget(r), "batch_coupling": False},
    "robust-mean": _budget,
    "robust-worst": lambda r: {**_budget(r), "max_params": _log_uniform(r, 1e9, 1e11)},
}


def _robust_terms(mode: str):
    """The robust loss (planner.robust_terms) of the default law's published uncertainty, as robust plans use."""
    from laws.uncertainty import with_samples
    from planner.robust import central_samples
    from planner.robust_terms import check_law, mean_terms, worst_terms

    law = with_samples(_law(PlanRequest.parse(budget_flops=1e22)))
    samples = check_law(law)
    if mode == "mean":
        return mean_terms(samples)
    return worst_terms(samples, central_samples(law, 0.9, (1e9, 2e10), samples), 0.9)


def _rel(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def _same(direct, reference) -> list[str]:
    """What differs between two Solutions beyond RTOL (empty when they agree)."""
    bad = []
    if direct.status != reference.status:
        return [f"status {direct.status} != {reference.status}"]
    for f in ("value", "params", "tokens", "devices", "hours", "effective_tokens", "batch_tokens"):
        if _rel(getattr(direct, f), getattr(reference, f)) > RTOL:
            bad.append(f"{f} {getattr(direct, f)!r} != {getattr(reference, f)!r}")
    if direct.duals.keys() != reference.duals.keys() or direct.sides.keys() != reference.sides.keys():
        return bad + ["constraint names differ"]
    for k in direct.duals:
        if _rel(direct.duals[k], reference.duals[k]) > RTOL and abs(direct.duals[k] - reference.duals[k]) > 1e-12:
            bad.append(f"dual {k} {direct.duals[k]!r} != {reference.duals[k]!r}")
    for k in direct.sides:
        for i in (0, 1):
            if _rel(direct.sides[k][i], reference.sides[k][i]) > RTOL:
                bad.append(f"side {k}[{i}] {direct.sides[k][i]!r} != {reference.sides[k][i]!r}")
    return bad


def _both(monkeypatch, prog, values):
    assert prog.cone() is not None, prog.cone_error   # the direct path is really taken (not cvxpy's as fallback)
    monkeypatch.setattr(program, "DIRECT", True)
    direct = prog.solve(values)
    monkeypatch.setattr(program, "DIRECT", False)
    reference = prog.solve(values)
    return direct, reference


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_direct_equals_cvxpy(monkeypatch, kind):
    rng = random.Random(f"direct-{kind}")
    catalog = load_catalog()
    statuses: dict[str, int] = {}
    elastic_checked = 0
    robust = _robust_terms(kind.removeprefix("robust-")) if kind.startswith("robust-") else None
    for _ in range(REQUESTS):
        gpu = rng.choice(["h100", "a100-80gb"])
        request = PlanRequest.parse(gpu=gpu, **KINDS[kind](rng))
        variants = _variants(request, _law(request))
        var = rng.choice(variants)
        if robust is not None:
            var = dataclasses.replace(var, robust=robust)
        acc = catalog.get(gpu)
        cand = Candidate(acc, "bf16", acc.peak_flops("bf16"), acc.price(request.price_tier).usd_per_hour, "catalog")
        n = _log_uniform(rng, 1e8, 3e10)
        shape = shape_for(var, n, request.seq_len)
        layouts = [lay for lay in candidate_layouts(acc.devices_per_node, moe_experts=shape.experts,
                                                    max_pp=shape.layers) if shape.heads % lay.tp == 0]
        layout = rng.choice(layouts)
        active = active_constraints(request, var)
        st, values = program_inputs(request, var, cand, layout, shape, n, active)
        prog = get_program(var.law, st)
        direct, reference = _both(monkeypatch, prog, values)
        assert direct.solver == reference.solver, (direct, reference)   # CLARABEL, or SCS when Clarabel fails
        assert not _same(direct, reference), (kind, st, _same(direct, reference))
        statuses[direct.status] = statuses.get(direct.status, 0) + 1
        limits = sorted(st.active - ALWAYS - DATA - {"sizing"})
        if direct.status == "infeasible" and limits and elastic_checked < 20:
            # the diagnosis program: the smallest relaxation of one limit
            est = Structure(**{**st.__dict__, "elastic": rng.choice(limits)})
            d, r = _both(monkeypatch, get_program(var.law, est), values)
            assert not _same(d, r), (kind, est, _same(d, r))
            elastic_checked += 1
    assert statuses.get("optimal", 0) >= 10, statuses  # the kind is exercised, not only its failures


def test_direct_path_needs_no_cvxpy_objects(monkeypatch):
    """After the first solve the direct path never touches the cvxpy problem (built lazily)."""
    request = PlanRequest.parse(budget_flops=1e22, gpu="h100")
    var = _variants(request, _law(request))[0]
    acc = load_catalog().get("h100")
    cand = Candidate(acc, "bf16", acc.peak_flops("bf16"), 2.0, "given")
    lay = candidate_layouts(acc.devices_per_node, max_pp=8)[0]
    shape = shape_for(var, 1e9, request.seq_len)
    st, values = program_inputs(request, var, cand, lay, shape, 1e9, frozenset({"flops"}))
    monkeypatch.setattr(program, "DIRECT", True)
    prog = program.TrainingProgram(var.law, st)
    prog.solve(values)   # compiles (or loads) the cone program
    fresh = program.TrainingProgram(var.law, st)   # a new process would start like this: cache hit
    sol = fresh.solve(values)
    assert fresh._cvx is None and sol.status == "optimal"
    assert not _same(sol, prog.solve(values))


def _flops_program():
    """(the program, its Parameter values) of a 1e22-FLOP H100 plan at 1e9 params on the first layout."""
    request = PlanRequest.parse(budget_flops=1e22, gpu="h100")
    var = _variants(request, _law(request))[0]
    acc = load_catalog().get("h100")
    cand = Candidate(acc, "bf16", acc.peak_flops("bf16"), 2.0, "given")
    lay = candidate_layouts(acc.devices_per_node, max_pp=8)[0]
    st, values = program_inputs(request, var, cand, lay, shape_for(var, 1e9, request.seq_len), 1e9,
                                frozenset({"flops"}))
    return get_program(var.law, st), values


def test_bad_parameter_values_raise_as_cvxpy_does(monkeypatch):
    """A negative or NaN Parameter value raises ValueError on both paths (cvxpy's Parameter(pos=True) setter);
    zero, which cvxpy's setter lets through to log(0), raises on the direct path; a missing one is a KeyError."""
    prog, values = _flops_program()
    for direct in (True, False):
        monkeypatch.setattr(program, "DIRECT", direct)
        for bad in (-1.0, math.nan, *((0.0,) if direct else ())):
            with pytest.raises(ValueError):
                prog.solve({**values, "flops": bad})
        with pytest.raises(KeyError):
            prog.solve({k: v for k, v in values.items() if k != "price"})
        assert prog.solve(values).status == "optimal"


def test_cone_data_and_shared_solver_parts():
    """``ConeProgram.data`` (one bincount over the joined maps) gives the maps' own products bit for bit, and
    the Clarabel parts built once per program (P, cones, settings, A's sparsity) serve concurrent solves: each
    thread's answer is the serial answer exactly."""
    import concurrent.futures as cf

    import numpy as np

    prog, values = _flops_program()
    cone = prog.cone()
    assert cone is not None
    budgets = [10 ** (19 + 0.5 * i) for i in range(10)]
    for flops in budgets:
        vals = {**values, "flops": flops}
        th = cone.theta(vals)
        b = np.zeros(cone.m)
        b[cone.b_rows] = cone.b_map.apply(th)
        qd = cone.q_map.apply(th)
        c2, a2, b2, d2 = cone.data(vals)
        for mine, ref in ((a2.data, cone.a_map.apply(th)), (b2, b), (c2, qd[: cone.n])):
            assert mine.tobytes() == ref.tobytes()
        assert d2 == float(qd[cone.n])

    def solve(flops: float):
        ans = cone.solve_clarabel({**values, "flops": flops})
        return ans.status, ans.value, ans.variables, ans.duals

    serial = [solve(f) for f in budgets]
    assert cone._clarabel() is cone._clarabel()   # built once
    with cf.ThreadPoolExecutor(4) as ex:
        assert list(ex.map(solve, budgets * 4)) == serial * 4


# Clarabel answers forced per attempt (its settings -> status; an attempt not named answers as itself), the
# attempts expected, the errors they leave, and the settings that certify.
_RETRIES = {
    # stopping short of its tolerances ("AlmostSolved"): the regularized retry certifies, no third attempt
    "short of tolerance": ({(): "optimal_inaccurate"}, ["CLARABEL: optimal_inaccurate"], "CLARABEL_RETRY"),
    # stalling ("InsufficientProgress") at its defaults and with more regularization: shorter steps certify
    "stalling": ({(): "solver_error", ("static_regularization_constant",): "solver_error"},
                 ["CLARABEL: solver_error", "CLARABEL (static_regularization_constant=1e-07): solver_error"],
                 "CLARABEL_SHORT_STEPS"),
}


@pytest.mark.parametrize("case", sorted(_RETRIES))
def test_clarabel_is_retried_on_the_direct_path_without_cvxpy(monkeypatch, case):
    """Clarabel stopping short of its tolerances is solved again with CLARABEL_RETRY's settings, and stalling
    with CLARABEL_SHORT_STEPS', on the direct path, before (and instead of) SCS through cvxpy; the retried
    answer equals cvxpy's own Clarabel solve with the same settings."""
    from planner.cone import ConeProgram

    forced, errors, certifying = _RETRIES[case]
    certifying = getattr(program, certifying)
    prog, values = _flops_program()
    real = ConeProgram.solve_data
    asked: list[dict | None] = []

    def forcing(self, c, a, b, d, options=None):
        asked.append(options)
        ans = real(self, c, a, b, d, options)
        status = forced.get(tuple(options or ()))
        return ans if status is None else dataclasses.replace(ans, status=status)

    monkeypatch.setattr(program, "DIRECT", True)
    monkeypatch.setattr(ConeProgram, "solve_data", forcing)
    monkeypatch.setattr(program.TrainingProgram, "_solve_cvxpy",
                        lambda *a: pytest.fail("fell back to cvxpy though a Clarabel retry certifies"))
    sol = prog.solve(values)
    attempts = [options for solver, options in program.SOLVERS if solver == "CLARABEL"]
    assert asked == attempts[:attempts.index(certifying) + 1]   # no attempt after the one that certifies
    assert sol.status == "optimal" and sol.solver == "CLARABEL"
    assert sol.errors == errors
    monkeypatch.undo()
    reference = prog._solve_cvxpy(values, (("CLARABEL", certifying),), [])
    assert reference.status == "optimal" and not _same(sol, reference), _same(sol, reference)


def test_scs_after_every_clarabel_attempt(monkeypatch):
    """When no Clarabel attempt certifies, SCS (through cvxpy) is the last attempt, and the errors name
    each attempt with its settings."""
    from planner.cone import ConeProgram

    prog, values = _flops_program()
    real = ConeProgram.solve_data

    def always_short(self, *args):
        return dataclasses.replace(real(self, *args), status="optimal_inaccurate")

    monkeypatch.setattr(program, "DIRECT", True)
    monkeypatch.setattr(ConeProgram, "solve_data", always_short)
    sol = prog.solve(values)
    assert sol.solver == "SCS" and sol.status == "optimal", sol
    assert sol.errors == ["CLARABEL: optimal_inaccurate",
                          "CLARABEL (static_regularization_constant=1e-07): optimal_inaccurate",
                          "CLARABEL (max_step_fraction=0.9): optimal_inaccurate"]
