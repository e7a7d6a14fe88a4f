"""Every plan is rounded to a concrete model and cluster and re-evaluated."""

import pytest

from cost_models.architecture import total_params
from planner import optimize


@pytest.mark.parametrize("fields", [
    {"budget_flops": 1e22},
    {"dollars": 1e6, "deadline_days": 7},
    {"budget_flops": 1e24, "max_gpus": 2048},
])
def test_rounded_plan_is_close_to_the_optimum(fields):
    plan = optimize(**fields)
    r = plan.rounded
    shape = plan.shape
    assert total_params(shape) == r.total_params
    assert r.params == pytest.approx(plan.params, rel=0.03)  # round_shape's guarantee above 1e8 params
    assert r.loss == pytest.approx(plan.loss, rel=2e-3)
    assert r.tokens == pytest.approx(plan.tokens, rel=0.01)
    assert r.tokens == pytest.approx(r.steps * r.batch_tokens)
    par = plan.parallelism
    assert par.tp * par.pp * par.dp == par.devices == r.gpus
    assert par.global_batch_sequences % par.dp == 0
    assert r.memory_fits
    for name, (limit, value) in r.limits.items():
        assert value <= limit * 1.01, f"{name}: rounding moved {value} past {limit} by more than 1%"


def test_rounding_keeps_the_coupled_batch():
    plan = optimize(dollars=1e6, deadline_days=7)
    assert plan.batch_coupling
    assert plan.rounded.batch_tokens == pytest.approx(plan.batch_tokens, rel=0.01)
    assert plan.parallelism.dp * plan.parallelism.tp * plan.parallelism.pp == plan.rounded.gpus


def test_kaplan_law_rounds_non_embedding_count():
    plan = optimize(budget_flops=1e22, law="kaplan-2020")
    assert plan.rounded.params_counted_as == "non_embedding"
    assert plan.rounded.params == pytest.approx(plan.params, rel=0.03)
