"""Fast paths and memoized functions give exactly what the full paths give, and reject what they reject."""

from __future__ import annotations

import math

import numpy as np
import pytest

from laws.base import LawError
from laws.catalog import get_law


def _slow_numeric(law, inputs):
    """The validated path alone (no fast path): np.asarray then the finiteness/range checks."""
    import laws.base as base

    saved = base._checked_fast
    base._checked_fast = lambda v, lo: None
    try:
        return law._numeric_inputs(inputs)
    finally:
        base._checked_fast = saved


@pytest.mark.parametrize("law_id", ["chinchilla-hoffmann-2022", "kaplan-2020", "joint-moe-2025",
                                    "muennighoff-2023"])
def test_fast_predict_equals_validated_path(law_id):
    law = get_law(law_id)
    rng = np.random.default_rng(7)
    for _ in range(200):
        inputs = {}
        for k in law.inputs:
            x = float(10 ** rng.uniform(0, 13))
            if k == "experts":
                x = float(rng.choice([1, 2, 8, 64]))
            kind = rng.integers(4)
            inputs[k] = (x, int(max(1, round(x))), np.float64(x), np.array([x, 2 * x]))[kind]
        fast = law._numeric_inputs(inputs)
        slow = _slow_numeric(law, inputs)
        assert fast.keys() == slow.keys()
        for k in fast:
            assert type(fast[k]) is type(slow[k]) and fast[k].dtype == slow[k].dtype
            assert np.array_equal(fast[k], slow[k])
        np.testing.assert_array_equal(law.predict(**inputs), law.predict(**{k: np.asarray(v, dtype=float)
                                                                              for k, v in inputs.items()}))


@pytest.mark.parametrize("bad", [math.nan, -1.0, 0.0, math.inf, -math.inf, "1e9", "x", True, None, [1.0, "x"],
                                 np.array([1.0, math.nan]), np.array([1.0, -2.0]), np.array([1, 0]), 0, -3])
def test_fast_path_rejects_with_the_same_error(bad):
    law = get_law("chinchilla-hoffmann-2022")

    def message(fn):
        try:
            fn()
        except LawError as e:
            return type(e), str(e), e.field
        return None

    got = message(lambda: law.predict(params=bad, tokens=1e10))
    want = message(lambda: _slow_numeric(law, {"params": bad, "tokens": 1e10}))
    assert got == want
    # numpy reads True as 1.0 and "1e9" as 1e9: both paths accept them
    if not (isinstance(bad, bool) or (isinstance(bad, str) and bad == "1e9")):
        assert got is not None


def test_minimum_inputs_use_the_same_rule():
    law = get_law("joint-moe-2025")
    with pytest.raises(LawError, match="experts must be finite and at least 1"):
        law.predict(params=1e9, tokens=1e10, experts=0.5)
    assert float(law.predict(params=1e9, tokens=1e10, experts=1)) == float(
        law.predict(params=np.asarray(1e9), tokens=np.asarray(1e10), experts=np.asarray(1.0)))


def test_predict_errors_for_unknown_output_and_inputs():
    law = get_law("chinchilla-hoffmann-2022")
    with pytest.raises(LawError, match="unknown output"):
        law.predict("nope", params=1e9, tokens=1e10)
    with pytest.raises(LawError, match="missing tokens"):
        law.predict(params=1e9)
    with pytest.raises(LawError, match="unexpected flops"):
        law.predict(params=1e9, tokens=1e10, flops=1.0)


def test_memoized_shape_equals_fresh():
    from planner import rounding

    rng = np.random.default_rng(3)
    for _ in range(40):
        p = float(10 ** rng.uniform(7, 12))
        kw = dict(count=str(rng.choice(["total", "active", "non_embedding"])), experts=int(rng.choice([1, 8])))
        first = rounding.fit_shape(p, **kw)
        again = rounding.fit_shape(p, **kw)
        fresh = rounding._fit.__wrapped__(float(p), kw["count"], kw["experts"], 1, rounding.LLAMA3_VOCAB, 4096,
                                          "swiglu", False)
        assert first == again == fresh
        assert rounding._preferred_at(first.shape.d_model) == rounding.preferred_layers(first.shape.d_model)


