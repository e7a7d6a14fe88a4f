"""Rounding a continuous plan: concrete decoder shapes and tensor/pipeline/data/expert parallel layouts.

Expected numbers are hand-computed in the tests (Llama conventions) or taken from published configs.
"""

import math

import numpy as np
import pytest

from cost_models.architecture import ModelShape, active_params, non_embedding_params, total_params
from cost_models.catalog import CatalogError, load_catalog
from planner.rounding import (
    ASPECT_ANCHORS,
    ffn_width,
    fit_shape,
    head_layout,
    make_shape,
    plan_parallelism,
    preferred_layers,
    round_shape,
)

H100 = load_catalog().get("h100")
VOCAB = 128256  # Llama 3


def llama_layer_params(d, kv_heads, head_dim, ffn):
    """Hand count of one GQA + SwiGLU + RMSNorm layer: Q and O d×d, K and V d×(kv·hd), 3 FFN mats, 2 norms."""
    return d * d + 2 * d * kv_heads * head_dim + d * d + 3 * d * ffn + 2 * d


def llama_total(layers, d, kv_heads, head_dim, ffn, vocab=VOCAB):
    return layers * llama_layer_params(d, kv_heads, head_dim, ffn) + 2 * vocab * d + d  # + untied head, final norm


# ---------------------------------------------------------------------------------------------- conventions


def test_ffn_width_matches_published_llama2_intermediate_sizes():
    # Llama 2 7B intermediate_size 11008, 13B 13824 (8/3·d rounded up to 256); GPT-3 4·d.
    assert ffn_width(4096) == 11008
    assert ffn_width(5120) == 13824
    assert ffn_width(12288, "gelu") == 49152


def test_head_layout():
    assert head_layout(768) == (12, 12, 64)  # below 1024: head_dim 64, MHA
    assert head_layout(1920) == (15, 15, 128)  # 15 heads < 16: MHA
    assert head_layout(4096) == (32, 8, 128)  # Llama 3 8B
    assert head_layout(16384) == (128, 8, 128)  # Llama 3 405B
    assert head_layout(2560) is None  # 20 heads: 8 KV heads would not divide them
    assert head_layout(1000) is None


def test_preferred_layers_passes_through_the_anchors():
    for layers, d, _ in ASPECT_ANCHORS:
        assert preferred_layers(d) == pytest.approx(layers)
    assert preferred_layers(32768) == pytest.approx(2 * 126)  # constant d/L beyond Llama 3 405B
    assert preferred_layers(256) == pytest.approx(3)  # constant d/L (Pythia-70M's 85.3) below


# ---------------------------------------------------------------------------------------------- round_shape


def test_7b_is_a_llama2_7b_like_shape():
    s = round_shape(7e9)
    assert (s.d_model, s.heads, s.kv_heads, s.head_dim, s.ffn_hidden) == (4096, 32, 8, 128, 11008)
    assert s.layers in (33, 34)  # hand: (7e9 - 2·128256·4096) / 177,217,536 per layer = 33.6
    assert total_params(s) == llama_total(s.layers, 4096, 8, 128, 11008)
    assert abs(total_params(s) / 7e9 - 1) < 0.015


def test_70b_and_405b_are_near_published_shapes():
    s70 = round_shape(70e9)  # Llama 2/3 70B, Chinchilla: 80 × 8192 (with a wider 3.5·d FFN than ours)
    assert s70.d_model in (8192, 9216) and 72 <= s70.layers <= 100
    s405 = round_shape(405e9)  # Llama 3 405B: 126 × 16384
    assert s405.d_model in (16384, 17408) and 110 <= s405.layers <= 150
    assert total_params(s405) == llama_total(s405.layers, s405.d_model, 8, 128, s405.ffn_hidden)


@pytest.mark.parametrize("layers, d", [(32, 4096), (40, 5120), (80, 8192), (96, 12288), (126, 16384)])
def test_anchor_shapes_are_fixed_points(layers, d):
    # A target equal to the count of an anchor shape (under our conventions) gives that shape back.
    kv = 8
    target = llama_total(layers, d, kv, 128, ffn_width(d))
    s = round_shape(target)
    assert (s.layers, s.d_model) == (layers, d)
    assert total_params(s) == target


