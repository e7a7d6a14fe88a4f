"""``planner.whole.evaluate_whole`` over many cluster lines and whole batches at once (numpy), bit for bit.

Every row is one (cluster line, whole batch k·unit). The tokens are re-solved in closed form exactly as
``evaluate_whole`` does, operation by operation in the same order: numpy's + − × ÷, min, max and floor are
exactly rounded like Python's, so each row equals the scalar function's plan. The powers are not (numpy's
vectorized ``power`` may differ from Python's ``**`` by an ulp), so both take them with
``critical_batch.power`` (numpy's loop for a number and an array alike), and here only on the rows the scalar
function would still be evaluating (it returns early). The law is evaluated on arrays only for the forms where
that is exact (``law_memo.ARRAY_EXACT_FORMS``), else one by one through ``LawMemo``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain

import numpy as np

from cost_models.training import training_flops
from planner.critical_batch import power
from planner.law_memo import LawMemo
from planner.program import LAW_BATCH_FLOOR
from planner.request import PlanRequest
from planner.solve import Solved, batch_law_monomial, lr_law_of
from planner.whole import REL_TOL, ClusterLine, WholePlan
from planner.whole_lines import Lines, as_lines

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



@lru_cache(maxsize=4096)
def batch_grid(objective: str, batch: float, unit: float) -> tuple[int, ...]:
    """Whole batches k (of ``unit`` tokens) around ``batch``: the batch law allows down to LAW_BATCH_FLOOR of
    its optimum, and for wall-clock or dollars a smaller whole batch (fewer tokens above the critical batch)
    can beat the program's, so look down to a quarter (every k when there are at most 11, else 11 geometric)."""
    k_lo = max(1, math.floor(_low(objective) * batch / unit))
    return _grid_between(k_lo, max(k_lo + 1, math.ceil(1.5 * batch / unit)))


def _low(objective: str) -> float:
    return 0.75 if objective == "loss" else 0.25


@lru_cache(maxsize=4096)
def _grid_between(k_lo: int, k_hi: int) -> tuple[int, ...]:
    """Every k from ``k_lo`` to ``k_hi`` when there are at most 11, else 11 geometric ones."""
    if k_hi - k_lo <= 10:
        return tuple(range(k_lo, k_hi + 1))
    return tuple(sorted({round(k_lo * (k_hi / k_lo) ** (i / 10)) for i in range(11)}))


def line_grids(objective: str, batch: float, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``batch_grid`` on every line of units ``unit``, flat: (rows per line, k of every row in line order)."""
    # (k_lo, k_hi) as batch_grid computes them (the same float operations), per distinct unit
    units, inverse = np.unique(unit, return_inverse=True)
    k_lo = np.maximum(1.0, np.floor(_low(objective) * batch / units))
    k_hi = np.maximum(k_lo + 1.0, np.ceil(1.5 * batch / units))
    grids = [_grid_array(int(a), int(b)) for a, b in zip(k_lo.tolist(), k_hi.tolist(), strict=True)]
    sizes = np.array([len(g) for g in grids], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    counts = sizes[inverse]
    starts = np.repeat(np.cumsum(counts) - counts, counts)   # each row's line's first row
    at = np.repeat(offsets[inverse], counts) + np.arange(int(counts.sum())) - starts
    return counts, np.concatenate(grids)[at]


@lru_cache(maxsize=4096)
def _grid_array(k_lo: int, k_hi: int) -> np.ndarray:
    out = np.array(_grid_between(k_lo, k_hi), dtype=np.int64)
    out.setflags(write=False)  # shared by every caller (and thread)
    return out


def _pow(base: np.ndarray, exponent: float, rows: np.ndarray) -> np.ndarray:
    """``critical_batch.power(base, exponent)`` on ``rows`` (a mask); NaN elsewhere."""
    out = np.full(base.shape, np.nan)
    out[rows] = power(base[rows], exponent)
    return out


@dataclass
class Rows:
    """Plans of whole batches on cluster lines, one per row (``ok`` False: ``evaluate_whole`` gives None)."""

    lines: Lines
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
        c = self.lines.line(int(self.line[i]))
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


def evaluate_rows(request: PlanRequest, solved: Solved, lines: Lines | list[ClusterLine],
                  ks: list[tuple[int, ...]], memo: LawMemo) -> Rows:
    """``evaluate_whole`` at batch k·unit for every k of ``ks[i]`` on every line ``lines[i]``, in that order."""
    counts = np.array([len(k) for k in ks], dtype=np.int64)
    k = np.fromiter(chain.from_iterable(ks), dtype=np.int64, count=int(counts.sum()))
    return evaluate_grid_rows(request, solved, as_lines(lines), counts, k, memo)


def evaluate_grid_rows(request: PlanRequest, solved: Solved, lines: Lines, counts: np.ndarray, k: np.ndarray,
                       memo: LawMemo) -> Rows:
    """``evaluate_rows`` with the batches flat: ``counts[i]`` rows on line i, ``k`` of every row in line order."""
    with np.errstate(all="ignore"):
        return _evaluate_rows(request, solved, lines, counts, k, memo)


def _evaluate_rows(request: PlanRequest, solved: Solved, lines: Lines, counts: np.ndarray, k: np.ndarray,
                   memo: LawMemo) -> Rows:
    cand, var = solved.cand, solved.var
    coef, beta, gamma, _ = batch_law_monomial(lr_law_of(request))
    line = np.repeat(np.arange(len(lines)), counts)

    def per_line(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, counts)

    n_line = lines.n_law
    npow_line = power(n_line, gamma)
    n = np.repeat(n_line, counts)
    devices = np.repeat(lines.devices, counts)
    unit = per_line(lines.unit)
    batch = k * unit
    if solved.serving is None:   # no serving demand: no serving dollars (``whole._serve_cost``)
        serve = np.zeros(len(k))
    else:
        serve = per_line(np.array([memo.serve_cost(request, solved, shape) for shape, _ in lines.shapes],
                                  dtype=float)[lines.shape_i])
    npow = np.repeat(npow_line, counts)
    ok = np.ones(len(k), dtype=bool)

    gp = request.goodput or 0.90
    per_token = (per_line(lines.per_token) + per_line(lines.per_step) / batch) / gp
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
        need = memo.tokens_for_loss_many([n_law for _, n_law in lines.shapes], request.target_loss)
        ok &= per_line(np.array([x is not None for x in need], dtype=bool)[lines.shape_i])
        need_line = np.array([math.nan if x is None else x for x in need], dtype=float)[lines.shape_i]
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
