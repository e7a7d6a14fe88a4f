"""The training geometric program, solved: built once per (law, constraint set, layout structure), re-solved.

The formulation (variables, Parameters, constraints, objectives) is planner.formulation; its names are
re-exported here. Solving: the program is compiled once by cvxpy into a parametric cone program
(planner.cone), kept on disk (planner.program_cache) and solved directly with Clarabel; cvxpy's own solve stays
as the reference (``DIRECT = False``) and as the SCS fallback. An optimal answer is checked against its
constraints before it is returned. cvxpy is imported here only, lazily, and not at all when the compiled
program is on disk: importing the planner package and a cached cold plan stay cheap.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import takewhile
from typing import Any

import numpy as np

from laws.base import Law
from planner.formulation import (  # noqa: F401 — re-exported: planner.program is where callers import them
    ALWAYS,
    CONSTRAINTS,
    DATA,
    INTERNAL,
    LAW_BATCH_FLOOR,
    LAYERS_WIDTH_EXPONENT,
    MOE_TERMS,
    OBJECTIVES,
    RELAX,
    ROBUST_LOSS,
    TERM_COEFFICIENTS,
    TIE_BREAK,
    VARIABLES,
    WIDTH_EXPONENT,
    Param,
    Structure,
    formulas,
    layout_param,
    loss_expression,
    parameter_names,
    serving_limit,
    serving_param,
)

# Each attempt: (solver, its settings). Clarabel first; where it stops short of its tolerances ("AlmostSolved",
# e.g. 13 of 400 budgets 1e18..1e26 on H100 with the default 1e-8), again with 10x its static regularization
# (which certifies every one of those); where it stalls ("InsufficientProgress", e.g. 2 of 300 random requests:
# target-loss objectives on H200 and TPU v5p), with shorter steps (0.9 of the way to the cone boundary instead
# of 0.99, which certifies those and the first kind too); SCS last. A later attempt runs only when no earlier
# one certified.
CLARABEL_RETRY = {"static_regularization_constant": 1e-7}
CLARABEL_SHORT_STEPS = {"max_step_fraction": 0.9}
SOLVERS: tuple[tuple[str, dict], ...] = (("CLARABEL", {}), ("CLARABEL", CLARABEL_RETRY),
                                         ("CLARABEL", CLARABEL_SHORT_STEPS), ("SCS", {}))


def _attempt_name(solver: str, options: dict) -> str:
    return solver + "".join(f" ({k}={v:g})" for k, v in options.items())


@dataclass
class Solution:
    status: str
    solver: str
    value: float
    params: float
    tokens: float
    devices: float
    hours: float
    duals: dict[str, float]
    effective_tokens: float
    batch_tokens: float
    errors: list[str]
    sides: dict[str, tuple[float, float]]  # constraint -> (left side, right side) at the solution




class _CvxProgram:
    """The cvxpy program: variables, Parameters, named constraints and the problem."""

    def __init__(self, law: Law, st: Structure):
        import cvxpy as cp

        self.vars = {k: cp.Variable(pos=True, name=k) for k in VARIABLES}
        self.params = {n: cp.Parameter(pos=True, name=n) for n in parameter_names(st)}
        self.relax = cp.Variable(pos=True, name=RELAX) if st.elastic else None
        sides, objectives, extra = formulas(law, st, self.vars, self.params, self.relax)
        self.constraints = {k: lhs <= rhs for k, (lhs, rhs) in sides.items()}
        # the robust worst case's epigraph variable: the direct path reads its value like the named variables
        self.epigraph = objectives["loss"] if extra else None
        cons = list(self.constraints.values()) + extra
        if self.relax is not None:
            cons.append(self.relax >= 1)
            objective = cp.Minimize(self.relax)
        else:
            # A factor (G·T)^1e-7 picks, among plans equal in the objective (devices and hours trade freely when
            # no time or money limit binds), the one with the fewest device-hours: the same plan on every call.
            tie = (self.vars["devices"] * self.vars["hours"]) ** TIE_BREAK
            objective = cp.Minimize(objectives[st.objective] * tie)
        self.problem = cp.Problem(objective, cons)
        self.set_values: dict[str, float] = {}   # what each Parameter holds (set again only when it changed)

    def set_parameters(self, values: Mapping[str, float]) -> None:
        for name, par in self.params.items():
            v = values[name]
            if self.set_values.get(name) != v or par.value is None:
                par.value = v
                self.set_values[name] = v


# An optimal answer may break a constraint by this relative amount (solver tolerances are ~1e-8 for Clarabel and
# ~1e-4 for SCS in log space); beyond it the answer is a solver failure (see ``unverified``).
VERIFY_RTOL = 1e-3

# The direct cone path (planner.cone); False: cvxpy's own solve (the reference the tests compare against).
DIRECT = True


class TrainingProgram:
    """One compiled DGP. ``solve(values)`` sets the Parameters and re-solves.

    With ``elastic`` naming one limit, that limit is multiplied by a free factor s >= 1 and the program
    minimizes s instead: the smallest relaxation of that one limit that makes the request feasible.

    The cone program is loaded from the disk cache or compiled on the first direct solve; the cvxpy problem is
    built only when needed (a cache miss, the reference path, the SCS fallback or an attribute below).
    """

    def __init__(self, law: Law, st: Structure):
        self.law, self.st = law, st
        self._cvx: _CvxProgram | None = None
        self._cone: Any = None
        self.cone_error: str | None = None   # why the direct path is unavailable (then cvxpy solves)
        # Parameters, the compiled problem and the lazily built parts are mutable: one solve at a time.
        self._lock = threading.Lock()

    # ---- the cvxpy program (built on first use)

    def _cvxpy(self) -> _CvxProgram:
        if self._cvx is None:
            self._cvx = _CvxProgram(self.law, self.st)
        return self._cvx

    @property
    def problem(self) -> Any:
        return self._cvxpy().problem

    @property
    def vars(self) -> dict[str, Any]:
        return self._cvxpy().vars

    @property
    def params(self) -> dict[str, Any]:
        return self._cvxpy().params

    @property
    def constraints(self) -> dict[str, Any]:
        return self._cvxpy().constraints

    @property
    def relax(self) -> Any:
        return self._cvxpy().relax

    def cone(self) -> Any:
        """The compiled cone program (planner.cone.ConeProgram): from the disk cache, else compiled by cvxpy and
        stored. None when it cannot be compiled (``cone_error`` says why; cvxpy then solves)."""
        if self._cone is None and self.cone_error is None:
            from planner import program_cache

            key = program_cache.program_key(self.law, self.st)
            cone = program_cache.load(key)
            if cone is None:
                cvx = self._cvxpy()
                from planner.cone import compile_cone

                variables = dict(cvx.vars)
                if cvx.relax is not None:
                    variables[RELAX] = cvx.relax
                if cvx.epigraph is not None:
                    variables[ROBUST_LOSS] = cvx.epigraph
                try:
                    cone = compile_cone(cvx.problem, variables, cvx.constraints, cvx.params)
                except Exception as e:  # noqa: BLE001 — any compile problem: cvxpy's own solve stays available
                    self.cone_error = f"{type(e).__name__}: {str(e)[:200]}"
                    return None
                program_cache.save(key, cone)
            self._cone = cone
        return self._cone

    # ---- solving

    def solve(self, values: dict[str, float]) -> Solution:
        """Set the Parameters and solve: the attempts of SOLVERS in order (Clarabel, Clarabel with more
        regularization, Clarabel with shorter steps, then SCS), the next on any exception or inaccurate answer.

        The first solver to report optimal (or a definite infeasible/unbounded) wins. An inaccurate answer is
        never returned as optimal: if no solver certifies the request, the status is ``solver_error`` and
        ``errors`` says what each solver did.
        """
        with self._lock:
            if DIRECT:
                cone = self.cone()
                if cone is not None:
                    return self._solve_direct(cone, values)
            return self._solve_cvxpy(values, SOLVERS, [])

    def _solve_direct(self, cone: Any, values: dict[str, float]) -> Solution:
        data = cone.data(values)  # outside the try: a bad Parameter value raises, as cvxpy's setter does
        errors: list[str] = []
        clarabel = list(takewhile(lambda attempt: attempt[0] == "CLARABEL", SOLVERS))  # the leading attempts
        for solver, options in clarabel:
            name = _attempt_name(solver, options)
            try:
                ans = cone.solve_data(*data, options)
            except Exception as e:  # noqa: BLE001 — any solver failure falls through to the next solver
                errors.append(f"{name}: {type(e).__name__}: {str(e)[:120]}")
                continue
            if ans.status in ("optimal", "infeasible", "unbounded"):
                sol = self._collect_direct(ans, values, errors)
                reason = unverified(sol)
                if reason is None:
                    return sol
                errors.append(f"{name}: optimal answer fails its check ({reason})")
            else:
                errors.append(f"{name}: {ans.status}")
        return self._solve_cvxpy(values, SOLVERS[len(clarabel):], errors)

    def _collect_direct(self, ans: Any, values: dict[str, float], errors: list[str]) -> Solution:
        def val(name: str) -> float:
            return ans.variables.get(name, math.nan)

        duals, sides = {}, {}
        value = ans.value   # the solver's objective; when optimal, the objective at the solution (as cvxpy)
        if ans.status == "optimal":
            if self.st.elastic is None:
                duals = {k: (d if d > 1e-7 else 0.0) for k, d in ans.duals.items()}   # _clean: the duals are floats
                # numpy floats, as cvxpy evaluates expressions: an extreme answer gives inf, not an exception
                at = {k: np.float64(ans.variables[k]) for k in (*VARIABLES, ROBUST_LOSS) if k in ans.variables}
                with np.errstate(all="ignore"):
                    pairs, objectives, _ = formulas(self.law, self.st, at, values)
                    for k, (lhs, rhs) in pairs.items():
                        try:
                            sides[k] = (float(lhs), float(rhs))
                        except (TypeError, ValueError):
                            pass
                    tie = (at["devices"] * at["hours"]) ** TIE_BREAK
                    value = float(objectives[self.st.objective] * tie / tie)   # without the tie-break factor
            else:
                value = val(RELAX)
        return Solution(ans.status, "CLARABEL", value, val("params"), val("tokens"), val("devices"), val("hours"),
                        duals, val("effective_tokens"), val("batch_tokens"), errors, sides)

    def _solve_cvxpy(self, values: dict[str, float], solvers: tuple[tuple[str, dict], ...],
                     errors: list[str]) -> Solution:
        import warnings

        import cvxpy as cp

        cvx = self._cvxpy()
        cvx.set_parameters(values)
        for solver, options in solvers:
            name = _attempt_name(solver, options)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the status is reported, not printed
                    cvx.problem.solve(gp=True, solver=solver, warm_start=False, **options)
                status = cvx.problem.status
            except Exception as e:  # noqa: BLE001 — any solver failure falls through to the next solver
                errors.append(f"{name}: {type(e).__name__}: {str(e)[:120]}")
                continue
            if status in (cp.OPTIMAL, cp.INFEASIBLE, cp.UNBOUNDED):
                sol = self._collect(cvx, status, solver, errors)
                reason = unverified(sol)
                if reason is None:
                    return sol
                errors.append(f"{name}: optimal answer fails its check ({reason})")
                continue
            errors.append(f"{name}: {status}")
        return self._collect(cvx, "solver_error", "none", errors)

    def _collect(self, cvx: _CvxProgram, status: str, solver: str, errors: list[str]) -> Solution:
        def val(name: str) -> float:
            v = cvx.vars[name].value
            return float(v) if v is not None else math.nan

        duals, sides = {}, {}
        if status == "optimal" and cvx.relax is None:
            # Elasticities below 1e-7 are solver noise on slack constraints: report them as exactly 0.
            duals = {k: _clean(c.dual_value) for k, c in cvx.constraints.items()}
            for k, c in cvx.constraints.items():
                try:
                    sides[k] = (float(c.args[0].value), float(c.args[1].value))
                except (TypeError, ValueError, AttributeError):
                    pass
        value = float(cvx.problem.value) if cvx.problem.value is not None else math.nan
        if cvx.relax is None and math.isfinite(value) and status == "optimal":  # without the tie-break factor
            g, t = cvx.vars["devices"].value, cvx.vars["hours"].value
            value = value / (float(g) * float(t)) ** TIE_BREAK
        return Solution(status, solver, value, val("params"), val("tokens"), val("devices"), val("hours"), duals,
                        val("effective_tokens"), val("batch_tokens"), errors, sides)


def unverified(sol: Solution) -> str | None:
    """Why an "optimal" answer is not a plan (None when it is one, or is not optimal): a variable or the objective
    that is not finite and positive, or a constraint violated by more than VERIFY_RTOL at the answer. A solver can
    report success on an ill-conditioned program (Clarabel "Solved" at infinite devices and zero hours)."""
    if sol.status != "optimal":
        return None
    for name in ("value", "params", "tokens", "devices", "hours", "effective_tokens", "batch_tokens"):
        v = getattr(sol, name)
        if not (math.isfinite(v) and v > 0):
            return f"{name} = {v:.4g}"
    for k, (lhs, rhs) in sol.sides.items():
        if not (math.isfinite(lhs) and math.isfinite(rhs)) or lhs > rhs * (1.0 + VERIFY_RTOL):
            return f"{k}: {lhs:.4g} > {rhs:.4g}"
    return None


def _clean(dual: Any) -> float:
    try:
        d = float(dual)
    except (TypeError, ValueError):
        return 0.0
    return d if d > 1e-7 else 0.0


_CACHE: dict[tuple, TrainingProgram] = {}
_CACHE_LOCK = threading.Lock()


def get_program(law: Law, st: Structure) -> TrainingProgram:
    """The compiled program for this law and structure (built on first use, then reused)."""
    key = (law.key, st)
    with _CACHE_LOCK:  # built under the lock so two threads never share a half-built program
        prog = _CACHE.get(key)
        if prog is None:
            prog = _CACHE[key] = TrainingProgram(law, st)
    return prog
