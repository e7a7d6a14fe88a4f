"""Solve the program for one (law variant, accelerator, layout): the Parameters' values, the shape fixed point
(and its closed-form start), the probe layout and the diagnosis of infeasible requests. The layouts solved
after the probe are ranked by ``planner.layout_rank``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Any

from cost_models.architecture import ModelShape, active_params
from cost_models.catalog import Accelerator
from cost_models.cluster import (
    Hardware,
    Layout,
    LayoutNumbers,
    layout_numbers,
    terms_of_shape,
    with_tp_for_heads,
)
from cost_models.throughput import DEFAULT_GOODPUT
from laws.base import Law
from planner.errors import InfeasiblePlanError, InputError
from planner.program import (
    ALWAYS,
    DATA,
    LAYERS_WIDTH_EXPONENT,
    WIDTH_EXPONENT,
    Param,
    Solution,
    Structure,
    get_program,
    layout_param,
    serving_param,
)
from planner.request import PlanRequest, hours_to_days
from planner.rounding import COUNTERS, fit_shape

# Critical batch B_crit(L) = B*·L^(−1/alpha_B), Kaplan et al. 2020 eq. 1.4 / 5.3 and Table 5 (B* 2.1e8 tokens,
# alpha_B 0.21). L is the plan's predicted loss under the chosen law.
KAPLAN_BSTAR = 2.1e8
KAPLAN_ALPHA_B = 0.21

# request field -> constraint name (limits on the program)
LIMIT_FIELDS = {
    "budget_flops": "flops",
    "dollars": "dollars",
    "gpu_hours": "gpu_hours",
    "deadline_days": "deadline",
    "max_gpus": "max_devices",
    "max_params": "max_params",
    "max_tokens": "max_tokens",
    "min_params": "min_params",
    "min_tokens": "min_tokens",
    "target_loss": "target_loss",
    "min_step_seconds": "step_time",
}
FIELD_OF = {v: k for k, v in LIMIT_FIELDS.items()}


def critical_batch_tokens(loss):
    """Kaplan's critical batch in tokens at ``loss`` (nats/token)."""
    return KAPLAN_BSTAR * loss ** (-1.0 / KAPLAN_ALPHA_B)


@dataclass(frozen=True)
class Candidate:
    """One discrete choice: an accelerator at a precision, with its price."""

    acc: Accelerator
    precision: str
    peak: float
    price: float
    price_source: str

    @cached_property
    def hw(self) -> Hardware:
        """The cluster model's view of the accelerator (computed once: the candidate is frozen)."""
        return Hardware.of(self.acc, self.precision)


@dataclass
class Solved:
    """A solved program for one (variant, candidate, layout), before it is made a whole cluster."""

    var: Any
    cand: Candidate
    layout: Layout
    sol: Solution
    values: dict[str, float]
    structure: Structure
    shape: ModelShape
    serving: Any = None   # planner.serving.ProgramServing at the solution (None without inference demand)
    settled: bool = False  # the last solve's shape is the rounded shape of its answer (a fixed point)
    _estimates: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def estimate(self, objective: str) -> float:
        """The objective at the program's optimum (the loss under the variant's full law; computed once)."""
        value = self._estimates.get(objective)
        if value is None:
            value = (self.var.loss(self.sol.params, self.sol.effective_tokens) if objective == "loss"
                     else self.sol.value)
            self._estimates[objective] = value
        return value


@lru_cache(maxsize=8)
def batch_law_monomial(lr_law: str) -> tuple[float, float, float, str]:
    """(coef, beta, gamma, law id): the batch law as B = coef · D^beta · N^gamma (exact for its monomial form;
    DeepSeek's B(C) with C = 6ND). Read off the law by evaluating it, so the coefficients stay in the catalog."""
    from planner.hyperparams import law_batch_tokens

    def b(n: float, d: float) -> float:
        return law_batch_tokens(lr_law, d, 6.0 * n * d)[0]

    n0, d0, h = 1e9, 1e10, math.log(10.0)
    base = b(n0, d0)
    beta = math.log(b(n0, d0 * 10) / base) / h
    gamma = math.log(b(n0 * 10, d0) / base) / h
    beta, gamma = (0.0 if abs(x) < 1e-9 else x for x in (beta, gamma))
    return base / (d0**beta * n0**gamma), beta, gamma, law_batch_tokens(lr_law, d0, 6 * n0 * d0)[1]


