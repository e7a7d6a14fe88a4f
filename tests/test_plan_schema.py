"""The Plan's public shape: launcher configs pinned byte for byte, and the keys of ``planner optimize --json``.

The pinned files in tests/data were written by the code before the plan's ``shape`` and ``parallelism`` became
typed records (one layout type); these tests keep that refactor (and later ones) a pure change of types.
``tests/data/launchers/*.plan.json`` are plans as ``Plan.summary()`` printed them, and ``*.<target>.txt`` the
launcher configs the code of that time wrote for them. To re-pin after an intended change of a config, rerun the
code that wrote them and review the diff.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from planner.launchers import TARGETS, to_config
from planner.plan import Plan

DATA = Path(__file__).parent / "data"
KINDS = ("small", "pipeline", "fp8", "moe")  # dense tp1; TP1 x PP8 (nanoGPT/HF re-layout); fp8 TP4; MoE ep2


def _plan(kind: str) -> Plan:
    return Plan.model_validate(json.loads((DATA / "launchers" / f"{kind}.plan.json").read_text()))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", KINDS)
def test_launcher_output_is_pinned(kind, target):
    want = (DATA / "launchers" / f"{kind}.{target}.txt").read_text()
    assert to_config(_plan(kind), target) == want


@pytest.mark.parametrize("kind", KINDS)
def test_plan_json_round_trips(kind):
    raw = json.loads((DATA / "launchers" / f"{kind}.plan.json").read_text())
    got = json.loads(json.dumps(_plan(kind).summary()))
    assert {k: got.get(k) for k in raw} == raw  # the pinned fields print the same values
    assert all(got[k] is None for k in set(got) - set(raw))  # fields added since (e.g. robust) are optional


def _paths(obj, prefix=""):
    """Every key path of a JSON object ("a.b", lists of objects as "a[].b")."""
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{prefix}.{k}" if prefix else k
            out.add(p)
            out |= _paths(v, p)
    elif isinstance(obj, list) and obj and isinstance(obj[0], dict):
        for v in obj:
            out |= _paths(v, prefix + "[]")
    return out


@pytest.mark.parametrize("name", ["dense", "pipeline"])
def test_optimize_json_keeps_its_keys(name):
    """The pinned key paths (plus ``robust``, added by the robust-plan work, null without --robust)."""
    pinned = json.loads((DATA / "optimize_json_keys.json").read_text())[name]
    r = CliRunner().invoke(app, pinned["args"])
    assert r.exit_code == 0, r.output
    got = _paths(json.loads(r.stdout))
    want = set(pinned["keys"])
    assert got == want, f"missing: {sorted(want - got)}; new: {sorted(got - want)}"


def test_plan_shape_and_parallelism_are_typed():
    from cost_models.architecture import ModelShape
    from cost_models.cluster import Layout
    from planner.plan import ParallelismPlan

    plan = _plan("pipeline")
    assert isinstance(plan.shape, ModelShape) and isinstance(plan.parallelism, ParallelismPlan)
    par = plan.parallelism
    assert isinstance(par.layout, Layout) and (par.tp, par.pp) == (par.layout.tp, par.layout.pp) == (1, 8)
    assert par.devices == par.tp * par.pp * par.dp == plan.gpus
    # hand: 1F1B bubble (pp - 1) / micro-batches per step, as the JSON printed it
    assert par.pipeline_bubble == pytest.approx(7 / par.grad_accum_steps)
    assert par.sequence_parallel is False


def test_cluster_must_be_whole():
    from planner.plan import ClusterPlan

    flat = {"tp": 2, "pp": 2, "dp": 3, "ep": 1, "devices": 13, "nodes": 2, "devices_per_node": 8,
            "micro_batch": 1, "grad_accum_steps": 4, "global_batch_sequences": 12, "global_batch_tokens": 49152,
            "recompute": "selective", "zero_stage": 1, "layout": "tp2 pp2 mb1 selective recompute, ZeRO-1"}
    with pytest.raises(ValueError, match="tp·pp·dp"):
        ClusterPlan.model_validate(flat)
    ok = ClusterPlan.model_validate({**flat, "devices": 12})
    assert ok.model_dump() == {**flat, "devices": 12, "sequence_parallel": True, "pipeline_bubble": 0.25}
