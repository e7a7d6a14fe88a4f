"""Make the program's continuous optimum a whole cluster the user can launch, and verify it.

The program's devices, batch and params are real numbers. Here the shape is rounded (the nearest shapes by
the law's parameter count, within the user's params bounds), the devices are made whole (a multiple of tp·pp,
whole nodes from one node up, at least one replica) and the batch whole sequences (a multiple of
dp × micro_batch); then, with shape, devices, layout and batch fixed, the remaining continuous choice -- the
tokens -- is re-solved in closed form against every limit with the same cluster model (``cost_models.cluster``)
the program used (``evaluate_whole``). ``planner.whole_search`` tries neighbouring clusters, batches, shapes
and layouts and the best plan that meets every limit wins; ``verify`` re-checks the winner in plain numbers,
and a plan that fails is never returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from cost_models.architecture import ModelShape
from cost_models.cluster import (
    Hardware,
    Layout,
    as_numbers,
    layout_numbers,
    memory_parts,
    step_seconds_at,
    terms_of_shape,
)
from cost_models.layout_search import LayoutEstimate, layout_problems
from cost_models.training import training_flops
from planner.critical_batch import effective_tokens, power, tokens_processed
from planner.law_memo import LawMemo
from planner.program import LAW_BATCH_FLOOR
from planner.request import PlanRequest, hours_to_days
from planner.rounding import COUNTERS, fit_shape
from planner.solve import Solved, batch_law_monomial, lr_law_of
from planner.whole_serving import _serving_point

REL_TOL = 1e-9  # limits are met to this relative tolerance (floating point only)



@dataclass
class WholePlan:
    """A launchable plan: concrete shape, layout, devices and batch, and the tokens re-solved for them."""

    shape: ModelShape
    params: float          # the shape's count of the kind the law uses
    layout: Layout
    devices: int
    batch_tokens: float
    tokens: float
    effective_tokens: float
    hours: float
    loss: float
    program_loss: float    # the loss the program's law sees (target_loss is checked on it)
    flops: float
    gpu_hours: float
    cost_usd: float
    serve_cost_usd: float
    estimate: LayoutEstimate | None
    steps: int

    @property
    def total_cost_usd(self) -> float:
        return self.cost_usd + self.serve_cost_usd


def device_candidates(g: float, layout: Layout, per_node: int, max_gpus: int | None) -> list[int]:
    """Whole device counts near ``g``: multiples of tp·pp (of lcm(tp·pp, node) from one node up), >= tp·pp;
    for MoE multiples of tp·pp·ep, so that ep divides the data-parallel ranks."""
    return list(_device_candidates(g, layout.tp * layout.pp * layout.ep, per_node, max_gpus))


@lru_cache(maxsize=4096)
def _device_candidates(g: float, mp: int, per_node: int, max_gpus: int | None) -> tuple[int, ...]:
    whole_nodes = math.lcm(mp, per_node)
    out = set()
    for unit in (mp, whole_nodes):
        lo = max(1, math.floor(g / unit)) * unit
        for k in (-1, 0, 1, 2):
            x = lo + k * unit
            if x >= mp and (x < per_node or x % whole_nodes == 0 or x <= mp):
                out.add(x)
    cands = sorted(out)
    if max_gpus is not None:
        cands = [x for x in cands if x <= max_gpus]
        top = (max_gpus // mp) * mp
        if top >= mp and (top < per_node or top % whole_nodes == 0):
            cands.append(top)
    return tuple(sorted(set(cands)))


def shape_candidates(solved: Solved, request: PlanRequest, params: float | None = None,
                     factors: tuple[float, ...] | None = None) -> list[tuple[ModelShape, float]]:
    """The rounded shape at ``params`` (default: the program's) and its neighbours at ``factors`` (default:
    ±3%, wider with serving or for the time objective), each with its law count, within the params bounds."""
    var = solved.var
    out: dict[tuple, tuple[ModelShape, float]] = {}
    if factors is None:
        factors = (1.0, 1.03, 1 / 1.03)
        # with serving demand the serving price jumps with the shape (head layout, KV cache): look wider
        if solved.serving is not None:
            factors += (1.15, 1 / 1.15, 1.3, 1 / 1.3, 1 / 1.5)
    for f in factors:
        fit = fit_shape((params or solved.sol.params) * f, count=var.count, experts=var.experts,
                        seq_len=request.seq_len)
        n = float(COUNTERS[var.count](fit.shape))
        if request.min_params is not None and n < request.min_params * (1 - REL_TOL):
            continue
        if request.max_params is not None and n > request.max_params * (1 + REL_TOL):
            continue
        if var.params_limit is not None and n > var.params_limit * (1 + 1e-6):
            continue
        out[(fit.shape.layers, fit.shape.d_model)] = (fit.shape, n)
    return list(out.values())


class ClusterLine(NamedTuple):
    """A fixed shape, layout and device count: step(B) = per_token · B + per_step seconds (cluster model).
    A named tuple: a search makes thousands."""

    shape: ModelShape
    n_law: float
    layout: Layout
    devices: int
    unit: float          # batch granularity: dp × micro_batch × seq_len tokens
    per_token: float     # seconds per token of batch per step
    per_step: float      # seconds per step independent of the batch (bubble, dp traffic)


def cluster_line(request: PlanRequest, solved: Solved, shape: ModelShape, n_law: float, layout: Layout,
                 devices: int, hw: Hardware | None = None) -> ClusterLine | None:
    """The cluster's step-time line, or None when the layout cannot run there or does not fit memory: the step
    at one and two units of batch as ``evaluate_layout`` reads it (without building its estimates)."""
    hw = hw or solved.cand.hw
    dp = devices // (layout.tp * layout.pp)
    unit = float(dp * layout.micro_batch * shape.seq_len)
    if layout_problems(shape, layout, devices, unit, hw.devices_per_node):
        return None
    m = terms_of_shape(shape)
    n = layout_numbers(layout, hw, shape.seq_len, shape.vocab, shape.top_k + shape.shared_experts, shape.is_moe,
                       request.mfu)
    if request.check_memory and not sum(as_numbers(memory_parts(m, n, devices)).values()) <= hw.memory:
        return None
    s1, s2 = step_seconds_at(m, n, [unit, 2 * unit], devices)
    slope = (s2 - s1) / unit
    return ClusterLine(shape, n_law, layout, devices, unit, slope, max(0.0, s1 - slope * unit))


def evaluate_whole(request: PlanRequest, solved: Solved, c: ClusterLine, batch: float,
                   memo: LawMemo | None = None) -> WholePlan | None:
    """Re-solve the tokens at a fixed cluster and batch; None if no tokens meet every limit."""
    cand, var, n_law, devices = solved.cand, solved.var, c.n_law, c.devices
    memo = memo or LawMemo(var)
    gp = request.goodput or 0.90
    per_token = (c.per_token + c.per_step / batch) / gp
    if request.min_step_seconds:
        per_token = max(per_token, request.min_step_seconds / batch)
    serve = memo.serve_cost(request, solved, c.shape)
    upper = []
    if request.budget_flops:
        upper.append(request.budget_flops / (6.0 * n_law))
    if request.max_tokens:
        upper.append(request.max_tokens)
    if var.unique_tokens is not None:
        upper.append(var.epochs * var.unique_tokens)
    if request.deadline_days:
        upper.append(request.deadline_hours * 3600.0 / per_token)
    if request.dollars:
        room = request.dollars - serve
        if room <= 0:
            return None
        upper.append(room / (devices * cand.price) * 3600.0 / per_token)
    if request.gpu_hours:
        upper.append(request.gpu_hours / devices * 3600.0 / per_token)
    coef, beta, gamma, _ = batch_law_monomial(lr_law_of(request))
    n_pow = float(power(n_law, gamma))
    if beta > 0:
        upper.append(float(power(batch / (LAW_BATCH_FLOOR * coef * n_pow), 1.0 / beta)))
    elif LAW_BATCH_FLOOR * coef * n_pow > batch * (1 + 1e-9):
        return None
    if request.batch_coupling is False:  # batch fixed at the batch law's optimum: no batch above it
        lo_b = coef * float(power(min(upper) if upper else 1.0, beta)) * n_pow
        if batch > lo_b + c.unit:
            return None
    lower = request.min_tokens or 0.0
    if request.objective == "loss":
        if not upper:
            return None
        tokens = min(upper)
    else:
        deff_need = memo.tokens_for_loss(n_law, request.target_loss)
        if deff_need is None:
            return None
        tokens = tokens_processed(deff_need, batch, coef, beta, gamma, n_law)
        tokens = max(tokens, lower)
        if upper and tokens > min(upper) * (1 + 1e-9):
            return None
    if tokens < lower * (1 - REL_TOL) or tokens <= 0:
        return None
    steps = max(1, math.floor(tokens / batch + 1e-9))
    tokens = steps * batch  # whole steps; never above the bound that chose the tokens
    if tokens < lower * (1 - REL_TOL):
        steps += 1
        tokens = steps * batch
        if upper and tokens > min(upper) * (1 + 1e-9):
            return None
    deff = effective_tokens(tokens, batch, coef, beta, gamma, n_law)
    if request.objective != "loss" and deff < deff_need:  # whole steps lost a fraction of a step
        steps += 1
        tokens = steps * batch
        if upper and tokens > min(upper) * (1 + 1e-9):
            return None
        deff = effective_tokens(tokens, batch, coef, beta, gamma, n_law)
    loss, ploss = (math.nan, math.nan) if request.objective == "loss" else memo.loss(n_law, deff)
    hours = tokens * per_token / 3600.0
    gh = devices * hours
    return WholePlan(shape=c.shape, params=n_law, layout=c.layout, devices=devices, batch_tokens=batch,
                     tokens=tokens, effective_tokens=deff, hours=hours, loss=loss, program_loss=ploss,
                     flops=float(training_flops(n_law, tokens)), gpu_hours=gh,
                     cost_usd=gh * cand.price, serve_cost_usd=serve, estimate=None, steps=steps)


def objective_of(plan: WholePlan, objective: str) -> float:
    return {"loss": plan.loss, "cost": plan.total_cost_usd, "time": plan.hours}[objective]


def verify(request: PlanRequest, solved: Solved, plan: WholePlan) -> list[str]:
    """Every user limit checked in plain numbers on the launchable plan: the limits it breaks (empty: none)."""
    bad = []
    cand = solved.cand

    def over(name: str, value: float, limit: float | None) -> None:
        if limit is not None and not value <= limit * (1 + REL_TOL):
            bad.append(f"{name}: {value:.6g} > {limit:.6g}")

    def under(name: str, value: float, limit: float | None) -> None:
        if limit is not None and not value >= limit * (1 - REL_TOL):
            bad.append(f"{name}: {value:.6g} < {limit:.6g}")

    over("budget_flops", plan.flops, request.budget_flops)
    over("dollars", plan.total_cost_usd, request.dollars)
    over("gpu_hours", plan.gpu_hours, request.gpu_hours)
    over("deadline_days", hours_to_days(plan.hours), request.deadline_days)
    over("max_gpus", plan.devices, request.max_gpus)
    over("max_params", plan.params, request.max_params)
    under("min_params", plan.params, request.min_params)
    over("max_tokens", plan.tokens, request.max_tokens)
    under("min_tokens", plan.tokens, request.min_tokens)
    if request.target_loss is not None:
        over("target_loss", plan.program_loss, request.target_loss)
    if plan.estimate is None:
        return ["no cluster estimate"]
    if request.check_memory and not plan.estimate.fits:
        bad.append(f"memory: {plan.estimate.memory_bytes / 1e9:.1f} GB > {cand.hw.memory / 1e9:.1f} GB usable")
    if plan.estimate.problems:
        bad.extend(plan.estimate.problems)
    if request.min_step_seconds and plan.hours * 3600 < plan.steps * request.min_step_seconds * (1 - REL_TOL):
        bad.append("min_step_seconds")
    point = _serving_point(request, solved, plan.shape)
    if point is not None:  # the serving configuration on the launchable model: memory and latency targets
        if not point.fits:
            bad.append("serving memory")
        if request.tpot_ms is not None and point.tpot_s * 1e3 > request.tpot_ms * (1 + REL_TOL):
            bad.append(f"tpot_ms: {point.tpot_s * 1e3:.4g} > {request.tpot_ms:.4g}")
        if request.ttft_ms is not None and point.ttft_s * 1e3 > request.ttft_ms * (1 + REL_TOL):
            bad.append(f"ttft_ms: {point.ttft_s * 1e3:.4g} > {request.ttft_ms:.4g}")
    numbers = [plan.tokens, plan.hours, plan.cost_usd, plan.loss, plan.flops, plan.batch_tokens]
    if not all(math.isfinite(x) and x > 0 for x in numbers):
        bad.append("a quantity is not a positive finite number")
    return bad