def shape_for(var: Any, params: float, seq_len: int) -> ModelShape:
    """The rounded shape for the law's ``params`` count of this variant."""
    return fit_shape(params, count=var.count, experts=var.experts, seq_len=seq_len).shape


def term_coefficients(shape: ModelShape, params: float) -> dict[str, float]:
    """Coefficients that make the program's monomials of N equal the shape's exact terms at N = ``params``."""
    t = terms_of_shape(shape)
    n23, n13 = params**LAYERS_WIDTH_EXPONENT, params**WIDTH_EXPONENT
    out = {Param.A_FLOPS: t.params / params, Param.C_LAYERS_WIDTH: t.layers_width / n23,
           Param.C_ATTN_WIDTH: t.attn_width / n23, Param.C_WIDTH: t.width / n13, Param.A_DENSE: t.dense_params / params}
    if t.expert_params is not None:
        out[Param.A_EXPERT] = t.expert_params / params
        out[Param.C_MOE_LAYERS_WIDTH] = t.moe_layers_width / n23
    return out


def numbers_for(request: PlanRequest, cand: Candidate, layout: Layout, shape: ModelShape) -> LayoutNumbers:
    return _numbers(layout, cand.hw, request.seq_len, shape.vocab, shape.top_k + shape.shared_experts,
                    shape.is_moe, request.mfu)


@lru_cache(maxsize=4096)
def _numbers(layout: Layout, hw: Hardware, seq_len: int, vocab: int, top_k: int, moe: bool, mfu: float | None
             ) -> LayoutNumbers:
    """``layout_numbers`` memoized (every argument and the result are frozen)."""
    return layout_numbers(layout, hw, seq_len, vocab, top_k, moe, mfu)


@lru_cache(maxsize=4096)
def _layout_values(numbers: LayoutNumbers) -> tuple[frozenset[str], MappingProxyType]:
    """(the layout terms present, their Parameter values), memoized (the numbers are frozen)."""
    present = frozenset(f.name for f in fields(LayoutNumbers) if getattr(numbers, f.name) is not None)
    return present, MappingProxyType({layout_param(f): float(getattr(numbers, f)) for f in present})


@lru_cache(maxsize=4096)
def _shape_coefficients(shape: ModelShape, count: str) -> MappingProxyType:
    """``term_coefficients`` anchored at the shape's own count of the law's kind, so the ratios (active / law
    count ...) are exact; memoized (the shape is frozen)."""
    return MappingProxyType(term_coefficients(shape, float(COUNTERS[count](shape))))


def lr_law_of(request: PlanRequest) -> str:
    return request.lr_law or ("joint-moe-2025" if request.is_moe else "steplaw-2025")


def active_constraints(request: PlanRequest, var: Any) -> frozenset[str]:
    active = {c for f, c in LIMIT_FIELDS.items() if getattr(request, f) is not None}
    if var.unique_tokens is not None:
        active |= DATA
    return frozenset(active)


def program_inputs(request: PlanRequest, var: Any, cand: Candidate, layout: Layout, shape: ModelShape,
                   params_hint: float, active: frozenset[str], elastic: str | None = None
                   ) -> tuple[Structure, dict[str, float]]:
    """The program's structure and Parameter values for this variant, candidate, layout and shape."""
    present, layout_values = _layout_values(numbers_for(request, cand, layout, shape))
    coef, beta, gamma, _ = batch_law_monomial(lr_law_of(request))
    # serving terms only with inference demand (planner.serving.demand_from_request: None without inference_tokens)
    serving = serving_inputs(request, var, cand, params_hint) if request.inference_tokens is not None else None
    inference = serving[0] if serving else ()
    st = Structure(active=active, objective=request.objective, inference=inference, elastic=elastic,
                   bcrit_exponent=1.0 / KAPLAN_ALPHA_B, layout_terms=present, moe=shape.is_moe,
                   batch_exponents=(beta, gamma), coupled=request.batch_coupling is not False,
                   robust=getattr(var, "robust", None))
    values: dict[str, float] = {
        Param.PRICE: cand.price, Param.GOODPUT: request.goodput or DEFAULT_GOODPUT, Param.BSTAR: KAPLAN_BSTAR,
        Param.LAW_BATCH_COEF: coef, Param.MEMORY: cand.hw.memory if request.check_memory else 1e30,
        **_shape_coefficients(shape, var.count),
    }
    values.update(layout_values)
    for f, c in LIMIT_FIELDS.items():
        if c in active:
            v = float(getattr(request, f))
            values[c] = request.deadline_hours if c == "deadline" else v
    if "sizing" in active:
        values[Param.SIZING] = request.sizing_hours
    if serving:
        values.update(serving[1])
    if var.unique_tokens is not None:
        values.update({Param.UNIQUE_TOKENS: var.epochs * var.unique_tokens, Param.DATA_PARAMS: var.params_limit,
                       Param.PARAMS_SCALE: var.params_scale, Param.TOKENS_SCALE: var.tokens_scale})
    return st, values


