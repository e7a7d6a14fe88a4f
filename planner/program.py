"""The training geometric program: built once per (law, constraint set, layout structure), re-solved.

Variables (all positive): params N, processed tokens D, effective tokens D_eff (what the law sees), batch
tokens B, devices G, hours T. The model enters through the cluster model (``cost_models.cluster``) for one
layout: its numbers are Parameters, and the shape-dependent terms are monomials of N whose coefficients are
Parameters too (layers × width = c·N^(2/3); params held in memory = a·N), refreshed from the rounded shape.
Objective: the law's loss L(N, D_eff), or dollars, or hours. Constraints (named; optional ones only when set):
  throughput    (D/B) · step_seconds(N, B, G; layout) <= 3600 · goodput · T      (the cluster model)
  memory        memory_bytes(N, G; layout) <= usable device memory                (the cluster model)
  replica       tp · pp <= G                 (at least one model replica)
  dp_min        G · micro_batch · seq_len / (tp · pp) <= B   (a micro-batch per data-parallel rank)
  law_batch     B >= 0.75 · B_law, B_law = k · D^beta · N^gamma (the batch law's optimum: Step Law in D,
                DeepSeek in C = 6ND; well below it the law predicts a worse loss, see LAW_BATCH_FLOOR)
  critical_batch, large_batch   D_eff <= D and D_eff · B <= D · B_law(D_eff): at the batch law's optimum every token
                counts; above it processed tokens grow in proportion to the batch, McCandlish et al. 2018's
                large-batch regime D = D_min·(1 + B/B_noise) ≈ D_min·B/B_noise with B_noise = B_law at the
                progress reached (D_eff); ``planner.critical_batch`` is the same rule in numbers
                (without batch coupling the batch is fixed at B_law: law_batch_max B <= B_law)
  flops         6ND <= budget;  dollars  G·T·price (+ serving) <= dollars;  gpu_hours  G·T <= limit
  deadline      T <= hours;  sizing  T <= sizing hours (no deadline: a cluster size, not a user limit)
  max_devices   G <= limit;  min/max_params, min/max_tokens   bounds on N and D
  step_time     (D/B) · min_step_seconds <= 3600 · T
  target_loss   L(N, D_eff) <= target (objectives cost and time)
  unique_tokens D <= epochs·U;  data_params  N <= r·N_opt(U)   (data-constrained plans; the law then sees
                q·N and m·D_eff with Parameters params_scale q and tokens_scale m)
Serving (``inference`` demand, planner.serving): for the serving configuration the chooser picks at the current N
(accelerator, precision, tensor parallel, batch), dollars per output and input token, TPOT, TTFT and memory per
serving device are posynomials c1·N + c2·N^(2/3) + c3·N^(1/3) (cost_models.serving_terms; coefficients are
Parameters refreshed at each solve):
  dollars       ... + serving dollars(N) <= dollars;  serve_tpot / serve_ttft  TPOT(N), TTFT(N) <= the targets;
  serve_memory  serving bytes per device(N) <= usable memory of the serving device
cvxpy is imported here only, so importing the planner package stays cheap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any

from cost_models.cluster import LayoutNumbers, ModelTerms, memory_bytes, training_seconds
from cost_models.training import cost_usd, training_flops
from laws.base import Law

# name -> (sense, unit of the limit)
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "throughput": ("<=", "hours of steady training / goodput (cluster model)"),
    "flops": ("<=", "FLOP"),
    "dollars": ("<=", "USD"),
    "gpu_hours": ("<=", "device-hours"),
    "deadline": ("<=", "hours"),
    "sizing": ("<=", "hours (cluster sizing horizon, not a user limit)"),
    "memory": ("<=", "bytes per device"),
    "replica": ("<=", "devices (tp·pp of one replica)"),
    "max_devices": ("<=", "devices"),
    "max_params": ("<=", "params"),
    "max_tokens": ("<=", "tokens"),
    "min_params": (">=", "params"),
    "min_tokens": (">=", "tokens"),
    "target_loss": ("<=", "nats/token"),
    "critical_batch": ("<=", "tokens (processed >= effective)"),
    "large_batch": ("<=", "tokens (processed >= effective × batch / the batch law's optimum)"),
    "dp_min": ("<=", "tokens per batch (one micro-batch per data-parallel rank)"),
    "law_batch": (">=", "tokens per batch (the batch law's optimum)"),
    "law_batch_max": ("<=", "tokens per batch (fixed at the batch law's optimum)"),
    "step_time": ("<=", "hours"),
    "unique_tokens": ("<=", "unique tokens (value: unique tokens trained on)"),
    "data_params": ("<=", "params (N_opt of the unique tokens)"),
    "serve_tpot": ("<=", "seconds per output token (serving)"),
    "serve_ttft": ("<=", "seconds to first token (serving)"),
    "serve_memory": ("<=", "bytes per serving device"),
}
ALWAYS = frozenset({"throughput", "memory", "replica", "dp_min", "critical_batch", "law_batch"})
DATA = frozenset({"unique_tokens", "data_params"})
INTERNAL = ALWAYS | DATA | {"sizing", "law_batch_max", "large_batch", "serve_memory"}  # not limits the user gave
OBJECTIVES = ("loss", "cost", "time")
SOLVERS = ("CLARABEL", "SCS")
# The shape-dependent terms as monomials of N (N ∝ layers · width², layers ∝ width under the aspect rule).
WIDTH_EXPONENT = 1.0 / 3.0
LAYERS_WIDTH_EXPONENT = 2.0 / 3.0
TIE_BREAK = 1e-7
# Batches down to this fraction of the batch law's optimum count as optimal: Step Law (Li et al. 2025) reports a
# broad plateau of near-optimal loss around its optimum; 0.75 is an assumption, not a fitted value. It keeps
# whole batches (a multiple of data-parallel ranks × sequence) from falling off a cliff just below the optimum.
LAW_BATCH_FLOOR = 0.75
TERM_COEFFICIENTS = ("a_flops", "c_layers_width", "c_attn_width", "c_moe_layers_width", "c_width", "a_dense",
                     "a_expert")


@dataclass(frozen=True)
class Structure:
    """What fixes a compiled program's shape: which constraints, which layout terms exist, the exponents."""

    active: frozenset[str]
    objective: str = "loss"
    inference: tuple = ()   # serving posynomials present: (name, exponents) pairs, see SERVING_PARTS
    elastic: str | None = None
    bcrit_exponent: float = 1.0
    layout_terms: frozenset[str] = frozenset()   # LayoutNumbers fields that are present (not None)
    moe: bool = False
    batch_exponents: tuple[float, float] = (0.0, 0.0)   # (beta on D, gamma on N) of the law_batch constraint
    coupled: bool = True   # False: batch fixed at the batch law's optimum, no critical-batch token overhead
    robust: Any = None     # planner.robust_terms.RobustTerms: the loss over the law's samples (robust plans)


