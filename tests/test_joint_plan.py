"""The joint plan: MoE expert enumeration, data-constrained epochs, learning rate and schedule, batch choice.

Every expected number is computed here from the papers' formulas, typed independently of the catalog.
"""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from planner import optimize

# Joint MoE scaling law, Ludziejewski et al. 2025 (arXiv 2502.05172) Table 3; Clark et al. 2022 Ê transform.
JM = dict(a=35.91, alpha=-0.1889, delta=-0.2285, gamma=0.0098, b=35.98, beta=-0.1775, omega=0.5529,
          zeta=-0.0259, E_start=2.0732, E_max=290.4521, c=1.3637)
# Muennighoff et al. 2023 (arXiv 2305.16264) fitted constants (laws.md §7).
MU = dict(E=1.8691436784054858, A=520.8249516599187, B=1487.716093782861, alpha=0.3526596, beta=0.3526596,
          R_D=15.387756, R_N=5.309743)


def joint_moe_loss(n, d, e):
    e_hat = 1 / (1 / (e - 1 + 1 / (1 / JM["E_start"] - 1 / JM["E_max"])) + 1 / JM["E_max"])
    le = np.log(e_hat)
    return (JM["a"] * e_hat ** JM["delta"] * n ** (JM["alpha"] + JM["gamma"] * le)
            + JM["b"] * e_hat ** JM["omega"] * d ** (JM["beta"] + JM["zeta"] * le) + JM["c"])


def muennighoff_loss(n, d, u):
    g = (MU["alpha"] * MU["A"] / (MU["beta"] * MU["B"])) ** (1 / (MU["alpha"] + MU["beta"]))
    ud = np.minimum(u, d)
    d_eff = ud + ud * MU["R_D"] * (1 - np.exp(-(d / ud - 1) / MU["R_D"]))
    un = np.minimum(n, g * (ud * g) ** (MU["beta"] / MU["alpha"]))
    n_eff = un + un * MU["R_N"] * (1 - np.exp(-(n / un - 1) / MU["R_N"]))
    return MU["E"] + MU["A"] / n_eff ** MU["alpha"] + MU["B"] / d_eff ** MU["beta"]


def brute_force(loss_of_n_d, flops, n_lo=1e7, n_hi=1e13, points=4000):
    """Min loss over N on the budget line 6ND = C (dense log grid)."""
    n = np.logspace(math.log10(n_lo), math.log10(n_hi), points)
    losses = loss_of_n_d(n, flops / (6 * n))
    i = int(np.argmin(losses))
    return float(losses[i]), float(n[i])


# ---------------------------------------------------------------------------------------------------- MoE


@pytest.mark.parametrize("flops, experts, n_act, tokens", [(1e20, 1, 1.73e9, 9.65e9), (1e22, 32, 1.23e10, 1.36e11)])
def test_fixed_experts_reproduce_joint_moe_table1(flops, experts, n_act, tokens):
    # Joint MoE Table 1 / eq. 7: compute-optimal active params and tokens at a fixed expert count.
    p = optimize(budget_flops=flops, gpu="h100", experts=experts)
    assert p.experts == experts and p.law == "joint-moe-2025"
    assert p.continuous["params"] == pytest.approx(n_act, rel=5e-3)
    assert p.continuous["tokens"] == pytest.approx(tokens, rel=5e-3)
    assert p.params == pytest.approx(n_act, rel=0.06)  # the launchable (rounded) model
    assert p.flops == pytest.approx(6 * p.params * p.tokens, rel=1e-9)  # FLOPs count active params


def test_moe_enumeration_picks_the_best_expert_count_by_brute_force():
    p = optimize(budget_flops=1e21, gpu="h100", moe=True, max_experts=16)
    by_e = {e: brute_force(lambda n, d, e=e: joint_moe_loss(n, d, e), 1e21)[0] for e in (1, 2, 4, 8, 16)}
    best_e = min(by_e, key=by_e.get)
    assert p.experts == best_e
    assert p.continuous["objective_value"] == pytest.approx(by_e[best_e], rel=1e-4)
    assert p.loss == pytest.approx(by_e[best_e], rel=3e-3)  # whole shape, devices and steps
    assert sorted(a.experts for a in p.alternatives) == [1, 2, 4, 8, 16]
    for alt in p.alternatives:
        assert alt.loss == pytest.approx(by_e[alt.experts], rel=3e-3)


