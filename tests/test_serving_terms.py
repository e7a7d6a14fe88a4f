"""Serving posynomials (cost_models.serving_terms, planner.serving.program_serving_terms): the terms equal
their numpy evaluator, are exact for a fixed shape and at the anchor, and their fit error is bounded."""

import cvxpy as cp
import numpy as np
import pytest

from cost_models.catalog import load_catalog
from cost_models.serving import ServingConfig
from cost_models.serving_point import serving_point
from cost_models.serving_terms import evaluate_terms, exact_features, fit_monomial, serving_terms
from planner.serving import ServingDemand, program_serving_terms, rounded_shape, serving_cost_usd

H100 = load_catalog().get("h100")
DEMAND = ServingDemand(tokens=1e12, input_tokens=3e12)
CFG = ServingConfig(tensor_parallel=4, batch=64)


def test_fit_monomial_recovers_a_power_law():
    ns = np.geomspace(1e9, 1e11, 9)
    m = fit_monomial(ns, 3.0 * ns**0.4)
    assert m.coef == pytest.approx(3.0, rel=1e-9) and m.exponent == pytest.approx(0.4, rel=1e-12)
    assert m.max_rel_error < 1e-9


def test_terms_equal_numpy_evaluator_and_cvxpy():
    terms = program_serving_terms(1e10, 1e11, CFG, DEMAND, accelerator=H100, price=2.3)
    n = cp.Variable(pos=True)
    for posy in [*terms.usd_per_output_token.values(), terms.usd_per_input_token, terms.memory_bytes_per_device,
                 *terms.tpot_s.values(), *terms.ttft_s.values()]:
        assert posy and all(c > 0 for c, _ in posy)  # a posynomial: positive coefficients
        expr = sum(c * n**e for c, e in posy)
        assert expr.is_dgp()
        for x in (1.3e10, 4e10, 9e10):
            by_hand = sum(c * x**e for c, e in posy)  # written out independently of evaluate_terms
            assert evaluate_terms(posy, x) == pytest.approx(by_hand, rel=1e-12)
            n.value = x
            assert expr.value == pytest.approx(by_hand, rel=1e-12)


def test_exact_features_reproduce_the_numpy_model():
    shape = rounded_shape(7e10)
    terms = serving_terms(exact_features(shape, CFG, DEMAND.workload), H100, CFG, DEMAND.workload, 2.3)
    pt = serving_point(shape, H100, CFG, DEMAND.workload, 2.3)
    assert terms.output_usd(7e10) * 1e6 == pytest.approx(pt.usd_per_million_output_tokens, rel=1e-12)
    assert terms.input_usd(7e10) * 1e6 == pytest.approx(pt.usd_per_million_input_tokens, rel=1e-12)
    assert terms.tpot(7e10) == pytest.approx(pt.tpot_s, rel=1e-12)
    assert terms.ttft(7e10) == pytest.approx(pt.ttft_s, rel=1e-12)
    assert terms.memory(7e10) == pytest.approx(pt.memory_per_device_bytes, rel=1e-12)
    cost = 1e12 * terms.output_usd(7e10) + 3e12 * terms.input_usd(7e10)
    assert cost == pytest.approx(serving_cost_usd(7e10, DEMAND, CFG, accelerator=H100, price=2.3), rel=1e-12)


def test_anchored_fit_is_exact_at_the_anchor_and_bounded_nearby():
    terms = program_serving_terms(1e10, 1e11, CFG, DEMAND, accelerator=H100, price=2.3, anchor=3e10)
    exact = serving_cost_usd(3e10, DEMAND, CFG, accelerator=H100, price=2.3)
    assert 1e12 * terms.output_usd(3e10) + 3e12 * terms.input_usd(3e10) == pytest.approx(exact, rel=1e-12)
    # off the anchor the rounded shapes' layer count jumps: measured max error 8% over [1e10, 1e11] (TP 4,
    # batch 64), the figure docs/serving.md states
    for n in np.geomspace(1e10, 1e11, 23):
        pt = serving_point(rounded_shape(n), H100, CFG, DEMAND.workload, 2.3)
        assert terms.output_usd(n) * 1e6 == pytest.approx(pt.usd_per_million_output_tokens, rel=0.10)


