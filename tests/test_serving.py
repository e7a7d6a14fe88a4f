"""Serving model (cost_models.serving): decode/prefill against hand byte and FLOP counts, KV per device,
MoE experts touched, memory fit, calibration against published throughputs."""

import math

import numpy as np
import pytest

from cost_models.architecture import ModelShape
from cost_models.catalog import load_catalog
from cost_models.serving import (
    Efficiency,
    ServingConfig,
    Workload,
    kv_elements_per_token_per_device,
    moe_experts_touched,
)
from cost_models.serving_calibration import SHAPES, fit_efficiencies, load_points, log_errors
from cost_models.serving_point import (
    fewest_devices,
    max_batch_in_memory,
    serving_point,
    static_batch_throughput,
    tp_degrees,
)

H100 = load_catalog().get("h100")  # 989.4 TFLOP/s bf16, 3.35 TB/s, 80 GB, NVLink 900 GB/s bidirectional
LLAMA2_70B = SHAPES["llama2-70b"]
LLAMA3_70B = SHAPES["llama3-70b"]


def test_decode_step_against_hand_byte_count():
    # Llama 2 70B by hand: per layer attention 2·8192² + 2·8192·1024 = 150,994,944, SwiGLU 3·8192·28672 =
    # 704,643,072, two norms 16,384; 80 layers + final norm + embedding and head 2·32000·8192.
    per_layer = 2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192
    total = 80 * per_layer + 8192 + 2 * 32000 * 8192
    assert total == 68_976_648_192
    read = total - 32000 * 8192  # the input-embedding table is a lookup, not read in full
    tp, b, prompt, out = 4, 8, 1024, 256
    mean_ctx = prompt + out / 2
    kv_per_token_per_device = 2 * 80 * (8 // tp) * 128 * 2  # K and V, 2 KV heads per device, bf16
    eff = Efficiency()
    # weights stream at the weight-read efficiency, the KV cache at the attention kernels'
    t_mem = read * 2 / tp / (3.35e12 * eff.bandwidth) + b * mean_ctx * kv_per_token_per_device / (
        3.35e12 * eff.kv_bandwidth)
    matmul = total - 2 * 32000 * 8192 + 32000 * 8192  # non-embedding + output head
    flops_per_device = b * (2 * matmul + 4 * 80 * 8192 * mean_ctx) / tp
    t_flop = flops_per_device / (989.4e12 * eff.compute)
    # ring all-reduce, 2 per layer: 2(t-1) latency steps + 2(t-1)/t · bytes over 450 GB/s one way
    t_ar = 2 * 80 * (2 * (tp - 1) * eff.allreduce_step_latency_s + 2 * (tp - 1) / tp * b * 8192 * 2 / 450e9)
    pt = serving_point(LLAMA2_70B, H100, ServingConfig(tensor_parallel=tp, batch=b), Workload(), 2.3)
    assert t_mem > t_flop and pt.decode_bound == "memory"
    assert pt.decode_memory_s == pytest.approx(t_mem, rel=1e-9)
    assert pt.decode_compute_s == pytest.approx(t_flop, rel=1e-9)
    assert pt.decode_allreduce_s == pytest.approx(t_ar, rel=1e-9)
    # step = max(m, c) + θ·min(m, c) + all-reduce
    step = max(t_mem, t_flop) + eff.overlap_penalty * min(t_mem, t_flop) + t_ar
    assert pt.tpot_s == pytest.approx(step, rel=1e-9)
    # priced at the throughput it reports: tp · step / batch device-seconds per token
    assert pt.tokens_per_second_per_device == pytest.approx(b / step / tp)
    assert pt.usd_per_million_output_tokens == pytest.approx(2.3 / 3600 * tp * step / b * 1e6)


def test_pure_roofline_when_overlap_is_perfect():
    eff = Efficiency(overlap_penalty=0.0)
    pt = serving_point(LLAMA2_70B, H100, ServingConfig(tensor_parallel=4, batch=8), Workload(), 2.3, eff)
    assert pt.tpot_s == pytest.approx(max(pt.decode_memory_s, pt.decode_compute_s) + pt.decode_allreduce_s)


def test_prefill_and_ttft_by_hand():
    shape, p = SHAPES["llama2-7b"], 2048
    matmul = 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096) + 4096 + 32000 * 4096
    flops = p * (2 * matmul + 2 * 32 * p * 4096)  # causal attention: P/2 attended tokens per prompt token
    eff = Efficiency()
    # matmuls at the fp8 rate, attention at the bf16 rate
    t = p * 2 * matmul / (1978.9e12 * eff.compute_8bit) + p * 2 * 32 * p * 4096 / (989.4e12 * eff.compute)
    w = (32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096) + 4096 + 32000 * 4096) * 1  # fp8 weights read once
    t_w = w / (3.35e12 * eff.bandwidth)
    pt = serving_point(shape, H100, ServingConfig(tensor_parallel=1, batch=1, precision="fp8"),
                       Workload(prompt_tokens=p, output_tokens=1), 2.0)
    assert flops > 0 and t > t_w
    assert pt.ttft_s == pytest.approx(t + eff.overlap_penalty * t_w, rel=1e-9)
    # input tokens: compute only (the weight read is shared by the batch under continuous batching)
    assert pt.usd_per_million_input_tokens == pytest.approx(2.0 / 3600 * t / p * 1e6, rel=1e-9)


