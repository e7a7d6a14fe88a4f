"""The vectorized whole-cluster scan (planner.whole_scan) is the scalar one, bit for bit.

``evaluate_rows`` must give, at every whole batch of every cluster line, exactly the plan of the scalar
``evaluate_whole`` (or None where it gives None), for loss, cost and time objectives under every kind of
limit; the search (``whole_search._Scan``) must keep the same pool, in the same order, and the same best plan
as the scalar loop it replaced (kept below as the reference); and the vectorized ``fastest_layout`` must pick
the same layout as the plain loop over every layout.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from conftest import make_whole_calls

from cost_models.catalog import load_catalog
from cost_models.cluster import Hardware, candidate_layouts, layout_numbers, memory_bytes, step_seconds, terms_of_shape
from cost_models.layout_search import _pow2_down, evaluate_layout, fastest_layout, layout_problems
from planner.law_memo import LawMemo
from planner.rounding import fit_shape
from planner.whole import (
    ClusterLine,
    WholePlan,
    cluster_line,
    device_candidates,
    evaluate_whole,
    objective_of,
    shape_candidates,
)
from planner.whole_lines import cluster_lines
from planner.whole_scan import batch_grid, evaluate_rows
from planner.whole_search import _layouts_near, _Scan

REQUESTS = [
    dict(budget_flops=1e21, gpu="h100"),
    dict(dollars=1e6, deadline_days=30, gpu="a100-80gb"),
    dict(gpu_hours=5e4, gpu="h100", max_tokens=3e10),
    dict(dollars=3e6, min_params=5e9, min_tokens=3e11, gpu="h100"),
    dict(budget_flops=1e21, batch_coupling=False, gpu="h100"),
    dict(budget_flops=1e21, min_step_seconds=2.0, goodput=0.8, gpu="h100"),
    dict(budget_flops=1e21, lr_law="deepseek-2024", mfu=0.45, gpu="h100"),
    dict(budget_flops=3e21, unique_tokens=2e9, gpu="h100"),
    dict(objective="cost", target_loss=2.4, gpu="h100"),
    dict(objective="cost", target_loss=2.4, deadline_days=20, max_tokens=1e11, gpu="a100-80gb"),
    dict(objective="time", target_loss=2.5, max_gpus=256, gpu="h100"),
    dict(objective="time", target_loss=2.5, dollars=2e3, gpu_hours=1e3, min_tokens=5e10, max_gpus=2048, gpu="h100"),
]
FIELDS = [f.name for f in dataclasses.fields(WholePlan)]


def _lines(request, solved, rnd: random.Random) -> list:
    """Cluster lines of the search around the program's devices (and some way off), shuffled."""
    out = []
    hw = solved.cand.hw
    targets = [solved.sol.devices, solved.sol.devices * 0.3, solved.sol.devices * 3]
    for shape, n_law in shape_candidates(solved, request):
        for lay in _layouts_near(request, solved, shape, targets[:1]):
            for t in targets:
                for g in device_candidates(t, lay, solved.cand.acc.devices_per_node, request.max_gpus):
                    c = cluster_line(request, solved, shape, n_law, lay, g, hw)
                    if c is not None:
                        out.append(c)
    rnd.shuffle(out)
    return out[:60]


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        if isinstance(x, float) and math.isnan(x):
            if not (isinstance(y, float) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("fields", REQUESTS, ids=[str(i) for i in range(len(REQUESTS))])
def test_rows_equal_scalar_evaluate_whole_at_every_batch(fields):
    rnd = random.Random(str(fields))
    pairs = make_whole_calls(fields)
    assert pairs
    checked = valid = 0
    for request, solved in pairs[:2]:
        lines = _lines(request, solved, rnd)
        b = solved.sol.batch_tokens
        ks = [sorted(set(batch_grid(request.objective, b, c.unit)) | {rnd.randint(1, 4 * max(1, round(b / c.unit)))})
              for c in lines]
        rows = evaluate_rows(request, solved, lines, ks, LawMemo(solved.var))
        memo = LawMemo(solved.var)
        i = 0
        for c, kk in zip(lines, ks, strict=True):
            for k in kk:
                want = evaluate_whole(request, solved, c, float(k * c.unit), memo)
                got = rows.plan(i, request, solved, memo) if rows.ok[i] else None
                if want is not None and request.objective == "loss":  # the scan sets the loss for the loss objective
                    want.loss, want.program_loss = math.nan, math.nan
                    got.loss, got.program_loss = math.nan, math.nan
                assert _same(got, want), (k, c, got, want)
                checked += 1
                valid += want is not None
                i += 1
    assert checked > 50 and valid > 0


def _reference_batches(scan: _Scan, c, n_law: float, batch: float, pool: list, state: dict):
    """The scalar loop the vectorized scan replaced (evaluate_whole at every whole batch, plans in order)."""
    request = scan.request
    objective = request.objective
    found = None
    for k in batch_grid(objective, batch, c.unit):
        plan = evaluate_whole(request, scan.solved, c, float(k * c.unit), state["memo"])
        if plan is None:
            continue
        if objective == "loss":
            top = state["best_deff"].get(n_law)
            if top is not None and plan.effective_tokens < top * 0.95 and state["best"] is not None:
                continue
            state["best_deff"][n_law] = max(top or 0.0, plan.effective_tokens)
            plan.loss, plan.program_loss = state["memo"].loss(n_law, plan.effective_tokens)
        pool.append(plan)
        if state["best"] is None or objective_of(plan, objective) < objective_of(state["best"], objective):
            state["best"] = plan
        if found is None or objective_of(plan, objective) < objective_of(found, objective):
            found = plan
    return found


@pytest.mark.parametrize("fields", REQUESTS[:4] + REQUESTS[8:], ids=[str(i) for i in (0, 1, 2, 3, 8, 9, 10, 11)])
def test_scan_pool_and_best_equal_the_scalar_loop(fields):
    rnd = random.Random(str(fields))
    request, solved = make_whole_calls(fields)[0]
    lines = _lines(request, solved, rnd)
    scan = _Scan(request, solved)
    pool, state = [], {"memo": LawMemo(solved.var), "best_deff": {}, "best": None}
    batch = solved.sol.batch_tokens
    for part in (lines[:20], lines[20:]):  # two adds: the best and the loss filter carry over
        found = scan._batches(part, batch)
        want = [_reference_batches(scan, c, c.n_law, batch, pool, state) for c in part]
        assert found == [None if p is None else p.hours for p in want]
    got = [scan._plan(i, j) for i, rows in enumerate(scan.pool) for j in range(len(rows.hours))]
    assert len(got) == len(pool) and all(_same(a, b) for a, b in zip(got, pool, strict=True))
    assert _same(scan.best, state["best"])
    top = objective_of(state["best"], request.objective) * 1.001
    near = scan.near()
    assert [(p.devices, p.batch_tokens, p.tokens) for p in near] == [
        (p.devices, p.batch_tokens, p.tokens) for p in pool if objective_of(p, request.objective) <= top]
    # choose and fastest_near in arrays are min() over near() with _rank / hours
    assert scan.fastest_near() is min(near, key=lambda p: p.hours)
    hours = sorted(p.hours for p in near)
    for sizing_h in (None, hours[0], hours[len(hours) // 2], hours[-1] * 2):
        for cap in (math.inf, sorted(p.devices for p in near)[len(near) // 2], 0):
            kept = [p for p in near if p.devices <= cap] or near
            late = sizing_h is not None and all(p.hours > sizing_h * (1 + 1e-6) for p in kept)
            want = min(kept, key=lambda p, h=sizing_h, lt=late: _rank(p, request.objective, h, lt))
            assert scan.choose(sizing_h, max_devices=cap) is want


def _fastest_loop(shape, hw, batch, devices, mfu, pinned):
    """The plain loop over every layout (the previous fastest_layout)."""
    m = terms_of_shape(shape)
    layouts = candidate_layouts(hw.devices_per_node, moe_experts=shape.experts, max_pp=shape.layers,
                                **{k: v for k, v in pinned.items() if v is not None})
    if shape.is_moe and pinned.get("ep") is None:
        layouts = [lay.model_copy(update={"ep": e}) for lay in layouts for e in _pow2_down(lay.ep)]
    best = None
    for lay in layouts:
        if layout_problems(shape, lay, devices, batch, hw.devices_per_node):
            continue
        n = layout_numbers(lay, hw, shape.seq_len, shape.vocab, shape.top_k + shape.shared_experts, shape.is_moe,
                           mfu)
        memory = float(memory_bytes(m, n, devices))
        if memory > hw.memory:
            continue
        key = (float(step_seconds(m, n, batch, devices)), memory)
        if best is None or key < best[0]:
            best = (key, lay)
    return None if best is None else best[1]


def test_fastest_layout_equals_the_plain_loop():
    rnd = random.Random(7)
    cat = load_catalog()
    gpus = ["h100", "a100-80gb", "tpu-v5p", "mi300x", "l40s"]
    checked = 0
    for _ in range(150):
        hw = Hardware.of(cat.get(rnd.choice(gpus)))
        experts = rnd.choice([1, 1, 8, 64])
        shape = fit_shape(10 ** rnd.uniform(8, 11.5), experts=experts, seq_len=rnd.choice([2048, 4096])).shape
        g = rnd.choice([1, 4, 8, 24, 64, 256, 2048])
        batch = rnd.choice([1, 3, 16]) * g * shape.seq_len * rnd.choice([0.5, 1.0])
        mfu = rnd.choice([None, 0.4])
        pinned = rnd.choice([{}, {"tp": None}, {"tp": 2}, {"pp": 4}, {"zero_stage": 3}])
        want = _fastest_loop(shape, hw, batch, g, mfu, pinned)
        got = fastest_layout(shape, hw, batch_tokens=batch, devices=g, mfu=mfu, **pinned)
        assert (got is None) == (want is None)
        if got is not None:
            assert got.layout == want
            assert got == evaluate_layout(shape, want, hw, batch_tokens=batch, devices=g, mfu=mfu)
            checked += 1
    assert checked > 30


def _reference_line(request, solved, shape, n_law, layout, devices):
    """The cluster line as two full estimates read it (the previous cluster_line)."""
    hw = solved.cand.hw
    dp = devices // (layout.tp * layout.pp)
    unit = float(dp * layout.micro_batch * shape.seq_len)
    e1 = evaluate_layout(shape, layout, hw, batch_tokens=unit, devices=devices, mfu=request.mfu)
    if e1.problems or (request.check_memory and not e1.fits):
        return None
    e2 = evaluate_layout(shape, layout, hw, batch_tokens=2 * unit, devices=devices, mfu=request.mfu)
    slope = (e2.step_seconds - e1.step_seconds) / unit
    return ClusterLine(shape, n_law, layout, devices, unit, slope, max(0.0, e1.step_seconds - slope * unit))


LINE_REQUESTS = [REQUESTS[0], REQUESTS[6], dict(budget_flops=1e21, moe=True, max_experts=8, gpu="h100"),
                 dict(budget_flops=1e21, gpu="tpu-v5p")]


@pytest.mark.parametrize("fields", LINE_REQUESTS, ids=["dense", "mfu", "moe", "tpu"])
def test_cluster_lines_equal_two_full_estimates(fields):
    rnd = random.Random(str(fields))
    request, solved = make_whole_calls(fields)[0]
    items = []
    for shape, n_law in shape_candidates(solved, request):
        for lay in _layouts_near(request, solved, shape, [solved.sol.devices]):
            for lay2 in (lay, lay.model_copy(update={"tp": rnd.choice([1, 2, 4, 8, 16])}),
                         lay.model_copy(update={"pp": rnd.choice([1, 2, 4, 64, 128]), "zero_stage": 3})):
                mp = lay2.tp * lay2.pp * lay2.ep  # the search never asks for fewer devices than tp·pp·ep
                for g in (rnd.randint(mp, 4096), mp * rnd.randint(1, 64), mp):
                    items.append((shape, n_law, lay2, g))
    got = cluster_lines(request, solved, items, solved.cand.hw)
    want = [_reference_line(request, solved, *it) for it in items]
    assert got == want
    assert got == [cluster_line(request, solved, *it) for it in items]
    assert sum(x is not None for x in got) > 10 and None in got


def _rank(plan, objective: str, sizing_h: float | None, late: bool = False) -> tuple:
    """The sizing rule plan by plan (the reference ``_Scan.choose`` must equal): within the sizing horizon first,
    then dollars, then the objective; when none finishes in time (``late``), the least dollars per FLOP x hours
    per FLOP."""
    if late:
        score = (plan.cost_usd / plan.flops) * (plan.hours / plan.flops)
        return (score, objective_of(plan, objective), plan.devices)
    over = sizing_h is not None and plan.hours > sizing_h * (1 + 1e-6)
    return (over, plan.hours if over else plan.total_cost_usd, objective_of(plan, objective), plan.devices)


@pytest.mark.parametrize("law_id", ["chinchilla-hoffmann-2022", "chinchilla-epoch-2024", "joint-moe-2025"])
def test_law_on_arrays_equals_law_on_scalars(law_id):
    """The search evaluates the law on arrays of rows (``LawMemo.loss_arrays``) for ARRAY_EXACT_FORMS; each
    value must be the scalar evaluation's, bit for bit (numpy's vectorized power is not Python's ``**``, so
    this is not automatic: Kaplan's and Muennighoff's forms differ by an ulp on a machine with AVX-512)."""
    import numpy as np

    from laws import get_law
    from planner.law_memo import ARRAY_EXACT_FORMS

    law = get_law(law_id)
    if law.form not in ARRAY_EXACT_FORMS:
        pytest.skip(f"{law.form}: evaluated one by one")
    rng = np.random.default_rng(7)
    n = np.exp(rng.uniform(math.log(1e7), math.log(1e12), 3000))
    d = np.exp(rng.uniform(math.log(1e9), math.log(1e14), 3000))
    extra = {"unique_tokens": 3e11} if "unique_tokens" in law.inputs else {}
    extra |= {"experts": 8.0} if "experts" in law.inputs else {}
    vector = np.asarray(law.predict(params=n, tokens=d, **extra))
    scalar = [float(law.predict(params=a, tokens=b, **extra)) for a, b in zip(n.tolist(), d.tolist(), strict=True)]
    assert vector.tolist() == scalar


@pytest.mark.parametrize("fields", [dict(budget_flops=3e21, unique_tokens=2e9, gpu="h100"),
                                    dict(budget_flops=1e21, gpu="h100"),
                                    dict(budget_flops=1e21, law="kaplan-2020", gpu="h100"),
                                    dict(budget_flops=1e21, robust="worst", gpu="h100"),
                                    dict(budget_flops=1e22, experts=8, gpu="h100")])
def test_loss_arrays_equal_scalar_memo(fields):
    """``LawMemo.loss_arrays`` is ``LawMemo.loss`` row by row (plan loss and program loss), on a fresh memo."""
    import numpy as np

    pairs = make_whole_calls(fields)
    assert pairs
    for _, solved in pairs:
        rnd = np.random.default_rng(3)
        n = solved.sol.params * np.exp(rnd.uniform(-0.5, 0.5, 400))
        d = solved.sol.tokens * np.exp(rnd.uniform(-1.0, 1.0, 400))
        loss, program = LawMemo(solved.var).loss_arrays(n, d)
        memo = LawMemo(solved.var)
        want = [memo.loss(a, b) for a, b in zip(n.tolist(), d.tolist(), strict=True)]
        assert loss.tolist() == [w[0] for w in want]
        assert program.tolist() == [w[1] for w in want]


@pytest.mark.parametrize("fields", [dict(objective="cost", target_loss=2.4, gpu="h100"),
                                    dict(objective="time", target_loss=2.5, max_gpus=256, gpu="h100"),
                                    dict(objective="cost", target_loss=2.4, law="chinchilla-epoch-2024",
                                         gpu="h100")])
def test_tokens_for_loss_many_equal_one_by_one(fields):
    """The target-loss tokens of many params at once (``LawMemo.tokens_for_loss_many``) are the one-by-one
    bracketing's, bit for bit, including params that never reach the target (None)."""
    import numpy as np

    from planner.law_memo import _tokens_for_loss

    _, solved = make_whole_calls(fields)[0]
    var = solved.var
    ns = (solved.sol.params * np.exp(np.random.default_rng(5).uniform(-4.0, 4.0, 60))).tolist()
    for target in (fields["target_loss"], 1.9, 2.05, 3.5):
        want = [_tokens_for_loss(var, n, target) for n in ns]
        assert LawMemo(var).tokens_for_loss_many(ns, target) == want
        assert any(w is None for w in want) or target != 1.9