def _check_layout(s: ModelShape):
    assert s.d_model % 128 == 0
    assert s.heads * s.head_dim == s.d_model
    assert s.head_dim == (64 if s.d_model < 1024 else 128)
    assert s.heads % s.kv_heads == 0
    assert s.kv_heads == (8 if s.heads >= 16 else s.heads)
    if s.ffn_type == "swiglu":
        assert s.ffn_hidden % 256 == 0 and 8 * s.d_model / 3 <= s.ffn_hidden < 8 * s.d_model / 3 + 256
    else:
        assert s.ffn_hidden == 4 * s.d_model
    assert s.layers >= 4


GRID = np.logspace(8, 12, 41)
COUNTS = {"total": total_params, "non_embedding": non_embedding_params, "active": active_params}


@pytest.mark.parametrize("kwargs", [
    {},
    {"vocab": 32000},
    {"tied_embeddings": True},
    {"ffn_type": "gelu", "vocab": 50257},
    {"count": "non_embedding"},
    {"count": "active", "experts": 8, "top_k": 2},
])
def test_counts_within_3_percent_across_sizes(kwargs):
    errors = []
    for p in GRID:
        fit = fit_shape(p, **kwargs)
        s = fit.shape
        _check_layout(s)
        achieved = COUNTS[kwargs.get("count", "total")](s)
        assert fit.achieved == achieved
        errors.append(abs(achieved / p - 1))
    assert max(errors) <= 0.03
    assert np.mean(errors) < 0.01


def test_width_monotone_and_depth_tracks_the_rule():
    fits = [fit_shape(p) for p in np.logspace(8, 12, 201)]
    widths = [f.shape.d_model for f in fits]
    assert widths == sorted(widths)
    for f in fits:
        if f.target >= 1e9:  # below, a 128k vocabulary is most of the model and pushes depth up
            assert 0.5 <= f.shape.layers / preferred_layers(f.shape.d_model) <= 2
            assert 20 <= f.aspect_ratio <= 250  # Kaplan et al. 2020 Fig. 5: loss flat over ~20-200
    decades = [round_shape(p).layers for p in (1e9, 1e10, 1e11, 1e12)]
    assert decades == sorted(decades)
    half_decades = [round_shape(10 ** (9 + k / 2), vocab=32000).layers for k in range(7)]
    assert half_decades == sorted(half_decades)


def test_moe_active_count():
    # Mixtral-8x7B-like: 12.9B active of 8 experts, top-2.
    fit = fit_shape(12.9e9, count="active", experts=8, top_k=2, vocab=32000)
    s = fit.shape
    assert abs(active_params(s) / 12.9e9 - 1) <= 0.03 and fit.achieved == active_params(s)
    assert (s.experts, s.top_k, s.dense_layers, s.moe_ffn_hidden) == (8, 2, 0, s.ffn_hidden)
    # hand: the 6 idle experts of each layer are the only difference between total and active
    assert total_params(s) - active_params(s) == s.layers * 6 * 3 * s.d_model * s.ffn_hidden
    _check_layout(s)


def test_moe_total_count():
    s = round_shape(46.7e9, count="total", experts=8, top_k=2, vocab=32000)  # Mixtral 8x7B total
    assert abs(total_params(s) / 46.7e9 - 1) <= 0.03
    assert active_params(s) < total_params(s) / 3


def test_tiny_target_reports_its_error():
    fit = fit_shape(1e7)  # 128k-vocab embeddings alone exceed 1e7 at the smallest width
    assert fit.rel_error > 1 and fit.achieved == total_params(fit.shape)


@pytest.mark.parametrize("bad", [dict(params=0), dict(params=float("nan")), dict(params=1e9, count="embedding"),
                                 dict(params=1e9, experts=4, top_k=8)])
def test_round_shape_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        round_shape(**bad)


# ---------------------------------------------------------------------------------------------- parallelism