def loss_expression(law: Law, st: Structure, N: Any, Deff: Any) -> tuple[Any, list]:
    """(loss, extra constraints) the program sees at (N, D_eff): the law's point loss, or the robust loss over
    its samples (``st.robust``: a posynomial for mean, an epigraph variable and constraints for worst)."""
    if st.robust is not None:
        return st.robust.expr(N, Deff)
    return law.expr(params=N, tokens=Deff), []


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


class TrainingProgram:
    """One compiled DGP. ``solve(values)`` sets the Parameters and re-solves.

    With ``elastic`` naming one limit, that limit is multiplied by a free factor s >= 1 and the program
    minimizes s instead: the smallest relaxation of that one limit that makes the request feasible.
    """

    def __init__(self, law: Law, st: Structure):
        import cvxpy as cp

        self.law, self.st = law, st
        active, elastic = st.active, st.elastic
        N = cp.Variable(pos=True, name="params")
        D = cp.Variable(pos=True, name="tokens")
        Deff = cp.Variable(pos=True, name="effective_tokens")
        B = cp.Variable(pos=True, name="batch_tokens")
        G = cp.Variable(pos=True, name="devices")
        T = cp.Variable(pos=True, name="hours")
        self.vars = {"params": N, "tokens": D, "effective_tokens": Deff, "batch_tokens": B, "devices": G,
                     "hours": T}
        names = ["price", "goodput", "bstar", "law_batch_coef", "memory", "a_flops", "c_layers_width",
                 "c_attn_width", "c_width", "a_dense", *(["a_expert", "c_moe_layers_width"] if st.moe else []),
                 *sorted(active - ALWAYS - DATA)]
        for part, exps in st.inference:
            names += [f"{part}_{i}" for i in range(len(exps))]
            if part != "serve_usd":
                names.append(f"{part}_limit")
        if "data_params" in active:
            names += ["params_scale", "tokens_scale", "unique_tokens", "data_params"]
        names += [f"layout_{f}" for f in sorted(st.layout_terms)]
        self.params = {n: cp.Parameter(pos=True, name=n) for n in names}
        p = self.params
        s = cp.Variable(pos=True, name="relax") if elastic else None
        self.relax = s

        def lim(name: str) -> Any:
            return p[name] * s if name == elastic else p[name]

        def low(name: str) -> Any:
            return p[name] / s if name == elastic else p[name]

        n23, n13 = N**LAYERS_WIDTH_EXPONENT, N**WIDTH_EXPONENT
        terms = ModelTerms(
            params=p["a_flops"] * N, dense_params=p["a_dense"] * N, expert_params=p["a_expert"] * N if st.moe else None,
            layers_width=p["c_layers_width"] * n23, attn_width=p["c_attn_width"] * n23,
            moe_layers_width=p["c_moe_layers_width"] * n23 if st.moe else None, width=p["c_width"] * n13,
        )
        numbers = LayoutNumbers(**{f.name: (p[f"layout_{f.name}"] if f.name in st.layout_terms else None)
                                   for f in fields(LayoutNumbers)})
        flops = training_flops(N, D)
        robust_cons: list = []
        if "data_params" in active:
            loss = law.expr(params=N * p["params_scale"], tokens=Deff * p["tokens_scale"])
        else:
            loss, robust_cons = loss_expression(law, st, N, Deff)
        dollars = cost_usd(G * T, p["price"])
        serving = {part: sum(p[f"{part}_{i}"] * N**e for i, e in enumerate(exps)) for part, exps in st.inference}
        if "serve_usd" in serving:
            dollars = dollars + serving["serve_usd"]
        beta, gamma = st.batch_exponents
        law_b = p["law_batch_coef"] * (D**beta if beta else 1.0) * (N**gamma if gamma else 1.0)
        # the critical batch at the training progress reached, i.e. at the effective tokens (DESIGN: D >= D_eff ·
        # max(1, B / B_law(D_eff))); planner.critical_batch is the same rule in numbers
        law_b_eff = p["law_batch_coef"] * (Deff**beta if beta else 1.0) * (N**gamma if gamma else 1.0)
        build = {
            "throughput": lambda: training_seconds(terms, numbers, D, B, G) <= 3600.0 * p["goodput"] * T,
            "memory": lambda: memory_bytes(terms, numbers, G) <= lim("memory"),
            "replica": lambda: numbers.mp <= G,
            "dp_min": lambda: G * numbers.mb_seq / numbers.mp <= B,
            "critical_batch": lambda: Deff <= D,
            "large_batch": lambda: Deff * B <= D * law_b_eff,
            "law_batch": lambda: LAW_BATCH_FLOOR * law_b <= B,
            "law_batch_max": lambda: B <= law_b,
            "flops": lambda: flops <= lim("flops"),
            "dollars": lambda: dollars <= lim("dollars"),
            "target_loss": lambda: loss <= lim("target_loss"),
            "gpu_hours": lambda: G * T <= lim("gpu_hours"),
            "deadline": lambda: T <= lim("deadline"),
            "sizing": lambda: T <= p["sizing"],
            "max_devices": lambda: G <= lim("max_devices"),
            "max_params": lambda: N <= lim("max_params"),
            "max_tokens": lambda: D <= lim("max_tokens"),
            "min_params": lambda: low("min_params") <= N,
            "min_tokens": lambda: low("min_tokens") <= D,
            "step_time": lambda: D / B * p["step_time"] <= 3600.0 * T,
            "unique_tokens": lambda: D <= lim("unique_tokens"),
            "data_params": lambda: N <= lim("data_params"),
        }
        names_all = active | ALWAYS | ({"large_batch"} if st.coupled else {"law_batch_max"})
        self.constraints = {name: build[name]() for name in sorted(names_all)}
        for part in serving:
            if part != "serve_usd":  # TPOT, TTFT and memory of the serving configuration
                self.constraints[part] = serving[part] <= p[f"{part}_limit"]
        cons = list(self.constraints.values()) + robust_cons
        if s is not None:
            cons.append(s >= 1)
            objective = cp.Minimize(s)
        else:
            # A factor (G·T)^1e-7 picks, among plans equal in the objective (devices and hours trade freely when
            # no time or money limit binds), the one with the fewest device-hours: the same plan on every call.
            tie = (G * T) ** TIE_BREAK
            objective = cp.Minimize({"loss": loss * tie, "cost": dollars * tie, "time": T * tie}[st.objective])
        self.problem = cp.Problem(objective, cons)
        # cvxpy Parameters and the compiled problem are mutable state: one solve at a time per program.
        self._lock = threading.Lock()

    def solve(self, values: dict[str, float]) -> Solution:
        """Set the Parameters and solve: Clarabel first, then SCS on any exception or inaccurate answer.

        The first solver to report optimal (or a definite infeasible/unbounded) wins. An inaccurate answer is
        never returned as optimal: if no solver certifies the request, the status is ``solver_error`` and
        ``errors`` says what each solver did.
        """
        with self._lock:
            return self._solve(values)

    def _solve(self, values: dict[str, float]) -> Solution:
        import warnings

        import cvxpy as cp

        for name, par in self.params.items():
            par.value = values[name]
        errors: list[str] = []
        for solver in SOLVERS:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the status is reported, not printed
                    self.problem.solve(gp=True, solver=solver)
                status = self.problem.status
            except Exception as e:  # noqa: BLE001 — any solver failure falls through to the next solver
                errors.append(f"{solver}: {type(e).__name__}: {str(e)[:120]}")
                continue
            if status in (cp.OPTIMAL, cp.INFEASIBLE, cp.UNBOUNDED):
                return self._collect(status, solver, errors)
            errors.append(f"{solver}: {status}")
        return self._collect("solver_error", "none", errors)

    def _collect(self, status: str, solver: str, errors: list[str]) -> Solution:
        import math

        def val(name: str) -> float:
            v = self.vars[name].value
            return float(v) if v is not None else math.nan

        duals, sides = {}, {}
        if status == "optimal" and self.relax is None:
            # Elasticities below 1e-7 are solver noise on slack constraints: report them as exactly 0.
            duals = {k: _clean(c.dual_value) for k, c in self.constraints.items()}
            for k, c in self.constraints.items():
                try:
                    sides[k] = (float(c.args[0].value), float(c.args[1].value))
                except (TypeError, ValueError, AttributeError):
                    pass
        value = float(self.problem.value) if self.problem.value is not None else math.nan
        if self.relax is None and math.isfinite(value):  # the objective without the tie-break factor
            g, t = self.vars["devices"].value, self.vars["hours"].value
            value = value / (float(g) * float(t)) ** TIE_BREAK
        return Solution(status, solver, value, val("params"), val("tokens"), val("devices"), val("hours"), duals,
                        val("effective_tokens"), val("batch_tokens"), errors, sides)


def _clean(dual: Any) -> float:
    try:
        d = float(dual)
    except (TypeError, ValueError):
        return 0.0
    return d if d > 1e-7 else 0.0


_CACHE: dict[tuple, TrainingProgram] = {}
_CACHE_LOCK = threading.Lock()


def _law_key(law: Law) -> tuple:
    return (law.form, law.id, tuple(sorted(law.coefficients.items())))


def get_program(law: Law, st: Structure) -> TrainingProgram:
    """The compiled program for this law and structure (built on first use, then reused)."""
    key = (_law_key(law), st)
    with _CACHE_LOCK:  # built under the lock so two threads never share a half-built program
        prog = _CACHE.get(key)
        if prog is None:
            prog = _CACHE[key] = TrainingProgram(law, st)
    return prog