def test_fit_shape_still_rejects_bad_params():
    from planner.rounding import fit_shape

    fit_shape(1.0)   # cached for 1 == True: the bool must still be rejected
    for bad in (True, math.nan, -1.0, 0, "1e9"):
        with pytest.raises(ValueError, match="params must be a positive finite number"):
            fit_shape(bad)


def test_memoized_layout_numbers_equal_fresh():
    from cost_models.cluster import candidate_layouts, layout_numbers
    from planner import solve
    from planner.optimize import _candidates
    from planner.request import PlanRequest
    from planner.rounding import fit_shape

    request = PlanRequest.parse(budget_flops=1e22, gpu="h100")
    cand = _candidates(request)[0]
    shape = fit_shape(2e9).shape
    for lay in candidate_layouts(8, max_pp=shape.layers):
        assert solve.numbers_for(request, cand, lay, shape) == layout_numbers(lay, cand.hw, 4096, shape.vocab, 1,
                                                                              False, None)


def _plan_numbers(plan):
    return (plan.params, plan.tokens, plan.loss, plan.gpus, plan.hours, plan.total_cost_usd, plan.batch_tokens,
            plan.parallelism.model_dump() if plan.parallelism is not None else None)


def test_closed_form_start_gives_the_plan_of_the_default_start(monkeypatch):
    """The probe's fixed point started at the law's compute-optimal N (one solve saved) ends at the plan the
    default start (1e9 params) gives, over a spread of budgets, accelerators and an MoE request."""
    import sys

    import planner.program as program
    from planner import optimize

    po = sys.modules["planner.optimize"]   # the module (planner.optimize the attribute is the function)
    rng = np.random.default_rng(11)
    requests = [dict(budget_flops=float(10 ** rng.uniform(19, 25)), gpu=str(rng.choice(["h100", "a100-80gb"])))
                for _ in range(6)] + [dict(budget_flops=1e22, moe=True, experts=4, gpu="h100")]
    solves = {"count": 0}
    real = program.TrainingProgram.solve

    def counting(self, values):
        solves["count"] += 1
        return real(self, values)

    monkeypatch.setattr(program.TrainingProgram, "solve", counting)
    for r in requests:
        solves["count"] = 0
        fast = optimize(**r)
        fast_solves = solves["count"]
        with monkeypatch.context() as m:
            m.setattr(po, "compute_optimal_start", lambda request, var: None)
            solves["count"] = 0
            slow = optimize(**r)
            slow_solves = solves["count"]
        assert _plan_numbers(fast) == _plan_numbers(slow), r
        assert fast_solves <= slow_solves


def test_closed_form_start_only_under_a_flops_budget_alone():
    from planner.optimize import _law, _variants
    from planner.request import PlanRequest
    from planner.solve import compute_optimal_start

    def start(**fields):
        request = PlanRequest.parse(gpu="h100", **fields)
        return compute_optimal_start(request, _variants(request, _law(request))[0])

    n = start(budget_flops=1e22)
    assert n is not None and 5e9 < n < 2e10
    assert start(budget_flops=1e22, dollars=1e6) is None
    assert start(budget_flops=1e22, inference_tokens=1e12) is None
    assert start(dollars=1e6) is None
    assert start(objective="cost", target_loss=2.2) is None
    assert start(budget_flops=1e22, law="kaplan-2020") is None