def test_7b_on_64_h100_is_pure_data_parallel():
    s = round_shape(7e9)
    plan = plan_parallelism(s, 64, H100, global_batch_tokens=4 * 1024 * 1024)
    assert (plan.tp, plan.pp, plan.dp, plan.ep, plan.devices, plan.nodes) == (1, 1, 64, 1, 64, 8)
    assert plan.fits and not plan.sequence_parallel
    assert (plan.global_batch_sequences, plan.grad_accum_steps, plan.micro_batch) == (1024, 16, 1)
    # hand: bf16 weights + grads (4 B/param), fp32 master + Adam (12 B/param) over dp = 64 (ZeRO-1),
    # selective-recompute activations 34·s·h bytes per layer (Korthikanti Table 2, t = 1).
    p = total_params(s)
    expected = 4 * p + 12 * p / 64 + 34 * 4096 * 4096 * s.layers
    assert plan.memory_per_device_gb * 1e9 == pytest.approx(expected, rel=1e-12)
    assert plan.memory_per_device_gb <= 0.9 * 80


def test_405b_on_16384_h100_needs_tp8_and_pipeline():
    # Llama 3 405B (126 × 16384, GQA 8, FFN 53248) at 4k context; Meta trained it with TP8 PP16 on 16k H100.
    s = ModelShape(layers=126, d_model=16384, heads=128, kv_heads=8, ffn_hidden=53248, vocab=VOCAB, seq_len=4096)
    plan = plan_parallelism(s, 16384, H100, global_batch_tokens=16 * 2**20)
    assert plan.fits and plan.tp == 8 and 4 <= plan.pp <= 32 and plan.sequence_parallel
    assert plan.dp * plan.tp * plan.pp == plan.devices == 16384
    assert plan.global_batch_sequences % plan.dp == 0
    assert plan.memory_per_device_gb <= 72 <= 80
    # hand: weights+grads alone need 4 B × 405.9e9 / 72 GB = 22.5 devices per replica
    assert plan.tp * plan.pp >= 23
    # hand memory of the fullest stage: ceil(126/pp) layers; SP activations 34·s·h/t per layer, pp in flight
    p, k = total_params(s), math.ceil(126 / plan.pp)
    states = 4 * p * k / 126 / 8 + 12 * p * k / 126 / 8 / plan.dp
    acts = 34 * 4096 * 16384 / 8 * k * plan.pp
    assert plan.memory_per_device_gb * 1e9 == pytest.approx(states + acts, rel=1e-12)
    assert plan.stage_layers == k and plan.pipeline_bubble == pytest.approx((plan.pp - 1) / plan.grad_accum_steps)


def test_rounded_405b_also_fits_on_16384():
    plan = plan_parallelism(round_shape(405e9), 16384, H100, global_batch_tokens=16e6)
    assert plan.fits and plan.tp == 8 and 2 <= plan.pp <= 32 and plan.memory_per_device_gb <= 80


def test_70b_needs_at_least_4_way_model_parallel():
    s = round_shape(70e9)
    plan = plan_parallelism(s, 1024, H100, global_batch_tokens=4e6)
    assert plan.fits and plan.tp * plan.pp >= 4  # hand: 4 B × 70e9 / 72 GB = 3.9
    assert plan.dp * plan.tp * plan.pp == plan.devices == 1024
    capped = plan_parallelism(s, 1024, H100, global_batch_tokens=4e6, max_tp=4)
    assert capped.fits and capped.tp <= 4 and capped.tp * capped.pp >= 4


def test_tp_respects_kv_heads():
    # 40 query heads, 10 KV heads: tp 4 and 8 neither split nor replicate the KV heads -> tp <= 2.
    s = ModelShape(layers=120, d_model=5120, heads=40, kv_heads=10, ffn_hidden=13824, vocab=VOCAB)
    plan = plan_parallelism(s, 1024, H100, global_batch_tokens=4e6)
    assert plan.fits and plan.tp in (1, 2) and plan.pp > 1
    # with 8 KV heads tp = 4 is allowed; hand: 4 B × 34.3e9 / 4 + 34·4096·5120/4 B × 120 layers + ZeRO-1 states
    # = 34.3 + 21.4 + 0.4 = 56.1 GB <= 72 GB, while tp = 2 would need 68.7 GB of weights and grads alone.
    s8 = ModelShape(layers=120, d_model=5120, heads=40, kv_heads=8, ffn_hidden=13824, vocab=VOCAB)
    plan8 = plan_parallelism(s8, 1024, H100, global_batch_tokens=4e6)
    assert plan8.fits and (plan8.tp, plan8.pp) == (4, 1)
    assert plan8.memory_per_device_gb == pytest.approx(56.1, abs=0.1)