def serving_accelerator(request: PlanRequest, cand: Candidate) -> tuple[Any, float]:
    """(accelerator, USD per device-hour) that serves the model: ``serve_gpu`` or the training one."""
    if not request.serve_gpu or request.serve_gpu.strip().lower() == cand.acc.id:
        return cand.acc, cand.price
    from cost_models.catalog import CatalogError, load_catalog

    try:
        acc = load_catalog(request.catalog).get(request.serve_gpu)
        return acc, acc.price(request.price_tier).usd_per_hour
    except CatalogError as e:
        raise InputError("serve_gpu", str(e)) from None


def program_serving_at(request: PlanRequest, var: Any, cand: Candidate, params: float):
    """The serving configuration the chooser picks for the rounded shape at ``params`` and its posynomials in N
    (planner.serving), or None without inference demand. The terms' fit error is not measured (NaN): the
    plan never reads it, and measuring it rounds 25 shapes per anchor."""
    from planner.serving import demand_from_request, program_serving

    demand = demand_from_request(request)
    if demand is None:
        return None
    acc, price = serving_accelerator(request, cand)
    return program_serving(params, demand, accelerator=acc, price=price, precision=request.serve_precision,
                           count=var.count, experts=var.experts, fixed_exponents=True, measure_error=False)


def serving_inputs(request: PlanRequest, var: Any, cand: Candidate, params: float):
    """(structure parts, Parameter values, ProgramServing) for the serving dollars at ``params``; None without
    demand. The configuration (TP degree, batch) is the chooser's for the rounded shape at ``params``: the
    largest batch that fits and meets the latency targets. It is re-chosen at every anchor of the fixed point
    and on the launchable shape, so memory and latency are enforced by the chooser, not as fixed-batch
    constraints (those would pin N at the anchor where the chosen batch fills memory)."""
    from cost_models.serving_terms import merge_terms
    from planner.serving import demand_from_request

    ps = program_serving_at(request, var, cand, params)
    if ps is None:
        return None
    demand = demand_from_request(request)
    terms = [(c, e) for c, e in merge_terms(ps.terms.usd_terms(demand.tokens, demand.total_input_tokens)["memory"])
             if c > 0]
    structure = (("serve_usd", tuple(round(e, 12) for _, e in terms)),)
    return structure, {serving_param("serve_usd", i): c for i, (c, _) in enumerate(terms)}, ps


def solve_layout(request: PlanRequest, law: Law, var: Any, cand: Candidate, layout: Layout,
                 params_hint: float, iterations: int = 4) -> Solved:
    """Solve with ``layout``; the shape terms are refreshed from the rounded shape until N settles (at most
    ``iterations`` solves)."""
    active = active_constraints(request, var)
    # without serving terms the Parameters depend on N only through the rounded shape: a solve at the shape it
    # already had would repeat the last answer exactly, so the loop stops there
    repeats = request.inference_tokens is None
    n = params_hint
    sol = None
    settled = False
    for _ in range(iterations):
        shape = shape_for(var, n, request.seq_len)
        # tensor parallel must split the rounded shape's heads; for wall-clock the program keeps its degree (a
        # relaxation: the whole-cluster stage scans sizes across a factor 3 for shapes whose heads it divides)
        if shape.tp_heads % layout.tp and request.objective != "time":
            layout = with_tp_for_heads(layout, shape.tp_heads, layout.tp)
        st, values = program_inputs(request, var, cand, layout, shape, n, active)
        sol = get_program(law, st).solve(values)
        if sol.status != "optimal":
            break
        settled = shape_for(var, sol.params, request.seq_len) == shape
        if abs(sol.params / n - 1.0) < 0.01 or (settled and repeats):
            break
        n = sol.params
    assert sol is not None
    serving = None
    if sol.status == "optimal" and request.inference_tokens is not None:
        serving = program_serving_at(request, var, cand, sol.params)
    return Solved(var, cand, layout, sol, values, st, shape_for(var, sol.params, request.seq_len)
                  if sol.status == "optimal" else shape, serving, settled)


