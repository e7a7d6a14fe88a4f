"""``planner.whole.evaluate_whole`` over many cluster lines and whole batches at once (numpy), bit for bit.

Every row is one (cluster line, whole batch k·unit). The tokens are re-solved in closed form exactly as
``evaluate_whole`` does, operation by operation in the same order: numpy's + − × ÷, min, max and floor are
exactly rounded like Python's, so each row equals the scalar function's plan. The powers are not (numpy's
vectorized ``power`` may differ from Python's ``**`` by an ulp), so both take them with
``critical_batch.power`` (numpy's loop for a number and an array alike), and here only on the rows the scalar
function would still be evaluating (it returns early). The law is evaluated on arrays only for the forms where
that is exact (``whole.ARRAY_EXACT_FORMS``), else one by one through ``LawMemo``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from cost_models.architecture import ModelShape
from cost_models.cluster import Hardware, Layout, ModelTerms, terms_of_shape
from cost_models.layout_search import NUMBER_FIELDS, numbers_row, steps_and_memory
from cost_models.training import training_flops
from planner.critical_batch import power
from planner.program import LAW_BATCH_FLOOR
from planner.request import PlanRequest
from planner.solve import Solved, batch_law_monomial, lr_law_of
from planner.whole import REL_TOL, ClusterLine, LawMemo, WholePlan

# When the sizing horizon cannot be met, sizing trades time against dollars at par: the plan with the least
# (training dollars per FLOP) x (hours per FLOP), i.e. 1% sooner is worth 1% more dollars. Per FLOP, so plans
# that train a few % fewer tokens within SIZING_TOLERANCE are compared on the same footing. (The soonest plan
# bought 24% of speed with 3x the dollars; the cheapest, or a fixed premium over it, ran for years, because a
# few hundred devices have the best MFU.)
LADDER_MAX = 12  # late plans: at most this many extra device targets on a geometric ladder (see ``device_ladder``)


def device_ladder(low: float, cap: float) -> list[float]:
    """Device targets above ``low`` up to ``cap`` (both included when they differ by 1%): factor sqrt 2, or 2
    when that takes more than LADDER_MAX targets, or evenly spread in log past that."""
    if not math.isfinite(cap) or cap <= low * 1.01:
        return []
    span = math.log(cap / low)
    steps = math.ceil(span / math.log(math.sqrt(2)) - 1e-9)
    if steps > LADDER_MAX:
        steps = math.ceil(span / math.log(2) - 1e-9)
    steps = min(max(steps, 1), LADDER_MAX)
    return [low * math.exp(span * k / steps) for k in range(1, steps + 1)]


def late_score(usd_per_flop: np.ndarray, hours_per_flop: np.ndarray) -> np.ndarray:
    """What sizing minimizes when the horizon is out of reach: dollars per FLOP x hours per FLOP (USD·h/FLOP²)."""
    return np.asarray(usd_per_flop, dtype=float) * np.asarray(hours_per_flop, dtype=float)



def cluster_lines(request: PlanRequest, solved: Solved, items: list[tuple[ModelShape, float, Layout, int]],
                  hw: Hardware) -> list[ClusterLine | None]:
    """``whole.cluster_line`` for every (shape, law params, layout, devices) of ``items`` at once: the layout's
    problems, memory and the step at one and two units of batch as ``evaluate_layout`` reads them (its sums
    are plain left-to-right float sums, as numpy's here)."""
    if not items:
        return []
    # the distinct shapes and (shape, layout) pairs, each read once; every item indexes them
    shapes: dict[int, tuple] = {}
    pairs: dict[tuple[int, int], tuple] = {}
    si, pi = [], []
    last, at = None, (0, 0)
    for shape, _, lay, _ in items:  # a scan lists each (shape, layout)'s device counts together
        key = (id(shape), id(lay))
        if key != last:
            last = key
            s_at = shapes.setdefault(id(shape), (len(shapes), shape))[0]
            at = (s_at, pairs.setdefault(key, (len(pairs), shape, lay))[0])
        si.append(at[0])
        pi.append(at[1])
    si, pi = np.array(si), np.array(pi)
    shape_cols = np.array([(s.seq_len, s.tp_heads, s.layers, s.experts, s.is_moe) for _, s in shapes.values()],
                          dtype=np.int64)[si]
    seq, heads, layers, experts, moe = shape_cols.T
    pair_cols = np.array([(lay.tp, lay.pp, lay.micro_batch, lay.ep) for _, _, lay in pairs.values()],
                         dtype=np.int64)[pi]
    tp, pp, mb, ep = pair_cols.T
    devices = np.array([it[3] for it in items], dtype=np.int64)
    mp = tp * pp
    unit = (devices // mp * mb * seq).astype(float)
    dp = np.maximum(devices // mp, 1)
    bad = (tp > hw.devices_per_node) | (devices % mp != 0) | (pp > layers)
    bad |= (heads % tp != 0) | (unit / seq + 1e-9 < dp * mb)
    bad |= (moe != 0) & ((experts % ep != 0) | (dp % ep != 0))
    table = np.array([numbers_row(lay, hw, s.seq_len, s.vocab, s.top_k + s.shared_experts, s.is_moe, request.mfu)
                      for _, s, lay in pairs.values()])[pi]
    n = {k: table[:, i] for i, k in enumerate(NUMBER_FIELDS)}
    fields = ("params", "dense_params", "expert_params", "layers_width", "attn_width", "moe_layers_width", "width")
    terms = np.array([[0.0 if getattr(t, f) is None else getattr(t, f) for f in fields]
                      for t in (terms_of_shape(s) for _, s in shapes.values())])[si]
    m = ModelTerms(*terms.T)
    with np.errstate(all="ignore"):
        (s1, s2), memory = steps_and_memory(n, m, [unit, 2 * unit], devices)
        if request.check_memory:
            bad |= ~(memory <= hw.memory)
        slope = (s2 - s1) / unit
        per_step = np.maximum(0.0, s1 - slope * unit)
    out: list[ClusterLine | None] = [None] * len(items)
    good = np.flatnonzero(~bad)
    for i, u, s, p in zip(good.tolist(), unit[good].tolist(), slope[good].tolist(), per_step[good].tolist(),
                          strict=True):
        out[i] = ClusterLine(*items[i], u, s, p)
    return out


@lru_cache(maxsize=4096)
def batch_grid(objective: str, batch: float, unit: float) -> tuple[int, ...]:
    """Whole batches k (of ``unit`` tokens) around ``batch``: the batch law allows down to LAW_BATCH_FLOOR of
    its optimum, and for wall-clock or dollars a smaller whole batch (fewer tokens above the critical batch)
    can beat the program's, so look down to a quarter (every k when there are at most 11, else 11 geometric)."""
    low = 0.75 if objective == "loss" else 0.25
    k_lo = max(1, math.floor(low * batch / unit))
    k_hi = max(k_lo + 1, math.ceil(1.5 * batch / unit))
    if k_hi - k_lo <= 10:
        return tuple(range(k_lo, k_hi + 1))
    return tuple(sorted({round(k_lo * (k_hi / k_lo) ** (i / 10)) for i in range(11)}))


def _pow(base: np.ndarray, exponent: float, rows: np.ndarray) -> np.ndarray:
    """``critical_batch.power(base, exponent)`` on ``rows`` (a mask); NaN elsewhere."""
    out = np.full(base.shape, np.nan)
    out[rows] = power(base[rows], exponent)
    return out


@dataclass
class Rows:
    """Plans of whole batches on cluster lines, one per row (``ok`` False: ``evaluate_whole`` gives None)."""

    lines: list[ClusterLine]
    line: np.ndarray          # index into lines
    devices: np.ndarray
    batch: np.ndarray
    ok: np.ndarray
    tokens: np.ndarray
    steps: np.ndarray
    deff: np.ndarray
    hours: np.ndarray
    gpu_hours: np.ndarray
    cost: np.ndarray
    serve: np.ndarray
    loss: np.ndarray = field(default=None)          # loss objective only (NaN where not evaluated)
    program_loss: np.ndarray = field(default=None)

    def take(self, keep: np.ndarray) -> Rows:
        """The rows where ``keep`` (a mask or indices), in order."""
        pick = {k: getattr(self, k)[keep] for k in ("line", "devices", "batch", "ok", "tokens", "steps", "deff",
                                                      "hours", "gpu_hours", "cost", "serve")}
        losses = {k: None if getattr(self, k) is None else getattr(self, k)[keep] for k in ("loss", "program_loss")}
        return Rows(self.lines, **pick, **losses)

    def plan(self, i: int, request: PlanRequest, solved: Solved, memo: LawMemo) -> WholePlan:
        """Row ``i`` as the ``WholePlan`` that ``evaluate_whole`` returns (the loss from the memo)."""
        c = self.lines[int(self.line[i])]
        tokens, deff = float(self.tokens[i]), float(self.deff[i])
        if self.loss is not None:
            loss, ploss = float(self.loss[i]), float(self.program_loss[i])
        elif request.objective == "loss":
            loss, ploss = math.nan, math.nan
        else:
            loss, ploss = memo.loss(c.n_law, deff)
        return WholePlan(shape=c.shape, params=c.n_law, layout=c.layout, devices=c.devices,
                         batch_tokens=float(self.batch[i]), tokens=tokens, effective_tokens=deff,
                         hours=float(self.hours[i]), loss=loss, program_loss=ploss,
                         flops=float(training_flops(c.n_law, tokens)), gpu_hours=float(self.gpu_hours[i]),
                         cost_usd=float(self.cost[i]), serve_cost_usd=memo.serve_cost(request, solved, c.shape),
                         estimate=None, steps=int(self.steps[i]))


def evaluate_rows(request: PlanRequest, solved: Solved, lines: list[ClusterLine], ks: list[tuple[int, ...]],
                  memo: LawMemo) -> Rows:
    """``evaluate_whole`` at batch k·unit for every k of ``ks[i]`` on every line ``lines[i]``, in that order."""
    with np.errstate(all="ignore"):
        return _evaluate_rows(request, solved, lines, ks, memo)


def _evaluate_rows(request: PlanRequest, solved: Solved, lines: list[ClusterLine], ks: list[tuple[int, ...]],
                   memo: LawMemo) -> Rows:
    cand, var = solved.cand, solved.var
    coef, beta, gamma, _ = batch_law_monomial(lr_law_of(request))
    counts = [len(k) for k in ks]
    line = np.repeat(np.arange(len(lines)), counts)
    k = np.array([x for kk in ks for x in kk], dtype=np.int64)

    def per_line(values: list) -> np.ndarray:
        return np.repeat(np.array(values, dtype=float), counts)

    n_line = np.array([c.n_law for c in lines], dtype=float)
    npow_line = power(n_line, gamma)
    n = np.repeat(n_line, counts)
    devices = np.repeat(np.array([c.devices for c in lines], dtype=np.int64), counts)
    unit = per_line([c.unit for c in lines])
    batch = k * unit
    if solved.serving is None:   # no serving demand: no serving dollars (``whole._serve_cost``)
        serve = np.zeros(len(k))
    else:
        serve = per_line([memo.serve_cost(request, solved, c.shape) for c in lines])
    npow = np.repeat(npow_line, counts)
    ok = np.ones(len(k), dtype=bool)

    gp = request.goodput or 0.90
    per_token = (per_line([c.per_token for c in lines]) + per_line([c.per_step for c in lines]) / batch) / gp
    if request.min_step_seconds:
        per_token = np.maximum(per_token, request.min_step_seconds / batch)
    upper = np.full(len(k), np.inf)
    has_upper = False

    def bound(x) -> None:
        nonlocal upper, has_upper
        upper = np.minimum(upper, x)
        has_upper = True

    if request.budget_flops:
        bound(request.budget_flops / (6.0 * n))
    if request.max_tokens:
        bound(request.max_tokens)
    if var.unique_tokens is not None:
        bound(var.epochs * var.unique_tokens)
    if request.deadline_days:
        bound(request.deadline_hours * 3600.0 / per_token)
    if request.dollars:
        room = request.dollars - serve
        ok &= ~(room <= 0)
        bound(room / (devices * cand.price) * 3600.0 / per_token)
    if request.gpu_hours:
        bound(request.gpu_hours / devices * 3600.0 / per_token)
    floor = np.repeat(LAW_BATCH_FLOOR * coef * npow_line, counts)
    if beta > 0:
        bound(_pow(batch / floor, 1.0 / beta, ok))
    else:
        ok &= ~(floor > batch * (1 + 1e-9))
    if request.batch_coupling is False:  # batch fixed at the batch law's optimum: no batch above it
        lo_b = coef * (_pow(upper, beta, ok) if has_upper else power(1.0, beta)) * npow
        ok &= ~(batch > lo_b + unit)
    lower = request.min_tokens or 0.0
    top = upper * (1 + 1e-9)
    deff_need = None
    if request.objective == "loss":
        if not has_upper:
            ok[:] = False
        tokens = upper.copy()
    else:
        need_of = {x: memo.tokens_for_loss(x, request.target_loss) for x in dict.fromkeys(n_line.tolist())}
        need_line = [need_of[x] for x in n_line.tolist()]
        ok &= np.repeat(np.array([x is not None for x in need_line], dtype=bool), counts)
        need_line = np.array([math.nan if x is None else x for x in need_line], dtype=float)
        deff_need = np.repeat(need_line, counts)
        at_need = np.repeat(coef * power(need_line, beta) * npow_line, counts)
        tokens = deff_need * np.maximum(1.0, batch / at_need)
        tokens = np.maximum(tokens, lower)
        if has_upper:
            ok &= ~(tokens > top)
    ok &= ~(tokens < lower * (1 - REL_TOL)) & ~(tokens <= 0)
    steps = np.maximum(1.0, np.floor(tokens / batch + 1e-9))
    tokens = steps * batch  # whole steps; never above the bound that chose the tokens

    def one_more(rows: np.ndarray) -> None:
        nonlocal ok
        steps[rows] += 1.0
        tokens[rows] = steps[rows] * batch[rows]
        if has_upper:
            ok &= ~(rows & (tokens > top))

    one_more(ok & (tokens < lower * (1 - REL_TOL)))
    deff = _effective(tokens, batch, coef, beta, npow, ok)
    if deff_need is not None:  # whole steps lost a fraction of a step
        short = ok & (deff < deff_need)
        one_more(short)
        short &= ok
        if short.any():
            deff[short] = _effective(tokens, batch, coef, beta, npow, short)[short]
    hours = tokens * per_token / 3600.0
    gh = devices * hours
    return Rows(lines=lines, line=line, devices=devices, batch=batch, ok=ok, tokens=tokens, steps=steps, deff=deff,
                hours=hours, gpu_hours=gh, cost=gh * cand.price, serve=serve)


def _effective(tokens: np.ndarray, batch: np.ndarray, coef: float, beta: float, npow: np.ndarray,
               rows: np.ndarray) -> np.ndarray:
    """``critical_batch.effective_tokens`` on ``rows``."""
    at = coef * _pow(tokens, beta, rows) * npow
    above = rows & ~(batch <= at)
    out = tokens.copy()
    if above.any():
        out[above] = _pow(tokens * coef * npow / batch, 1.0 / (1.0 - beta), above)[above]
    return out


def first_best(values: np.ndarray) -> int:
    """The index a scan keeping the first strictly smaller value ends on (NaN never wins after the first)."""
    if math.isnan(values[0]):
        return 0
    return least(values)


def least(values: np.ndarray) -> int:
    """The first index of the least value that is not NaN (0 when all are NaN)."""
    nan = np.isnan(values)
    if nan.any():
        idx = np.flatnonzero(~nan)
        return int(idx[np.argmin(values[idx])]) if len(idx) else 0
    return int(np.argmin(values))
