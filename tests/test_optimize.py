"""The optimize spine: closed-form agreement, limits, shadow prices, sizing, infeasibility."""

import math

import pytest

from planner import InfeasiblePlanError, InputError, PlanRequest, optimize

# Epoch AI refit (Besiroglu et al. 2024, arXiv 2404.10102, v2 table), typed here independently of the catalog.
E, A, B, ALPHA, BETA = 1.8172, 482.01, 2085.43, 0.3478, 0.3658


def closed_form(flops):
    """Hoffmann et al. 2022 eq. 4: N = G·(C/6)^(beta/(alpha+beta)), G = (alpha·A/(beta·B))^(1/(alpha+beta))."""
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    n = g * (flops / 6) ** (BETA / (ALPHA + BETA))
    return n, flops / (6 * n)


@pytest.mark.parametrize("budget", [1e18, 1e22, 1e26])
def test_budget_only_matches_closed_form(budget):
    plan = optimize(budget_flops=budget)
    n, d = closed_form(budget)
    c = plan.continuous  # the program's optimum; the launchable plan is its whole-cluster rounding
    assert c["params"] == pytest.approx(n, rel=1e-3)
    assert c["tokens"] == pytest.approx(d, rel=1e-3)
    assert c["objective_value"] == pytest.approx(E + A / n**ALPHA + B / d**BETA, rel=1e-5)
    assert plan.binding == ["flops"]
    assert plan.params == pytest.approx(n, rel=0.06)  # whole layers and widths (MAX_REL_ERROR 3%, ±3% tried)
    assert budget * 0.97 <= plan.flops <= budget * (1 + 1e-9)  # whole steps and the rounded shape


def test_epoch_oracle_at_1e24():
    # laws.md §3 oracle table (V-repro): C = 1e24 -> N* 9.59e10, D* 1.74e12.
    plan = optimize(budget_flops=1e24)
    assert plan.continuous["params"] == pytest.approx(9.59e10, rel=5e-3)
    assert plan.continuous["tokens"] == pytest.approx(1.74e12, rel=5e-3)


def test_gpu_hours_and_cost_follow_from_flops():
    plan = optimize(budget_flops=1e22, gpu="h100", mfu=0.5, price=2.0, goodput=0.8)
    # with --mfu the step is model FLOPs at that MFU: H100 SXM dense bf16 989.4 TFLOP/s (NVIDIA H100 datasheet)
    expect_gh = plan.flops / (989.4e12 * 0.5 * 0.8 * 3600)
    assert plan.gpu_hours == pytest.approx(expect_gh, rel=1e-5)
    assert plan.cost_usd == pytest.approx(2.0 * expect_gh, rel=1e-5)
    assert plan.gpus * plan.hours == pytest.approx(plan.gpu_hours, rel=1e-9)


def test_dollars_only_binds_and_spends_the_limit():
    plan = optimize(dollars=1e6)
    assert "dollars" in plan.binding
    assert 0.98e6 <= plan.cost_usd <= 1e6  # whole devices, batches and steps spend within 2% of the limit
    # what $1M buys at the predicted MFU, spent close to Chinchilla-optimally (the step also pays attention and
    # per-step communication, so the split is not exactly the 6ND optimum)
    flops = plan.cost_usd / plan.price_usd_per_gpu_hour * 3600 * plan.peak_flops_per_gpu * plan.mfu * plan.goodput
    assert plan.flops == pytest.approx(flops, rel=1e-6)
    n, d = closed_form(plan.flops)
    assert plan.params == pytest.approx(n, rel=0.1)


def test_tight_deadline_binds_and_raises_devices():
    loose = optimize(dollars=1e6)
    tight = optimize(dollars=1e6, deadline_days=loose.days / 4)
    assert "deadline" in tight.binding
    assert "deadline" not in loose.binding
    assert tight.gpus > loose.gpus
    assert tight.hours <= tight.constraints[[c.name for c in tight.constraints].index("deadline")].limit
    assert 0.97e6 <= tight.cost_usd <= 1e6  # whole devices at a tight deadline


def test_deadline_with_device_cap_costs_loss():
    plan = optimize(dollars=1e7, deadline_days=7, max_gpus=256)
    assert {"deadline", "max_devices"} <= set(plan.binding)
    assert 0.9 * 256 <= plan.gpus <= 256
    assert plan.cost_usd < 1e7  # the money cannot be spent in time
    assert plan.shadow_prices["deadline"] < 0 and plan.shadow_prices["max_devices"] < 0
    assert plan.shadow_prices["dollars"] == 0


FD_CASES = [
    ({"budget_flops": 1e22}, "budget_flops", "flops"),
    ({"dollars": 2e6}, "dollars", "dollars"),
    ({"gpu_hours": 5e5}, "gpu_hours", "gpu_hours"),
    ({"dollars": 1e7, "deadline_days": 7, "max_gpus": 256}, "deadline_days", "deadline"),
    ({"dollars": 1e7, "deadline_days": 7, "max_gpus": 256}, "max_gpus", "max_devices"),
]


def _dual_matches_resolve(plan, name: str) -> None:
    """The dual elasticity against the reported re-solve of the same program at +10% of the limit:
    Δ ≈ objective × (1.1^(−λ) − 1) (the re-solve sees the same layout and shape terms as the dual)."""
    report = next(c for c in plan.constraints if c.name == name)
    assert report.elasticity > 0, f"{name} should bind in this case"
    b0 = plan.continuous["objective_value"]
    sign = -1.0 if report.sense == "<=" else 1.0
    predicted = b0 * (1.1 ** (sign * report.elasticity) - 1)
    assert report.objective_change_per_10pct == pytest.approx(predicted, rel=0.2, abs=1e-6)


