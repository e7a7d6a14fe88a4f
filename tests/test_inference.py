"""Inference roofline: KV cache, decode/prefill bounds, memory fit, $ per million tokens."""

import cvxpy as cp
import pytest

from cost_models.architecture import ModelShape, total_params
from cost_models.catalog import load_catalog
from cost_models.inference import (
    compute_time_s,
    decode_flops_per_token,
    decode_step_time_s,
    kv_cache_bytes_per_token,
    kv_cache_bytes_per_token_for_shape,
    kv_cache_fits,
    max_batch,
    memory_time_s,
    moe_params_read_per_step,
    usd_per_million_tokens,
    weight_bytes,
)

LLAMA2_70B = ModelShape(layers=80, d_model=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000)
MIXTRAL = ModelShape(layers=32, d_model=4096, heads=32, kv_heads=8, ffn_hidden=14336, vocab=32000, experts=8,
                     top_k=2)
H100 = load_catalog().get("h100")  # 989.4 TFLOP/s bf16, 3.35 TB/s, 80 GB


def test_kv_bytes_llama2_70b():
    # K and V, 80 layers x 8 kv heads x 128 dims x 2 bytes (bf16)
    by_hand = 2 * 80 * 8 * 128 * 2
    assert by_hand == 327_680 and by_hand / 2**20 == 0.3125  # MiB per token
    assert kv_cache_bytes_per_token(80, 8, 128) == by_hand
    assert kv_cache_bytes_per_token_for_shape(LLAMA2_70B) == by_hand
    # without GQA (64 kv heads) it would be 8x larger
    assert kv_cache_bytes_per_token(80, 64, 128) == 8 * by_hand


def test_kv_bytes_mla_and_fp8():
    dsv3 = ModelShape(layers=61, d_model=7168, heads=128, head_dim=128, ffn_hidden=18432, vocab=129280,
                      experts=256, top_k=8, shared_experts=1, moe_ffn_hidden=2048, dense_layers=3,
                      q_lora_rank=1536, kv_lora_rank=512, qk_rope_head_dim=64)
    assert kv_cache_bytes_per_token_for_shape(dsv3) == 61 * (512 + 64) * 2
    assert kv_cache_bytes_per_token_for_shape(LLAMA2_70B, bytes_per_elem=1) == 163_840


def test_ridge_batch_by_hand():
    # Weights only (no KV): compute 2 N B / P equals memory 2 N / BW at B* = P / BW = 989.4e12 / 3.35e12 ≈ 295.3
    n, peak, bw = 7e9, 989.4e12, 3.35e12
    w = weight_bytes(n)
    f = decode_flops_per_token(n, 1, 0, 1)
    below = decode_step_time_s(290, f, w, 0.0, 1, peak, bw)
    above = decode_step_time_s(300, f, w, 0.0, 1, peak, bw)
    assert below == pytest.approx(w / bw)  # memory roof
    assert above == pytest.approx(300 * 2 * n / peak)  # compute roof
    assert above > w / bw


def test_usd_per_million_tokens_by_hand():
    # $2.30 per device-hour at 1000 tokens/s/device and full efficiency: 2.30 / 3.6e6 * 1e6 = $0.6389 per M
    assert usd_per_million_tokens(2.30, 1000, 1.0) == pytest.approx(0.638889, rel=1e-5)
    assert usd_per_million_tokens(2.30, 1000, 0.5) == pytest.approx(2 * 0.638889, rel=1e-5)


def test_memory_fit_and_max_batch():
    w = 2 * total_params(LLAMA2_70B)  # 137.95 GB
    assert not kv_cache_fits(w, 327_680, 1, 1024, 80e9, 1)
    assert kv_cache_fits(w, 327_680, 1, 1024, 80e9, 2)
    b = max_batch(w, 327_680, 4096, 80e9, 2)
    assert b == pytest.approx((160e9 - w) / (327_680 * 4096))  # ≈ 16.4 sequences of 4096 tokens
    assert kv_cache_fits(w, 327_680, int(b), 4096, 80e9, 2) and not kv_cache_fits(w, 327_680, int(b) + 1, 4096,
                                                                                   80e9, 2)


def test_moe_weights_read_per_step():
    expert = 3 * 4096 * 14336
    assert moe_params_read_per_step(MIXTRAL, 1) == pytest.approx(total_params(MIXTRAL) - 32 * 6 * expert)
    # 8 * (1 - 0.75^4) = 5.47 experts touched per layer at batch 4
    assert moe_params_read_per_step(MIXTRAL, 4) == pytest.approx(
        total_params(MIXTRAL) - 32 * (8 - 8 * (1 - 0.75**4)) * expert)
    assert moe_params_read_per_step(MIXTRAL, 256) == pytest.approx(total_params(MIXTRAL))
    assert moe_params_read_per_step(LLAMA2_70B, 1) == total_params(LLAMA2_70B)


def test_roofline_terms_are_dgp():
    n, b, g, tps = (cp.Variable(pos=True) for _ in range(4))
    assert compute_time_s(b * decode_flops_per_token(n, 80, 4096, 8192), g, 989e12).is_dgp()
    assert memory_time_s(weight_bytes(n) + kv_cache_bytes_per_token(80, 8, 128) * b * 4096, g, 3.35e12).is_dgp()
    assert usd_per_million_tokens(2.3, tps).is_dgp()
