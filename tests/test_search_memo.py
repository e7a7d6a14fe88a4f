"""The whole-cluster search's memos and flat batch grids give what the plain computations give.

- ``whole_scan.line_grids``: every line's ``batch_grid``, flattened in line order (here: the list of tuples);
- ``layout_search.fastest_layout_of`` (memoized) and ``cluster.with_tp_for_heads`` (memoized): the same layout
  as the unmemoized function, on the same question asked twice and in any order.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import make_whole_calls

from cost_models.catalog import load_catalog
from cost_models.cluster import Hardware, Layout, with_tp_for_heads
from cost_models.layout_search import _fastest_layout_of, fastest_layout_of
from planner.rounding import fit_shape
from planner.whole_scan import batch_grid, line_grids


@pytest.mark.parametrize("objective", ["loss", "cost", "time"])
def test_line_grids_are_each_lines_batch_grid(objective):
    rng = random.Random(7)
    for _ in range(50):
        batch = rng.choice([4096.0, 1e5, 2.5e6, 3.3e7])
        units = np.array([rng.choice([4096.0, 8192.0, 65536.0, 1e6, 3e6]) for _ in range(rng.randint(1, 30))])
        counts, k = line_grids(objective, batch, units)
        want = [batch_grid(objective, batch, u) for u in units.tolist()]
        assert counts.tolist() == [len(g) for g in want]
        assert k.tolist() == [x for g in want for x in g]


def _questions(n: int) -> list[tuple]:
    rnd = random.Random(11)
    cat = load_catalog()
    out = []
    for _ in range(n):
        hw = Hardware.of(cat.get(rnd.choice(["h100", "a100-80gb", "tpu-v5p", "mi300x"])))
        shape = fit_shape(10 ** rnd.uniform(8, 11.5), experts=rnd.choice([1, 8]), seq_len=4096).shape
        g = rnd.choice([8, 16, 64, 256, 2048])
        batch = rnd.choice([1, 3, 16]) * g * shape.seq_len * rnd.choice([0.5, 1.0])
        out.append((shape, hw, batch, g, rnd.choice([None, 0.4]), rnd.choice([{}, {"tp": None}, {"tp": 2}])))
    return out


def test_fastest_layout_memo_equals_fresh_in_any_order():
    questions = _questions(60)
    fresh = [_fastest_layout_of.__wrapped__(s, hw, b, g, mfu, tuple(sorted((k, v) for k, v in p.items()
                                                                           if v is not None)))
             for s, hw, b, g, mfu, p in questions]
    _fastest_layout_of.cache_clear()
    order = list(range(len(questions))) * 2
    random.Random(3).shuffle(order)
    for i in order:
        s, hw, b, g, mfu, p = questions[i]
        assert fastest_layout_of(s, hw, batch_tokens=b, devices=g, mfu=mfu, **p) == fresh[i]
    assert _fastest_layout_of.cache_info().hits >= len(questions)


def test_with_tp_for_heads_is_the_largest_power_of_two_dividing_the_heads():
    rnd = random.Random(5)
    for _ in range(300):
        lay = Layout(tp=rnd.choice([1, 2, 4, 8]), pp=rnd.choice([1, 2, 4]), zero_stage=rnd.choice([1, 3]))
        heads, top = rnd.choice([1, 2, 3, 4, 6, 8, 12, 16, 20, 32, 40, 64]), rnd.choice([0, 1, 2, 4, 8, 16, 64])
        want = 1
        for t in range(1, 65):
            if t & (t - 1) == 0 and t <= max(top, 1) and heads % t == 0:
                want = t
        got = with_tp_for_heads(lay, heads, top)
        assert got.tp == want
        assert got.model_copy(update={"tp": lay.tp}) == lay  # nothing else changed


@pytest.mark.parametrize("fields", [dict(objective="time", target_loss=2.2, dollars=5e6, max_gpus=512),
                                    dict(objective="time", target_loss=2.5, max_gpus=64, gpu="a100-80gb")])
def test_quick_looks_do_not_depend_on_the_shapes_scanned_with_them(fields):
    """``_Scan.widen`` screens the three families of shapes in one scan: each shape's quick look (hours) must be
    what it is when its shapes are scanned alone, and the best plan found the same."""
    from planner.whole import shape_candidates
    from planner.whole_search import _Scan

    checked = 0
    for request, solved in make_whole_calls(fields):
        shapes = shape_candidates(solved, request, solved.sol.params, tuple(3 ** (k / 12) for k in range(-12, 13)))
        targets = [solved.sol.devices]
        together = _Scan(request, solved)
        got = together._quick(shapes, targets)
        apart_scan = _Scan(request, solved)
        parts = [shapes[i:i + 5] for i in range(0, len(shapes), 5)]
        apart = [x for part in parts for x in apart_scan._quick(part, targets)]
        assert got == apart
        best_a, best_b = together.best, apart_scan.best
        assert (best_a is None) == (best_b is None)
        if best_a is not None:
            assert (best_a.shape, best_a.layout, best_a.devices, best_a.batch_tokens, best_a.hours) == (
                best_b.shape, best_b.layout, best_b.devices, best_b.batch_tokens, best_b.hours)
        checked += sum(x is not None for x in got)
    assert checked >= 10


def test_candidate_layouts_for_every_depth_limit():
    """``candidate_layouts`` (one cache entry per power-of-two depth limit) lists, for every max_pp, exactly the
    product of its dimensions in order, written out here."""
    from cost_models.cluster import candidate_layouts

    for per_node in (4, 8):
        for experts in (1, 8, 100):
            for max_pp in range(0, 130):
                ep = 1 if experts == 1 else min(2 ** (experts.bit_length() - 1), 64)
                want = [Layout(tp=t, pp=p, micro_batch=1, recompute=r, zero_stage=z, ep=ep)
                        for t in (1, 2, 4, 8) if t <= per_node for p in (1, 2, 4, 8, 16, 32, 64) if p <= max_pp
                        for r in ("selective", "full") for z in (1, 3)]
                assert candidate_layouts(per_node, moe_experts=experts, max_pp=max_pp) == want


def _device_candidates_reference(g, mp, per_node, max_gpus):
    """Whole device counts near g as ``whole._device_candidates`` was written before it was tightened."""
    import math

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
    return tuple(sorted(set(cands)))


def test_device_candidates_equal_the_reference():
    from planner.whole import _device_candidates

    rnd = random.Random(9)
    for _ in range(20_000):
        g = 10 ** rnd.uniform(-1, 6)
        mp = rnd.choice([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 512])
        per_node = rnd.choice([1, 4, 8, 16])
        max_gpus = rnd.choice([None, None, 1, 7, 8, 64, 100, 4096])
        assert _device_candidates.__wrapped__(g, mp, per_node, max_gpus) == _device_candidates_reference(
            g, mp, per_node, max_gpus), (g, mp, per_node, max_gpus)