def test_moe_memory_uses_total_params_and_mfu_is_discounted():
    dense = optimize(budget_flops=1e22, gpu="h100", experts=1)
    moe = optimize(budget_flops=1e22, gpu="h100", experts=16)
    assert moe.total_params > 5 * moe.active_params
    # every expert is held in memory: the sharded fp32 states alone are 12 bytes × total params / devices
    sharded = moe.parallelism.memory_breakdown_gb["states_sharded"] * 1e9
    assert sharded >= 12 * moe.total_params / moe.gpus * (1 - 1e-9)
    assert moe.memory_per_gpu_gb <= 0.9 * 80
    assert moe.parallelism.ep >= 1 and moe.shape.experts == 16
    if moe.parallelism.ep > 1:
        assert moe.step_breakdown["ep_comm"] > 0  # the expert all-to-all is in the step
    assert dense.step_breakdown["ep_comm"] == 0


def test_dense_flag_and_law_mismatches():
    p = optimize(budget_flops=1e22, gpu="h100", moe=False)
    assert p.experts == 1 and p.law == "chinchilla-epoch-2024"
    with pytest.raises(ValueError, match="experts"):
        optimize(budget_flops=1e22, gpu="h100", moe=False, experts=8)
    with pytest.raises(ValueError, match="joint-moe-2025"):
        optimize(budget_flops=1e22, gpu="h100", moe=True, law="chinchilla-epoch-2024")
    with pytest.raises(ValueError, match="moe"):
        optimize(budget_flops=1e22, gpu="h100", law="joint-moe-2025")


# ---------------------------------------------------------------------------------------------- data limits


@pytest.mark.parametrize("unique, flops", [(1e10, 1e22), (1e10, 1e21), (3e10, 1e21), (1e13, 1e22)])
def test_data_constrained_plan_matches_brute_force_on_the_full_law(unique, flops):
    p = optimize(budget_flops=flops, gpu="h100", unique_tokens=unique, max_epochs=1000)
    expected, n_best = brute_force(lambda n, d: muennighoff_loss(n, d, unique), flops)
    assert p.loss == pytest.approx(muennighoff_loss(p.params, p.effective_tokens, unique), rel=1e-9)
    assert p.continuous["objective_value"] <= expected * (1 + 1e-3)  # the grid of epochs × params ratio
    assert p.loss <= expected * (1 + 3e-3)  # ... and its whole cluster
    assert p.epochs == pytest.approx(p.tokens / unique)
    assert p.unique_tokens == unique and p.law == "muennighoff-2023"


def test_epochs_capped_and_unique_data_has_a_shadow_price():
    p = optimize(budget_flops=1e23, gpu="h100", unique_tokens=1e9, max_epochs=4)
    assert p.epochs <= 4 * (1 + 1e-6)
    assert "unique_tokens" in p.binding
    assert p.shadow_prices["unique_tokens"] < 0  # more unique data would lower the loss
    assert "flops" not in p.binding  # compute is left over: the plan is data-bound


@pytest.mark.parametrize("unique", [2e10, 1e11])
def test_unique_tokens_shadow_price_matches_a_finite_difference(unique):
    base = optimize(budget_flops=1e23, gpu="h100", unique_tokens=unique, max_epochs=1000)
    more = optimize(budget_flops=1e23, gpu="h100", unique_tokens=unique * 1.01, max_epochs=1000)
    report = next(r for r in base.constraints if r.name == "unique_tokens")
    b0, b1 = base.continuous["objective_value"], more.continuous["objective_value"]
    predicted = b0 * (1.01 ** (-report.elasticity) - 1)
    assert b1 - b0 == pytest.approx(predicted, rel=0.1)
    assert report.elasticity > 0


def test_abundant_data_equals_the_unconstrained_base_law():
    plan = optimize(budget_flops=1e21, gpu="h100", unique_tokens=1e14)
    _, n_best = brute_force(lambda n, d: muennighoff_loss(n, d, 1e14), 1e21)
    assert plan.continuous["params"] == pytest.approx(n_best, rel=0.01)
    assert plan.epochs < 1


