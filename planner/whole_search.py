"""Search the launchable plans near the program's optimum: shapes, layouts, whole devices and batches.

``make_whole`` scans the rounded shape and its neighbours, the program's layout and its neighbours (and the
fastest layout at each target size), whole device counts near the program's and the sizing horizon's, and
whole batches near the program's; each candidate's tokens are re-solved in closed form by
``planner.whole.evaluate_whole`` (all candidates of a scan at once, bit for bit: ``planner.whole_scan``) and
the best that meets every limit wins (``planner.whole.verify`` re-checks it). For the time objective, shapes
across a factor 3 are screened with a quick look first (see ``widen``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from cost_models.architecture import ModelShape
from cost_models.cluster import Layout, with_tp_for_heads
from cost_models.layout_search import evaluate_layout, fastest_layout_of
from cost_models.training import training_flops
from planner.law_memo import LawMemo
from planner.request import PlanRequest
from planner.solve import Solved
from planner.whole import (
    ClusterLine,
    WholePlan,
    _device_candidates,
    device_candidates,
    shape_candidates,
    verify,
)
from planner.whole_lines import Lines, as_lines, line_table
from planner.whole_scan import (
    Rows,
    device_ladder,
    evaluate_grid_rows,
    first_best,
    late_score,
    least,
    line_grids,
)

SCREEN = 1.25  # time objective: shapes whose quick look is this much slower than the best are not searched
WIDEN = 4  # time objective: how many screened shapes are searched fully per widening
SIZING_TOLERANCE = 1e-3  # the objective a plan may give up to finish within the sizing horizon, or to be cheaper


def _with(lay: Layout, tp: int | None = None, pp: int | None = None) -> Layout:
    """``lay`` with another tensor-parallel degree and/or pipeline depth (layouts are immutable: shared)."""
    return _copied(lay, lay.tp if tp is None else tp, lay.pp if pp is None else pp)


@lru_cache(maxsize=4096)
def _copied(lay: Layout, tp: int, pp: int) -> Layout:
    return lay if (tp, pp) == (lay.tp, lay.pp) else lay.model_copy(update={"tp": tp, "pp": pp})


def _layouts_near(request: PlanRequest, solved: Solved, shape: ModelShape, targets: list[float],
                  fastest: dict[float, Layout] | None = None, wide: bool = False) -> set[Layout]:
    """The program's layout, its tp and pp neighbours, and the fastest layout at each target size (searched once
    per target when ``fastest`` is given: later shapes reuse it with tensor parallel fitted to their heads).
    ``wide`` (late plans' device ladder): also the largest tensor parallel that splits the heads at pipeline
    depths 1, 2, 4 and 8 (the cheapest layouts at scale, whatever the program's probe layout was)."""
    cand, lay = solved.cand, solved.layout
    # tensor parallel must divide the rounded shape's heads: the largest such power of two up to the program's
    if request.tensor_parallel:
        if request.tensor_parallel != lay.tp:
            lay = _with(lay, tp=request.tensor_parallel)
    else:
        lay = with_tp_for_heads(lay, shape.tp_heads, max(lay.tp, cand.acc.devices_per_node
                                                      if request.objective == "time" else 1))
    out = {lay}
    # its tensor-parallel neighbours (for wall-clock every smaller degree: a small model's TP traffic can cost
    # more than the devices a larger degree feeds)
    tps = (lay.tp // 8, lay.tp // 4, lay.tp // 2, lay.tp * 2) if request.objective == "time" else (
        lay.tp // 2, lay.tp * 2)
    for tp in tps:
        if 1 <= tp <= cand.acc.devices_per_node and not request.tensor_parallel and shape.tp_heads % tp == 0:
            out.add(_with(lay, tp=tp))
    for pp in (lay.pp // 2, lay.pp * 2):
        if 1 <= pp <= shape.layers:
            out.add(_with(lay, pp=pp))
    if wide:
        top = request.tensor_parallel or cand.acc.devices_per_node
        for pp in (1, 2, 4, 8):
            if pp <= shape.layers:
                out.add(with_tp_for_heads(_with(lay, pp=pp), shape.tp_heads, top))
    # a coarse batch (few sequences per data-parallel rank) is refined by deeper pipelines: fewer ranks
    seqs_per_rank = solved.sol.batch_tokens * lay.tp * lay.pp / (max(*targets, 1.0) * shape.seq_len)
    pp = lay.pp
    while seqs_per_rank < 16 and pp * 2 <= min(shape.layers, 64):
        pp *= 2
        seqs_per_rank *= 2
        for tp in {lay.tp, min(8, cand.acc.devices_per_node)}:
            if (not request.tensor_parallel or tp == request.tensor_parallel) and shape.tp_heads % tp == 0:
                out.add(_with(lay, tp=tp, pp=pp))
    for t in targets:
        if fastest is not None and t in fastest:
            if fastest[t] is not None:
                top = request.tensor_parallel or fastest[t].tp
                out.add(with_tp_for_heads(fastest[t], shape.tp_heads, top))
            continue
        near = device_candidates(t, lay, cand.acc.devices_per_node, request.max_gpus)
        if fastest is not None:
            fastest[t] = None
        if near:
            g = min(near, key=lambda x: abs(math.log(x / max(t, 1e-9))))
            b = fastest_layout_of(shape, cand.hw, batch_tokens=max(solved.sol.batch_tokens, g * shape.seq_len),
                                  devices=g, mfu=request.mfu, tp=request.tensor_parallel)
            if b is not None:
                out.add(b)
                if fastest is not None:
                    fastest[t] = b
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
        fastest = scan.fastest_near()
        g = min(cap, fastest.devices * fastest.hours / sizing_h * 1.05)
        if g <= fastest.devices * 1.01:
            break
        scan.add([g])
    best = scan.choose(sizing_h, max_devices=cap * 1.2)
    if best is not None and sizing_h is not None and best.hours > sizing_h * (1 + 1e-6):
        # late: the hours-vs-dollars frontier between the cheapest plan and the cap, so time and dollars are
        # traded where it pays (on-time plans never come here and are unchanged)
        ladder = device_ladder(scan.cheapest_near(cap * 1.2).devices, cap)
        if ladder:
            scan.fastest = {} if scan.fastest is None else scan.fastest  # one fastest-layout search per target
            scan.wide = True
            scan.add(ladder)
        # the horizon was out of reach of the scan: a plan the ladder finds on time is judged by the same rule
        best = scan.choose(sizing_h, max_devices=cap * 1.2, late=True)
        for _ in range(3):  # refine around the best on both sides of it (the ladder's step is a factor 2)
            scan.add([best.devices * 2 ** (k / 4) for k in (-3, -2, -1, 1, 2, 3)])
            moved = best.devices
            best = scan.choose(sizing_h, max_devices=cap * 1.2, late=True)
            if best.devices == moved:
                break
    if best is None:
        return None
    best.estimate = evaluate_layout(best.shape, best.layout, solved.cand.hw, batch_tokens=best.batch_tokens,
                                    devices=best.devices, mfu=request.mfu)
    return best if not verify(request, solved, best) else None


def _line_best_hours(rows: Rows, values: np.ndarray, lines: int) -> list[float | None]:
    """Each line's hours at its first row of least ``values`` (None: a line without rows); NaN never wins after
    a line's first row."""
    found: list[float | None] = [None] * lines
    starts = np.flatnonzero(np.diff(rows.line, prepend=-1))
    if np.isnan(values).any():  # a law that gives NaN: line by line
        for a, b in zip(starts, [*starts[1:], len(values)], strict=True):
            found[int(rows.line[a])] = float(rows.hours[a + first_best(values[a:b])])
        return found
    counts = np.diff(np.append(starts, len(values)))
    hit = np.flatnonzero(values == np.repeat(np.minimum.reduceat(values, starts), counts))
    at, first = np.unique(rows.line[hit], return_index=True)  # each line's first row at its least value
    for line, hours in zip(at.tolist(), rows.hours[hit[first]].tolist(), strict=True):
        found[line] = hours
    return found


class _Scan:
    """Launchable plans around given device counts: every shape candidate, nearby layout and whole batch.

    The pool is kept as ``whole_scan.Rows`` chunks in the order found; a plan is made a ``WholePlan`` only when
    asked for (``best``, ``near``), once."""

    def __init__(self, request: PlanRequest, solved: Solved):
        self.request, self.solved = request, solved
        self.pool: list[Rows] = []
        self._best: tuple[int, int] | None = None  # (chunk, row) of the best plan so far
        self._best_value = math.nan
        self._plans: dict[tuple[int, int], WholePlan] = {}
        self.memo, self.best_deff = LawMemo(solved.var), {}
        self.seen: dict[tuple, set[int]] = {}   # (layers, d_model, layout label) -> device counts scanned
        self.hw = solved.cand.hw
        self.shapes = shape_candidates(solved, request)
        # the time objective scans many shapes: the fastest-layout search runs once per device target
        self.fastest: dict[float, Layout] | None = {} if request.objective == "time" else None
        self.wide = False  # late plans: more layouts near each device target (see ``_layouts_near``)

    @property
    def best(self) -> WholePlan | None:
        return None if self._best is None else self._plan(*self._best)

    def _plan(self, chunk: int, row: int) -> WholePlan:
        key = (chunk, row)
        if key not in self._plans:
            self._plans[key] = self.pool[chunk].plan(row, self.request, self.solved, self.memo)
        return self._plans[key]

    def add(self, targets: list[float]) -> None:
        request, solved, sol = self.request, self.solved, self.solved.sol
        per_node = solved.cand.acc.devices_per_node
        groups = []
        near_mp: dict[int, set[int]] = {}  # the device counts near the targets, per model-parallel size
        for shape, n_law in self.shapes:
            # in a fixed order: ties keep the first plan found, which must not depend on set hashing (a label
            # names every field of a layout)
            near = sorted((lay.label(), lay) for lay in _layouts_near(request, solved, shape, targets, self.fastest,
                                                                      self.wide))
            for label, lay in near:
                mp = lay.tp * lay.pp * lay.ep
                devices = near_mp.get(mp)
                if devices is None:
                    devices = near_mp[mp] = {x for t in targets
                                             for x in _device_candidates(t, mp, per_node, request.max_gpus)}
                done = self.seen.setdefault((shape.layers, shape.d_model, label), set())
                fresh = sorted(devices - done)
                if fresh:
                    done.update(fresh)
                    groups.append((shape, n_law, lay, fresh))
        self._batches(line_table(request, solved, groups, self.hw)[0], sol.batch_tokens, found=False)

    def widen(self, targets: list[float], params: float) -> None:
        """Screen shapes across a factor 3 of ``params`` with a quick look (``_quick``), then every shape of the
        family within ±8% of the three most promising, and search the WIDEN best within SCREEN of the best
        plan fully."""
        looks: dict[tuple, tuple[float, ModelShape, float]] = {}

        def screen(centres: list[float], factors: tuple[float, ...]) -> None:
            """Quick looks at the shapes not yet seen around each centre, in order, as one scan (a shape's look
            does not depend on the others scanned with it)."""
            fresh = {}
            for at in centres:
                for shape, n_law in shape_candidates(self.solved, self.request, at, factors):
                    key = (shape.layers, shape.d_model)
                    if key in looks or key in fresh or any((s.layers, s.d_model) == key for s, _ in self.shapes):
                        continue
                    fresh[key] = (shape, n_law)
            for (key, (shape, n_law)), quick in zip(fresh.items(), self._quick(list(fresh.values()), targets),
                                                    strict=True):
                looks[key] = (quick if quick is not None else math.inf, shape, n_law)

        screen([params], tuple(3 ** (k / 12) for k in range(-12, 13)))
        screen([n_law for _, _, n_law in sorted(looks.values(), key=lambda x: x[0])[:3]],
               tuple(1.01**k for k in range(-8, 9)))
        ranked = sorted((x for x in looks.values() if x[0] <= self.best.hours * SCREEN), key=lambda x: x[0])
        self.shapes = self.shapes + [(shape, n) for _, shape, n in ranked[:WIDEN]]
        self.add(targets)

    def _quick(self, shapes: list[tuple[ModelShape, float]], targets: list[float]) -> list[float | None]:
        """Per shape, the hours of the best of the program's layout with the largest tensor parallel that splits
        the heads (and a half and a quarter of it), each on the most devices near the first target and on as
        many as the program's batch feeds with one micro-batch per rank (fewer ranks allow a finer whole
        batch). The shapes are searched in order, as one scan."""
        request, solved = self.request, self.solved
        per_node, batch = solved.cand.acc.devices_per_node, solved.sol.batch_tokens
        groups, owner = [], []
        for j, (shape, n_law) in enumerate(shapes):
            top = with_tp_for_heads(solved.layout, shape.tp_heads, request.tensor_parallel or per_node)
            tps = {with_tp_for_heads(top, shape.tp_heads, request.tensor_parallel or max(1, top.tp // k))
                   for k in (1, 2, 4)}
            for lay in sorted(tps, key=Layout.label):
                fed = batch * lay.tp * lay.pp / (lay.micro_batch * shape.seq_len)
                for t in (targets[0], fed):
                    near = device_candidates(t, lay, per_node, request.max_gpus)
                    g = max((x for x in near if x <= t * (1 + 1e-9)), default=min(near, default=None))
                    if g is not None:
                        groups.append((shape, n_law, lay, [g]))
                        owner.append(j)
        lines, kept = line_table(request, solved, groups, self.hw)
        owners = np.array(owner, dtype=np.int64)[kept].tolist()
        found: list[float | None] = [None] * len(shapes)
        # each line's best plan (by the objective: here the hours)
        for j, hours in zip(owners, self._batches(lines, batch), strict=True):
            if hours is not None and (found[j] is None or hours < found[j]):
                found[j] = hours
        return found

    def _batches(self, lines: Lines | list[ClusterLine], batch: float, found: bool = True) -> list[float | None]:
        """Evaluate whole batches around ``batch`` on every line, add the plans to the pool in order (the loss
        objective keeps only plans that could win on tokens); each line's best plan's hours (None: none; an
        empty list when not ``found``)."""
        request = self.request
        lines = as_lines(lines)
        if not len(lines):
            return []
        rows = evaluate_grid_rows(request, self.solved, lines, *line_grids(request.objective, batch, lines.unit),
                                  self.memo)
        rows = rows.take(np.flatnonzero(rows.ok))
        if request.objective == "loss":  # the law only for plans that could win on tokens
            rows = self._could_win(rows)
            values = rows.loss
        else:
            values = rows.cost + rows.serve if request.objective == "cost" else rows.hours
        if not len(values):
            return [None] * len(lines) if found else []
        self.pool.append(rows)
        i = first_best(values) if self._best is None else least(values)  # NaN never beats a best
        if self._best is None or values[i] < self._best_value:
            self._best, self._best_value = (len(self.pool) - 1, i), float(values[i])
        return _line_best_hours(rows, values, len(lines)) if found else []

    def _could_win(self, rows: Rows) -> Rows:
        """Loss objective: drop plans with 5% fewer effective tokens than an earlier plan of the same params
        (well past SIZING_TOLERANCE in loss), then evaluate the law on the rest."""
        n = rows.lines.n_law[rows.line]
        keep = np.ones(len(n), dtype=bool)
        for n_law in np.unique(n).tolist():  # each params' rows on their own: the order of params is immaterial
            idx = np.flatnonzero(n == n_law)
            d = rows.deff[idx]
            top = np.maximum.accumulate(d)
            before = np.concatenate(([-np.inf], top[:-1]))
            first = self.best_deff.get(n_law)
            if first is not None:
                before = np.maximum(before, first)
            else:
                before[0] = np.nan  # no earlier plan of these params
            keep[idx] = ~(d < before * 0.95)
            self.best_deff[n_law] = max(first or 0.0, float(top[-1]))
        rows = rows.take(np.flatnonzero(keep))
        rows.loss, rows.program_loss = self.memo.loss_arrays(n[keep], rows.deff)
        return rows

    def _values(self, rows: Rows) -> np.ndarray:
        """The objective of every plan of ``rows``."""
        objective = self.request.objective
        return rows.loss if objective == "loss" else rows.cost + rows.serve if objective == "cost" else rows.hours

    def _near_rows(self) -> list[tuple[int, np.ndarray]]:
        """(chunk, rows) of the plans within SIZING_TOLERANCE of the best objective, in pool order."""
        top = self._best_value * (1 + SIZING_TOLERANCE)
        out = []
        for chunk, rows in enumerate(self.pool):
            idx = np.flatnonzero(self._values(rows) <= top)
            if len(idx):
                out.append((chunk, idx))
        return out

    def near(self) -> list[WholePlan]:
        """Plans within SIZING_TOLERANCE of the best objective."""
        return [self._plan(chunk, int(i)) for chunk, idx in self._near_rows() for i in idx]

    @staticmethod
    def _flops(rows: Rows) -> np.ndarray:
        """Training FLOPs of every plan of ``rows`` (as ``WholePlan.flops``)."""
        return training_flops(rows.lines.n_law[rows.line], rows.tokens)

    def _near_table(self) -> dict[str, np.ndarray]:
        """Columns of the plans within SIZING_TOLERANCE of the best objective, in pool order."""
        near = self._near_rows()
        table = {"chunk": np.concatenate([np.full(len(idx), c) for c, idx in near]),
                 "row": np.concatenate([idx for _, idx in near]),
                 "objective": np.concatenate([self._values(self.pool[c])[idx] for c, idx in near]),
                 "total_cost": np.concatenate([(self.pool[c].cost + self.pool[c].serve)[idx] for c, idx in near]),
                 "flops": np.concatenate([self._flops(self.pool[c])[idx] for c, idx in near]),
                 "cost": np.concatenate([self.pool[c].cost[idx] for c, idx in near])}
        for name in ("hours", "devices"):
            table[name] = np.concatenate([getattr(self.pool[c], name)[idx] for c, idx in near])
        table["late_score"] = late_score(table["cost"] / table["flops"], table["hours"] / table["flops"])
        return table

    def _first_least(self, table: dict[str, np.ndarray], keys: list[np.ndarray],
                     keep: np.ndarray | None = None) -> WholePlan:
        """The first plan of ``table`` (where ``keep``) least by ``keys`` (most significant first): ``min`` over
        ``near()`` with that key."""
        at = np.flatnonzero(keep) if keep is not None else np.arange(len(table["row"]))
        for key in keys:  # narrow to the least of each key in turn (NaN is last, as in a sort); then the first
            values = key[at]
            nan = np.isnan(values)
            if nan.all():
                continue
            at = at[values == (values.min() if not nan.any() else np.nanmin(values))]
            if len(at) == 1:
                break
        return self._plan(int(table["chunk"][at[0]]), int(table["row"][at[0]]))

    def fastest_near(self) -> WholePlan:
        """The first plan within SIZING_TOLERANCE of the best objective with the fewest hours."""
        table = self._near_table()
        return self._first_least(table, [table["hours"]])

    def cheapest_near(self, max_devices: float = math.inf) -> WholePlan:
        """The first plan within SIZING_TOLERANCE of the best objective (and ``max_devices``, if any does) with
        the fewest training dollars per FLOP."""
        t = self._near_table()
        keep = t["devices"] <= max_devices
        return self._first_least(t, [t["cost"] / t["flops"]], keep if keep.any() else None)

    def choose(self, sizing_h: float | None, max_devices: float = math.inf, late: bool = False) -> WholePlan | None:
        """Within SIZING_TOLERANCE of the best objective (no more devices than ``max_devices`` for the sake of
        sizing alone): the cheapest within the sizing horizon; when none is (or ``late``: the horizon was found
        out of reach), the least ``late_score`` (dollars per FLOP x hours per FLOP), in arrays (the plan-by-plan
        rule is tests/test_whole_vector.py's ``_rank``)."""
        if self._best is None:
            return None
        t = self._near_table()
        hours, devices = t["hours"], t["devices"]
        keep = devices <= max_devices
        keep = keep if keep.any() else np.ones(len(keep), dtype=bool)
        over = hours > sizing_h * (1 + 1e-6) if sizing_h is not None else np.zeros(len(hours), dtype=bool)
        if late or (sizing_h is not None and bool(over[keep].all())):
            keys = [t["late_score"], t["objective"], devices]
        else:
            keys = [over, np.where(over, hours, t["total_cost"]), t["objective"], devices]
        return self._first_least(t, keys, keep)

