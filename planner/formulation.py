"""The training geometric program's formulation: variables, Parameters, constraints and objectives.

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
The formulation is written once, generic over what it is given: cvxpy objects build the program
(planner.program), plain floats evaluate its sides at a solution (the direct path, planner.cone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import lru_cache
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
# The shape-dependent terms as monomials of N (N ∝ layers · width², layers ∝ width under the aspect rule).
WIDTH_EXPONENT = 1.0 / 3.0
LAYERS_WIDTH_EXPONENT = 2.0 / 3.0
TIE_BREAK = 1e-7
# Batches down to this fraction of the batch law's optimum count as optimal: Step Law (Li et al. 2025) reports a
# broad plateau of near-optimal loss around its optimum; 0.75 is an assumption, not a fitted value. It keeps
# whole batches (a multiple of data-parallel ranks × sequence) from falling off a cliff just below the optimum.
LAW_BATCH_FLOOR = 0.75


class Param(StrEnum):
    """The program's Parameter names (besides the limits, named as their constraints, and the per-layout and
    per-serving-term names below): declared here once, used by planner.solve and the cone path."""

    PRICE = "price"                       # USD per device-hour
    GOODPUT = "goodput"                   # fraction of wall-clock spent on steady training
    BSTAR = "bstar"                       # Kaplan's B* (tokens); set, not used by any constraint
    LAW_BATCH_COEF = "law_batch_coef"     # k of the batch law B_law = k·D^beta·N^gamma
    MEMORY = "memory"                     # usable bytes per device
    A_FLOPS = "a_flops"                   # shape terms: params counted for FLOPs = a·N
    C_LAYERS_WIDTH = "c_layers_width"     # layers × width = c·N^(2/3)
    C_ATTN_WIDTH = "c_attn_width"         # layers × attention width = c·N^(2/3)
    C_WIDTH = "c_width"                   # width = c·N^(1/3)
    A_DENSE = "a_dense"                   # dense params held = a·N
    A_EXPERT = "a_expert"                 # expert params held = a·N (MoE)
    C_MOE_LAYERS_WIDTH = "c_moe_layers_width"   # MoE layers × width = c·N^(2/3) (MoE)
    SIZING = "sizing"                     # hours of the cluster-sizing horizon
    PARAMS_SCALE = "params_scale"         # data-constrained: the law sees q·N ...
    TOKENS_SCALE = "tokens_scale"         # ... and m·D_eff
    UNIQUE_TOKENS = "unique_tokens"       # epochs × unique tokens available
    DATA_PARAMS = "data_params"           # r · N_opt(U)


TERM_COEFFICIENTS = (Param.A_FLOPS, Param.C_LAYERS_WIDTH, Param.C_ATTN_WIDTH, Param.C_MOE_LAYERS_WIDTH,
                     Param.C_WIDTH, Param.A_DENSE, Param.A_EXPERT)
MOE_TERMS = (Param.A_EXPERT, Param.C_MOE_LAYERS_WIDTH)
VARIABLES = ("params", "tokens", "effective_tokens", "batch_tokens", "devices", "hours")
RELAX = "relax"


def layout_param(field: str) -> str:
    """The Parameter holding LayoutNumbers field ``field``."""
    return f"layout_{field}"


def serving_param(part: str, i: int) -> str:
    """The Parameter holding coefficient ``i`` of serving posynomial ``part``."""
    return f"{part}_{i}"


def serving_limit(part: str) -> str:
    """The Parameter holding the limit of serving posynomial ``part`` (all but serve_usd)."""
    return f"{part}_limit"


def parameter_names(st: Structure) -> tuple[str, ...]:
    """Every Parameter of the program with structure ``st``, in the program's order."""
    names = [Param.PRICE, Param.GOODPUT, Param.BSTAR, Param.LAW_BATCH_COEF, Param.MEMORY, Param.A_FLOPS,
             Param.C_LAYERS_WIDTH, Param.C_ATTN_WIDTH, Param.C_WIDTH, Param.A_DENSE,
             *(MOE_TERMS if st.moe else ()), *sorted(st.active - ALWAYS - DATA)]
    for part, exps in st.inference:
        names += [serving_param(part, i) for i in range(len(exps))]
        if part != "serve_usd":
            names.append(serving_limit(part))
    if "data_params" in st.active:
        names += [Param.PARAMS_SCALE, Param.TOKENS_SCALE, Param.UNIQUE_TOKENS, Param.DATA_PARAMS]
    names += [layout_param(f) for f in sorted(st.layout_terms)]
    return tuple(str(n) for n in names)


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


# The robust worst-case loss's epigraph variable t (>= every kept sample's loss), named so the direct path reads it.
ROBUST_LOSS = "robust_loss"


def loss_expression(law: Law, st: Structure, N: Any, Deff: Any, epigraph: Any = None) -> tuple[Any, list]:
    """(loss, extra constraints) the program sees at (N, D_eff): the law's point loss, or the robust loss over
    its samples (``st.robust``: a posynomial for mean, an epigraph variable and constraints for worst).
    ``epigraph``: for plain numbers, the solved value of the worst case's epigraph variable."""
    if st.robust is not None:
        if epigraph is not None and st.robust.mode != "mean":
            return epigraph, []
        return st.robust.expr(N, Deff)
    return law.expr(params=N, tokens=Deff), []


_LAYOUT_FIELDS = tuple(f.name for f in fields(LayoutNumbers))
_LAYOUT_PARAMS = tuple((f, layout_param(f)) for f in _LAYOUT_FIELDS)   # (field, its Parameter), named once


