"""The optimize spine: closed-form agreement, limits, shadow prices, sizing, infeasibility."""

import math

import pytest

from planner import InfeasiblePlanError, InputError, PlanRequest, optimize
from planner.program import get_program

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
    expect_gh = 1e22 / (989.4e12 * 0.5 * 0.8 * 3600)  # H100 SXM dense bf16 989.4 TFLOP/s (hardware.md §1)
    assert plan.gpu_hours == pytest.approx(expect_gh, rel=1e-5)
    assert plan.cost_usd == pytest.approx(2.0 * expect_gh, rel=1e-5)
    assert plan.gpus * plan.hours == pytest.approx(plan.gpu_hours, rel=1e-9)


def test_dollars_only_binds_and_spends_the_limit():
    plan = optimize(dollars=1e6)
    assert "dollars" in plan.binding
    assert plan.cost_usd == pytest.approx(1e6, rel=1e-3)
    # what $1M buys at the default price and MFU, spent Chinchilla-optimally
    flops = 1e6 / plan.price_usd_per_gpu_hour * 3600 * plan.peak_flops_per_gpu * plan.mfu * plan.goodput
    n, d = closed_form(flops)
    assert plan.params == pytest.approx(n, rel=1e-3)


def test_tight_deadline_binds_and_raises_devices():
    loose = optimize(dollars=1e6)
    tight = optimize(dollars=1e6, deadline_days=loose.days / 4)
    assert "deadline" in tight.binding
    assert "deadline" not in loose.binding
    assert tight.gpus > loose.gpus
    assert tight.hours <= tight.constraints[[c.name for c in tight.constraints].index("deadline")].limit
    assert tight.cost_usd == pytest.approx(1e6, rel=1e-3)


def test_deadline_with_device_cap_costs_loss():
    plan = optimize(dollars=1e7, deadline_days=7, max_gpus=256)
    assert {"deadline", "max_devices"} <= set(plan.binding)
    assert plan.gpus == 256
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


@pytest.mark.parametrize("fields,field,name", FD_CASES)
def test_shadow_prices_match_finite_difference(fields, field, name):
    base = optimize(**fields)
    report = next(c for c in base.constraints if c.name == name)
    assert report.elasticity > 0, f"{name} should bind in this case"
    bumped = dict(fields)
    if field == "max_gpus":
        bumped[field] = round(fields[field] * 1.01 + 0.5)
    else:
        bumped[field] = fields[field] * 1.01
    ratio = bumped[field] / fields[field]
    after = optimize(**bumped)
    predicted = base.loss * (ratio ** (-report.elasticity) - 1)
    assert after.loss - base.loss == pytest.approx(predicted, rel=0.03)
    # the reported +10% figure is the same elasticity
    assert report.objective_change_per_10pct == pytest.approx(base.loss * (1.1 ** (-report.elasticity) - 1))


def test_memory_shadow_price(tmp_path):
    # 1e24 FLOPs on at most 64 H100: states (16 bytes/param) cap params at 64*80e9/16 = 3.2e11.
    cat = tmp_path / "mem.toml"
    text = (
        '[[accelerator]]\nid = "h100-big"\nname = "H100 with 1% more memory"\nvendor = "test"\n'
        "peak_tflops = { bf16 = 989.4 }\nmemory_gb = 80.8\nmemory_bandwidth_tbs = 3.35\n"
        'devices_per_node = 8\nspec_source = "test"\nspec_status = "test"\ndefault_price_tier = "gpu_cloud"\n'
        'prices = [{ tier = "gpu_cloud", usd_per_hour = 2.3, source = "test", date = "2026", status = "test" }]\n'
    )
    cat.write_text(text)
    fields = {"budget_flops": 1e24, "max_gpus": 8, "law": "chinchilla-hoffmann-2022-unrounded", "price": 2.3}
    base = optimize(**fields)
    report = next(c for c in base.constraints if c.name == "memory")
    assert report.elasticity > 0 and "memory" in base.binding
    assert base.params == pytest.approx(8 * 80e9 / 16, rel=1e-4)
    after = optimize(**fields, gpu="h100-big", catalog=(str(cat),))
    predicted = base.loss * (1.01 ** (-report.elasticity) - 1)
    assert after.loss - base.loss == pytest.approx(predicted, rel=0.03)


def test_memory_sets_minimum_devices():
    plan = optimize(budget_flops=1e24, law="chinchilla-hoffmann-2022-unrounded", deadline_days=3650)
    assert plan.gpus >= math.ceil(16 * plan.params / 80e9)
    assert plan.memory_per_gpu_gb <= 80


def test_throughput_elasticity_is_value_of_mfu():
    base = optimize(dollars=1e6, mfu=0.4)
    after = optimize(dollars=1e6, mfu=0.404)
    lam = next(c for c in base.constraints if c.name == "throughput").elasticity
    assert after.loss - base.loss == pytest.approx(base.loss * (1.01 ** (-lam) - 1), rel=0.03)


def test_kaplan_law_solves_and_is_consistent():
    plan = optimize(budget_flops=1e22, law="kaplan-2020")
    # optimality: a brute-force scan of N along 6ND = C finds nothing lower
    import numpy as np

    from laws import get_law

    law = get_law("kaplan-2020")
    ns = plan.params * np.logspace(-0.5, 0.5, 2001)
    losses = law.predict(params=ns, tokens=1e22 / (6 * ns))
    assert plan.loss <= losses.min() + 1e-9
    assert plan.params == pytest.approx(ns[losses.argmin()], rel=3e-3)


def test_request_object_and_kwargs_agree():
    a = optimize(PlanRequest(budget_flops=1e21, gpu="h100"))
    b = optimize(budget_flops=1e21, gpu="h100")
    assert a.summary() == b.summary()


def test_program_is_built_once_and_dpp():
    from laws import get_law

    law = get_law()
    prog = get_program(law, frozenset({"flops", "memory"}))
    assert prog.problem.is_dgp(dpp=True)
    optimize(budget_flops=3e21)
    assert get_program(law, frozenset({"flops", "memory"})) is prog


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
    assert fixes["dollars"] == pytest.approx(need, rel=1e-3)
    optimize(**{**fields, "dollars": fixes["dollars"] * 1.001})  # feasible just above
    with pytest.raises(InfeasiblePlanError):
        optimize(**{**fields, "dollars": fixes["dollars"] * 0.99})


def test_infeasible_deadline_gives_minimum_days():
    fields = {"dollars": 1e8, "min_params": 1e11, "min_tokens": 2e12, "max_gpus": 1000, "deadline_days": 7,
              "mfu": 0.4, "goodput": 1.0}
    with pytest.raises(InfeasiblePlanError) as info:
        optimize(**fields)
    days = info.value.relaxations["deadline_days"]
    gh = 6 * 1e11 * 2e12 / (989.4e12 * 0.40 * 3600)
    assert days == pytest.approx(gh / 1000 / 24, rel=1e-3)
    assert info.value.relaxations["max_gpus"] == pytest.approx(gh / (7 * 24), rel=1e-3)