def test_kv_per_device_split_and_replication():
    assert kv_elements_per_token_per_device(LLAMA2_70B, 1) == 2 * 80 * 8 * 128
    assert kv_elements_per_token_per_device(LLAMA2_70B, 4) == 2 * 80 * 2 * 128
    # 16 devices, 8 KV heads: each device still holds one whole KV head
    assert kv_elements_per_token_per_device(LLAMA2_70B, 16) == 2 * 80 * 1 * 128
    mla = ModelShape(layers=61, d_model=7168, heads=128, head_dim=128, ffn_hidden=18432, vocab=129280,
                     experts=256, top_k=8, shared_experts=1, moe_ffn_hidden=2048, dense_layers=3,
                     q_lora_rank=1536, kv_lora_rank=512, qk_rope_head_dim=64)
    assert kv_elements_per_token_per_device(mla, 8) == 61 * (512 + 64)  # the latent is replicated
    assert tp_degrees(LLAMA2_70B, H100) == [1, 2, 4, 8]


def test_experts_touched_against_simulation():
    rng = np.random.default_rng(0)
    for e, k, b in [(8, 2, 4), (64, 1, 16), (256, 8, 32)]:
        trials = 4000
        touched = [len(set(np.concatenate([rng.choice(e, k, replace=False) for _ in range(b)])))
                   for _ in range(trials)]
        assert moe_experts_touched(e, k, b) == pytest.approx(np.mean(touched), rel=0.02)
    assert moe_experts_touched(8, 2, 1) == pytest.approx(2.0)
    assert moe_experts_touched(8, 2, 10_000) == pytest.approx(8.0)


def test_moe_weights_all_resident_but_fewer_read():
    mixtral = ModelShape(layers=32, d_model=4096, heads=32, kv_heads=8, ffn_hidden=14336, vocab=32000,
                         experts=8, top_k=2)
    w = Workload()
    one = serving_point(mixtral, H100, ServingConfig(tensor_parallel=2, batch=1), w, 2.0)
    many = serving_point(mixtral, H100, ServingConfig(tensor_parallel=2, batch=64), w, 2.0)
    assert one.weight_bytes == many.weight_bytes  # all experts resident
    expert = 3 * 4096 * 14336
    # batch 1 reads 6 fewer experts per layer than batch 64 (which touches all 8 almost surely)
    eff = Efficiency()
    kv = 2 * 32 * 4 * 128 * 2 * w.mean_context * 63  # extra KV of 63 sequences, 4 KV heads per device
    weights_s = many.decode_memory_s - one.decode_memory_s - kv / (3.35e12 * eff.kv_bandwidth)
    extra_experts = 8 * (1 - 0.75**64) - 2  # per layer, bf16 bytes split over 2 devices
    assert weights_s * 3.35e12 * eff.bandwidth == pytest.approx(32 * extra_experts * expert * 2 / 2, rel=1e-9)