def test_unanchored_fit_error_stated():
    terms = program_serving_terms(1e10, 1e11, CFG, DEMAND, accelerator=H100, price=2.3)
    errs = [terms.output_usd(n) * 1e6 / serving_point(rounded_shape(n), H100, CFG, DEMAND.workload,
                                                      2.3).usd_per_million_output_tokens - 1
            for n in np.geomspace(1e10, 1e11, 23)]
    assert max(abs(e) for e in errs) < 0.10
    assert terms.max_rel_error["weight_params"] < 0.02  # the count itself is within the rounding's 3%


def test_moe_terms_in_active_params():
    cfg = ServingConfig(tensor_parallel=2, batch=8)
    terms = program_serving_terms(2e9, 2e10, cfg, DEMAND, accelerator=H100, price=2.3, count="active", experts=8,
                                  anchor=6e9)
    shape = rounded_shape(6e9, count="active", experts=8)
    pt = serving_point(shape, H100, cfg, DEMAND.workload, 2.3)
    assert terms.output_usd(6e9) * 1e6 == pytest.approx(pt.usd_per_million_output_tokens, rel=1e-12)
    # all experts resident: memory grows with total params, several times the active count
    assert terms.memory(6e9) * cfg.tensor_parallel > 3 * 6e9 * 2


def test_usd_terms_price_a_demand():
    terms = program_serving_terms(1e10, 1e11, CFG, DEMAND, accelerator=H100, price=2.3, anchor=3e10)
    usd = terms.usd_terms(1e12, 3e12)
    exact = serving_cost_usd(3e10, DEMAND, CFG, accelerator=H100, price=2.3)
    assert max(evaluate_terms(usd[b], 3e10) for b in usd) == pytest.approx(exact, rel=1e-12)


def test_fixed_exponents_merge_to_three_terms():
    from cost_models.serving_terms import merge_terms

    terms = program_serving_terms(1e10, 1e11, CFG, DEMAND, accelerator=H100, price=2.3, fixed_exponents=True)
    for posy in [*terms.usd_per_output_token.values(), terms.usd_per_input_token, terms.memory_bytes_per_device]:
        merged = merge_terms(posy)
        assert {round(e, 9) for _, e in merged} <= {1.0, round(2 / 3, 9), round(1 / 3, 9)}
        for x in (1.2e10, 5e10):
            assert evaluate_terms(merged, x) == pytest.approx(evaluate_terms(posy, x), rel=1e-10)
    errs = [terms.output_usd(n) * 1e6 / serving_point(rounded_shape(n), H100, CFG, DEMAND.workload,
                                                      2.3).usd_per_million_output_tokens - 1
            for n in np.geomspace(1e10, 1e11, 23)]
    assert max(abs(e) for e in errs) < 0.10  # measured 7.2% (docs/serving.md)


def test_program_serving_and_demand_from_request():
    from types import SimpleNamespace

    from planner.serving import demand_from_request, program_serving

    assert demand_from_request(SimpleNamespace(inference_tokens=None)) is None
    req = SimpleNamespace(inference_tokens=1e13, inference_input_tokens=3e13, context=4000, tpot_ms=40.0,
                          ttft_ms=None)
    demand = demand_from_request(req)
    assert (demand.prompt_tokens, demand.output_tokens, demand.total_input_tokens) == (3000, 1000, 3e13)
    ps = program_serving(3e10, demand, accelerator=H100, price=2.3)
    plan = serving_cost_usd(3e10, demand, ps.choice.config, accelerator=H100, price=2.3)
    usd = ps.terms.usd_terms(demand.tokens, demand.total_input_tokens)
    assert max(evaluate_terms(usd[b], 3e10) for b in usd) == pytest.approx(plan, rel=1e-12)
    assert ps.terms.tpot(3e10) * 1e3 <= 40.0 + 1e-9  # the chooser met the limit at the anchor
    assert ps.terms.memory(3e10) <= ps.terms.usable_memory_bytes
