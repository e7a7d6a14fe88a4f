"""Property tests for MoE and data-constrained plans over random valid requests (hypothesis)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laws.catalog import get_law
from planner import optimize

MUENNIGHOFF = get_law("muennighoff-2023")


def _muennighoff(N, D, U, E, A, B, alpha, beta, R_D_star, R_N_star):
    """Muennighoff et al. 2023 written out (datablations README scaling_law, with U = min(U, D))."""
    U = min(U, D)
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    UN = min(N, (U * G) ** (beta / alpha) * G)
    RD, RN = max(D / U - 1, 0), max(N / UN - 1, 0)
    return (E + A / (UN + UN * R_N_star * (1 - math.exp(-RN / R_N_star))) ** alpha
            + B / (U + U * R_D_star * (1 - math.exp(-RD / R_D_star))) ** beta)


def log_uniform(lo: float, hi: float):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda x: 10.0**x)


@settings(max_examples=20, deadline=None)
@given(flops=log_uniform(1e19, 1e25), experts=st.sampled_from([1, 2, 4, 8, 16, 32, 64]))
def test_moe_plans_are_consistent_and_monotone(flops, experts):
    p = optimize(budget_flops=flops, gpu="h100", experts=experts)
    more = optimize(budget_flops=2 * flops, gpu="h100", experts=experts)
    assert more.continuous["objective_value"] <= p.continuous["objective_value"] * (1 + 1e-6)
    assert more.loss <= p.loss * (1 + 1e-3)  # launchable plans: whole shapes, devices and steps
    assert p.experts == experts
    assert abs(p.flops / (6 * p.params * p.tokens) - 1) < 1e-9  # FLOPs count active params
    assert p.flops <= flops * (1 + 1e-6)
    # memory holds every expert: the sharded fp32 states alone are 12 bytes × total params / devices
    sharded = p.parallelism.memory_breakdown_gb["states_sharded"] * 1e9
    assert sharded >= 12 * p.total_params / p.gpus * (1 - 1e-9)
    assert p.total_params >= p.active_params


@settings(max_examples=20, deadline=None)
@given(flops=log_uniform(1e19, 1e24), unique=log_uniform(1e9, 1e13))
def test_data_constrained_plans_are_consistent_and_monotone(flops, unique):
    p = optimize(budget_flops=flops, gpu="h100", unique_tokens=unique)
    # the loss is the law at the plan's params and effective tokens, written out independently above
    assert p.loss == pytest.approx(_muennighoff(p.params, p.effective_tokens, unique, **MUENNIGHOFF.coefficients),
                                   rel=1e-12)
    assert abs(p.epochs - p.tokens / unique) <= 1e-9 * p.epochs
    assert p.epochs <= 64 * (1 + 1e-6)
    assert p.flops <= flops * (1 + 1e-6)
    more_compute = optimize(budget_flops=2 * flops, gpu="h100", unique_tokens=unique)
    more_data = optimize(budget_flops=flops, gpu="h100", unique_tokens=2 * unique)
    assert more_compute.loss <= p.loss * (1 + 1e-3)  # launchable plans: whole shapes, devices and steps
    assert more_data.loss <= p.loss * (1 + 1e-3)