def test_memory_fit_llama3_70b_on_h100():
    # bf16 weights 141.1 GB; usable 0.9 · 80 GB per device; KV 2·80·8·128·2 = 327,680 B/token at TP 1
    w = 2 * (80 * (2 * 8192**2 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192) + 8192 + 2 * 128256 * 8192)
    work = Workload()  # 1024 + 256 tokens
    for tp in (4, 8):
        by_hand = math.floor((72e9 - w / tp) / (327_680 / tp * 1280))
        assert max_batch_in_memory(LLAMA3_70B, H100, ServingConfig(tensor_parallel=tp, batch=1), work) == by_hand
    assert fewest_devices(LLAMA3_70B, H100, "bf16", None, work) == math.ceil(w / (72e9 - 327_680 * 1280 / 2)) == 2
    assert fewest_devices(LLAMA3_70B, H100, "fp8", None, work) == 1


def test_decode_memory_bound_where_it_fits():
    # the measurement: bf16 decode is memory-bound at the batches that fit on 4 H100s, so the
    # compute-bound "2N FLOPs at 50% of peak" price was far too low
    work = Workload()
    for tp in (4,):
        b = max_batch_in_memory(LLAMA3_70B, H100, ServingConfig(tensor_parallel=tp, batch=1), work)
        pt = serving_point(LLAMA3_70B, H100, ServingConfig(tensor_parallel=tp, batch=b), work, 2.3)
        assert pt.decode_bound == "memory"
    one = serving_point(LLAMA3_70B, H100, ServingConfig(tensor_parallel=4, batch=1), work, 2.3)
    old = 2.3 / (989.4e12 * 0.5 / (2 * 70.55e9) * 3600) * 1e6  # the old program's $/M
    assert one.usd_per_million_output_tokens > 100 * old


def test_static_batch_throughput_by_hand():
    cfg, w = ServingConfig(tensor_parallel=2, batch=64, precision="fp8"), Workload(prompt_tokens=128, output_tokens=64)
    step = serving_point(LLAMA2_70B, H100, cfg, w, 1.0).tpot_s
    tps = static_batch_throughput(LLAMA2_70B, H100, cfg, w)
    prefill = 64 * 64 / (2 * tps) - 64 * step  # invert batch·out / (tp·(prefill + out·step))
    single = serving_point(LLAMA2_70B, H100, cfg.model_copy(update={"batch": 1}), w, 1.0)
    assert single.ttft_s < prefill < 64 * single.ttft_s  # 64 prompts together share one weight read


def test_calibration_constants_are_the_fit():
    # a fixed point of the coordinate descent from the stored constants (a full refit from another start
    # reaches the same values: docs/serving.md)
    assert fit_efficiencies(start=Efficiency()) == Efficiency()


def test_calibration_error_bounds():
    points = load_points()
    assert len(points) >= 3 and {p.kind for p in points} == {"throughput", "max_load", "tpot", "ttft"}
    errors = np.exp(np.abs(log_errors(points)))
    assert np.median(errors) < 1.1  # published in docs/serving.md
    assert errors.max() < 3.0


def test_serving_doc_is_current():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("serving_report", root / "benchmarks" / "serving_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = root / "docs" / "serving.md"
    assert doc.read_text(encoding="utf-8") == mod.render(), "run python benchmarks/serving_report.py"


def test_held_out_h200_points():
    # not used by the fit: the same page's H200 columns (docs/serving.md, "Held out")
    held = load_points(held_out=True)
    assert len(held) == 20 and {p.gpu for p in held} == {"h200"}
    errors = np.exp(np.abs(log_errors(held)))
    assert np.median(errors) < 1.15 and errors.max() < 1.3
