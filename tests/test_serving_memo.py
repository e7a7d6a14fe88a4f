"""Memoized serving model (issue 14): the memoized paths return exactly what the computation without the
caches returns, the caches are bounded, a hit never hands out shared mutable state, two accelerators with one
id are not confused, and the program's terms without the error sample are the same terms."""

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cost_models.architecture import (
    ModelShape,
    active_non_embedding_params,
    expert_params_per_layer,
    total_params,
)
from cost_models.catalog import load_catalog
from cost_models.serving import (
    ServingConfig,
    Workload,
    kv_elements_per_token_per_device,
    moe_experts_touched,
    shape_features,
    shape_numbers,
)
from cost_models.serving_terms import FIXED_EXPONENTS, Monomial, fit_features, fit_monomial
from planner import serving as S
from planner.serving import ServingDemand, choose_serving, program_serving, program_serving_terms, rounded_shape

H100 = load_catalog().get("h100")
SHAPES = [
    ModelShape(layers=80, d_model=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000),  # GQA
    ModelShape(layers=32, d_model=4096, heads=32, ffn_hidden=11008, vocab=32000, tied_embeddings=True),  # MHA
    ModelShape(layers=32, d_model=4096, heads=32, kv_heads=8, ffn_hidden=14336, vocab=32000, experts=8, top_k=2),
    ModelShape(layers=61, d_model=7168, heads=128, head_dim=128, ffn_hidden=18432, vocab=129280, experts=256,
               top_k=8, shared_experts=1, moe_ffn_hidden=2048, dense_layers=3, q_lora_rank=1536, kv_lora_rank=512,
               qk_rope_head_dim=64),  # MLA + MoE
    rounded_shape(3e9), rounded_shape(7e10), rounded_shape(6e9, count="active", experts=8),
]
CONFIGS = [ServingConfig(tensor_parallel=t, batch=b) for t, b in ((1, 1), (2, 37), (8, 1024), (16, 5))]
WORKLOADS = [Workload(), Workload(prompt_tokens=7, output_tokens=3000)]


def reference_features(shape: ModelShape, config: ServingConfig, workload: Workload) -> dict[str, float]:
    """``shape_features`` as it was before the memo: every count from the architecture functions."""

    def read(tokens: float) -> float:
        r = float(total_params(shape))
        if not shape.tied_embeddings:
            r -= shape.vocab * shape.d_model
        if shape.is_moe:
            untouched = shape.experts - moe_experts_touched(shape.experts, shape.top_k, tokens)
            r -= shape.moe_layers * untouched * expert_params_per_layer(shape)
        return r

    return {
        "weight_params": float(total_params(shape)),
        "read_params": read(config.batch),
        "prefill_read_params": read(workload.prompt_tokens),
        "matmul_params": float(active_non_embedding_params(shape) + shape.vocab * shape.d_model),
        "kv_elements": kv_elements_per_token_per_device(shape, config.tensor_parallel),
        "attn_coef": 4.0 * shape.layers * shape.d_attn,
        "layers": float(shape.layers),
        "layer_width": float(shape.layers * shape.d_model),
    }


def test_shape_features_equal_the_unmemoized_counts():
    for shape in SHAPES:
        for config in CONFIGS:
            for work in WORKLOADS:
                assert shape_features(shape, config, work) == reference_features(shape, config, work)
        assert shape_numbers(shape) == shape_numbers.__wrapped__(shape)  # hit == computed


def test_shape_numbers_cache_is_bounded():
    maxsize = shape_numbers.cache_info().maxsize
    assert maxsize is not None and maxsize <= 4096
    for layers in range(1, maxsize + 50):
        shape_numbers(ModelShape(layers=layers, d_model=128, heads=2, ffn_hidden=256, vocab=1000))
    assert shape_numbers.cache_info().currsize <= maxsize
    for memo in (S._choose_memo, S._terms_memo):
        assert memo.cache_info().maxsize == S.MEMO_SIZE


