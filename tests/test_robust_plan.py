"""Robust plans on the full program (planner.robust_plan) against brute-force grids written here.

The law is a Chinchilla-form law file with wide bootstrap samples whose exponents differ, so the robust optimum
moves away from the point optimum. With a given MFU (--mfu) the program's throughput is model FLOPs at that MFU,
so a dollar limit and a deadline x device limit are compute budgets: C = dollars / price · 3600 · peak · mfu and
C = hours · devices · 3600 · peak · mfu (computed below from the catalog's peak, not from the plan).
"""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from planner import PlanRequest, optimize
from planner.errors import InputError
from planner.robust_terms import gauss_quadrature, mean_terms, worst_terms

S = 40
MFU, PRICE = 0.4, 2.0


def _samples(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"E": 1.8 + 0.03 * rng.standard_normal(S), "A": 480.0 * np.exp(0.3 * rng.standard_normal(S)),
            "B": 2000.0 * np.exp(0.4 * rng.standard_normal(S)), "alpha": 0.35 + 0.03 * rng.standard_normal(S),
            "beta": 0.37 + 0.03 * rng.standard_normal(S)}


POINT = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}


@pytest.fixture(scope="module")
def law_file(tmp_path_factory):
    s = _samples()
    lines = ["[[law]]", 'id = "robust-test"', 'form = "chinchilla"', 'title = "test law with wide samples"',
             'citation = "synthetic (tests/test_robust_plan.py)"', 'status = "test"', "[law.coefficients]",
             *[f"{k} = {v!r}" for k, v in POINT.items()], "[law.bootstrap]",
             *[f"{k} = [{', '.join(repr(float(x)) for x in v)}]" for k, v in s.items()]]
    path = tmp_path_factory.mktemp("law") / "robust.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _h100_peak() -> float:
    from cost_models.catalog import load_catalog

    return load_catalog().get("h100").peak_flops("bf16")


def _losses(s, n, d):
    """Every sample's loss at (n, d), written out (E + A/N^alpha + B/D^beta)."""
    return [s["E"][i] + s["A"][i] / n ** s["alpha"][i] + s["B"][i] / d ** s["beta"][i] for i in range(S)]


def _grid(budget):
    n = np.geomspace(budget ** 0.5 / 30, budget ** 0.5 / 0.3, 1500)
    d = np.geomspace(budget ** 0.5 / 30, budget ** 0.5 * 3, 1500)
    nn, dd = np.meshgrid(n, d, indexing="ij")
    return nn, dd, 6.0 * nn * dd <= budget


def _central(s, reference, conf):
    at = np.array([x for x in _losses(s, *reference)])
    order = np.argsort(at, kind="stable")
    q = (1 - conf) / 2
    return order[int(math.floor(S * q + 1e-9)):int(math.ceil(S * (1 - q) - 1e-9))]


def _point_optimum(budget):
    c = POINT
    g = (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1 / (c["alpha"] + c["beta"]))
    n = g * (budget / 6) ** (c["beta"] / (c["alpha"] + c["beta"]))
    return n, budget / (6 * n)


def _brute(budget, mode, conf):
    """(min robust loss, argmin N, argmin D) on the grid with 6ND <= budget."""
    s = _samples()
    nn, dd, ok = _grid(budget)
    if mode == "mean":
        value = sum(_losses(s, nn, dd)) / S
    else:
        keep = set(_central(s, _point_optimum(budget), conf).tolist())
        value = np.max([x for i, x in enumerate(_losses(s, nn, dd)) if i in keep], axis=0)
    value = np.where(ok, value, np.inf)
    i = np.unravel_index(np.argmin(value), value.shape)
    # where: on the frontier 6ND = budget (the loss falls in N and D), a fine 1-D grid over N
    n = np.geomspace(nn[i] / 2, nn[i] * 2, 20001)
    on = _robust_value(mode, conf, budget, n, budget / (6 * n))
    return float(min(value[i], on.min())), float(n[np.argmin(on)]), float(budget / (6 * n[np.argmin(on)]))


def _robust_value(mode, conf, budget, n, d):
    s = _samples()
    losses = np.array(_losses(s, n, d))
    if mode == "mean":
        return losses.mean(axis=0)
    return losses[_central(s, _point_optimum(budget), conf)].max(axis=0)


