"""Training tensor parallel splits the K/V heads (query groups): Megatron-Core and torchtitan need the TP degree to
divide them, and the cluster model prices no replicated K/V. Found: on GB200 (72-GPU NVLink domain) a time-objective
plan chose TP16 for a shape with 128 heads and 8 K/V heads."""

from __future__ import annotations

import pytest

from cost_models.cluster import Layout
from cost_models.layout_search import layout_problems
from planner import optimize
from planner.rounding import make_shape


def test_layout_problems_names_the_kv_heads():
    shape = make_shape(16384, 64)  # 128 heads of 128, 8 K/V heads
    assert (shape.heads, shape.kv_heads, shape.tp_heads) == (128, 8, 8)
    ok = layout_problems(shape, Layout(tp=8, pp=1), devices=64, batch_tokens=64 * 4096, devices_per_node=72)
    assert ok == []
    bad = layout_problems(shape, Layout(tp=16, pp=1), devices=64, batch_tokens=64 * 4096, devices_per_node=72)
    assert bad == ["tp=16 does not divide the 8 K/V heads"]
    mha = make_shape(768, 12)  # 12 heads of 64, as many K/V heads
    assert mha.tp_heads == mha.heads == 12
    assert layout_problems(mha, Layout(tp=4, pp=1), devices=16, batch_tokens=16 * 4096, devices_per_node=72) == []
    assert layout_problems(mha, Layout(tp=8, pp=1), devices=16, batch_tokens=16 * 4096,
                           devices_per_node=72) == ["tp=8 does not divide the 12 heads"]


@pytest.mark.parametrize("fields", [
    {"objective": "time", "target_loss": 2.2, "max_gpus": 4096, "gpu": "gb200"},
    {"budget_flops": 1e25, "gpu": "gb200"},
    {"dollars": 2e7, "deadline_days": 10, "gpu": "gb200"},
], ids=["time", "budget", "deadline"])
def test_plans_on_a_72_gpu_domain_split_whole_kv_heads(fields):
    plan = optimize(**fields)
    tp = plan.parallelism.tp
    assert plan.shape.kv_heads % tp == 0, (tp, plan.shape.heads, plan.shape.kv_heads)
    assert plan.shape.heads % tp == 0
