"""Make the program's continuous optimum a whole cluster the user can launch, and verify it.

The program's devices, batch and params are real numbers. Here the shape is rounded (the nearest shapes by
the law's parameter count, within the user's params bounds), the devices are made whole (a multiple of tp·pp,
whole nodes from one node up, at least one replica) and the batch whole sequences (a multiple of
dp × micro_batch); then, with shape, devices, layout and batch fixed, the remaining continuous choice -- the
tokens -- is re-solved in closed form against every limit with the same cluster model (``cost_models.cluster``)
the program used. Neighbouring clusters, batches, shapes and layouts are tried and the best plan that meets
every limit wins. ``verify`` re-checks the winner in plain numbers; a plan that fails is never returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cost_models.architecture import ModelShape
from cost_models.cluster import Layout
from cost_models.layout_search import LayoutEstimate, best_layout, evaluate_layout
from cost_models.training import training_flops
from planner.request import PlanRequest
from planner.rounding import COUNTERS, fit_shape
from planner.solve import Candidate, Solved, batch_law_monomial, lr_law_of

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
    estimate: LayoutEstimate
    steps: int

    @property
    def total_cost_usd(self) -> float:
        return self.cost_usd + self.serve_cost_usd


def device_candidates(g: float, layout: Layout, per_node: int, max_gpus: int | None) -> list[int]:
    """Whole device counts near ``g``: multiples of tp·pp (of lcm(tp·pp, node) from one node up), >= tp·pp."""
    mp = layout.tp * layout.pp
    out = set()
    for unit in (mp, math.lcm(mp, per_node)):
        lo = max(1, math.floor(g / unit)) * unit
        for k in (0, 1, 2):
            out.add(lo + k * unit)
        if lo - unit >= mp:
            out.add(lo - unit)
    cands = sorted(x for x in out if x >= mp and (x < per_node or x % math.lcm(mp, per_node) == 0 or x <= mp))
    if max_gpus is not None:
        cands = [x for x in cands if x <= max_gpus]
        top = (max_gpus // mp) * mp
        if top >= mp and (top < per_node or top % math.lcm(mp, per_node) == 0):
            cands.append(top)
    return sorted(set(cands))


def shape_candidates(solved: Solved, request: PlanRequest) -> list[tuple[ModelShape, float]]:
    """The rounded shape and its neighbours (params ±3%), each with its law count, within the params bounds."""
    var = solved.var
    out: dict[tuple, tuple[ModelShape, float]] = {}
    for f in (1.0, 1.03, 1 / 1.03):
        fit = fit_shape(solved.sol.params * f, count=var.count, experts=var.experts, seq_len=request.seq_len)
        n = float(COUNTERS[var.count](fit.shape))
        if request.min_params is not None and n < request.min_params * (1 - REL_TOL):
            continue
        if request.max_params is not None and n > request.max_params * (1 + REL_TOL):
            continue
        if var.params_limit is not None and n > var.params_limit * (1 + 1e-6):
            continue
        out[(fit.shape.layers, fit.shape.d_model)] = (fit.shape, n)
    return list(out.values())


def _effective(var, n: float, tokens: float, batch: float, law_batch: float) -> tuple[float, float]:
    """(effective tokens, program loss): D_eff = D / max(1, B / B_law) (see planner.program: large_batch)."""
    deff = tokens / max(1.0, batch / law_batch)
    return deff, var.program_loss(n, deff)


def _tokens_for_loss(var, n: float, target: float) -> float | None:
    """Effective tokens at which the program's law reaches ``target`` at ``n`` params (None if it never does)."""
    lo, hi = 1e3, 1e19
    if var.program_loss(n, hi) > target:
        return None
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        if var.program_loss(n, mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def _serve_cost(request: PlanRequest, cand: Candidate, params: float) -> float:
    if request.inference_tokens is None:
        return 0.0
    from cost_models.inference import DEFAULT_EFFICIENCY, usd_per_million_tokens

    per_million = float(usd_per_million_tokens(cand.price, cand.peak / (2 * params), DEFAULT_EFFICIENCY))
    return per_million * request.inference_tokens / 1e6


def evaluate_whole(request: PlanRequest, solved: Solved, shape: ModelShape, n_law: float, layout: Layout,
                   devices: int, batch: float) -> WholePlan | None:
    """Re-solve the tokens at a fixed shape, layout, device count and batch; None if no tokens meet the limits."""
    cand, var = solved.cand, solved.var
    est = evaluate_layout(shape, layout, cand.hw, batch_tokens=batch, devices=devices)
    if est.problems or (request.check_memory and not est.fits):
        return None
    gp = request.goodput or 0.90
    per_token = est.step_seconds / batch / gp
    if request.min_step_seconds:
        per_token = max(per_token, request.min_step_seconds / batch)
    serve = _serve_cost(request, cand, n_law)
    upper = []
    if request.budget_flops:
        upper.append(request.budget_flops / (6.0 * n_law))
    if request.max_tokens:
        upper.append(request.max_tokens)
    if var.unique_tokens is not None:
        upper.append(var.epochs * var.unique_tokens)
    if request.deadline_days:
        upper.append(request.deadline_days * 24 * 3600.0 / per_token)
    if request.dollars:
        room = request.dollars - serve
        if room <= 0:
            return None
        upper.append(room / (devices * cand.price) * 3600.0 / per_token)
    if request.gpu_hours:
        upper.append(request.gpu_hours / devices * 3600.0 / per_token)
    coef, beta, gamma, _ = batch_law_monomial(lr_law_of(request))
    if beta > 0:
        upper.append((batch / (coef * n_law**gamma)) ** (1.0 / beta))
    elif coef * n_law**gamma > batch * (1 + 1e-9):
        return None
    lower = request.min_tokens or 0.0
    if request.objective == "loss":
        if not upper:
            return None
        tokens = min(upper)
    else:
        deff_need = _tokens_for_loss(var, n_law, request.target_loss)
        if deff_need is None:
            return None
        tokens = deff_need * max(1.0, batch / (coef * deff_need**beta * n_law**gamma))
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
    deff, ploss = _effective(var, n_law, tokens, batch, coef * tokens**beta * n_law**gamma)
    if request.objective != "loss" and ploss > request.target_loss * (1 + 1e-9):
        steps += 1
        tokens = steps * batch
        if upper and tokens > min(upper) * (1 + 1e-9):
            return None
        deff, ploss = _effective(var, n_law, tokens, batch, coef * tokens**beta * n_law**gamma)
    hours = tokens * per_token / 3600.0
    gh = devices * hours
    return WholePlan(shape=shape, params=n_law, layout=layout, devices=devices, batch_tokens=batch, tokens=tokens,
                     effective_tokens=deff, hours=hours, loss=var.loss(n_law, deff), program_loss=ploss,
                     flops=float(training_flops(n_law, tokens)), gpu_hours=gh, cost_usd=gh * cand.price,
                     serve_cost_usd=serve, estimate=est, steps=steps)


def _objective(plan: WholePlan, objective: str) -> float:
    return {"loss": plan.loss, "cost": plan.total_cost_usd, "time": plan.hours}[objective]


def make_whole(request: PlanRequest, solved: Solved) -> WholePlan | None:
    """The best launchable plan near the program's optimum (None if no neighbour meets every limit)."""
    sol, cand = solved.sol, solved.cand
    per_node = cand.acc.devices_per_node
    best: WholePlan | None = None
    sizing_h = None if (request.deadline_days or request.objective == "time") else request.sizing_days * 24
    targets = [sol.devices]
    if sizing_h is not None and "throughput" in sol.sides:
        # the fewest devices that finish within the sizing horizon, but no more than the batch law's optimal
        # batch can feed (more data-parallel ranks would force a larger batch and cost tokens)
        needed_h = sol.sides["throughput"][0] / (3600.0 * (request.goodput or 0.90))
        g_size = max(1.0, sol.devices * needed_h / sizing_h)
        lay = solved.layout
        if "law_batch" in sol.sides:
            g_size = min(g_size, max(1.0, sol.sides["law_batch"][0] * lay.tp * lay.pp /
                                     (lay.micro_batch * request.seq_len)))
        targets.append(g_size)
    for shape, n_law in shape_candidates(solved, request):
        layouts = {solved.layout}
        for t in targets:  # the fastest layout at the nearest whole cluster of each target size
            near = device_candidates(t, solved.layout, per_node, request.max_gpus)
            if not near:
                continue
            g = min(near, key=lambda x: abs(math.log(x / max(t, 1e-9))))
            b, _ = best_layout(shape, cand.hw, batch_tokens=max(sol.batch_tokens, g * shape.seq_len), devices=g,
                               tp=request.tensor_parallel)
            if b is not None:
                layouts.add(b.layout)
        for lay in layouts:
            for g in sorted({x for t in targets for x in device_candidates(t, lay, per_node, request.max_gpus)}):
                dp = g // (lay.tp * lay.pp)
                unit = dp * lay.micro_batch * shape.seq_len
                k0 = max(1, round(sol.batch_tokens / unit))
                for k in sorted({k0, k0 + 1, max(1, math.ceil(sol.batch_tokens / unit))}):
                    plan = evaluate_whole(request, solved, shape, n_law, lay, g, float(k * unit))
                    if plan is None or verify(request, solved, plan):
                        continue
                    if best is None or _rank(plan, request.objective, sizing_h) < _rank(best, request.objective,
                                                                                       sizing_h):
                        best = plan
    return best


def _rank(plan: WholePlan, objective: str, sizing_h: float | None) -> tuple:
    """Objective first (to 1e-6 relative), then finishing within the sizing horizon, then dollars."""
    late = sizing_h is not None and plan.hours > sizing_h * (1 + 1e-6)
    obj = _objective(plan, objective)
    return (round(math.log(obj) * 1e6) if obj > 0 else obj, late, plan.total_cost_usd, plan.devices)


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
    over("deadline_days", plan.hours / 24.0, request.deadline_days)
    over("max_gpus", plan.devices, request.max_gpus)
    over("max_params", plan.params, request.max_params)
    under("min_params", plan.params, request.min_params)
    over("max_tokens", plan.tokens, request.max_tokens)
    under("min_tokens", plan.tokens, request.min_tokens)
    if request.target_loss is not None:
        over("target_loss", plan.program_loss, request.target_loss)
    if request.check_memory and not plan.estimate.fits:
        bad.append(f"memory: {plan.estimate.memory_bytes / 1e9:.1f} GB > {cand.hw.memory / 1e9:.1f} GB usable")
    if plan.estimate.problems:
        bad.extend(plan.estimate.problems)
    if request.min_step_seconds and plan.hours * 3600 < plan.steps * request.min_step_seconds * (1 - REL_TOL):
        bad.append("min_step_seconds")
    numbers = [plan.tokens, plan.hours, plan.cost_usd, plan.loss, plan.flops, plan.batch_tokens]
    if not all(math.isfinite(x) and x > 0 for x in numbers):
        bad.append("a quantity is not a positive finite number")
    return bad