def reference_fit(shape_of, config, workload, n_lo, n_hi, points=25, anchor=None, exponents=None):
    """``fit_features`` as it was before: every slope through ``fit_monomial``, then anchored."""
    ns = np.geomspace(n_lo, n_hi, points) if n_hi > n_lo else np.array([n_lo])
    rows = [reference_features(shape_of(float(n)), config, workload) for n in ns]
    if len(ns) == 1 and exponents is None:
        fits = {k: Monomial(coef=v, exponent=0.0) for k, v in rows[0].items()}
    else:
        fits = {k: fit_monomial(ns, [r[k] for r in rows], None if exponents is None else exponents[k])
                for k in rows[0]}
    if anchor is None:
        return fits
    at = reference_features(shape_of(float(anchor)), config, workload)
    out = {}
    for k, m in fits.items():
        coef = at[k] / anchor**m.exponent
        values = np.array([r[k] for r in rows])
        err = float(np.abs(coef * ns**m.exponent / values - 1.0).max())
        out[k] = Monomial(coef=coef, exponent=m.exponent, max_rel_error=err)
    return out


@pytest.mark.parametrize("anchor", [None, 2.2e10])
@pytest.mark.parametrize("exponents", [None, FIXED_EXPONENTS])
def test_fit_features_equal_the_previous_fit(anchor, exponents):
    cfg, work = ServingConfig(tensor_parallel=4, batch=64), Workload()
    for lo, hi in ((1e10, 1e11), (2e10, 2e10)):
        a = None if anchor is None else min(max(anchor, lo), hi)
        got = fit_features(rounded_shape, cfg, work, lo, hi, anchor=a, exponents=exponents)
        assert got == reference_fit(rounded_shape, cfg, work, lo, hi, anchor=a, exponents=exponents)
    if anchor is not None and exponents is not None:  # without the error sample: the same monomials, NaN error
        quick = fit_features(rounded_shape, cfg, work, 1e10, 1e11, anchor=anchor, exponents=exponents,
                             measure_error=False)
        full = fit_features(rounded_shape, cfg, work, 1e10, 1e11, anchor=anchor, exponents=exponents)
        assert all(math.isnan(m.max_rel_error) for m in quick.values())
        assert {k: (m.coef, m.exponent) for k, m in quick.items()} == {k: (m.coef, m.exponent)
                                                                       for k, m in full.items()}


DEMANDS = [ServingDemand(tokens=1e12), ServingDemand(tokens=1e13, tpot_ms=50.0),
           ServingDemand(tokens=1e12, input_tokens=1e14, prompt_tokens=4000, output_tokens=200, ttft_ms=900.0),
           ServingDemand(tpot_ms=20.0)]


def test_choose_serving_memo_returns_the_computed_choice():
    for shape in SHAPES:
        for demand in DEMANDS:
            for precision in ("bf16", "fp8"):
                try:
                    computed = S._choose(shape, H100, demand, precision, None, 2.5, None, 1024, None)
                except Exception as e:  # noqa: BLE001 -- the memoized call must raise the same
                    with pytest.raises(type(e)):
                        choose_serving(shape, H100, demand, precision=precision, price=2.5)
                    continue
                first = choose_serving(shape, H100, demand, precision=precision, price=2.5)
                again = choose_serving(shape, H100, demand, precision=precision, price=2.5)  # a hit
                assert first == computed and again == computed


def test_choose_serving_hit_hands_out_its_own_binding():
    shape, demand = SHAPES[0], DEMANDS[1]
    a = choose_serving(shape, H100, demand, price=2.5)
    a.binding.append("mutated")
    b = choose_serving(shape, H100, demand, price=2.5)
    assert "mutated" not in b.binding