@lru_cache(maxsize=4096)
def _layout_numbers(values: tuple) -> LayoutNumbers:
    """LayoutNumbers of the fields' values in order (None: absent), memoized for plain floats: the numbers at a
    solution are those of its layout, the same for every solve on it."""
    return LayoutNumbers(*values)


@lru_cache(maxsize=256)
def _constraint_names(active: frozenset[str], coupled: bool) -> tuple[str, ...]:
    """The named constraints of a program, sorted: the active limits, those always present and the batch rule."""
    return tuple(sorted(active | ALWAYS | ({"large_batch"} if coupled else {"law_batch_max"})))


def formulas(law: Law, st: Structure, v: Mapping[str, Any], p: Mapping[str, Any], s: Any = None
             ) -> tuple[dict[str, tuple[Any, Any]], dict[str, Any], list]:
    """Every named constraint as (left, right) with left <= right, the objectives ("loss", "cost", "time") and
    the unnamed extra constraints (the robust worst case's epigraph rows; cvxpy only).

    Generic over what ``v`` (variables by name) and ``p`` (Parameters by name) hold: cvxpy objects build the
    program, plain floats evaluate its sides at a solution (``v`` then also holds ROBUST_LOSS for a robust worst
    case). ``s``: the elastic factor (cvxpy only)."""
    active, elastic = st.active, st.elastic
    N, D, Deff, B, G, T = (v[k] for k in VARIABLES)

    def lim(name: str) -> Any:
        return p[name] * s if name == elastic else p[name]

    def low(name: str) -> Any:
        return p[name] / s if name == elastic else p[name]

    n23, n13 = N**LAYERS_WIDTH_EXPONENT, N**WIDTH_EXPONENT
    terms = ModelTerms(
        params=p[Param.A_FLOPS] * N, dense_params=p[Param.A_DENSE] * N,
        expert_params=p[Param.A_EXPERT] * N if st.moe else None,
        layers_width=p[Param.C_LAYERS_WIDTH] * n23, attn_width=p[Param.C_ATTN_WIDTH] * n23,
        moe_layers_width=p[Param.C_MOE_LAYERS_WIDTH] * n23 if st.moe else None, width=p[Param.C_WIDTH] * n13,
    )
    present = st.layout_terms
    layout_values = tuple(p[name] if f in present else None for f, name in _LAYOUT_PARAMS)
    numbers = (_layout_numbers(layout_values) if type(layout_values[0]) is float
               else LayoutNumbers(*layout_values))
    flops = training_flops(N, D)
    robust_cons: list = []
    if "data_params" in active:
        loss = law.expr(params=N * p[Param.PARAMS_SCALE], tokens=Deff * p[Param.TOKENS_SCALE])
    else:
        loss, robust_cons = loss_expression(law, st, N, Deff, v.get(ROBUST_LOSS))
    dollars = cost_usd(G * T, p[Param.PRICE])
    serving = {part: sum(p[serving_param(part, i)] * N**e for i, e in enumerate(exps)) for part, exps in st.inference}
    if "serve_usd" in serving:
        dollars = dollars + serving["serve_usd"]
    beta, gamma = st.batch_exponents
    law_b = p[Param.LAW_BATCH_COEF] * (D**beta if beta else 1.0) * (N**gamma if gamma else 1.0)
    # the critical batch at the training progress reached, i.e. at the effective tokens (DESIGN: D >= D_eff ·
    # max(1, B / B_law(D_eff))); planner.critical_batch is the same rule in numbers
    law_b_eff = p[Param.LAW_BATCH_COEF] * (Deff**beta if beta else 1.0) * (N**gamma if gamma else 1.0)
    build = {
        "throughput": lambda: (training_seconds(terms, numbers, D, B, G), 3600.0 * p[Param.GOODPUT] * T),
        "memory": lambda: (memory_bytes(terms, numbers, G), lim("memory")),
        "replica": lambda: (numbers.mp, G),
        "dp_min": lambda: (G * numbers.mb_seq / numbers.mp, B),
        "critical_batch": lambda: (Deff, D),
        "large_batch": lambda: (Deff * B, D * law_b_eff),
        "law_batch": lambda: (LAW_BATCH_FLOOR * law_b, B),
        "law_batch_max": lambda: (B, law_b),
        "flops": lambda: (flops, lim("flops")),
        "dollars": lambda: (dollars, lim("dollars")),
        "target_loss": lambda: (loss, lim("target_loss")),
        "gpu_hours": lambda: (G * T, lim("gpu_hours")),
        "deadline": lambda: (T, lim("deadline")),
        "sizing": lambda: (T, p[Param.SIZING]),
        "max_devices": lambda: (G, lim("max_devices")),
        "max_params": lambda: (N, lim("max_params")),
        "max_tokens": lambda: (D, lim("max_tokens")),
        "min_params": lambda: (low("min_params"), N),
        "min_tokens": lambda: (low("min_tokens"), D),
        "step_time": lambda: (D / B * p["step_time"], 3600.0 * T),
        "unique_tokens": lambda: (D, lim("unique_tokens")),
        "data_params": lambda: (N, lim("data_params")),
    }
    sides = {name: build[name]() for name in _constraint_names(active, st.coupled)}
    for part in serving:
        if part != "serve_usd":  # TPOT, TTFT and memory of the serving configuration
            sides[part] = (serving[part], p[serving_limit(part)])
    return sides, {"loss": loss, "cost": dollars, "time": T}, robust_cons
