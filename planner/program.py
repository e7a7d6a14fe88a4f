"""The training geometric program: built once per (law, constraint set) with cvxpy Parameters, re-solved.

Variables (all positive): params N, tokens D, devices G, hours T. Objective: the law's loss L(N, D).
Constraints (named; every one but ``throughput`` optional):
  throughput   gpu_hours(6ND, peak, mfu) <= G·T
  flops        6ND <= budget
  dollars      G·T·price <= dollars
  gpu_hours    G·T <= limit
  deadline     T <= hours
  memory       bytes_per_param·N / G <= device memory
  max_devices  G <= limit
  min/max_params, min/max_tokens   bounds on N and D
  target_loss  L(N, D) <= target (objectives ``cost`` and ``time``)
  unique_tokens  D <= epochs·U        (data-constrained plans)
  data_params    N <= r·N_opt(U)
With these two the law sees effective params and tokens q·N and m·D (Parameters ``params_scale`` and
``tokens_scale``): the Muennighoff discounts for r× the params the unique data supports and for the number of
epochs, exact at the bounds and pessimistic below them; the planner re-solves over a grid of (epochs, r).
With batch coupling (``critical_batch`` active) two more variables, effective tokens D_eff (what the law
sees) and batch tokens B, and:
  critical_batch  D_eff·(1 + B/B_crit(L)) <= D, B_crit(L) = B*·L^(−1/alpha_B)  (McCandlish 2018; Kaplan
                  2020 eq. 5.3 — a posynomial raised to a positive power, so still log-log convex)
  dp_min          devices·seq_len/tp <= B   (each data-parallel rank × pipeline stage needs a sequence)
  step_time       (D/B)·min_step_seconds <= 3600·T
Objectives: ``loss`` (minimize L), ``cost`` (training + serving dollars), ``time`` (hours T).
Serving dollars for ``inference`` demand: tokens served × $ per token at compute-bound decode (a monomial in N).
cvxpy is imported here only, so importing the planner package stays cheap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from cost_models.inference import usd_per_million_tokens
from cost_models.training import cost_usd, gpu_hours, state_bytes_per_device, training_flops
from laws.base import Law

# name -> (sense, unit of the limit)
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "throughput": ("<=", "FLOP/s per device (mfu × peak)"),
    "flops": ("<=", "FLOP"),
    "dollars": ("<=", "USD"),
    "gpu_hours": ("<=", "device-hours"),
    "deadline": ("<=", "hours"),
    "memory": ("<=", "bytes per device"),
    "max_devices": ("<=", "devices"),
    "max_params": ("<=", "params"),
    "max_tokens": ("<=", "tokens"),
    "min_params": (">=", "params"),
    "min_tokens": (">=", "tokens"),
    "target_loss": ("<=", "nats/token"),
    "critical_batch": ("<=", "tokens (processed >= effective × (1 + B/B_crit))"),
    "dp_min": ("<=", "tokens per batch"),
    "step_time": ("<=", "hours"),
    "unique_tokens": ("<=", "unique tokens (value: unique tokens trained on)"),
    "data_params": ("<=", "params (N_opt of the unique tokens)"),
}
COUPLING = frozenset({"critical_batch", "dp_min", "step_time"})
DATA = frozenset({"unique_tokens", "data_params"})
OBJECTIVES = ("loss", "cost", "time")

SOLVERS = ("CLARABEL", "SCS")


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
    effective_tokens: float | None = None
    batch_tokens: float | None = None


class TrainingProgram:
    """One compiled DGP. ``solve(values)`` sets the Parameters and re-solves (warm: ~1 ms).

    With ``elastic`` naming one limit, that limit is multiplied by a free factor s >= 1 and the program
    minimizes s instead of loss: the smallest relaxation of that one limit that makes the request feasible.
    """

    def __init__(
        self, law: Law, active: frozenset[str], objective: str = "loss", inference: bool = False,
        elastic: str | None = None, bcrit_exponent: float = 1.0,
    ):
        import cvxpy as cp

        self.law, self.active, self.elastic, self.objective = law, active, elastic, objective
        N = cp.Variable(pos=True, name="params")
        D = cp.Variable(pos=True, name="tokens")
        G = cp.Variable(pos=True, name="devices")
        T = cp.Variable(pos=True, name="hours")
        self.vars = (N, D, G, T)
        coupled = "critical_batch" in active
        Deff = cp.Variable(pos=True, name="effective_tokens") if coupled else D
        B = cp.Variable(pos=True, name="batch_tokens") if coupled else None
        self.coupled = (Deff, B) if coupled else None
        names = ("peak", "mfu", "price", "bytes_per_param", *sorted(active - COUPLING))
        if coupled:
            names += ("bstar", "seq_per_tp") + (("step_seconds",) if "step_time" in active else ())
        if inference:
            names += ("serve_peak", "serve_efficiency", "serve_tokens")
        data = "data_params" in active
        if data:
            names += ("params_scale", "tokens_scale")
        self.params = {n: cp.Parameter(pos=True, name=n) for n in names}
        p = self.params
        s = cp.Variable(pos=True, name="relax") if elastic else None
        self.relax = s

        def lim(name: str) -> Any:
            return p[name] * s if name == elastic else p[name]

        flops = training_flops(N, D)
        if data:  # effective params and tokens of the data-constrained law (a monomial substitution)
            loss = law.expr(params=N * p["params_scale"], tokens=Deff * p["tokens_scale"])
        else:
            loss = law.expr(params=N, tokens=Deff)
        dollars = cost_usd(G * T, p["price"])
        if inference:  # compute-bound serving: 2N FLOPs per token at serve_efficiency × peak
            per_million = usd_per_million_tokens(p["price"], p["serve_peak"] / (2 * N), p["serve_efficiency"])
            dollars = dollars + per_million * p["serve_tokens"] / 1e6
        build = {
            "flops": lambda: flops <= lim("flops"),
            "dollars": lambda: dollars <= lim("dollars"),
            "target_loss": lambda: loss <= lim("target_loss"),
            "gpu_hours": lambda: G * T <= lim("gpu_hours"),
            "deadline": lambda: T <= lim("deadline"),
            "memory": lambda: state_bytes_per_device(N, G, p["bytes_per_param"]) <= lim("memory"),
            "max_devices": lambda: G <= lim("max_devices"),
            "max_params": lambda: N <= lim("max_params"),
            "max_tokens": lambda: D <= lim("max_tokens"),
            "min_params": lambda: (p["min_params"] / s if elastic == "min_params" else p["min_params"]) <= N,
            "min_tokens": lambda: (p["min_tokens"] / s if elastic == "min_tokens" else p["min_tokens"]) <= D,
            "critical_batch": lambda: Deff + Deff * B * loss**bcrit_exponent / p["bstar"] <= D,
            "dp_min": lambda: G * p["seq_per_tp"] <= B,
            "step_time": lambda: D / B * p["step_seconds"] <= 3600.0 * T,
            "unique_tokens": lambda: D <= lim("unique_tokens"),
            "data_params": lambda: N <= lim("data_params"),
        }
        self.constraints = {"throughput": gpu_hours(flops, p["peak"], p["mfu"]) <= G * T}
        for name in sorted(active):
            self.constraints[name] = build[name]()
        cons = list(self.constraints.values())
        if s is not None:
            cons.append(s >= 1)
            objective = cp.Minimize(s)
        else:
            objective = cp.Minimize({"loss": loss, "cost": dollars, "time": T}[objective])
        self.problem = cp.Problem(objective, cons)
        # cvxpy Parameters and the compiled problem are mutable state: one solve at a time per program.
        self._lock = threading.Lock()

    def solve(self, values: dict[str, float]) -> Solution:
        """Set the Parameters and solve: Clarabel first, SCS on a numerical failure or inaccurate answer.

        The first solver to report optimal (or a definite infeasible/unbounded) wins; if none does, the first
        inaccurate solution is returned with status ``optimal_inaccurate`` (the plan flags it).
        """
        with self._lock:
            return self._solve(values)

    def _solve(self, values: dict[str, float]) -> Solution:
        import warnings

        import cvxpy as cp

        for name, par in self.params.items():
            par.value = values[name]
        fallback: Solution | None = None
        status, used = "solver_error", SOLVERS[0]
        for solver in SOLVERS:
            used = solver
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the status is reported, not printed
                    self.problem.solve(gp=True, solver=solver)
                status = self.problem.status
            except cp.error.SolverError:
                status = "solver_error"
            if status in (cp.OPTIMAL, cp.INFEASIBLE, cp.UNBOUNDED):
                return self._collect(status, solver)
            if status == cp.OPTIMAL_INACCURATE and fallback is None:
                fallback = self._collect(status, solver)
        return fallback if fallback is not None else self._collect(status, used)

    def _collect(self, status: str, solver: str) -> Solution:
        import cvxpy as cp

        N, D, G, T = (float(v.value) if v.value is not None else float("nan") for v in self.vars)
        deff = batch = None
        if self.coupled is not None and self.coupled[1].value is not None:
            deff, batch = float(self.coupled[0].value), float(self.coupled[1].value)
        duals = {}
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and self.relax is None:
            # Elasticities below 1e-7 are solver noise on slack constraints: report them as exactly 0.
            duals = {k: _clean(float(c.dual_value)) for k, c in self.constraints.items()}
        value = float(self.problem.value) if self.problem.value is not None else float("nan")
        return Solution(status, solver, value, N, D, G, T, duals, deff, batch)


def _clean(dual: float) -> float:
    return dual if dual > 1e-7 else 0.0


_CACHE: dict[tuple, TrainingProgram] = {}
_CACHE_LOCK = threading.Lock()


def _law_key(law: Law) -> tuple:
    return (law.form, tuple(sorted(law.coefficients.items())))


def get_program(
    law: Law, active: frozenset[str], objective: str = "loss", inference: bool = False, elastic: str | None = None,
    bcrit_exponent: float = 1.0,
) -> TrainingProgram:
    """The compiled program for this law, constraint set and objective (built on first use, then reused)."""
    key = (_law_key(law), active, objective, inference, elastic, bcrit_exponent)
    with _CACHE_LOCK:  # built under the lock so two threads never share a half-built program
        prog = _CACHE.get(key)
        if prog is None:
            prog = _CACHE[key] = TrainingProgram(law, active, objective, inference, elastic, bcrit_exponent)
    return prog