def test_same_id_different_accelerator_is_not_confused():
    small = H100.model_copy(update={"memory_gb": 40.0, "memory_bandwidth_tbs": 2.0})
    shape, demand = SHAPES[0], DEMANDS[0]
    big_choice = choose_serving(shape, H100, demand, price=2.5)
    small_choice = choose_serving(shape, small, demand, price=2.5)
    assert small_choice == S._choose(shape, small, demand, "bf16", None, 2.5, None, 1024, None)
    assert small_choice != big_choice


def test_accelerator_key_names_every_field():
    """Any field of the accelerator changes the memo key (the key cannot miss a field the serving model reads)."""
    changes = {"scaleout_bandwidth_gbs": 100.0, "scaleup_bandwidth_gbs": 300.0, "devices_per_node": 4,
               "tdp_w": 123.0, "peak_tflops": {**H100.peak_tflops, "bf16": 500.0}}
    keys = {S.accelerator_key(H100)} | {S.accelerator_key(H100.model_copy(update={k: v})) for k, v in changes.items()}
    assert len(keys) == 1 + len(changes)
    assert S.accelerator_key(H100) == S.accelerator_key(H100.model_copy())


def test_program_serving_terms_memo_returns_the_computed_terms():
    demand = DEMANDS[2]
    for cfg in CONFIGS[:3]:
        for kw in (dict(), dict(anchor=3e10), dict(anchor=3e10, fixed_exponents=True),
                   dict(anchor=3e10, fixed_exponents=True, measure_error=False)):
            memo = program_serving_terms(1e10, 1e11, cfg, demand, accelerator=H100, price=2.3, **kw)
            again = program_serving_terms(1e10, 1e11, cfg, demand, accelerator=H100, price=2.3, **kw)
            computed = S._terms(1e10, 1e11, cfg, demand.workload, H100, 2.3, "total", 1, 25, kw.get("anchor"),
                                kw.get("fixed_exponents", False), None, kw.get("measure_error", True))
            for t in (memo, again):
                d, c = t.model_dump(), computed.model_dump()
                nan = {k for k, v in c["max_rel_error"].items() if math.isnan(v)}
                assert {k for k, v in d["max_rel_error"].items() if math.isnan(v)} == nan
                d["max_rel_error"] = {k: v for k, v in d["max_rel_error"].items() if k not in nan}
                c["max_rel_error"] = {k: v for k, v in c["max_rel_error"].items() if k not in nan}
                assert d == c


def test_program_serving_without_the_error_sample_has_the_same_terms():
    demand = DEMANDS[1]
    for anchor in (1.3e9, 9.04e9, 3.7e10):
        kw = dict(accelerator=H100, price=2.3, fixed_exponents=True)
        full = program_serving(anchor, demand, **kw).model_dump()
        quick = program_serving(anchor, demand, measure_error=False, **kw).model_dump()
        assert all(math.isnan(v) for v in quick["terms"].pop("max_rel_error").values())
        full["terms"].pop("max_rel_error")
        assert quick == full


def test_memo_from_threads_matches_the_computation():
    S._choose_memo.cache_clear()
    S._terms_memo.cache_clear()
    jobs = [(shape, demand) for shape in SHAPES[4:] for demand in DEMANDS[:3]] * 4

    def one(job):
        shape, demand = job
        return choose_serving(shape, H100, demand, price=2.0)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(one, jobs))
    for (shape, demand), choice in zip(jobs, got, strict=True):
        assert choice == S._choose(shape, H100, demand, "bf16", None, 2.0, None, 1024, None)


def test_plan_with_serving_unchanged_by_the_caches():
    from planner import optimize

    req = dict(objective="cost", target_loss=2.2, inference_tokens=1e13, tpot_ms=50, serve_precision="fp8",
               gpu="h100")
    warm = optimize(**req).model_dump()
    for memo in (S._choose_memo, S._terms_memo, shape_numbers):
        memo.cache_clear()
    assert optimize(**req).model_dump() == warm
