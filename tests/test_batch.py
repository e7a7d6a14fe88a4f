"""Batch size in the joint plan: at least 0.75 of the batch law's optimum (its plateau, planner.program
LAW_BATCH_FLOOR); above the optimum processed tokens grow in proportion to the batch (McCandlish et al. 2018's
large-batch regime), so a deadline buys speed with batch and pays in tokens; whole batches are a multiple of
data-parallel ranks × micro-batch × sequence."""

import pytest

from planner import optimize

BASE = {"dollars": 1e7, "gpu": "h100"}


def _law_batch(tokens: float) -> float:
    """Step Law optimal batch (Li et al. 2025): B = 0.58 · D^0.571 tokens."""
    return 0.58 * tokens**0.571


def test_batch_is_at_least_the_law_optimum_and_whole():
    plan = optimize(budget_flops=1e22)
    assert plan.batch_tokens >= 0.75 * _law_batch(plan.tokens) * (1 - 1e-9)
    par = plan.parallelism
    assert plan.batch_sequences % (par.dp * par.micro_batch) == 0
    # DESIGN's critical batch at the progress reached: D = D_eff · max(1, B / B_law(D_eff))
    assert plan.tokens == pytest.approx(plan.effective_tokens * max(1.0, plan.batch_tokens /
                                                                    _law_batch(plan.effective_tokens)), rel=1e-9)


def test_tighter_deadline_raises_batch_and_devices_and_costs_tokens():
    plans = [optimize(**BASE, deadline_days=d) for d in (60, 14, 3, 1)]
    devices = [p.gpus for p in plans]
    overhead = [p.tokens / p.effective_tokens for p in plans]
    assert devices == sorted(devices) and devices[-1] > devices[0]
    assert overhead[-1] >= overhead[0]
    losses = [p.loss for p in plans]
    assert all(b >= a * (1 - 1e-3) for a, b in zip(losses, losses[1:], strict=False))
    for p, d in zip(plans, (60, 14, 3, 1), strict=False):
        assert p.hours <= d * 24 * (1 + 1e-9)
        assert p.tokens == pytest.approx(p.effective_tokens * max(1.0, p.batch_tokens /
                                                                  _law_batch(p.effective_tokens)), rel=1e-9)
        cont = p.continuous  # the program's constraint holds with the same rule (tight when above the optimum)
        assert cont["tokens"] >= cont["effective_tokens"] * max(
            1.0, cont["batch_tokens"] / _law_batch(cont["effective_tokens"])) * (1 - 1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_effective_tokens_inverts_tokens_processed(seed):
    """planner.critical_batch against the rule written out here: D = D_eff · max(1, B / (k · D_eff^b · N^g))."""
    import random

    from planner.critical_batch import effective_tokens, tokens_processed

    rng = random.Random(seed)
    for _ in range(200):
        k, b, g = 10 ** rng.uniform(-2, 1), rng.uniform(0, 0.7), rng.uniform(-0.3, 0.3)
        n, deff, batch = 10 ** rng.uniform(7, 12), 10 ** rng.uniform(8, 13), 10 ** rng.uniform(4, 8)
        d = deff * max(1.0, batch / (k * deff**b * n**g))
        assert tokens_processed(deff, batch, k, b, g, n) == pytest.approx(d, rel=1e-12)
        assert effective_tokens(d, batch, k, b, g, n) == pytest.approx(deff, rel=1e-9)


def test_uncoupled_batch_stays_at_the_law_optimum():
    plan = optimize(**BASE, deadline_days=7, batch_coupling=False)
    assert not plan.batch_coupling
    unit = plan.parallelism.dp * plan.parallelism.micro_batch * plan.seq_len
    assert 0.75 * _law_batch(plan.tokens) * (1 - 1e-9) <= plan.batch_tokens <= _law_batch(plan.tokens) + unit
    assert plan.effective_tokens == pytest.approx(plan.tokens, rel=0.1)


def test_deadline_dual_matches_a_resolve():
    plan = optimize(**BASE, deadline_days=2)
    report = next(c for c in plan.constraints if c.name == "deadline")
    assert report.elasticity > 0 and "deadline" in plan.binding
    b0 = plan.continuous["objective_value"]
    assert report.objective_change_per_10pct == pytest.approx(b0 * (1.1 ** (-report.elasticity) - 1), rel=0.2)


def test_step_time_floor_binds():
    plan = optimize(**BASE, deadline_days=7, min_step_seconds=30)
    assert plan.hours * 3600 >= plan.steps * 30 * (1 - 1e-9)
    assert "step_time" in [c.name for c in plan.constraints]
