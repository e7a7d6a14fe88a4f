"""Rounding a continuous parameter count to a concrete decoder shape.

Expected numbers are hand-computed in the tests (Llama conventions) or taken from published configs.
"""


import numpy as np
import pytest

from cost_models.architecture import ModelShape, active_params, non_embedding_params, total_params
from planner.rounding import (
    ASPECT_ANCHORS,
    COUNTERS,
    ffn_width,
    fit_shape,
    head_layout,
    make_shape,
    preferred_layers,
    round_shape,
)

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


def test_make_shape_rejects_widths_without_a_layout():
    with pytest.raises(ValueError):
        make_shape(2560, 32)


# ------------------------------------------------------------------------------ the search on arrays, bit for bit


def _fit_loop(target, count="total", experts=1, top_k=1, vocab=VOCAB, seq_len=4096, ffn_type="swiglu",
              tied=False):
    """The width search as the plain loop it was (the reference for ``rounding._fit``): (d_model, layers)."""
    import math

    from planner.rounding import MAX_REL_ERROR, MIN_LAYERS

    best, d = None, 128
    while d <= 1 << 17:
        kw = dict(experts=experts, top_k=top_k, vocab=vocab, seq_len=seq_len, ffn_type=ffn_type, tied_embeddings=tied)
        one, two = COUNTERS[count](make_shape(d, 1, **kw)), COUNTERS[count](make_shape(d, 2, **kw))
        intercept, slope = one - (two - one), two - one
        if intercept + slope * MIN_LAYERS > target * (1 + MAX_REL_ERROR) and best is not None and not best[0][0]:
            break
        x = (target - intercept) / slope
        floor_, ceil_ = max(1, math.floor(x)), max(1, math.ceil(x))
        layers = min((floor_, ceil_), key=lambda n: (n < MIN_LAYERS, abs(intercept + slope * n - target)))
        err = (intercept + slope * layers - target) / target
        rank = (layers < MIN_LAYERS, max(0.0, abs(err) - MAX_REL_ERROR),
                abs(math.log(max(x, 1e-3) / preferred_layers(d))))
        if best is None or rank < best[0]:
            best = (rank, d, layers)
        d += 128 if d < 2048 else 1024
    return best[1], best[2]


@pytest.mark.parametrize("kwargs", [{}, {"count": "non_embedding"}, {"experts": 8, "count": "active", "top_k": 2},
                                    {"experts": 64}, {"ffn_type": "gelu", "tied": True, "vocab": 50304},
                                    {"seq_len": 2048, "count": "active_non_embedding", "experts": 16}])
def test_fit_on_arrays_is_the_loop(kwargs):
    rng = np.random.default_rng(3)
    targets = np.concatenate([10 ** rng.uniform(3, 16.5, 400), [1e3, 7e4, 1.2e6, 1e9, 7e9, 4.05e11, 1e16]])
    spec = {k if k != "tied" else "tied_embeddings": v for k, v in kwargs.items()}
    for t in targets.tolist():
        fit = fit_shape(t, **spec)
        got = fit.shape
        assert (got.d_model, got.layers) == _fit_loop(t, **kwargs), t
        assert fit.achieved == COUNTERS[fit.count](got) and type(fit.achieved) is int