CASES = {
    "budget": ({"budget_flops": 1e22}, lambda: 1e22),
    "dollars": ({"dollars": 2e5}, lambda: 2e5 / PRICE * 3600 * _h100_peak() * MFU),
    "deadline": ({"deadline_days": 5, "max_gpus": 32}, lambda: 5 * 24 * 32 * 3600 * _h100_peak() * MFU),
}


@pytest.mark.parametrize("mode", ["mean", "worst"])
@pytest.mark.parametrize("case", list(CASES))
def test_robust_plan_matches_brute_force_grid(law_file, case, mode):
    fields, budget_of = CASES[case]
    budget, conf = budget_of(), 0.8
    plan = optimize(PlanRequest(**fields, law=law_file, robust=mode, confidence=conf, mfu=MFU, goodput=1.0,
                                price=PRICE))
    best, n_best, d_best = _brute(budget, mode, conf)
    c = plan.continuous
    at_program = _robust_value(mode, conf, budget, c["params"], c["effective_tokens"])
    # the program's continuous optimum is the grid's best (2-D grid for the value, the frontier for N)
    assert at_program <= best * (1 + 1e-6)
    assert at_program >= best * (1 - 1e-4)
    assert abs(math.log(c["params"] / n_best)) < 0.01
    # the launchable plan: feasible (never below the optimum) and within whole-cluster rounding of it
    launched = _robust_value(mode, conf, budget, plan.params, plan.effective_tokens)
    assert best * (1 - 1e-6) <= launched <= best * (1 + 3e-3)
    assert plan.robust.objective_value == pytest.approx(launched, rel=1e-9)
    if case == "budget":  # the robust optimum is away from the point optimum for this law
        n0, _ = _point_optimum(budget)
        assert abs(math.log(c["params"] / n0)) > 0.05
    # the report: both plans' distributions over the same samples, robust no worse on its own objective
    r = plan.robust
    assert r.mode == mode and r.n_samples == S and r.confidence == conf
    own = (lambda dd: dd.mean) if mode == "mean" else (lambda dd: dd.worst_central)
    assert own(r.robust) <= own(r.point) * (1 + 1e-9)
    for dd in (r.robust, r.point):
        assert dd.interval[0] < dd.median < dd.interval[1]
    assert r.cost_of_robustness == pytest.approx(r.robust.median - r.point.median)


def test_mean_compression_error_below_1e4():
    """The quadrature-compressed mean loss vs all samples, evaluated through cvxpy at points in the box."""
    s = _samples()
    for smp in (s, {k: np.concatenate([v] * 10) * (1 + 0.02 * np.sin(np.arange(10 * S)))
                    for k, v in s.items()}):
        terms = mean_terms(smp)
        assert terms.size < 3 * smp["E"].size
        N, D = cp.Variable(pos=True), cp.Variable(pos=True)
        expr, cons = terms.expr(N, D)
        assert cons == [] and expr.is_dgp()
        worst = 0.0
        for n in np.geomspace(1e5, 1e15, 9):
            for d in np.geomspace(1e6, 1e17, 9):
                N.value, D.value = n, d
                direct = np.mean(smp["E"] + smp["A"] / n ** smp["alpha"] + smp["B"] / d ** smp["beta"])
                worst = max(worst, abs(expr.value / direct - 1))
        assert worst < 1e-4


def test_gauss_quadrature_integrates_polynomials_exactly():
    rng = np.random.default_rng(3)
    x, w = rng.uniform(0.2, 0.5, 300), rng.uniform(0.0, 2.0, 300)
    nodes, weights = gauss_quadrature(x, w, 5)
    assert np.all(weights > 0) and x.min() <= nodes.min() and nodes.max() <= x.max()
    for p in range(10):  # exact to degree 2K - 1 = 9
        assert np.sum(weights * nodes**p) == pytest.approx(np.sum(w * x**p), rel=1e-10)


def test_worst_active_set_covers_the_envelope():
    s = _samples()
    keep = _central(s, (1e10, 2e11), 0.8)
    terms = worst_terms(s, keep, 0.8)
    assert len(terms.rows) < len(keep)
    rng = np.random.default_rng(0)
    n, d = np.exp(rng.uniform(math.log(1e5), math.log(1e15), 2000)), np.exp(rng.uniform(math.log(1e6),
                                                                                         math.log(1e17), 2000))
    exact = np.max([_losses(s, n, d)[i] for i in keep], axis=0)
    assert np.max(1 - terms.compressed(n, d) / exact) < 1e-4