def _ranked_reference(request, cand, shape, batch, devices, keep=3):
    """ranked_layouts as first written: every layout's step time computed (the reference for the lazy one)."""
    from cost_models.cluster import candidate_layouts, layout_numbers, memory_bytes, step_seconds, terms_of_shape

    t = terms_of_shape(shape)
    devices = max(devices, 1.0)
    timed = request.objective == "time" or request.deadline_days is not None
    efficiency, speed = [], []
    for lay in candidate_layouts(cand.acc.devices_per_node, moe_experts=shape.experts, max_pp=shape.layers,
                                 tp=request.tensor_parallel):
        if lay.tp * lay.pp > max(devices, 1.0) * 1.5 or (shape.heads % lay.tp and request.objective != "time"):
            continue
        if request.max_gpus and lay.tp * lay.pp > request.max_gpus:
            continue
        n = layout_numbers(lay, cand.hw, request.seq_len, shape.vocab, shape.top_k + shape.shared_experts,
                           shape.is_moe, request.mfu)
        for g, out in ((devices, efficiency), (max(1.0, batch * n.mp / n.mb_seq), speed)):
            if out is speed and not timed:
                continue
            g = min(g, float(request.max_gpus)) if request.max_gpus else g
            b = max(batch, g * n.mb_seq / n.mp)
            step = float(step_seconds(t, n, b, g))
            mem = float(memory_bytes(t, n, g))
            out.append((mem > cand.hw.memory, step / b, lay.label(), lay))
    first, second = (speed, efficiency) if request.objective == "time" else (efficiency, speed)
    first.sort(key=lambda x: x[:3])
    second.sort(key=lambda x: x[:3])
    chosen = [x[3] for x in first[:keep]]
    chosen += [x[3] for x in second[:keep] if x[3] not in chosen][:2]
    return chosen


@pytest.mark.parametrize("fields", [dict(budget_flops=1e22), dict(dollars=1e6, deadline_days=30),
                                    dict(objective="time", target_loss=2.3, max_gpus=64),
                                    dict(budget_flops=1e22, moe=True, experts=8), dict(budget_flops=1e22, mfu=0.4),
                                    dict(dollars=1e7, deadline_days=3, max_gpus=512, tensor_parallel=4)])
def test_ranked_layouts_equal_the_eager_reference(fields):
    from planner.layout_rank import ranked_layouts
    from planner.optimize import _candidates
    from planner.request import PlanRequest
    from planner.rounding import fit_shape

    request = PlanRequest.parse(gpu="h100", **fields)
    cand = _candidates(request)[0]
    rng = np.random.default_rng(5)
    experts = request.experts or 1
    for _ in range(50):   # from small models (most layouts fit) to huge ones (few or none fit)
        shape = fit_shape(float(10 ** rng.uniform(8, 12.5)), experts=experts,
                          count="active" if experts > 1 else "total").shape
        batch, devices = float(10 ** rng.uniform(5, 8)), float(10 ** rng.uniform(0, 4.5))
        for keep in (1, 3):
            assert (ranked_layouts(request, cand, shape, batch, devices, keep)
                    == _ranked_reference(request, cand, shape, batch, devices, keep))


def test_layout_table_holds_every_layouts_numbers():
    from cost_models.cluster import candidate_layouts, layout_numbers
    from planner.layout_rank import layout_table
    from planner.optimize import _candidates
    from planner.request import PlanRequest

    cand = _candidates(PlanRequest.parse(budget_flops=1e22, gpu="h100"))[0]
    for experts, moe, mfu in ((1, False, None), (8, True, None), (1, False, 0.4)):
        table = layout_table(8, experts, 64, None, cand.hw, 4096, 128256, 1, moe, mfu)
        layouts = candidate_layouts(8, moe_experts=experts, max_pp=64)
        assert table.layouts == tuple(layouts)
        for i, lay in enumerate(layouts):
            one = layout_numbers(lay, cand.hw, 4096, 128256, 1, moe, mfu)
            for f in one.__dataclass_fields__:
                v, column = getattr(one, f), getattr(table.numbers, f)
                if v is None:   # an absent term: 0.0, or None when no layout has it
                    assert column is None or column[i] == 0.0
                else:
                    assert column[i] == v


