"""Sweeps: grid parsing, Pareto extraction, the sweep loop (failures recorded, program reused) and the CLI."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli import app
from planner import InputError, PlanRequest, optimize
from planner.sweep import pareto, pareto_indices, parse_grid, sweep

runner = CliRunner()

# Epoch AI refit (Besiroglu et al. 2024, arXiv 2404.10102, v2 table), typed here independently of the catalog.
E, A, B, ALPHA, BETA = 1.8172, 482.01, 2085.43, 0.3478, 0.3658


def closed_form_loss(flops):
    """Hoffmann et al. 2022 eq. 4 allocation under 6·N·D = C, and its loss."""
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    n = g * (flops / 6) ** (BETA / (ALPHA + BETA))
    d = flops / (6 * n)
    return E + A / n**ALPHA + B / d**BETA


# ------------------------------------------------------------------------------------------------ grids


def test_log_grid_is_inclusive_and_log_spaced():
    got = parse_grid("1e20:1e25:6")
    assert got == pytest.approx([10.0**e for e in range(20, 26)], rel=1e-12)
    assert got[0] == 1e20 and got[-1] == 1e25  # exact ends
    fifty = parse_grid("1e20:1e25:50")
    assert len(fifty) == 50
    ratios = [b / a for a, b in zip(fifty, fifty[1:], strict=False)]
    assert ratios == pytest.approx([10 ** (5 / 49)] * 49, rel=1e-9)


def test_list_single_and_sequence_grids():
    assert parse_grid("1e6,2e6,5e6") == [1e6, 2e6, 5e6]
    assert parse_grid(" 3e21 ") == [3e21]
    assert parse_grid(7e22) == [7e22]
    assert parse_grid([1, 2.5]) == [1.0, 2.5]
    assert parse_grid("5:5:1") == [5.0]


@pytest.mark.parametrize("spec,needle", [
    ("1e20:1e25", "start:stop:count"),
    ("1e20:1e25:x", "whole number"),
    ("1e20:1e25:0", "count must be in"),
    ("1e20:1e25:20000", "count must be in"),
    ("a:1e25:3", "not a number"),
    ("1e20:1e25:1", "start == stop"),
    ("", "empty"),
    ("-1,2", "positive"),
    ("nan", "positive and finite"),
    ("1e6,,x", "not a number"),
])
def test_malformed_grid_is_one_line_error_naming_the_field(spec, needle):
    with pytest.raises(InputError) as ei:
        parse_grid(spec, "dollars")
    assert ei.value.field == "dollars"
    assert needle in str(ei.value) and "\n" not in str(ei.value)


# ----------------------------------------------------------------------------------------------- pareto


def test_pareto_by_hand():
    pts = [{"c": 1, "l": 5}, {"c": 2, "l": 4}, {"c": 2, "l": 6}, {"c": 3, "l": 4}, {"c": 4, "l": 1},
           {"c": 0.5, "l": 10}, {"c": 4, "l": 1}, {"c": None, "l": 0.1}, {"c": 9, "l": float("nan")}]
    front = pareto(pts, x="c", y="l")
    assert [(p["c"], p["l"]) for p in front] == [(0.5, 10), (1, 5), (2, 4), (4, 1)]
    assert pareto_indices(pts, x="c", y="l") == [5, 0, 1, 4]  # the first of the duplicate (4, 1) points


def test_pareto_on_objects():
    class P:
        def __init__(self, cost, hours):
            self.total_cost_usd, self.hours = cost, hours

    pts = [P(10, 5), P(5, 10), P(20, 5), P(7, 7)]
    assert [(p.total_cost_usd, p.hours) for p in pareto(pts, y="hours")] == [(5, 10), (7, 7), (10, 5)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=40))
def test_pareto_matches_brute_force(pairs):
    pts = [{"x": x, "y": y} for x, y in pairs]
    got = pareto_indices(pts, "x", "y")

    def dominated(i):
        xi, yi = pairs[i]
        return any(x <= xi and y <= yi and (x, y) != (xi, yi) for x, y in pairs)

    want_points = sorted({pairs[i] for i in range(len(pairs)) if not dominated(i)})
    assert [pairs[i] for i in got] == want_points
    assert all(pairs.index(pairs[i]) == i for i in got)  # first of duplicates


# ------------------------------------------------------------------------------------------------ sweep


def test_sweep_budgets_by_gpus_matches_fresh_plans():
    res = sweep(PlanRequest(budget_flops=1e21), budgets="1e20:1e22:3", gpus="h100,a100-80gb")
    assert res.axes == {"budget_flops": pytest.approx([1e20, 1e21, 1e22]), "gpu": ["h100", "a100-80gb"]}
    assert len(res.rows) == len(res.plans) == 6 and not res.failures and res.points == 6
    order = [(b, g) for b in (1e20, 1e21, 1e22) for g in ("h100", "a100-80gb")]
    for row, plan, (b, g) in zip(res.rows, res.plans, order, strict=True):
        assert row["budget_flops"] == pytest.approx(b) and row["gpu"] == g == plan.gpu
        fresh = optimize(budget_flops=b, gpu=g)
        assert row["loss"] == pytest.approx(fresh.loss, rel=2e-3)  # within the launchable plans' rounding
        assert row["total_cost_usd"] == pytest.approx(fresh.total_cost_usd, rel=0.05)
        assert row["loss"] == pytest.approx(closed_form_loss(b), rel=3e-3)  # only the FLOP limit binds (and the
        # launchable plan's whole shape and steps)
        assert row["binding"] == "flops"
        assert row["gpu_hours"] == pytest.approx(row["gpus"] * row["hours"])


def test_sweep_frontiers_are_non_dominated():
    res = sweep(PlanRequest(dollars=1e5, deadline_days=30), dollars=[1e4, 1e5, 1e6], deadlines=[7, 30],
                gpus=["h100", "b200"])
    assert len(res.rows) == 12
    for name, (x, y) in {"loss-cost": ("total_cost_usd", "loss"), "time-cost": ("total_cost_usd", "hours")}.items():
        front = res.frontier(name)
        xs = [r[x] for r in front]
        assert xs == sorted(xs)
        for r in front:  # nothing in the sweep beats a frontier point in both
            assert not any(o[x] <= r[x] and o[y] <= r[y] and (o[x] < r[x] or o[y] < r[y]) for o in res.rows)
        for r in res.rows:  # every other point is dominated by (or equal to) some frontier point
            assert any(f[x] <= r[x] and f[y] <= r[y] for f in front)
    with pytest.raises(InputError) as ei:
        res.frontier("loss-time")
    assert ei.value.field == "pareto"


def test_infeasible_points_are_recorded_not_raised():
    res = sweep(PlanRequest(dollars=1e8, min_params=1e11, min_tokens=1e12), dollars=[1e3, 1e8])
    assert len(res.rows) == 1 and res.rows[0]["dollars"] == 1e8
    (fail,) = res.failures
    assert fail.point == {"dollars": 1e3}
    assert "dollars" in fail.reason and "\n" not in fail.reason
    assert fail.relaxations.get("dollars", 0) > 1e3


def test_progress_callback_and_program_reuse():
    import planner.program as program

    calls = []
    sweep(PlanRequest(budget_flops=1e21), budgets="1e19:1e23:5")  # warm the cache for this constraint set
    before = len(program._CACHE)
    sweep(PlanRequest(budget_flops=1e21), budgets="1e19:1e23:40", progress=lambda d, t: calls.append((d, t)))
    # 40 budgets re-solve the compiled programs (one per layout structure the search visits): few new ones
    assert len(program._CACHE) <= before + 4
    assert calls == [(i, 40) for i in range(1, 41)]


@pytest.mark.parametrize("kwargs,field", [
    ({"budgets": [1e40]}, "budget_flops"),
    ({"budgets": "1e20:1e22"}, "budget_flops"),
    ({"deadlines": [0.001]}, "deadline_days"),
    ({"gpus": "h100,nope"}, "gpus"),
    ({"gpus": ""}, "gpus"),
    ({"budgets": "1e20:1e25:1000", "dollars": "1e3:1e9:1000"}, "budget_flops"),
])
def test_bad_axes_raise_one_line_input_errors(kwargs, field):
    with pytest.raises(InputError) as ei:
        sweep(PlanRequest(budget_flops=1e21), **kwargs)
    assert ei.value.field == field and "\n" not in str(ei.value)


def test_bad_law_catalog_or_gpu_raises_once(tmp_path):
    with pytest.raises(InputError) as ei:
        sweep({"budget_flops": 1e21, "law": "no-such-law"}, budgets=[1e20, 1e21])
    assert ei.value.field == "law"
    bad = tmp_path / "bad.toml"
    bad.write_text("[[accelerator]\n", encoding="utf-8")
    with pytest.raises(InputError) as ei:
        sweep({"budget_flops": 1e21, "catalog": (str(bad),)}, budgets=[1e20, 1e21])
    assert ei.value.field == "catalog"
    with pytest.raises(InputError) as ei:
        sweep({"budget_flops": 1e21, "gpu": "h100,nope"}, budgets=[1e20, 1e21])
    assert ei.value.field == "gpu"


def test_summary_is_plain_json():
    from planner.export import to_json

    res = sweep(PlanRequest(budget_flops=1e21), budgets=[1e20, 1e21])
    data = json.loads(json.dumps(to_json(res), allow_nan=False))
    assert data["points"] == 2 and len(data["rows"]) == 2
    assert [r["budget_flops"] for r in data["frontiers"]["loss-cost"]] == [1e20, 1e21]
    assert "plans" not in data


# -------------------------------------------------------------------------------------------------- CLI


def test_cli_sweep_json_is_one_object():
    r = runner.invoke(app, ["sweep", "--budget", "1e20:1e22:3", "--gpus", "h100,b200", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["points"] == 6 and data["axes"]["gpu"] == ["h100", "b200"]
    for row in data["rows"]:
        assert row["loss"] == pytest.approx(closed_form_loss(row["budget_flops"]), rel=3e-3)


def test_cli_sweep_table_and_pareto(tmp_path):
    out = tmp_path / "s.csv"
    r = runner.invoke(app, ["sweep", "--dollars", "1e4,1e6", "--deadline-days", "7,30", "--pareto", "loss-cost",
                            "--csv", str(out)])
    assert r.exit_code == 0, r.output
    assert "Sweep: 4 points, 4 feasible; loss-cost frontier" in r.stdout
    assert out.read_text().count("\n") == 5  # header + 4 rows


@pytest.mark.parametrize("args,start", [
    (["--budget", "1e20:1e22"], "error: --budget: grid"),
    (["--budget", "1e21", "--gpus", "h100,nope"], "error: --gpus: unknown accelerator"),
    (["--budget", "1e21", "--pareto", "cheap"], "error: --pareto: unknown frontier"),
    (["--dollars", "1e3,-5"], "error: --dollars: grid"),
    (["--deadline-days", "7,30"], "error: no limit given"),
])
def test_cli_sweep_errors_are_one_line(args, start):
    r = runner.invoke(app, ["sweep", *args])
    assert r.exit_code == 2
    assert r.stderr.startswith(start) and r.stderr.count("\n") == 1, r.stderr


def test_math_of_log_grid_is_geometric():
    g = parse_grid("2:2e6:7")
    assert all(math.isclose(b / a, 10.0) for a, b in zip(g, g[1:], strict=False))


def test_pareto_resolves_ties_within_tolerance():
    """Issue 16: three $100K points differing by < $0.001 all stayed on the time-cost frontier."""
    pts = [{"total_cost_usd": 100_000.0, "hours": 300.0}, {"total_cost_usd": 100_000.0004, "hours": 290.0},
           {"total_cost_usd": 100_000.0009, "hours": 280.0}, {"total_cost_usd": 50_000.0, "hours": 600.0},
           {"total_cost_usd": 200_000.0, "hours": 280.00000001}]
    assert pareto_indices(pts, y="hours") == [3, 2]
    assert pareto_indices(pts, y="hours", rtol=0.0) == [3, 0, 1, 2]  # exact comparison keeps all three


def _tie(a, b, r):
    return abs(a - b) <= r * max(abs(a), abs(b))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 3), st.integers(1, 6), st.integers(0, 3)), max_size=30))
def test_pareto_tolerance_properties(raw):
    r = 1e-6
    pairs = [(100.0 * a * (1 + 3e-7 * da), 10.0 * b * (1 + 3e-7 * db)) for a, da, b, db in raw]  # near-ties
    got = pareto_indices([{"x": x, "y": y} for x, y in pairs], "x", "y", rtol=r)

    def dominates(j, i):
        (xj, yj), (xi, yi) = pairs[j], pairs[i]
        no_worse = (xj <= xi or _tie(xj, xi, r)) and (yj <= yi or _tie(yj, yi, r))
        return no_worse and ((xj < xi and not _tie(xj, xi, r)) or (yj < yi and not _tie(yj, yi, r)))

    for i in got:  # nothing on the frontier is clearly beaten
        assert not any(dominates(j, i) for j in range(len(pairs)))
    for a in got:  # no two frontier points tie in both
        assert not any(b != a and _tie(pairs[a][0], pairs[b][0], r) and _tie(pairs[a][1], pairs[b][1], r)
                       for b in got)
    for i in set(range(len(pairs))) - set(got):  # everything dropped is beaten, or ties a kept point
        assert any(dominates(j, i) for j in range(len(pairs))) or any(
            _tie(pairs[i][0], pairs[k][0], r) and _tie(pairs[i][1], pairs[k][1], r) for k in got)