# The fixed point's default start (params) when nothing better is known.
DEFAULT_START = 1e9


def compute_optimal_start(request: PlanRequest, var: Any) -> float | None:
    """Params to start the probe's fixed point from without a solve: the law's closed-form compute-optimal N at
    ``budget_flops`` (Hoffmann et al. 2022 eq. 4), where that is the program's answer up to the shape terms --
    a loss objective under a FLOPs budget alone, on a Chinchilla-form law in the program's own N. None
    otherwise (the fixed point starts from DEFAULT_START)."""
    law = var.law
    others = ("dollars", "gpu_hours", "deadline_days", "target_loss", "min_params", "max_params", "min_tokens",
              "max_tokens", "min_step_seconds", "inference_tokens")
    if (request.budget_flops is None or request.objective != "loss" or law.form != "chinchilla"
            or var.count not in ("total", "active") or var.unique_tokens is not None
            or getattr(var, "robust", None) is not None or any(getattr(request, f) is not None for f in others)):
        return None
    n = float(law.compute_optimal(request.budget_flops)[0])
    return n if math.isfinite(n) and n > 0 else None


def start_layout(request: PlanRequest, var: Any, layout: Layout) -> Layout:
    """``layout`` with tensor parallel fitted to the heads of the shape at DEFAULT_START, as a fixed point started
    there leaves it (the degree only shrinks along the fixed point): a fixed point started elsewhere on this
    layout reaches the same answer."""
    shape = shape_for(var, DEFAULT_START, request.seq_len)
    if shape.tp_heads % layout.tp and request.objective != "time":
        return with_tp_for_heads(layout, shape.tp_heads, layout.tp)
    return layout


def probe_layout(request: PlanRequest, cand: Candidate, experts: int) -> Layout:
    """The most memory-frugal layout of the search: full recomputation, ZeRO-3, tp up to 8 in a node."""
    tp = request.tensor_parallel or min(8, cand.acc.devices_per_node)
    if request.max_gpus:  # one replica must fit in the devices allowed
        tp = min(tp, 2 ** int(math.log2(request.max_gpus)))
    ep = min(2 ** int(math.log2(experts)), 64) if experts > 1 else 1
    return Layout(tp=tp, pp=1, recompute="full", zero_stage=3, ep=ep)


def diagnose(request: PlanRequest, law: Law, solved_inputs: tuple[Structure, dict[str, float]]
             ) -> InfeasiblePlanError:
    """Which single user limit, relaxed alone, makes the request feasible, and to what value."""
    st, values = solved_inputs
    fixes: dict[str, float] = {}
    parts = []
    for name in sorted(st.active - ALWAYS - DATA - {"sizing"}):
        est = Structure(**{**st.__dict__, "elastic": name})
        sol = get_program(law, est).solve(values)
        if sol.status != "optimal":
            continue
        factor = max(sol.value, 1.0) * (1 + 1e-4)
        lowers = name.startswith("min_")
        new = values[name] / factor if lowers else values[name] * factor
        fixes[FIELD_OF.get(name, name)] = hours_to_days(new) if name == "deadline" else new
        parts.append(("lower " if lowers else "raise ") + describe(name, values[name], new))
    if not parts:
        return InfeasiblePlanError("limits", "no plan meets every limit, and no single limit relaxed alone fixes it")
    first = next(iter(fixes))
    return InfeasiblePlanError(first, "no plan meets every limit; any one of these fixes it: " + "; ".join(parts),
                               fixes)


def describe(name: str, old: float, new: float) -> str:
    field = FIELD_OF.get(name, name)
    if name == "deadline":
        return f"{field} from {hours_to_days(old):.4g} to {hours_to_days(new):.4g} days"
    if name == "dollars":
        return f"{field} from ${old:,.0f} to ${new:,.0f}"
    if name == "max_devices":
        return f"{field} from {old:.0f} to {math.ceil(new - 1e-6):.0f}"
    return f"{field} from {old:.4g} to {new:.4g}"


def solver_failure(sol: Solution) -> InputError:
    tried = "; ".join(sol.errors) or "no solver answered"
    return InputError("solver", f"solver could not certify a plan (tried {tried})")


def active_params_of(shape: ModelShape) -> float:
    return float(active_params(shape))
