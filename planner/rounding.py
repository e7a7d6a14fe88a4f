"""Round a continuous parameter count to a concrete model shape.

The geometric program returns a parameter count N as a real number. This module turns it into a decoder one
could launch (layers, d_model, heads, FFN width ...) whose parameter count is as close as possible to N. The
cluster (layout, whole devices, batch) is rounded by ``planner.whole`` on ``cost_models.cluster.Layout``.

Shape conventions (Llama-style decoder): d_model a multiple of 128; head_dim 128 (64 below d_model 1024);
heads = d_model / head_dim; 8 KV heads (GQA) once heads >= 16, otherwise one KV head per query head (MHA) --
so from d_model 2048 up, d_model is a multiple of 1024 (heads a multiple of 8), as in every Llama/OPT/GPT-3
width at that scale; SwiGLU FFN width 8/3·d_model rounded up to a multiple of 256 (Llama 2 7B: 11008), GELU
4·d_model; MoE models are MoE in every layer with experts as wide as the dense FFN.

Depth vs width: the aspect-ratio rule below (``preferred_layers``) is a curve through published
(d_model, layers) pairs; among candidate shapes whose counts are close to the target, the one nearest that
curve wins. Kaplan et al. 2020 (Fig. 5) found loss within a few percent over aspect ratios d_model/layers of
roughly 20-200, so the rule is a convention that matches practice, not an optimum.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import (
    ModelShape,
    active_non_embedding_params,
    active_params,
    non_embedding_params,
    total_params,
)

Count = Literal["total", "non_embedding", "active", "active_non_embedding"]

COUNTERS: dict[str, Callable[[ModelShape], int]] = {
    "total": total_params,
    "non_embedding": non_embedding_params,
    "active": active_params,
    "active_non_embedding": active_non_embedding_params,
}

LLAMA3_VOCAB = 128256  # Llama 3 tokenizer (Dubey et al. 2024 §3.1.1 / HF config vocab_size)

# --------------------------------------------------------------------------------------------------------------
# Aspect-ratio rule: published (layers, d_model) pairs. Anchors are strictly increasing in d_model and
# non-decreasing in layers; preferred_layers(d) interpolates log(layers) linearly in log(d_model) between them
# and holds the end anchors' aspect ratio d_model/layers beyond them.
#
# | layers × d_model | d/L   | used by (paper / config)                                                       |
# |------------------|-------|--------------------------------------------------------------------------------|
# |   6 ×   512      |  85   | Pythia-70M (Biderman et al. 2023, Table 1)                                     |
# |  12 ×   768      |  64   | GPT-3 Small 125M (Brown et al. 2020, Table 2.1), OPT-125M, Pythia-160M         |
# |  24 ×  1024      |  43   | GPT-3 Medium 350M, OPT-350M (Zhang et al. 2022, Table 1), Pythia-410M          |
# |  24 ×  1536      |  64   | GPT-3 Large 760M                                                               |
# |  24 ×  2048      |  85   | GPT-3 XL 1.3B, OPT-1.3B, Pythia-1.4B                                           |
# |  32 ×  2560      |  80   | GPT-3 2.7B, OPT-2.7B, Pythia-2.8B                                              |
# |  32 ×  4096      | 128   | Llama 2 7B (Touvron et al. 2023, Table 1 / HF config), Llama 3 8B, GPT-3 6.7B, |
# |                  |       | OPT-6.7B, Pythia-6.9B                                                          |
# |  40 ×  5120      | 128   | Llama 2 13B, OPT-13B, GPT-3 13B (5140)                                         |
# |  48 ×  7168      | 149   | OPT-30B                                                                        |
# |  80 ×  8192      | 102   | Llama 2 70B, Llama 3 70B, Chinchilla 70B (Hoffmann et al. 2022, Table 4)       |
# |  96 × 12288      | 128   | GPT-3 175B, OPT-175B                                                           |
# | 126 × 16384      | 130   | Llama 3 405B (Dubey et al. 2024, Table 3)                                      |
#
# Published shapes off the curve (not anchors; they show the spread): Llama 3.2 1B 16×2048 (d/L 128),
# Llama 3.2 3B 28×3072 (110), Pythia-12B 36×5120 (142), Llama 2 34B 48×8192 (171), OPT-66B 64×9216 (144),
# Gopher 280B 80×16384 (205), PaLM 540B 118×18432 (156).
# --------------------------------------------------------------------------------------------------------------
ASPECT_ANCHORS: tuple[tuple[int, int, str], ...] = (
    (6, 512, "Pythia-70M"),
    (12, 768, "GPT-3 Small / OPT-125M / Pythia-160M"),
    (24, 1024, "GPT-3 Medium / OPT-350M / Pythia-410M"),
    (24, 1536, "GPT-3 Large"),
    (24, 2048, "GPT-3 XL / OPT-1.3B / Pythia-1.4B"),
    (32, 2560, "GPT-3 2.7B / OPT-2.7B / Pythia-2.8B"),
    (32, 4096, "Llama 2 7B / Llama 3 8B / GPT-3 6.7B / OPT-6.7B / Pythia-6.9B"),
    (40, 5120, "Llama 2 13B / OPT-13B / GPT-3 13B"),
    (48, 7168, "OPT-30B"),
    (80, 8192, "Llama 2 70B / Llama 3 70B / Chinchilla 70B"),
    (96, 12288, "GPT-3 175B / OPT-175B"),
    (126, 16384, "Llama 3 405B"),
)
_LOG_D = np.log([d for _, d, _ in ASPECT_ANCHORS])
_LOG_L = np.log([layers for layers, _, _ in ASPECT_ANCHORS])

# Search: at each width the count is exactly linear in layers, count(L) = intercept + slope·L, so the
# continuous depth L*(d) that hits the target is known. The width whose L*(d) is nearest the rule (smallest
# |log(L*(d) / preferred_layers(d))|) wins and L*(d) is rounded to the nearer count. Two hard preferences
# come first: at least MIN_LAYERS layers (Pythia-70M, the smallest anchor, has 6) and a count within
# MAX_REL_ERROR of the target; each is dropped only when no width meets it (tiny or embedding-bound targets).
# Choosing the width from the continuous depth makes d_model non-decreasing in the target (see fit_shape).
MAX_REL_ERROR = 0.03
MIN_LAYERS = 4
_MAX_D_MODEL = 1 << 17


def preferred_layers(d_model: float) -> float:
    """Layers the aspect-ratio rule prefers at width ``d_model`` (continuous; see the anchor table)."""
    x = math.log(d_model)
    if x <= _LOG_D[0]:
        return math.exp(_LOG_L[0] + x - _LOG_D[0])  # constant aspect ratio below the smallest anchor
    if x >= _LOG_D[-1]:
        return math.exp(_LOG_L[-1] + x - _LOG_D[-1])  # ... and above the largest
    return float(math.exp(np.interp(x, _LOG_D, _LOG_L)))


def head_layout(d_model: int) -> tuple[int, int, int] | None:
    """(heads, kv_heads, head_dim) for ``d_model`` under the conventions above; None if it has no valid layout."""
    if d_model % 128:
        return None
    head_dim = 64 if d_model < 1024 else 128
    heads = d_model // head_dim
    if heads < 16:
        return heads, heads, head_dim
    if heads % 8:
        return None
    return heads, 8, head_dim


def ffn_width(d_model: int, ffn_type: str = "swiglu") -> int:
    """SwiGLU: 8/3·d_model rounded up to a multiple of 256 (Llama: 4096 -> 11008); GELU: 4·d_model."""
    if ffn_type == "gelu":
        return 4 * d_model
    return -(-8 * d_model // (3 * 256)) * 256


@lru_cache(maxsize=4096)
def _preferred_at(d_model: int) -> float:
    return preferred_layers(d_model)


@lru_cache(maxsize=4096)
def make_shape(d_model: int, layers: int, *, experts: int = 1, top_k: int = 1, vocab: int = LLAMA3_VOCAB,
               seq_len: int = 4096, ffn_type: Literal["swiglu", "gelu"] = "swiglu",
               tied_embeddings: bool = False) -> ModelShape:
    """The shape the conventions give for (d_model, layers) (memoized: the shape is frozen)."""
    layout = head_layout(d_model)
    if layout is None:
        raise ValueError(f"d_model {d_model} has no head layout (multiple of 128; of 1024 from 2048 up)")
    heads, kv_heads, head_dim = layout
    return ModelShape(layers=layers, d_model=d_model, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                      ffn_hidden=ffn_width(d_model, ffn_type), ffn_type=ffn_type, vocab=vocab,
                      tied_embeddings=tied_embeddings, experts=experts, top_k=top_k if experts > 1 else 1,
                      dense_layers=0, seq_len=seq_len)


class ShapeFit(BaseModel):
    """A rounded shape and how well it matches the requested count."""

    model_config = ConfigDict(frozen=True)

    shape: ModelShape
    count: Count
    target: float = Field(description="requested parameter count")
    achieved: int = Field(description="the shape's parameter count of the requested kind")
    rel_error: float = Field(description="(achieved - target) / target")
    aspect_ratio: float = Field(description="d_model / layers")
    preferred_layers: float = Field(description="layers the aspect-ratio rule prefers at this d_model")


@lru_cache(maxsize=4096)
def _line(d_model: int, count: str, experts: int, top_k: int, vocab: int, seq_len: int, ffn_type: str,
          tied: bool) -> tuple[int, int]:
    """(intercept, slope) of the count in layers at width d_model: count(L) = intercept + slope·L exactly."""
    kw = dict(experts=experts, top_k=top_k, vocab=vocab, seq_len=seq_len, ffn_type=ffn_type, tied_embeddings=tied)
    counter = COUNTERS[count]
    one = counter(make_shape(d_model, 1, **kw))
    two = counter(make_shape(d_model, 2, **kw))
    return one - (two - one), two - one


def fit_shape(params: float, *, count: Count = "total", experts: int = 1, top_k: int = 1,
              vocab: int = LLAMA3_VOCAB, seq_len: int = 4096, ffn_type: Literal["swiglu", "gelu"] = "swiglu",
              tied_embeddings: bool = False) -> ShapeFit:
    """Search (d_model, layers) for a shape whose ``count`` of params is close to ``params`` (see "Search").

    Every valid width is tried (multiples of 128; of 1024 from 2048 up, see ``head_layout``). Why d_model is
    monotone: m(d, T) = log(L*(d, T) / preferred_layers(d)) decreases in d and increases in the target T, and
    faster for wider d (dm/dlogT = T / (T - intercept), larger with larger embeddings), so once a wider width
    overtakes a narrower one it stays ahead as T grows -- except where a hard preference (MIN_LAYERS,
    MAX_REL_ERROR) decides, which happens only for embedding-bound targets (e.g. MoE with many experts below
    ~1e9 total params). Depth is not monotone on a fine grid: it drops when the width steps up.
    """
    if count not in COUNTERS:
        raise ValueError(f"count must be one of {sorted(COUNTERS)}, got {count!r}")
    if type(params) is not float or not 0.0 < params < math.inf:   # a positive finite float passes the check
        if isinstance(params, bool) or not (isinstance(params, numbers.Real) and math.isfinite(params)
                                            and params > 0):
            raise ValueError(f"params must be a positive finite number, got {params!r}")
    if experts < 1 or top_k < 1 or top_k > experts:
        raise ValueError(f"need 1 <= top_k <= experts, got experts={experts}, top_k={top_k}")
    if experts == 1:
        top_k = 1
    return _fit(float(params), count, experts, top_k, vocab, seq_len, ffn_type, tied_embeddings)


def _widths_all() -> list[int]:
    """Every width the search tries, in order: multiples of 128 below 2048, then of 1024, up to _MAX_D_MODEL."""
    out, d = [], 128
    while d <= _MAX_D_MODEL:
        out.append(d)
        d += 128 if d < 2048 else 1024
    return out


_WIDTHS = _widths_all()


class _Widths(NamedTuple):
    """Per width of _WIDTHS for one (count, experts, top_k, vocab, seq_len, ffn_type, tied) spec (read-only
    arrays, shared by every caller and thread)."""

    d_model: np.ndarray      # int64
    intercept: np.ndarray    # int64: count(L) = intercept + slope·L
    slope: np.ndarray        # int64
    at_min: list[int]        # the count at MIN_LAYERS, as Python ints (compared with the target exactly)
    at_min_f: np.ndarray     # ... as floats
    preferred: np.ndarray    # preferred layers (the aspect-ratio rule)


@lru_cache(maxsize=64)
def _width_table(spec: tuple) -> _Widths:
    lines = [_line(d, *spec) for d in _WIDTHS]
    at_min = [a + b * MIN_LAYERS for a, b in lines]
    table = _Widths(np.array(_WIDTHS, dtype=np.int64), np.array([a for a, _ in lines], dtype=np.int64),
                    np.array([b for _, b in lines], dtype=np.int64), at_min,
                    np.array([float(v) for v in at_min]), np.array([_preferred_at(d) for d in _WIDTHS]))
    for a in (table.d_model, table.intercept, table.slope, table.at_min_f, table.preferred):
        a.setflags(write=False)
    return table


@lru_cache(maxsize=4096)
def _fit(target: float, count: str, experts: int, top_k: int, vocab: int, seq_len: int, ffn_type: str,
         tied_embeddings: bool) -> ShapeFit:
    """``fit_shape`` on checked arguments (memoized: the fit is frozen and depends only on these).

    The search of "Search" over every width at once: each width's continuous depth, its nearer whole depth and
    rank (fewer than MIN_LAYERS, the error beyond MAX_REL_ERROR, |log(depth / preferred)|), the widths tried
    before the first one whose MIN_LAYERS count overshoots once a width of MIN_LAYERS or more was seen, and
    the first least rank among them (the scalar loop: tests/test_rounding.py's ``_fit_loop``)."""
    spec = (count, experts, top_k, vocab, seq_len, ffn_type, tied_embeddings)
    w = _width_table(spec)
    d, intercept, slope = w.d_model, w.intercept, w.slope
    x = (target - intercept) / slope  # continuous depth that hits the target (int64 -> float64 as Python does)
    lo, hi = np.maximum(1.0, np.floor(x)), np.maximum(1.0, np.ceil(x))
    if target < 2.0**61:  # counts near the target are exact in int64, as Python's ints (rounded once to float)
        lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    else:  # beyond any model (and int64): counts in float64
        intercept, slope = intercept.astype(float), slope.astype(float)
    miss_lo = np.abs(intercept + slope * lo - target)
    miss_hi = np.abs(intercept + slope * hi - target)
    # min((lo, hi), key=(n < MIN_LAYERS, miss)): hi only where its key is strictly smaller
    take_hi = ((hi < MIN_LAYERS) < (lo < MIN_LAYERS)) | (((hi < MIN_LAYERS) == (lo < MIN_LAYERS)) & (miss_hi < miss_lo))
    layers = np.where(take_hi, hi, lo)
    short = layers < MIN_LAYERS
    beyond = np.maximum(0.0, np.where(take_hi, miss_hi, miss_lo) / target - MAX_REL_ERROR)  # |err| past the bound
    # the loop stops at the first width whose MIN_LAYERS count overshoots, once a deep enough width came before
    top = target * (1 + MAX_REL_ERROR)
    seen_deep = np.concatenate(([False], np.logical_or.accumulate(~short)[:-1]))
    over = w.at_min_f > top   # exact where float(count) != top (the count is within half an ulp of its float)
    for i in np.flatnonzero(w.at_min_f == top).tolist():
        over[i] = w.at_min[i] > top   # a Python int and float compare exactly
    over &= seen_deep
    stop = int(np.argmax(over)) if over.any() else len(d)
    idx = np.arange(stop)
    for key in (short, beyond):   # the rank's first two keys, most significant first
        idx = idx[key[idx] == key[idx].min()]
    # |log(depth / preferred)| with math.log as the loop took it, on the widths numpy's log puts within 1e-12 of
    # the least (numpy's log is within an ulp or two of math.log)
    ratio = np.maximum(x[idx], 1e-3) / w.preferred[idx]
    near = np.abs(np.log(ratio))
    keep = near <= near.min() * (1 + 1e-12) + 1e-15
    idx, third = idx[keep], [abs(math.log(r)) for r in ratio[keep].tolist()]
    best = int(idx[third.index(min(third))])
    d_best, layers_best = int(d[best]), int(layers[best])
    shape = make_shape(d_best, layers_best, experts=experts, top_k=top_k, vocab=vocab, seq_len=seq_len,
                       ffn_type=ffn_type, tied_embeddings=tied_embeddings)
    achieved = int(intercept[best]) + int(slope[best]) * layers_best   # the count is exactly linear in layers
    return ShapeFit.model_construct(shape=shape, count=count, target=target, achieved=achieved,   # checked values
                                    rel_error=(achieved - target) / target, aspect_ratio=d_best / layers_best,
                                    preferred_layers=_preferred_at(d_best))


def round_shape(params: float, *, count: Count = "total", experts: int = 1, top_k: int = 1,
                vocab: int = LLAMA3_VOCAB, seq_len: int = 4096, ffn_type: Literal["swiglu", "gelu"] = "swiglu",
                tied_embeddings: bool = False) -> ModelShape:
    """A concrete decoder whose ``count`` of params is closest to ``params`` (``fit_shape(...).shape``)."""
    return fit_shape(params, count=count, experts=experts, top_k=top_k, vocab=vocab, seq_len=seq_len,
                     ffn_type=ffn_type, tied_embeddings=tied_embeddings).shape
