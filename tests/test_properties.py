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
        fields["budget_flops"] = draw(log_uniform(1e15, 1e26))
    elif limit == "dollars":
        fields["dollars"] = draw(log_uniform(1e2, 1e10))
    elif limit == "gpu_hours":
        fields["gpu_hours"] = draw(log_uniform(10, 1e8))
    else:
        fields["deadline_days"] = draw(st.floats(0.1, 365))
        fields["max_gpus"] = draw(st.integers(1, 100_000))
    if draw(st.booleans()):
        fields["deadline_days"] = draw(st.floats(0.5, 365))
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


LIMITS = ("budget_flops", "dollars", "gpu_hours", "deadline_days", "max_gpus")


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.data())
def test_loss_never_rises_when_a_limit_loosens(fields, data):
    """A known gap (xfail) until the layout search ranked layouts by speed when a deadline binds and the critical
    batch was evaluated at the effective tokens in both program and whole cluster; since then 200 random and
    these 100 derandomized examples pass."""
    which = data.draw(st.sampled_from([k for k in LIMITS if k in fields]))  # a limit the request has
    try:
        base = optimize(**fields)
    except InfeasiblePlanError as e:
        # infeasible: raising a named limit to the suggested value must make the plan feasible
        assert e.relaxations
        name, value = next(iter(e.relaxations.items()))
        fixed = dict(fields)
        fixed[name] = math.ceil(value * (1 + 1e-6)) if name == "max_gpus" else value * (1 + 1e-6)
        optimize(**fixed)
        return
    looser = dict(fields)
    looser[which] = fields[which] * 2
    after = optimize(**looser)
    # the launchable plan moves within rounding to whole shapes, devices and steps
    assert after.loss <= base.loss * (1 + 1e-3)


@settings(max_examples=60, deadline=None)
@given(log_uniform(1e18, 1e27))
def test_budget_only_plans_are_bounded_by_the_closed_form_optimum(budget):
    """No plan beats the law's unconstrained optimum at its FLOPs (Hoffmann et al. 2022 eq. 4, written out here
    with the default law's constants, Besiroglu et al. 2024 v2 table); batch overhead and rounding cost it at most
    10% between 1e18 and 1e26 FLOPs (beyond 1e27 the batch law's optimal batch cannot feed a cluster that
    finishes)."""
    E, A, B, alpha, beta = 1.8172, 482.01, 2085.43, 0.3478, 0.3658
    plan = optimize(budget_flops=budget)
    g = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    n = g * (budget / 6) ** (beta / (alpha + beta))
    best = E + A / n**alpha + B / (budget / (6 * n)) ** beta
    assert plan.loss >= best * (1 - 1e-9)
    if 1e18 <= budget <= 1e26:
        assert plan.loss <= best * 1.10
    assert budget * 0.95 <= plan.flops <= budget * (1 + 1e-9)
