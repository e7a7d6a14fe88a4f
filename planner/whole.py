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
import threading
from dataclasses import dataclass

import numpy as np

from cost_models.architecture import ModelShape
from cost_models.cluster import Layout
from cost_models.layout_search import LayoutEstimate, evaluate_layout, fastest_layout
from cost_models.training import training_flops
from planner.critical_batch import effective_tokens, tokens_processed
from planner.program import LAW_BATCH_FLOOR
from planner.request import PlanRequest, hours_to_days
from planner.rounding import COUNTERS, fit_shape
from planner.solve import Candidate, Solved, batch_law_monomial, lr_law_of

REL_TOL = 1e-9  # limits are met to this relative tolerance (floating point only)
SCREEN = 1.25  # time objective: shapes whose quick look is this much slower than the best are not searched
WIDEN = 4  # time objective: how many screened shapes are searched fully per widening
SIZING_TOLERANCE = 1e-3  # the objective a plan may give up to finish within the sizing horizon, or to be cheaper


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
    mp = layout.tp * layout.pp * layout.ep
    out = set()
    for unit in (mp, math.lcm(mp, per_node)):
        lo = max(1, math.floor(g / unit)) * unit
        for k in (-1, 0, 1, 2):
            if lo + k * unit >= mp:
                out.add(lo + k * unit)
    cands = sorted(x for x in out if x >= mp and (x < per_node or x % math.lcm(mp, per_node) == 0 or x <= mp))
    if max_gpus is not None:
        cands = [x for x in cands if x <= max_gpus]
        top = (max_gpus // mp) * mp
        if top >= mp and (top < per_node or top % math.lcm(mp, per_node) == 0):
            cands.append(top)
    return sorted(set(cands))


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


def _tokens_for_loss(var, n: float, target: float) -> float | None:
    """Effective tokens at which the program's law reaches ``target`` at ``n`` params (None if it never does):
    the loss falls with tokens, so the crossing is bracketed on a 65-point geometric grid, seven times nested
    (16 decades / 64^7: the bracket is below 1e-11 relative)."""
    lo, hi = 1e3, 1e19
    if var.program_loss(n, hi) > target:
        return None
    for _ in range(7):
        grid = np.geomspace(lo, hi, 65)
        i = int(np.argmax(np.asarray(var.program_losses(n, grid)) <= target))  # the first grid point that reaches it
        if i == 0:
            return float(grid[0])
        lo, hi = float(grid[i - 1]), float(grid[i])
    return hi


_CHOICES: dict[tuple, object] = {}
_CHOICES_LOCK = threading.Lock()


def _serving_choice(request: PlanRequest, cand: Candidate, shape: ModelShape):
    """The chooser's serving configuration on the launchable shape (the same model and rule as the program's);
    memoized per (request, accelerator, price, shape)."""
    from planner.serving import choose_serving, demand_from_request
    from planner.solve import serving_accelerator

    key = (request.model_dump_json(), cand.acc.id, cand.price, shape)
    with _CHOICES_LOCK:
        if key in _CHOICES:
            return _CHOICES[key]
    acc, price = serving_accelerator(request, cand)
    choice = choose_serving(shape, acc, demand_from_request(request), precision=request.serve_precision, price=price)
    with _CHOICES_LOCK:
        if len(_CHOICES) > 4096:
            _CHOICES.clear()
        _CHOICES[key] = choice
    return choice


def _serving_point(request: PlanRequest, solved: Solved, shape: ModelShape):
    """The serving configuration evaluated on the launchable shape (None: no demand)."""
    if solved.serving is None:
        return None
    return _serving_choice(request, solved.cand, shape).point


def _serve_cost(request: PlanRequest, solved: Solved, shape: ModelShape) -> float:
    point = _serving_point(request, solved, shape)
    if point is None:
        return 0.0
    from planner.serving import demand_from_request, serving_dollars

    return serving_dollars(point, demand_from_request(request))


@dataclass(frozen=True)
class _Cluster:
    """A fixed shape, layout and device count: step(B) = per_token · B + per_step seconds (cluster model)."""

    shape: ModelShape
    n_law: float
    layout: Layout
    devices: int
    unit: float          # batch granularity: dp × micro_batch × seq_len tokens
    per_token: float     # seconds per token of batch per step
    per_step: float      # seconds per step independent of the batch (bubble, dp traffic)


def _cluster(request: PlanRequest, solved: Solved, shape: ModelShape, n_law: float, layout: Layout,
             devices: int) -> _Cluster | None:
    """The cluster's step-time line, or None when the layout cannot run there or does not fit memory."""
    hw = solved.cand.hw
    dp = devices // (layout.tp * layout.pp)
    unit = float(dp * layout.micro_batch * shape.seq_len)
    e1 = evaluate_layout(shape, layout, hw, batch_tokens=unit, devices=devices, mfu=request.mfu)
    if e1.problems or (request.check_memory and not e1.fits):
        return None
    e2 = evaluate_layout(shape, layout, hw, batch_tokens=2 * unit, devices=devices, mfu=request.mfu)
    slope = (e2.step_seconds - e1.step_seconds) / unit
    return _Cluster(shape, n_law, layout, devices, unit, slope, max(0.0, e1.step_seconds - slope * unit))


class _Memo:
    """Law evaluations shared by every cluster and batch tried for one plan (the law is the slow part)."""

    def __init__(self, var):
        self.var = var
        self.need: dict[tuple[float, float], float | None] = {}
        self.losses: dict[tuple[float, float], tuple[float, float]] = {}
        self.serving: dict[tuple[int, int], float] = {}

    def tokens_for_loss(self, n: float, target: float) -> float | None:
        key = (n, target)
        if key not in self.need:
            self.need[key] = _tokens_for_loss(self.var, n, target)
        return self.need[key]

    def serve_cost(self, request: PlanRequest, solved: Solved, shape: ModelShape) -> float:
        key = (shape.layers, shape.d_model)
        if key not in self.serving:
            self.serving[key] = _serve_cost(request, solved, shape)
        return self.serving[key]

    def loss(self, n: float, deff: float) -> tuple[float, float]:
        """(plan loss, program loss) at (n, deff)."""
        key = (n, deff)
        if key not in self.losses:
            self.losses[key] = (self.var.loss(n, deff), self.var.program_loss(n, deff))
        return self.losses[key]


def evaluate_whole(request: PlanRequest, solved: Solved, c: _Cluster, batch: float,
                   memo: _Memo | None = None) -> WholePlan | None:
    """Re-solve the tokens at a fixed cluster and batch; None if no tokens meet every limit."""
    cand, var, n_law, devices = solved.cand, solved.var, c.n_law, c.devices
    memo = memo or _Memo(var)
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
    if beta > 0:
        upper.append((batch / (LAW_BATCH_FLOOR * coef * n_law**gamma)) ** (1.0 / beta))
    elif LAW_BATCH_FLOOR * coef * n_law**gamma > batch * (1 + 1e-9):
        return None
    if request.batch_coupling is False:  # batch fixed at the batch law's optimum: no batch above it
        lo_b = coef * (min(upper) if upper else 1.0) ** beta * n_law**gamma
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


def _objective(plan: WholePlan, objective: str) -> float:
    return {"loss": plan.loss, "cost": plan.total_cost_usd, "time": plan.hours}[objective]


def _tp_for(shape: ModelShape, lay: Layout, top: int) -> Layout:
    """``lay`` with the largest power-of-two tensor parallel up to ``top`` that divides the shape's heads."""
    tp = max(t for t in (1, 2, 4, 8, 16, 32, 64) if t <= max(top, 1) and shape.heads % t == 0)
    return lay if tp == lay.tp else lay.model_copy(update={"tp": tp})


def _layouts_near(request: PlanRequest, solved: Solved, shape: ModelShape, targets: list[float],
                  fastest: dict[float, Layout] | None = None) -> set[Layout]:
    """The program's layout, its tp and pp neighbours, and the fastest layout at each target size (searched once
    per target when ``fastest`` is given: later shapes reuse it with tensor parallel fitted to their heads)."""
    cand, lay = solved.cand, solved.layout
    # tensor parallel must divide the rounded shape's heads: the largest such power of two up to the program's
    tp_top = max(lay.tp, cand.acc.devices_per_node if request.objective == "time" else 1)
    tp_ok = request.tensor_parallel or max(t for t in (1, 2, 4, 8, 16, 32, 64)
                                           if t <= tp_top and shape.heads % t == 0)
    if tp_ok != lay.tp:
        lay = lay.model_copy(update={"tp": tp_ok})
    out = {lay}
    # its tensor-parallel neighbours (for wall-clock every smaller degree: a small model's TP traffic can cost
    # more than the devices a larger degree feeds)
    tps = (lay.tp // 8, lay.tp // 4, lay.tp // 2, lay.tp * 2) if request.objective == "time" else (
        lay.tp // 2, lay.tp * 2)
    for tp in tps:
        if 1 <= tp <= cand.acc.devices_per_node and not request.tensor_parallel and shape.heads % tp == 0:
            out.add(lay.model_copy(update={"tp": tp}))
    for pp in (lay.pp // 2, lay.pp * 2):
        if 1 <= pp <= shape.layers:
            out.add(lay.model_copy(update={"pp": pp}))
    # a coarse batch (few sequences per data-parallel rank) is refined by deeper pipelines: fewer ranks
    seqs_per_rank = solved.sol.batch_tokens * lay.tp * lay.pp / (max(*targets, 1.0) * shape.seq_len)
    pp = lay.pp
    while seqs_per_rank < 16 and pp * 2 <= min(shape.layers, 64):
        pp *= 2
        seqs_per_rank *= 2
        for tp in {lay.tp, min(8, cand.acc.devices_per_node)}:
            if (not request.tensor_parallel or tp == request.tensor_parallel) and shape.heads % tp == 0:
                out.add(lay.model_copy(update={"pp": pp, "tp": tp}))
    for t in targets:
        if fastest is not None and t in fastest:
            if fastest[t] is not None:
                top = request.tensor_parallel or fastest[t].tp
                out.add(_tp_for(shape, fastest[t], top))
            continue
        near = device_candidates(t, lay, cand.acc.devices_per_node, request.max_gpus)
        if fastest is not None:
            fastest[t] = None
        if near:
            g = min(near, key=lambda x: abs(math.log(x / max(t, 1e-9))))
            b = fastest_layout(shape, cand.hw, batch_tokens=max(solved.sol.batch_tokens, g * shape.seq_len),
                               devices=g, mfu=request.mfu, tp=request.tensor_parallel)
            if b is not None:
                out.add(b.layout)
                if fastest is not None:
                    fastest[t] = b.layout
    return out


def make_whole(request: PlanRequest, solved: Solved) -> WholePlan | None:
    """The best launchable plan near the program's optimum (None if no neighbour meets every limit)."""
    sol = solved.sol
    sizing_h = None if (request.deadline_days or request.objective == "time") else request.sizing_hours
    targets = [sol.devices]
    cap = math.inf
    if sizing_h is not None and "throughput" in sol.sides:
        # the fewest devices that finish within the sizing horizon, but no more than the batch law's optimal
        # batch can feed (more data-parallel ranks would force a larger batch and cost tokens)
        needed_h = sol.sides["throughput"][0] / (3600.0 * (request.goodput or 0.90))
        lay = solved.layout
        if "law_batch" in sol.sides:  # with the deepest model parallelism the search may use
            mp_max = min(8, solved.cand.acc.devices_per_node) * min(8, solved.shape.layers)
            cap = max(1.0, sol.sides["law_batch"][0] * mp_max / (lay.micro_batch * request.seq_len))
        targets.append(min(cap, max(1.0, sol.devices * needed_h / sizing_h)))
    lay = solved.layout
    per_rank = sol.batch_tokens * lay.tp * lay.pp / (max(sol.devices, 1.0) * lay.micro_batch * request.seq_len)
    if per_rank < 16:  # a coarse batch: fewer data-parallel ranks may beat the program's device count
        targets += [sol.devices * f for f in (0.7, 0.5, 0.35, 0.25) if sol.devices * f >= 1]
    scan = _Scan(request, solved)
    scan.add(targets)
    if request.objective == "time" and scan.best is not None:
        # wall-clock is rugged in N (which tensor-parallel degrees divide the heads, whole batches per rank) and
        # the program saw one layout: screen shapes across a factor 3 (and every shape of the family near the
        # most promising) with a quick look, and search the best of them fully
        scan.widen(targets, solved.sol.params)
    for _ in range(3):  # per-device speed drops with scale: retarget from the launchable plans found so far
        best = scan.choose(sizing_h)
        if best is None or sizing_h is None or best.hours <= sizing_h * (1 + 1e-6):
            break
        fastest = min(scan.near(), key=lambda p: p.hours)
        g = min(cap, fastest.devices * fastest.hours / sizing_h * 1.05)
        if g <= fastest.devices * 1.01:
            break
        scan.add([g])
    best = scan.choose(sizing_h, max_devices=cap * 1.2)
    if best is None:
        return None
    best.estimate = evaluate_layout(best.shape, best.layout, solved.cand.hw, batch_tokens=best.batch_tokens,
                                    devices=best.devices, mfu=request.mfu)
    return best if not verify(request, solved, best) else None


class _Scan:
    """Launchable plans around given device counts: every shape candidate, nearby layout and whole batch."""

    def __init__(self, request: PlanRequest, solved: Solved):
        self.request, self.solved = request, solved
        self.pool: list[WholePlan] = []
        self.best: WholePlan | None = None
        self.memo, self.best_deff = _Memo(solved.var), {}
        self.seen: set[tuple] = set()
        self.shapes = shape_candidates(solved, request)
        # the time objective scans many shapes: the fastest-layout search runs once per device target
        self.fastest: dict[float, Layout] | None = {} if request.objective == "time" else None

    def add(self, targets: list[float]) -> None:
        request, solved, sol = self.request, self.solved, self.solved.sol
        per_node = solved.cand.acc.devices_per_node
        for shape, n_law in self.shapes:
            # in a fixed order: ties keep the first plan found, which must not depend on set hashing
            for lay in sorted(_layouts_near(request, solved, shape, targets, self.fastest), key=Layout.label):
                for g in sorted({x for t in targets for x in device_candidates(t, lay, per_node, request.max_gpus)}):
                    key = (shape.layers, shape.d_model, lay, g)
                    if key in self.seen:
                        continue
                    self.seen.add(key)
                    c = _cluster(request, solved, shape, n_law, lay, g)
                    if c is not None:
                        self._batches(c, n_law, sol.batch_tokens)

    def widen(self, targets: list[float], params: float) -> None:
        """Screen shapes across a factor 3 of ``params`` with a quick look (``_quick``), then every shape of the
        family within ±8% of the three most promising, and search the WIDEN best within SCREEN of the best
        plan fully."""
        looks: dict[tuple, tuple[float, ModelShape, float]] = {}

        def screen(at: float, factors: tuple[float, ...]) -> None:
            for shape, n_law in shape_candidates(self.solved, self.request, at, factors):
                key = (shape.layers, shape.d_model)
                if key in looks or any((s.layers, s.d_model) == key for s, _ in self.shapes):
                    continue
                quick = self._quick(shape, n_law, targets)
                looks[key] = (quick.hours if quick is not None else math.inf, shape, n_law)

        screen(params, tuple(3 ** (k / 12) for k in range(-12, 13)))
        for _hours, _shape, n_law in sorted(looks.values(), key=lambda x: x[0])[:3]:
            screen(n_law, tuple(1.01**k for k in range(-8, 9)))
        ranked = sorted((x for x in looks.values() if x[0] <= self.best.hours * SCREEN), key=lambda x: x[0])
        self.shapes = self.shapes + [(shape, n) for _, shape, n in ranked[:WIDEN]]
        self.add(targets)

    def _quick(self, shape: ModelShape, n_law: float, targets: list[float]) -> WholePlan | None:
        """The best of the program's layout with the largest tensor parallel that splits the heads (and a half
        and a quarter of it), each on the most devices near the first target and on as many as the program's
        batch feeds with one micro-batch per rank (fewer ranks allow a finer whole batch)."""
        request, solved = self.request, self.solved
        per_node, batch = solved.cand.acc.devices_per_node, solved.sol.batch_tokens
        top = _tp_for(shape, solved.layout, request.tensor_parallel or per_node)
        found = None
        tps = {_tp_for(shape, top, request.tensor_parallel or max(1, top.tp // k)) for k in (1, 2, 4)}
        for lay in sorted(tps, key=Layout.label):
            fed = batch * lay.tp * lay.pp / (lay.micro_batch * shape.seq_len)
            for t in (targets[0], fed):
                near = device_candidates(t, lay, per_node, request.max_gpus)
                g = max((x for x in near if x <= t * (1 + 1e-9)), default=min(near, default=None))
                c = _cluster(request, solved, shape, n_law, lay, g) if g is not None else None
                plan = self._batches(c, n_law, batch) if c is not None else None
                if plan is not None and (found is None or plan.hours < found.hours):
                    found = plan
        return found

    def _batches(self, c: _Cluster, n_law: float, batch: float) -> WholePlan | None:
        """Evaluate whole batches around ``batch`` on cluster ``c``; the best plan found there (or None)."""
        found = None
        # the batch law allows down to LAW_BATCH_FLOOR of its optimum, and for wall-clock or dollars a smaller
        # whole batch (fewer tokens above the critical batch) can beat the program's: look down to one unit
        low = 0.75 if self.request.objective == "loss" else 0.25
        k_lo = max(1, math.floor(low * batch / c.unit))
        k_hi = max(k_lo + 1, math.ceil(1.5 * batch / c.unit))
        ks = range(k_lo, k_hi + 1) if k_hi - k_lo <= 10 else sorted(
            {round(k_lo * (k_hi / k_lo) ** (i / 10)) for i in range(11)})
        objective = self.request.objective
        for k in ks:
            plan = evaluate_whole(self.request, self.solved, c, float(k * c.unit), self.memo)
            if plan is None:
                continue
            if objective == "loss":  # the law only for plans that could win on tokens
                top = self.best_deff.get(n_law)
                if top is not None and plan.effective_tokens < top * 0.95 and self.best is not None:
                    continue  # 5% fewer effective tokens is well past SIZING_TOLERANCE in loss
                self.best_deff[n_law] = max(top or 0.0, plan.effective_tokens)
                plan.loss, plan.program_loss = self.memo.loss(n_law, plan.effective_tokens)
            self.pool.append(plan)
            if self.best is None or _objective(plan, objective) < _objective(self.best, objective):
                self.best = plan
            if found is None or _objective(plan, objective) < _objective(found, objective):
                found = plan
        return found

    def near(self) -> list[WholePlan]:
        """Plans within SIZING_TOLERANCE of the best objective."""
        top = _objective(self.best, self.request.objective) * (1 + SIZING_TOLERANCE)
        return [p for p in self.pool if _objective(p, self.request.objective) <= top]

    def choose(self, sizing_h: float | None, max_devices: float = math.inf) -> WholePlan | None:
        """Within SIZING_TOLERANCE of the best objective: within the sizing horizon, then dollars (no more
        devices than ``max_devices`` for the sake of sizing alone)."""
        if self.best is None:
            return None
        near = [p for p in self.near() if p.devices <= max_devices] or self.near()
        return min(near, key=lambda p: _rank(p, self.request.objective, sizing_h))


def _rank(plan: WholePlan, objective: str, sizing_h: float | None) -> tuple:
    """Among plans within SIZING_TOLERANCE of the best objective: within the sizing horizon first, then dollars
    (or, when none finishes in time, the soonest), then the objective: sizing never costs more than 0.1% of the
    objective."""
    late = sizing_h is not None and plan.hours > sizing_h * (1 + 1e-6)
    return (late, plan.hours if late else plan.total_cost_usd, _objective(plan, objective), plan.devices)


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
