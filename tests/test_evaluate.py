"""planner cost / serve-cost: pricing a given run against hand computations and published runs."""

import json

import pytest
from typer.testing import CliRunner

from cli import app
from cost_models.architecture import ModelShape
from planner import InputError
from planner.evaluate import RunRequest, ServeRequest, estimate_run, estimate_serving, parse

runner = CliRunner()
A100 = 312e12  # dense bf16, hardware.md §1
H100 = 989.4e12


def test_six_nd_run_by_hand():
    est = estimate_run(parse(RunRequest, params=7e9, tokens=1e12, gpu="h100", gpus=512, mfu=0.4, goodput=0.9,
                             price=2.0))
    assert est.params == pytest.approx(7e9, rel=0.03)  # the rounded shape's active params
    flops = 6 * est.params * 1e12
    gh = flops / (H100 * 0.4 * 0.9 * 3600)
    assert est.flops == pytest.approx(flops)
    assert est.gpu_hours == pytest.approx(gh)
    assert est.hours == pytest.approx(gh / 512)
    assert est.cost_usd == pytest.approx(2.0 * gh)
    # energy = devices × TDP 700 W × 0.70 power utilization × hours × PUE 1.2 / 1000
    assert est.energy_kwh == pytest.approx(512 * 700 * 0.7 * (gh / 512) * 1.2 / 1000)
    assert est.memory_per_gpu_gb == pytest.approx(sum(est.memory_breakdown_gb.values()))
    assert est.memory_breakdown_gb["states_sharded"] >= 12 * est.total_params / 512 / 1e9 * (1 - 1e-9)


def test_llama2_7b_gpu_hours_with_its_implied_mfu():
    # Llama 2 7B: 6.74B params, 2T tokens, 184,320 A100-80GB hours (Llama 2 model card, runs.md V-primary).
    # Implied MFU over all hours: 6ND / (GPU-h × 3600 × 312e12) = 39.1% (runs.md §2).
    implied = 6 * 6.74e9 * 2e12 / (184_320 * 3600 * A100)
    est = estimate_run(parse(RunRequest, params=6.74e9, tokens=2e12, gpu="a100-80gb", gpus=2048, mfu=implied,
                             goodput=1.0))
    assert est.gpu_hours == pytest.approx(184_320 * est.params / 6.74e9, rel=1e-6)  # the rounded shape's N
    default = estimate_run(parse(RunRequest, params=6.74e9, tokens=2e12, gpu="a100-80gb", gpus=2048))
    assert 1 / 1.3 < default.gpu_hours / 184_320 < 1.3  # the calibrated default model


def test_shape_counts_attention_and_activations():
    shape = ModelShape(layers=32, d_model=4096, heads=32, ffn_hidden=11008, vocab=32000, seq_len=4096)
    est = estimate_run(parse(RunRequest, shape=shape, tokens=1e12, gpu="h100", gpus=256))
    # attention + SwiGLU + 2 RMSNorms per layer, the final RMSNorm, embeddings and the untied head
    n = 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096) + 4096 + 2 * 32000 * 4096
    assert est.flops == pytest.approx(6 * n * 1e12, rel=1e-9)  # model FLOPs
    # the step also pays attention scores and values, 6·n_layer·n_ctx·d_attn per token (Kaplan Table 1)
    hardware = (6 * n + 6 * 32 * 4096 * 4096) * est.batch_tokens / 256
    assert est.step_breakdown["compute"] == pytest.approx(hardware / (0.44 * 989.4e12), rel=1e-9)
    # selective recomputation with sequence parallelism: 34·s·b·h bytes per layer / tp (Korthikanti Table 2)
    tp = est.layout["tp"]
    assert est.memory_breakdown_gb["activations"] == pytest.approx(34 * 4096 * 4096 * 32 / tp / 1e9, rel=1e-9)
    assert est.memory_per_gpu_gb == pytest.approx(sum(est.memory_breakdown_gb.values()))


def test_default_devices_fit_and_finish_in_30_days():
    est = estimate_run(parse(RunRequest, params=7e10, tokens=2e12, gpu="h100"))
    assert est.days <= 30.0 + 1e-9
    assert est.gpus % 8 == 0 and est.memory_fits


def test_serving_shape_by_hand():
    # Llama 2 70B shape on 4 H100 at batch 64: KV bytes/token = 2·80·8·128·2 = 327,680.
    shape = ModelShape(layers=80, d_model=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000)
    est = estimate_serving(parse(ServeRequest, shape=shape, gpu="h100", gpus=4, batch=64, prompt_tokens=1024,
                                 output_tokens=256, price=2.0))
    assert est.estimate["kv_bytes_per_token"] == 327_680
    tps = est.decode_tokens_per_s_per_gpu
    assert est.usd_per_million_output_tokens == pytest.approx(2.0 / (tps * 0.5 * 3600) * 1e6)
    assert est.fits


def test_cost_cli_json_keys():
    r = runner.invoke(app, ["cost", "--params", "7e9", "--tokens", "1e12", "--gpu", "h100", "--gpus", "64",
                            "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert {"flops", "gpu_hours", "hours", "cost_usd", "energy_kwh", "memory_per_gpu_gb", "mfu"} <= set(data)


def test_serve_cost_cli_json():
    r = runner.invoke(app, ["serve-cost", "--layers", "32", "--d-model", "4096", "--kv-heads", "8",
                            "--batch", "32", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["usd_per_million_output_tokens"] > 0 and data["fits"]


@pytest.mark.parametrize(
    "args,option",
    [
        (["cost", "--params", "1e9", "--tokens", "-1"], "--tokens"),
        (["cost", "--tokens", "1e9"], "--params"),
        (["cost", "--params", "1e9", "--tokens", "1e9", "--gpu", "nope"], "--gpu"),
        (["cost", "--params", "1e9", "--tokens", "1e9", "--zero-stage", "7"], "--zero-stage"),
        (["cost", "--tokens", "1e9", "--layers", "32"], "--d-model"),
        (["cost", "--tokens", "1e9", "--layers", "32", "--d-model", "4096", "--kv-heads", "5"], "--shape"),
        (["serve-cost", "--layers", "32", "--d-model", "4096", "--batch", "0"], "--batch"),
        (["serve-cost", "--layers", "32", "--d-model", "4096", "--precision", "fp8", "--gpu", "a100-80gb"],
         "--precision"),
    ],
)
def test_cost_bad_input(args, option):
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and option in r.stderr


def test_shape_file(tmp_path):
    f = tmp_path / "shape.toml"
    f.write_text("layers = 32\nd_model = 4096\nheads = 32\nffn_hidden = 11008\nvocab = 32000\n")
    r = runner.invoke(app, ["cost", "--tokens", "1e12", "--shape", str(f), "--gpus", "64", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["params"] == pytest.approx(6.738e9, rel=1e-3)  # Llama 2 7B: 6.74B
    bad = tmp_path / "bad.toml"
    bad.write_text("layers = -1\nd_model = 4096\nheads = 32\nffn_hidden = 11008\nvocab = 32000\n")
    r = runner.invoke(app, ["cost", "--tokens", "1e12", "--shape", str(bad)])
    assert r.exit_code == 2 and "layers" in r.stderr


def test_missing_shape_file_is_input_error():
    with pytest.raises(InputError):
        from planner.evaluate import load_shape

        load_shape("/nonexistent/shape.toml")