@pytest.mark.parametrize("fields,field,name", FD_CASES)
def test_shadow_prices_match_a_resolve(fields, field, name):
    base = optimize(**fields)
    _dual_matches_resolve(base, name)
    # and a whole new plan with the limit 10% looser is no worse (beyond rounding to a whole cluster)
    looser = dict(fields)
    looser[field] = round(fields[field] * 1.1) if field == "max_gpus" else fields[field] * 1.1
    assert optimize(**looser).loss <= base.loss * 1.001


def test_memory_shadow_price():
    fields = {"budget_flops": 1e24, "max_gpus": 8, "law": "chinchilla-hoffmann-2022-unrounded", "price": 2.3,
              "tensor_parallel": 8}
    _dual_matches_resolve(optimize(**fields), "memory")


def test_memory_sets_minimum_devices():
    plan = optimize(budget_flops=1e24, law="chinchilla-hoffmann-2022-unrounded", deadline_days=3650)
    assert plan.gpus >= math.ceil(16 * plan.total_params / (0.9 * 80e9))  # Adam states must fit somewhere
    assert plan.memory_per_gpu_gb <= 0.9 * 80


def test_throughput_elasticity_is_value_of_mfu():
    _dual_matches_resolve(optimize(dollars=1e6, mfu=0.4), "throughput")


def test_kaplan_law_solves_and_is_consistent():
    plan = optimize(budget_flops=1e22, law="kaplan-2020")
    # optimality: a brute-force scan of N along 6ND = C finds nothing lower
    import numpy as np

    from laws import get_law

    law = get_law("kaplan-2020")
    c = plan.continuous
    ns = c["params"] * np.logspace(-0.5, 0.5, 2001)
    losses = law.predict(params=ns, tokens=1e22 / (6 * ns))
    assert c["objective_value"] <= losses.min() + 1e-9
    assert c["params"] == pytest.approx(ns[losses.argmin()], rel=3e-3)
    assert plan.loss <= losses.min() * 1.003  # the launchable plan: whole shape, devices and steps


def test_request_object_and_kwargs_agree():
    a = optimize(PlanRequest(budget_flops=1e21, gpu="h100"))
    b = optimize(budget_flops=1e21, gpu="h100")
    assert a.summary() == b.summary()


def test_program_is_built_once_and_dpp():
    from planner import program

    optimize(budget_flops=3e21)
    built = dict(program._CACHE)
    assert built and all(p.problem.is_dgp(dpp=True) for p in built.values())
    optimize(budget_flops=5e21)  # same structure, other Parameter values: nothing new is compiled
    assert set(program._CACHE) == set(built) and all(program._CACHE[k] is built[k] for k in built)


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"budget_flops": -1.0}, "budget_flops"),
        ({"budget_flops": 0.0}, "budget_flops"),
        ({"budget_flops": float("nan")}, "budget_flops"),
        ({"budget_flops": float("inf")}, "budget_flops"),
        ({"budget_flops": 1e40}, "budget_flops"),
        ({"budget_flops": 1e22, "mfu": 1.5}, "mfu"),
        ({"budget_flops": 1e22, "gpu": "nope"}, "gpu"),
        ({"budget_flops": 1e22, "law": "nope"}, "law"),
        ({"gpu": "h100"}, "limits"),
        ({"deadline_days": 3}, "limits"),
        ({"budget_flops": 1e22, "deadline_days": 0.001}, "deadline_days"),
        ({"budget_flops": 1e22, "min_params": 1e10, "max_params": 1e9}, "min_params"),
    ],
)
def test_bad_input_names_the_field(fields, field):
    with pytest.raises(InputError) as info:
        optimize(**fields)
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_infeasible_names_the_fix_and_the_amount():
    fields = {"dollars": 5e5, "min_params": 7e10, "min_tokens": 1.4e12, "mfu": 0.4, "goodput": 1.0}  # ~$949k
    with pytest.raises(InfeasiblePlanError) as info:
        optimize(**fields)
    fixes = info.value.relaxations
    assert set(fixes) == {"dollars", "min_params", "min_tokens"}
    # the minimum dollars: 6·N·D FLOPs at the default MFU and price
    need = 6 * 7e10 * 1.4e12 / (989.4e12 * 0.40 * 3600) * 2.30
    # the program's minimum, nudged until a whole cluster meets it (each relaxation is checked by a re-solve)
    assert need * (1 - 1e-3) <= fixes["dollars"] <= need * 1.05
    optimize(**{**fields, "dollars": fixes["dollars"]})  # feasible at the stated relaxation
    with pytest.raises(InfeasiblePlanError):
        optimize(**{**fields, "dollars": need * 0.99})


def test_infeasible_deadline_gives_minimum_days():
    fields = {"dollars": 1e8, "min_params": 1e11, "min_tokens": 2e12, "max_gpus": 1000, "deadline_days": 7,
              "mfu": 0.4, "goodput": 1.0}
    with pytest.raises(InfeasiblePlanError) as info:
        optimize(**fields)
    days = info.value.relaxations["deadline_days"]
    gh = 6 * 1e11 * 2e12 / (989.4e12 * 0.40 * 3600)
    assert gh / 1000 / 24 * (1 - 1e-3) <= days <= gh / 1000 / 24 * 1.05
    assert gh / (7 * 24) * (1 - 1e-3) <= info.value.relaxations["max_gpus"] <= gh / (7 * 24) * 1.05 + 8
    optimize(**{**fields, "deadline_days": days})