def test_default_law_robust_plan_reports_published_uncertainty():
    plan = optimize(PlanRequest(budget_flops=1e22, robust="mean"))
    r = plan.robust
    assert r.n_samples == 500 and "Besiroglu" in r.samples_source
    assert r.compression_error < 1e-4 and r.program_terms < 50
    from laws import get_law

    c = get_law("chinchilla-epoch-2024").coefficients  # 'loss' stays the point-estimate law's loss at the plan
    point = c["E"] + c["A"] / plan.params ** c["alpha"] + c["B"] / plan.effective_tokens ** c["beta"]
    assert plan.loss == pytest.approx(point, rel=1e-12)
    assert plan.objective_value == pytest.approx(r.objective_value) and plan.objective_value > plan.loss


def test_law_without_samples_is_an_input_error():
    with pytest.raises(InputError) as e:
        optimize(PlanRequest(budget_flops=1e22, law="chinchilla-hoffmann-2022", robust="mean"))
    assert e.value.field == "law"


@pytest.mark.parametrize("conf", [0.0, -0.1, 1.5, math.nan])
def test_confidence_outside_unit_interval_is_an_input_error(conf):
    with pytest.raises(InputError) as e:
        PlanRequest(budget_flops=1e22, robust="worst", confidence=conf)
    assert e.value.field == "confidence" and "(0, 1]" in str(e.value)


@pytest.mark.parametrize("args, option", [
    (["--robust", "mean", "--law", "chinchilla-hoffmann-2022"], "--law"),
    (["--robust", "worst", "--confidence", "1.5"], "--confidence"),
    (["--robust", "median"], "--robust"),
])
def test_cli_bad_robust_input_exits_2_with_one_line(args, option):
    res = CliRunner().invoke(app, ["optimize", "--budget", "1e22", *args])
    assert res.exit_code == 2
    out = (res.stderr if hasattr(res, "stderr") else res.output).strip()
    assert len(out.splitlines()) == 1 and option in out and "Traceback" not in out


def test_cli_robust_shows_both_plans(law_file):
    res = CliRunner().invoke(app, ["optimize", "--budget", "1e22", "--law", law_file, "--robust", "worst",
                                   "--confidence", "0.8"], env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "worst-robust vs point-estimate plan" in res.output and "point estimate" in res.output
    res = CliRunner().invoke(app, ["optimize", "--budget", "1e22", "--law", law_file, "--robust", "mean", "--json"])
    import json

    d = json.loads(res.output)["robust"]
    assert d["mode"] == "mean" and set(d["robust"]) >= {"median", "interval", "mean", "worst_central"}


def test_robust_target_loss_bounds_the_central_worst_case(law_file):
    """Objective cost: the robust plan reaches the target in the central worst case, the point plan only at
    the point estimate (so it is cheaper and misses the target for some central samples)."""
    target, conf = 2.45, 0.8
    plan = optimize(PlanRequest(objective="cost", target_loss=target, law=law_file, robust="worst",
                                confidence=conf, mfu=MFU, goodput=1.0, price=PRICE))
    s = _samples()
    # the reference: the point plan's optimum, min 6ND s.t. the point loss = target (cost ∝ FLOPs at fixed MFU)
    c = POINT
    n = np.geomspace(1e8, 1e12, 200001)
    n = n[target - c["E"] - c["A"] / n ** c["alpha"] > 1e-3]
    d = (c["B"] / (target - c["E"] - c["A"] / n ** c["alpha"])) ** (1 / c["beta"])
    i = int(np.argmin(n * d))
    r = plan.robust
    keep = _central(s, (n[i], d[i]), conf)
    assert max(_losses(s, plan.params, plan.effective_tokens)[i] for i in keep) <= target * (1 + 1e-9)
    assert r.point.worst_central > target
    assert plan.total_cost_usd > r.point_plan["cost_usd"]


def test_confidence_without_robust_is_an_input_error():
    """Measured: --confidence without --robust was silently ignored."""
    from planner import PlanRequest
    from planner.errors import InputError

    with pytest.raises(InputError, match="confidence"):
        PlanRequest.parse(budget_flops=1e22, confidence=0.5)