def test_device_and_batch_rounding():
    s = round_shape(7e9)
    plan = plan_parallelism(s, 100, H100, global_batch_tokens=1000 * 4096)
    assert plan.devices % 8 == 0 and abs(plan.devices - 100) <= 4  # whole nodes, nearest
    assert plan.dp * plan.tp * plan.pp == plan.devices
    assert any("rounded from 100" in n for n in plan.notes)
    assert plan.global_batch_sequences % plan.dp == 0
    assert abs(plan.global_batch_sequences - 1000) <= plan.dp / 2
    assert plan.grad_accum_steps == plan.global_batch_sequences // plan.dp
    on64 = plan_parallelism(s, 64, H100, global_batch_tokens=1000 * 4096)
    assert (on64.global_batch_sequences, on64.grad_accum_steps) == (1024, 16)  # 1000/64 = 15.6 -> 16 × 64


def test_partial_node_is_not_rounded_to_a_node():
    plan = plan_parallelism(round_shape(1e9), 4, H100, global_batch_tokens=1e6)
    assert (plan.devices, plan.nodes, plan.dp) == (4, 1, 4) and plan.fits


def test_infeasible_reports_missing_memory():
    plan = plan_parallelism(round_shape(405e9), 8, H100, global_batch_tokens=4e6)
    assert not plan.fits and plan.tp == 8
    assert plan.dp * plan.tp * plan.pp == plan.devices == 8
    missing = plan.memory_per_device_gb - 72
    assert missing > 100
    assert f"{missing:.1f} GB missing" in plan.notes[0]
    hint = next(n for n in plan.notes if n.startswith("it would fit on"))
    assert int(hint.split()[4]) > 8


def test_infeasible_at_any_size_says_so():
    # Selective recomputation with 1F1B keeps ~all layers' activations on the first stage: at 8k context
    # the 405B model needs 34·8192·16384/8 B × 126 layers = 71.9 GB of activations alone.
    s = ModelShape(layers=126, d_model=16384, heads=128, kv_heads=8, ffn_hidden=53248, vocab=VOCAB, seq_len=8192)
    plan = plan_parallelism(s, 16384, H100, global_batch_tokens=16 * 2**20)
    assert not plan.fits and (plan.tp, plan.pp) == (8, 126)
    assert any("does not fit on any number of devices" in n for n in plan.notes)
    assert plan_parallelism(s, 16384, H100, global_batch_tokens=16 * 2**20, recompute="full").fits


def test_moe_expert_parallel():
    s = round_shape(37e9, count="active", experts=64, top_k=8)
    plan = plan_parallelism(s, 256, H100, global_batch_tokens=8e6)
    assert plan.fits and plan.ep == 64  # the largest power of two dividing 64 experts and dp = 256
    assert plan.dp % plan.ep == 0 and s.experts % plan.ep == 0
    # 1000 devices: dp = 1000 would only allow ep = 8; rounding to 1024 (within 5%) allows ep = 64
    plan = plan_parallelism(s, 1000, H100, global_batch_tokens=8e6)
    assert plan.fits and plan.devices == 1024 and plan.ep == 64


def test_precision_is_validated_against_the_device():
    s = round_shape(1e9)
    plan = plan_parallelism(s, 8, H100, global_batch_tokens=1e6, precision="fp8")
    assert plan.fits and any("fp8" in n for n in plan.notes)
    with pytest.raises(CatalogError):
        plan_parallelism(s, 8, H100, global_batch_tokens=1e6, precision="fp4")
    with pytest.raises(ValueError):
        plan_parallelism(s, 0, H100, global_batch_tokens=1e6)


def test_make_shape_rejects_widths_without_a_layout():
    with pytest.raises(ValueError):
        make_shape(2560, 32)
