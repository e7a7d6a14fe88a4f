"""Property tests over random valid requests (hypothesis)."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cost_models.catalog import load_catalog
from cost_models.throughput import device_hours
from planner import InfeasiblePlanError, optimize

GPUS = ["h100", "a100-80gb", "b200", "tpu-v5p", "mi300x", "h200"]
LAWS = ["chinchilla-epoch-2024", "chinchilla-hoffmann-2022-unrounded", "kaplan-2020"]


def log_uniform(lo: float, hi: float):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda x: 10.0**x)


@st.composite
def requests(draw):
    fields = {"gpu": draw(st.sampled_from(GPUS)), "law": draw(st.sampled_from(LAWS))}
    limit = draw(st.sampled_from(["budget_flops", "dollars", "gpu_hours", "deadline+max"]))
    if limit == "budget_flops":
        fields["budget_flops"] = draw(log_uniform(1e15, 1e30))
    elif limit == "dollars":
        fields["dollars"] = draw(log_uniform(1e2, 1e11))
    elif limit == "gpu_hours":
        fields["gpu_hours"] = draw(log_uniform(10, 1e10))
    else:
        fields["deadline_days"] = draw(st.floats(0.1, 365))
        fields["max_gpus"] = draw(st.integers(1, 100_000))
    if draw(st.booleans()):
        fields["deadline_days"] = draw(st.floats(0.05, 365))
    if draw(st.booleans()):
        fields["max_gpus"] = draw(st.integers(1, 100_000))
    if draw(st.booleans()):
        fields["mfu"] = draw(st.floats(0.05, 1.0))
    if draw(st.integers(0, 4)) == 0:
        fields["min_params"] = draw(log_uniform(1e6, 1e12))
    return fields


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_limits(plan, fields):
    tol = 1e-4
    acc = load_catalog().get(plan.gpu)
    assert plan.flops == pytest.approx(6 * plan.params * plan.tokens, rel=1e-9)
    assert device_hours(plan.flops, acc.peak_flops("bf16"), plan.mfu, plan.goodput) <= plan.gpu_hours * (1 + tol)
    if "budget_flops" in fields:
        assert plan.flops <= fields["budget_flops"] * (1 + tol)
    if "dollars" in fields:
        assert plan.cost_usd <= fields["dollars"] * (1 + tol)
    if "gpu_hours" in fields:
        assert plan.gpu_hours <= fields["gpu_hours"] * (1 + tol)
    if "deadline_days" in fields:
        assert plan.hours <= fields["deadline_days"] * 24 * (1 + tol)
    if "max_gpus" in fields:
        assert plan.gpus <= fields["max_gpus"]
    if "min_params" in fields:
        assert plan.params >= fields["min_params"] * (1 - tol)
    assert plan.memory_per_gpu_gb * 1e9 <= acc.memory_bytes * (1 + tol)
    for value in (plan.params, plan.tokens, plan.loss, plan.hours, plan.cost_usd, plan.gpu_hours):
        assert math.isfinite(value) and value > 0
    assert plan.status in ("optimal", "optimal_inaccurate")


@SETTINGS
@given(requests())
def test_plans_satisfy_their_limits_or_say_why_not(fields):
    try:
        plan = optimize(**fields)
    except InfeasiblePlanError as e:
        assert e.relaxations, "an infeasible plan must name a limit to relax"
        assert "\n" not in str(e)
        return
    _check_limits(plan, fields)


@SETTINGS
@given(requests(), st.sampled_from(["budget_flops", "dollars", "gpu_hours", "deadline_days", "max_gpus"]))
def test_loss_never_rises_when_a_limit_loosens(fields, which):
    if which not in fields:
        return
    try:
        base = optimize(**fields)
    except InfeasiblePlanError:
        return
    looser = dict(fields)
    looser[which] = fields[which] * 2 if which != "max_gpus" else fields[which] * 2
    after = optimize(**looser)
    # the launchable plan moves within rounding to whole shapes, devices and steps
    assert after.loss <= base.loss * (1 + 1e-3)


@settings(max_examples=60, deadline=None)
@given(log_uniform(1e18, 1e30))
def test_sane_numbers_across_budgets(budget):
    """From 1e18 FLOPs up (below it the smallest shape with a 128k vocabulary is larger than the optimum)."""
    plan = optimize(budget_flops=budget)
    assert 5 < plan.tokens_per_param < 100  # Chinchilla-like allocation at every scale
    assert plan.loss > 1.8172  # never below the irreducible loss E
    assert budget * 0.95 <= plan.flops <= budget * (1 + 1e-9)
