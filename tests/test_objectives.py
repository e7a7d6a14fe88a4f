"""Objectives cost/time, inference demand (Sardana et al. 2024 direction), accelerator/precision choice."""

import numpy as np
import pytest

from planner import InputError, optimize

# Epoch refit (arXiv 2404.10102), typed independently of the catalog.
E, A, B, ALPHA, BETA = 1.8172, 482.01, 2085.43, 0.3478, 0.3658
H100_BF16 = 989.4e12  # dense, hardware.md §1


def loss(n, d):
    return E + A / n**ALPHA + B / d**BETA


def tokens_for_loss(n, target):
    """D that reaches ``target`` at N params (inf where unreachable)."""
    gap = target - E - A / n**ALPHA
    with np.errstate(over="ignore"):
        return np.where(gap > 0, (B / np.maximum(gap, 1e-300)) ** (1 / BETA), np.inf)


def brute_force_lifetime(target, served, price=2.3, mfu=0.4, goodput=0.9, serve_eff=0.5, peak=H100_BF16):
    """Scan N on a fine grid: cost = 6ND train + 2N·served serve, with D from the loss equation."""
    n = np.logspace(8, 12, 400001)
    d = tokens_for_loss(n, target)
    train = 6 * n * d / (peak * mfu * goodput * 3600) * price
    serve = 2 * n * served / (peak * serve_eff * 3600) * price
    total = train + serve
    i = int(np.argmin(total))
    return n[i], d[i], total[i]


@pytest.mark.parametrize("served", [1e11, 1e13, 1e15])
def test_cost_objective_matches_brute_force(served):
    plan = optimize(objective="cost", target_loss=2.2, inference_tokens=served, mfu=0.4, price=2.3)
    n, d, total = brute_force_lifetime(2.2, served)
    c = plan.continuous  # the program's optimum against the brute force over the same model
    assert c["params"] == pytest.approx(n, rel=2e-3)
    assert c["objective_value"] == pytest.approx(total, rel=1e-4)
    # the launchable plan (whole shape, devices, steps) reaches the target and costs within 2% of the optimum
    assert 2.2 * (1 - 1e-4) <= plan.loss <= 2.2
    assert total <= plan.total_cost_usd * (1 + 1e-9) and plan.total_cost_usd <= total * 1.02


def test_more_inference_demand_means_smaller_model_trained_longer():
    served = [0, 1e11, 1e12, 1e13, 1e14, 1e15]
    plans = [optimize(objective="cost", target_loss=2.2, inference_tokens=s or None, mfu=0.4) for s in served]
    params = [p.params for p in plans]
    tokens = [p.tokens for p in plans]
    assert all(a > b for a, b in zip(params, params[1:], strict=False))
    assert all(a < b for a, b in zip(tokens, tokens[1:], strict=False))
    # Lifetime cost of the Chinchilla (training-optimal) plan serving the same demand is higher.
    chin = plans[0]
    for p, s in zip(plans[1:], served[1:], strict=False):
        chin_serve = 2 * chin.params * s / (H100_BF16 * 0.5 * 3600) * chin.price_usd_per_gpu_hour
        assert p.total_cost_usd < chin.cost_usd + chin_serve


def test_cost_objective_without_inference_is_compute_optimal():
    plan = optimize(objective="cost", target_loss=2.1, mfu=0.4)
    # With a fixed MFU, minimizing 6ND at fixed loss is the dual of minimizing loss at fixed 6ND: same point.
    c = plan.continuous
    back = optimize(budget_flops=6 * c["params"] * c["tokens"], mfu=0.4)
    assert back.continuous["params"] == pytest.approx(plan.continuous["params"], rel=2e-3)
    assert back.loss == pytest.approx(2.1, rel=2e-3)


def test_time_objective_uses_all_devices_and_respects_money():
    plan = optimize(objective="time", target_loss=2.2, max_gpus=512, dollars=5e6, mfu=0.4)
    assert 0.9 * 512 <= plan.gpus <= 512
    assert plan.loss <= 2.2 and plan.total_cost_usd <= 5e6
    # min wall-clock with all devices busy = min FLOPs for the loss: the compute-optimal point
    c = plan.continuous
    assert c["devices"] == pytest.approx(512, rel=1e-4)
    ns = c["params"] * np.logspace(-0.3, 0.3, 20001)
    flops = 6 * ns * tokens_for_loss(ns, 2.2)
    assert 6 * c["params"] * c["effective_tokens"] <= flops.min() * (1 + 1e-4)
    # whole batches (a multiple of data-parallel ranks × sequence) cost some speed; never more than 25%
    assert c["hours"] <= plan.hours <= 1.25 * c["hours"]


def test_target_too_low_for_money_is_infeasible_with_fix():
    from planner import InfeasiblePlanError

    with pytest.raises(InfeasiblePlanError) as info:
        optimize(objective="time", target_loss=1.9, max_gpus=512, dollars=1e5)
    assert "dollars" in info.value.relaxations or "target_loss" in info.value.relaxations


def test_any_gpu_picks_lowest_loss_and_lists_alternatives():
    plan = optimize(dollars=1e6, gpu="any")
    assert len(plan.alternatives) >= 20
    assert plan.loss == min(a.objective_value for a in plan.alternatives)
    single = optimize(dollars=1e6, gpu=plan.gpu)
    assert single.loss == pytest.approx(plan.loss, rel=1e-9)


def test_gpu_list_and_precision_any():
    plan = optimize(dollars=1e6, gpu="h100,a100-80gb", precision="any")
    got = {(a.gpu, a.precision) for a in plan.alternatives}
    assert got == {("h100", "bf16"), ("h100", "fp8"), ("a100-80gb", "bf16")}  # A100 has no fp8
    assert (plan.gpu, plan.precision) == ("h100", "fp8")  # twice the peak, no precision loss penalty


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"objective": "cost"}, "target_loss"),
        ({"budget_flops": 1e22, "target_loss": 2.0}, "target_loss"),
        ({"objective": "time", "target_loss": 2.0, "dollars": 1e6}, "max_gpus"),
        ({"dollars": 1e6, "gpu": "any", "price": 2.0}, "price"),
        ({"dollars": 1e6, "gpu": "a100-80gb", "precision": "fp8"}, "precision"),
        ({"objective": "cost", "target_loss": 2.0, "inference_tokens": -1}, "inference_tokens"),
    ],
)
def test_objective_input_errors(fields, field):
    with pytest.raises(InputError) as info:
        optimize(**fields)
    assert info.value.field == field