@pytest.mark.parametrize("moe,mfu", [(False, None), (True, None), (False, 0.4)])
def test_layout_arrays_give_the_scalar_step_times_and_memory_bit_for_bit(moe, mfu):
    """Absent terms as 0.0 change no number: every layout's step time and memory from the arrays equal the
    layout-by-layout values exactly."""
    from cost_models.cluster import layout_numbers, memory_bytes, step_seconds, terms_of_shape
    from planner.layout_rank import layout_table
    from planner.optimize import _candidates
    from planner.request import PlanRequest
    from planner.rounding import fit_shape

    rng = np.random.default_rng(17)
    for gpu in ("h100", "a100-80gb", "v100"):
        cand = _candidates(PlanRequest.parse(budget_flops=1e22, gpu=gpu, precision="fp16"))[0]
        for _ in range(15):
            experts = 8 if moe else 1
            shape = fit_shape(float(10 ** rng.uniform(8, 12.5)), experts=experts,
                              count="active" if moe else "total").shape
            t = terms_of_shape(shape)
            table = layout_table(cand.acc.devices_per_node, experts, shape.layers, None, cand.hw, 4096, shape.vocab,
                                 1, moe, mfu)
            g = 10 ** rng.uniform(0, 4.5, len(table.layouts))
            b = 10 ** rng.uniform(5, 8, len(table.layouts))
            steps = step_seconds(t, table.numbers, b, g)
            mems = memory_bytes(t, table.numbers, g)
            for i, lay in enumerate(table.layouts):
                one = layout_numbers(lay, cand.hw, 4096, shape.vocab, 1, moe, mfu)
                assert float(steps[i]) == float(step_seconds(t, one, float(b[i]), float(g[i])))
                assert float(mems[i]) == float(memory_bytes(t, one, float(g[i])))


def test_memoized_program_inputs_equal_fresh():
    from dataclasses import fields as dc_fields

    from cost_models.cluster import LayoutNumbers, candidate_layouts, layout_numbers
    from planner import solve
    from planner.optimize import _candidates
    from planner.program import layout_param
    from planner.request import PlanRequest
    from planner.rounding import COUNTERS, fit_shape

    cand = _candidates(PlanRequest.parse(budget_flops=1e22, gpu="h100"))[0]
    for p, count, experts in ((3e9, "total", 1), (2e10, "active", 8), (7e8, "non_embedding", 1)):
        shape = fit_shape(p, count=count, experts=experts).shape
        assert dict(solve._shape_coefficients(shape, count)) == solve.term_coefficients(
            shape, float(COUNTERS[count](shape)))
        for lay in candidate_layouts(8, moe_experts=experts, max_pp=shape.layers)[:12]:
            n = layout_numbers(lay, cand.hw, 4096, shape.vocab, 1, experts > 1, None)
            present, values = solve._layout_values(n)
            assert present == frozenset(f.name for f in dc_fields(LayoutNumbers) if getattr(n, f.name) is not None)
            assert dict(values) == {layout_param(f): float(getattr(n, f)) for f in present}


def test_cone_theta_still_rejects_non_positive_parameters():
    from planner import optimize
    from planner.program import _CACHE

    optimize(budget_flops=1e21, gpu="h100")
    prog = next(p for p in _CACHE.values() if p._cone is not None)
    cone = prog._cone
    good = {name: 2.0 for name in cone.params}
    assert np.all(np.isfinite(cone.theta(good)))
    for bad in (0.0, -1.0, math.nan):
        values = dict(good)
        values[cone.params[-1]] = bad
        with pytest.raises(ValueError, match=f"Parameter value must be positive \\({cone.params[-1]} = "):
            cone.theta(values)
    with pytest.raises(KeyError):
        cone.theta({})
