"""Inference demand priced by the serving model inside the plan (issue 12)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app
from planner import optimize

BASE = {"objective": "cost", "target_loss": 2.2, "max_gpus": 1024}


@pytest.mark.parametrize("tokens", [1e11, 1e13])
def test_serve_cost_reproduces_the_plan_serving_price(tokens, tmp_path):
    plan = optimize(**BASE, inference_tokens=tokens)
    inf = plan.inference
    shape = tmp_path / "shape.json"
    shape.write_text(json.dumps(plan.shape.model_dump()))
    r = CliRunner().invoke(app, ["serve-cost", "--shape", str(shape), "--gpu", inf.gpu, "--gpus",
                                 str(inf.tensor_parallel), "--batch", str(inf.batch), "--precision", inf.precision,
                                 "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["usd_per_million_tokens"] == pytest.approx(inf.usd_per_million_tokens, rel=0.01)
    # the plan's serving dollars are its price times its tokens (output and input)
    per_in = inf.usd_per_million_input_tokens
    assert inf.cost_usd == pytest.approx((tokens * inf.usd_per_million_tokens + inf.input_tokens * per_in) / 1e6,
                                         rel=1e-9)
    assert plan.total_cost_usd == pytest.approx(plan.cost_usd + inf.cost_usd, rel=1e-9)


def test_more_inference_demand_trains_a_smaller_model_on_more_tokens():
    """Sardana et al. 2023: when inference dominates, train smaller and longer for the same loss."""
    plans = [optimize(**BASE, inference_tokens=t) for t in (1e9, 1e12, 1e14)]
    params = [p.continuous["params"] for p in plans]
    tokens = [p.continuous["tokens"] for p in plans]
    assert params[0] > params[1] > params[2]
    assert tokens[0] < tokens[1] < tokens[2]


def test_tighter_tpot_means_smaller_batch_and_higher_price():
    loose = optimize(**BASE, inference_tokens=1e13)
    tight = optimize(**BASE, inference_tokens=1e13, tpot_ms=loose.inference.tpot_ms / 3)
    assert tight.inference.tpot_ms <= loose.inference.tpot_ms / 3 * (1 + 1e-9)
    assert tight.inference.batch < loose.inference.batch
    # same model size class: the per-token price at the tighter target is higher
    assert tight.inference.usd_per_million_tokens / tight.params > loose.inference.usd_per_million_tokens / loose.params


def test_serving_fields_need_demand():
    from planner.errors import InputError

    with pytest.raises(InputError, match="tpot_ms"):
        optimize(budget_flops=1e22, tpot_ms=50)
