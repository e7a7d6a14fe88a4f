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
    assert more.loss <= p.loss * (1 + 1e-6)
    assert p.experts == experts
    assert abs(p.flops / (6 * p.params * p.tokens) - 1) < 1e-9  # FLOPs count active params
    assert p.flops <= flops * (1 + 1e-6)
    ratio = p.rounded.total_params / p.rounded.active_params
    states = p.memory_per_gpu_gb * 1e9 * p.gpus
    assert abs(states / (16 * p.params * ratio) - 1) < 0.05  # memory on total params, FLOPs on active


@settings(max_examples=20, deadline=None)
@given(flops=log_uniform(1e19, 1e24), unique=log_uniform(1e9, 1e13))
def test_data_constrained_plans_are_consistent_and_monotone(flops, unique):
    p = optimize(budget_flops=flops, gpu="h100", unique_tokens=unique)
    assert p.loss == pytest.approx(_muennighoff(p.params, p.tokens, unique, **MUENNIGHOFF.coefficients), rel=1e-12)
    assert abs(p.epochs - p.tokens / unique) <= 1e-9 * p.epochs
    assert p.epochs <= 64 * (1 + 1e-6)
    assert p.flops <= flops * (1 + 1e-6)
    more_compute = optimize(budget_flops=2 * flops, gpu="h100", unique_tokens=unique)
    more_data = optimize(budget_flops=flops, gpu="h100", unique_tokens=2 * unique)
    assert more_compute.loss <= p.loss * (1 + 1e-6)
    assert more_data.loss <= p.loss * (1 + 1e-6)