def test_data_constrained_needs_muennighoff_and_no_moe():
    with pytest.raises(ValueError, match="Muennighoff"):
        optimize(budget_flops=1e22, gpu="h100", unique_tokens=1e10, law="kaplan-2020")
    with pytest.raises(ValueError, match="unique_tokens"):
        optimize(budget_flops=1e22, gpu="h100", unique_tokens=1e10, experts=8)
    with pytest.raises(ValueError, match="unique_tokens"):
        optimize(budget_flops=1e22, gpu="h100", law="muennighoff-2023")


# -------------------------------------------------------------------------------------- learning rate, batch


def test_learning_rate_from_step_law_at_the_rounded_model():
    from cost_models.architecture import active_non_embedding_params

    p = optimize(budget_flops=1e22, gpu="h100")
    n = active_non_embedding_params(p.shape)
    d = p.rounded.tokens
    assert p.lr_law == "steplaw-2025"
    assert p.learning_rate == pytest.approx(1.79 * n**-0.713 * d**0.307, rel=1e-9)  # Step Law (Li et al. 2025)
    assert p.min_learning_rate == pytest.approx(0.1 * p.learning_rate)
    assert p.lr_schedule == "cosine"
    assert p.warmup_steps == min(2000, math.ceil(0.1 * p.rounded.steps))
    # the batch is at least Step Law's optimal batch B = 0.58·D^0.571, in whole sequences per data-parallel rank
    unit = p.parallelism.dp * p.parallelism.micro_batch * 4096
    assert 0.75 * 0.58 * p.tokens**0.571 * (1 - 1e-9) <= p.batch_tokens <= max(0.58 * p.tokens**0.571 * 1.7, unit)


def test_learning_rate_laws_deepseek_and_joint_moe():
    from cost_models.architecture import active_non_embedding_params

    p = optimize(budget_flops=1e22, gpu="h100", lr_law="deepseek-2024")
    assert p.learning_rate == pytest.approx(0.3118 * p.rounded.flops**-0.125, rel=1e-9)  # DeepSeek LLM eq. 1
    assert p.law_batch_tokens == pytest.approx(0.2920 * p.flops**0.3271, rel=1e-9)
    m = optimize(budget_flops=1e22, gpu="h100", experts=8)
    n = active_non_embedding_params(m.shape)
    assert m.lr_law == "joint-moe-2025"
    assert m.learning_rate == pytest.approx(math.exp(8.39) * n**-0.81 * 8**-0.25, rel=1e-9)  # Joint MoE eq. 8
    with pytest.raises(ValueError, match="lr_law"):
        optimize(budget_flops=1e22, gpu="h100", lr_law="joint-moe-2025")


# ------------------------------------------------------------------------------------------------------ CLI


def test_cli_joint_plan_json_keys():
    r = CliRunner().invoke(app, ["optimize", "--budget", "1e21", "--moe", "--max-experts", "8", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in ("total_params", "active_params", "experts", "top_k", "batch_tokens", "batch_sequences",
                "learning_rate", "warmup_steps", "steps", "unique_tokens", "epochs", "precision", "shape",
                "parallelism", "objective", "lr_law", "min_learning_rate", "lr_schedule"):
        assert key in d, key
    assert d["experts"] in (1, 2, 4, 8) and d["top_k"] == 1
    r = CliRunner().invoke(app, ["optimize", "--budget", "1e21", "--unique-tokens", "1e10", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["unique_tokens"] == 1e10 and d["epochs"] == pytest.approx(d["tokens"] / 1e10)
    assert CliRunner().invoke(app, ["optimize", "--budget", "1e21", "--experts", "8"]).exit_code == 0


@pytest.mark.parametrize("argv, needle", [
    (["--moe", "--law", "kaplan-2020"], "--law"),
    (["--dense", "--experts", "4"], "--experts"),
    (["--experts", "0"], "--experts"),
    (["--unique-tokens", "-5"], "--unique-tokens"),
    (["--unique-tokens", "1e10", "--max-epochs", "0.5"], "--max-epochs"),
    (["--lr-law", "nope"], "--lr-law"),
    (["--experts", "4", "--unique-tokens", "1e10"], "--unique-tokens"),
])
def test_cli_joint_plan_errors(argv, needle):
    r = CliRunner().invoke(app, ["optimize", "--budget", "1e21", *argv])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.output
