"""Tests for the accelerator catalog (cost_models/catalog.toml + cost_models/catalog.py).

Expected numbers are typed in from /work/shared/reference/hardware.md; each comment names the table
and row they come from (§1 = compute table, §2 = memory/interconnect table, §3 "Price notes" = suggested
default prices).
"""

from __future__ import annotations

import math
import re

import pytest

from cost_models.catalog import PRICE_TIERS, Catalog, CatalogError, load_catalog

REQUIRED_IDS = [
    "v100", "a100-40gb", "a100-80gb", "a10g", "l4", "l40s", "h100", "h100-pcie", "h100-nvl", "h200", "h800",
    "h20", "b200", "gb200", "b300", "gb300", "mi250x", "mi300x", "mi325x", "mi355x", "tpu-v4", "tpu-v5e",
    "tpu-v5p", "tpu-v6e", "gaudi2", "gaudi3", "trn1", "trn2",
]  # fmt: skip

HOPPER_BLACKWELL = ["h100", "h100-pcie", "h100-nvl", "h200", "h800", "h20", "b200", "gb200", "b300", "gb300"]

STATUSES = {"vendor pricing page", "secondary source", "recalled, unverified", "estimate"}  # words, not codes


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


# ------------------------------------------------------------------------------------------ coverage


def test_catalog_size_and_ids(cat):
    assert len(cat.ids()) >= 25
    missing = [i for i in REQUIRED_IDS if i not in cat.ids()]
    assert not missing, missing


def test_every_accelerator_is_complete(cat):
    for acc in cat.accelerators.values():
        assert "bf16" in acc.peak_tflops or "fp16" in acc.peak_tflops, acc.id
        assert acc.peak_flops("fp16") > 1e12, acc.id
        assert acc.memory_gb > 0 and acc.memory_bytes == acc.memory_gb * 1e9, acc.id
        assert acc.memory_bandwidth_tbs > 0, acc.id
        assert acc.devices_per_node >= 1, acc.id
        assert acc.spec_source and acc.spec_status, acc.id
        p = acc.price()
        assert p.tier == acc.default_price_tier and p.usd_per_hour > 0, acc.id


def test_ids_and_aliases_are_unique_lowercase(cat):
    seen: dict[str, str] = {}
    for acc in cat.accelerators.values():
        for name in (acc.id, *acc.aliases):
            assert name == name.lower().strip(), name
            assert name not in seen, f"{name} used by {seen.get(name)} and {acc.id}"
            seen[name] = acc.id


# ------------------------------------------------------------------------------- spot checks (§1, §2)

SPOT = [
    # (id, dtype, dense TFLOP/s, hardware.md row)
    ("h100", "bf16", 989.4, "§1 NVIDIA H100 SXM5 80GB"),
    ("h100", "fp8", 1978.9, "§1 NVIDIA H100 SXM5 80GB"),
    ("h100", "tf32", 494.7, "§1 NVIDIA H100 SXM5 80GB"),
    ("h100", "fp32", 66.9, "§1 NVIDIA H100 SXM5 80GB"),
    ("h100-pcie", "bf16", 756, "§1 NVIDIA H100 PCIe 80GB"),
    ("h100-nvl", "bf16", 835.5, "§1 NVIDIA H100 NVL 94GB"),
    ("h800", "bf16", 989.4, "§1 NVIDIA H800 SXM5 (prefer H100 SXM values)"),
    ("h800", "fp32", 66.9, "§1 NVIDIA H800 SXM5 (not Epoch's 59.3)"),
    ("h20", "bf16", 148, "§1 NVIDIA H20 (96GB)"),
    ("a100-80gb", "bf16", 312, "§1 NVIDIA A100 80GB SXM4"),
    ("a100-40gb", "tf32", 156, "§1 NVIDIA A100 40GB SXM4"),
    ("v100", "fp16", 125, "§1 NVIDIA V100 SXM2 32GB"),
    ("l4", "bf16", 121, "§1 NVIDIA L4"),
    ("l40s", "bf16", 362, "§1 NVIDIA L40S"),
    ("b200", "bf16", 2250, "§1 NVIDIA B200 (HGX, 1000 W)"),
    ("b200", "fp4", 9000, "§1 NVIDIA B200 (HGX, 1000 W)"),
    ("b200", "fp32", 75, "§1 NVIDIA B200 (NVIDIA 75, not Epoch 62)"),
    ("gb200", "bf16", 2500, "§1 NVIDIA GB200 (per GPU, 1200 W)"),
    ("gb200", "fp32", 80, "§1 NVIDIA GB200 (NVIDIA 80, not Epoch 90)"),
    ("b300", "fp4", 13500, "§1 NVIDIA B300 (Epoch 13.5 PF without sparsity)"),
    ("gb300", "fp4", 15000, "§1 NVIDIA GB300 (per GPU)"),
    ("mi250x", "bf16", 383, "§1 AMD MI250X (OAM, 2 GCDs)"),
    ("mi300x", "bf16", 1307.4, "§1 AMD MI300X"),
    ("mi300x", "fp8", 2614.9, "§1 AMD MI300X"),
    ("mi325x", "bf16", 1307.4, "§1 AMD MI325X"),
    ("mi355x", "bf16", 2516.6, "§1 AMD MI355X (1400 W)"),
    ("mi355x", "fp8", 5033, "§1 AMD MI355X (not the MI350X 4,600)"),
    ("tpu-v4", "bf16", 275, "§1 Google TPU v4"),
    ("tpu-v5e", "bf16", 197, "§1 Google TPU v5e"),
    ("tpu-v5p", "bf16", 459, "§1 Google TPU v5p"),
    ("tpu-v6e", "bf16", 918, "§1 Google TPU v6e (Trillium)"),
    ("gaudi2", "bf16", 432, "§1 Intel Gaudi 2 (Intel slide 432, not Epoch 450)"),
    ("gaudi2", "fp8", 865, "§1 Intel Gaudi 2"),
    ("gaudi3", "bf16", 1835, "§1 Intel Gaudi 3 (Intel 1,835, not Epoch 1,678)"),
    ("trn1", "bf16", 190, "§1 AWS Trainium (Trn1)"),
    ("trn2", "bf16", 667, "§1 AWS Trainium2 (Trn2)"),
    ("trn2", "fp8", 1299, "§1 AWS Trainium2 (Trn2)"),
]


@pytest.mark.parametrize(("gid", "dtype", "tflops", "row"), SPOT, ids=[f"{s[0]}-{s[1]}" for s in SPOT])
def test_peak_spot_checks(cat, gid, dtype, tflops, row):
    assert cat.get(gid).peak_tflops[dtype] == pytest.approx(tflops), row
    assert cat.get(gid).peak_flops(dtype) == pytest.approx(tflops * 1e12), row


MEM = [
    # (id, memory_gb, bandwidth TB/s, scale-up GB/s or None, devices_per_node, hardware.md §2 row)
    ("h100", 80, 3.35, 900, 8, "§2 H100 SXM5"),
    ("h200", 141, 4.8, 900, 8, "§2 H200 SXM"),
    ("h800", 80, 3.35, 400, 8, "§2 H800 SXM5 (NVLink cut to 400)"),
    ("h20", 96, 4.0, 900, 8, "§2 H20"),
    ("a100-40gb", 40, 1.555, 600, 8, "§2 A100 40GB SXM4"),
    ("a100-80gb", 80, 2.039, 600, 8, "§2 A100 80GB SXM4"),
    ("v100", 32, 0.90, 300, 8, "§2 V100 SXM2 32GB"),
    ("l4", 24, 0.300, None, 8, "§2 L4 (no NVLink)"),
    ("a10g", 24, 0.600, None, 8, "§2 A10G (no NVLink)"),
    ("l40s", 48, 0.864, None, 8, "§2 L40S (no NVLink)"),
    ("b200", 180, 7.7, 1800, 8, "§2 B200 (HGX) 180 usable"),
    ("gb200", 186, 8.0, 1800, 72, "§2 GB200 (per GPU), NVL72 domain"),
    ("mi300x", 192, 5.3, 896, 8, "§2 MI300X"),
    ("mi325x", 256, 6.0, 896, 8, "§2 MI325X"),
    ("tpu-v5p", 95, 2.765, 1200, 4, "§2 TPU v5p"),
    ("tpu-v5e", 16, 0.819, 400, 8, "§2 TPU v5e"),
    ("tpu-v6e", 32, 1.64, 800, 8, "§2 TPU v6e"),
    ("gaudi3", 128, 3.7, 1200, 8, "§2 Gaudi 3"),
    ("trn2", 96, 2.9, 1280, 16, "§2 Trainium2 (link R)"),
]


@pytest.mark.parametrize(("gid", "mem", "bw", "link", "node", "row"), MEM, ids=[m[0] for m in MEM])
def test_memory_spot_checks(cat, gid, mem, bw, link, node, row):
    acc = cat.get(gid)
    assert acc.memory_gb == pytest.approx(mem), row
    assert acc.memory_bandwidth_tbs == pytest.approx(bw), row
    assert acc.scaleup_bandwidth_gbs == (None if link is None else pytest.approx(link)), row
    assert acc.devices_per_node == node, row


def test_tdp_spot_checks(cat):
    assert cat.get("h100").tdp_w == 700  # §2 H100 SXM5
    assert cat.get("b200").tdp_w == 1000  # §2 B200 (HGX)
    assert cat.get("mi355x").tdp_w == 1400  # §2 MI355X
    assert cat.get("tpu-v5p").tdp_w == 540  # §2 TPU v5p: Epoch-derived ~540
    assert cat.get("tpu-v4").tdp_w == 340  # §4 note 7: Epoch-derived v4 TDP
    assert cat.get("tpu-v5e").tdp_w is None  # §2 TPU v5e: not disclosed
    assert cat.get("trn1").tdp_w is None  # §2 Trainium (Trn1): n/p


def test_v100_has_fp16_but_no_bf16(cat):
    v100 = cat.get("v100")
    assert "bf16" not in v100.peak_tflops
    assert v100.peak_flops("fp16") == pytest.approx(125e12)
    with pytest.raises(CatalogError) as ei:
        v100.peak_flops("bf16")
    assert ei.value.field == "precision" and "fp16" in str(ei.value)


def test_fp16_falls_back_to_bf16_rate(cat):
    assert cat.get("h100").peak_flops("fp16") == cat.get("h100").peak_flops("bf16")
    assert cat.get("h100").peak_flops() == pytest.approx(989.4e12)  # default dtype is bf16


def test_unsupported_dtype_raises(cat):
    with pytest.raises(CatalogError) as ei:
        cat.get("a100-80gb").peak_flops("fp8")  # §1: A100 FP8 n/a
    assert ei.value.field == "precision"
    assert "bf16" in str(ei.value)


# -------------------------------------------------------------------------------------- invariants


def test_fp32_below_half_precision_everywhere(cat):
    for acc in cat.accelerators.values():
        t = acc.peak_tflops
        half = t.get("bf16", t.get("fp16"))
        if "fp32" in t:
            assert t["fp32"] < half, acc.id
        if "tf32" in t:
            assert t["tf32"] <= half, acc.id


def test_lower_precision_is_never_slower(cat):
    order = ["bf16", "fp8", "fp6", "fp4"]
    for acc in cat.accelerators.values():
        t = dict(acc.peak_tflops)
        t.setdefault("bf16", t.get("fp16"))
        rates = [t[d] for d in order if d in t]
        assert rates == sorted(rates), acc.id


@pytest.mark.parametrize("gid", HOPPER_BLACKWELL)
def test_fp8_is_twice_bf16_on_hopper_and_blackwell(cat, gid):
    t = cat.get(gid).peak_tflops
    assert t["fp8"] == pytest.approx(2 * t["bf16"], rel=1e-3)


@pytest.mark.parametrize("gid", ["b200", "gb200", "b300", "gb300"])
def test_blackwell_fp6_equals_fp8(cat, gid):
    t = cat.get(gid).peak_tflops
    assert t["fp6"] == t["fp8"]


def test_fp4_is_twice_fp8_on_b200_gb200_and_more_on_blackwell_ultra(cat):
    for gid in ("b200", "gb200"):  # §1: FP4 = 2 x FP8
        t = cat.get(gid).peak_tflops
        assert t["fp4"] == pytest.approx(2 * t["fp8"])
    for gid in ("b300", "gb300"):  # §4 note 3: Blackwell Ultra raises dense FP4 to 13.5-15 PF
        t = cat.get(gid).peak_tflops
        assert t["fp4"] >= 3 * t["fp8"]


SPARSE = [
    # (id, dtype, a SPARSE figure that must not have been stored as dense; hardware.md row / §4 note 1)
    ("h100", "bf16", 1978.9),  # §1 H100 SXM5: sparse BF16
    ("h100", "fp8", 3957.8),  # §1 H100 SXM5: sparse FP8
    ("h100-pcie", "bf16", 1513),  # §1 H100 PCIe: datasheet sparse
    ("a100-80gb", "bf16", 624),  # §1 A100: 312/624 sparse
    ("l40s", "bf16", 733),  # §1 L40S: 362/733*
    ("b200", "bf16", 4500),  # §1 B200: sparse BF16 4.5 PF
    ("b200", "fp4", 18000),  # §1 B200: sparse FP4 18 PF
    ("gb200", "fp4", 20000),  # §1 GB200: sparse FP4 20 PF
    ("mi300x", "bf16", 2614.9),  # §4 note 1: codesota "2,615 FP16"
    ("mi300x", "fp8", 5229.8),  # §1 MI300X: sparse FP8
    ("mi355x", "fp4", 20000),  # §1 MI355X: 20 PF "with sparsity"
    ("trn2", "fp8", 2563),  # §1 Trn2: 2,563 sparse
]


@pytest.mark.parametrize(("gid", "dtype", "sparse"), SPARSE, ids=[f"{s[0]}-{s[1]}" for s in SPARSE])
def test_dense_values_are_not_sparse_figures(cat, gid, dtype, sparse):
    assert cat.get(gid).peak_tflops[dtype] != pytest.approx(sparse, rel=1e-3)
    assert cat.get(gid).peak_tflops[dtype] == pytest.approx(sparse / 2, rel=0.02)


def test_mi355x_uses_its_own_fp8_not_mi350x(cat):
    assert cat.get("mi355x").peak_tflops["fp8"] != 4600  # §1 AMD MI350X row / §4 note 4


def test_newer_parts_have_more_bandwidth(cat):
    bw = {i: cat.get(i).memory_bandwidth_tbs for i in ("v100", "a100-80gb", "h100", "h200", "b200")}
    assert bw["v100"] < bw["a100-80gb"] < bw["h100"] < bw["h200"] < bw["b200"]


# ------------------------------------------------------------------------------------------- prices

SUGGESTED_DEFAULTS = {
    # hardware.md §3 "Price notes" -> "Suggested defaults (USD/device-h, 2025-26)"
    "v100": 0.5, "a100-40gb": 1.2, "a100-80gb": 1.5, "a10g": 1.0, "l4": 0.7, "l40s": 1.2, "h100": 2.3,
    "h200": 3.0, "b200": 4.0, "gb200": 5.0, "mi300x": 2.0, "mi325x": 2.2, "tpu-v5e": 1.2, "tpu-v5p": 4.2,
    "tpu-v6e": 2.7, "trn1": 1.3, "trn2": 2.8, "gaudi2": 1.3, "gaudi3": 2.0,
}  # fmt: skip


@pytest.mark.parametrize("gid", sorted(SUGGESTED_DEFAULTS))
def test_default_price_is_hardware_md_suggested_default(cat, gid):
    assert cat.get(gid).price().usd_per_hour == pytest.approx(SUGGESTED_DEFAULTS[gid])


def test_price_entries_are_well_formed(cat):
    for acc in cat.accelerators.values():
        tiers = [p.tier for p in acc.prices]
        assert len(tiers) == len(set(tiers)), f"{acc.id}: duplicate tier"
        for p in acc.prices:
            assert p.tier in PRICE_TIERS
            assert p.status in STATUSES, f"{acc.id}/{p.tier}: status {p.status!r}"
            assert re.fullmatch(r"20\d\d(-(0[1-9]|1[0-2]))?", p.date), f"{acc.id}/{p.tier}: date {p.date}"
            assert math.isfinite(p.usd_per_hour) and 0.05 < p.usd_per_hour < 50, acc.id
            if p.low is not None:
                assert p.low <= p.usd_per_hour, f"{acc.id}/{p.tier}: low above price"
            if p.high is not None:
                assert p.usd_per_hour <= p.high, f"{acc.id}/{p.tier}: high below price"
            if p.status == "estimate":
                assert len(p.source) > 20, f"{acc.id}/{p.tier}: estimate must explain its rule"


def test_hyperscaler_on_demand_is_dearer_than_neocloud(cat):
    for acc in cat.accelerators.values():
        tiers = {p.tier: p.usd_per_hour for p in acc.prices}
        if "hyperscaler" in tiers and "gpu_cloud" in tiers:
            assert tiers["hyperscaler"] >= tiers["gpu_cloud"], acc.id


def test_specific_prices(cat):
    h100 = cat.get("h100")
    assert h100.price("hyperscaler").usd_per_hour == pytest.approx(6.88)  # §3 H100 SXM: codesota AWS $6.88
    assert h100.price("committed").usd_per_hour == pytest.approx(2.35)  # §3 H100 SXM: SemiAnalysis Mar 2026
    assert cat.get("a100-40gb").price("committed").usd_per_hour == pytest.approx(1.844)  # §3 Capacity Block
    assert cat.get("a100-40gb").price("committed").status == "vendor pricing page"
    assert cat.get("trn1").price("committed").usd_per_hour == pytest.approx(0.968)  # §3 Trn1 Capacity Block
    assert cat.get("h800").price().usd_per_hour == pytest.approx(2.0)  # §3 H800: DeepSeek-V3 assumption
    assert cat.get("tpu-v5p").price().status == "recalled, unverified"  # §3 TPU v5p: recalled list price


def test_unknown_price_tier_raises(cat):
    with pytest.raises(CatalogError) as ei:
        cat.get("h100-pcie").price("hyperscaler")
    assert ei.value.field == "price-tier"
    assert "gpu_cloud" in str(ei.value)


# ------------------------------------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("key", "gid"),
    [
        ("h100", "h100"),
        ("H100", "h100"),
        ("h100-sxm", "h100"),
        ("H100-SXM5", "h100"),
        ("  h100-pcie ", "h100-pcie"),
        ("a100", "a100-80gb"),
        ("A100-40", "a100-40gb"),
        ("v5p", "tpu-v5p"),
        ("TPU-V5P", "tpu-v5p"),
        ("Trillium", "tpu-v6e"),
        ("trainium2", "trn2"),
        ("Trainium", "trn1"),
        ("gaudi-3", "gaudi3"),
        ("MI300X", "mi300x"),
    ],
)
def test_alias_and_case_insensitive_lookup(cat, key, gid):
    assert cat.get(key).id == gid


def test_unknown_id_lists_allowed_ids(cat):
    with pytest.raises(CatalogError) as ei:
        cat.get("h1000")
    msg = str(ei.value)
    assert ei.value.field == "gpu"
    assert "h1000" in msg and "allowed" in msg
    for gid in ("h100", "tpu-v5p", "mi300x", "trn2"):
        assert gid in msg
    assert "\n" not in msg


# ---------------------------------------------------------------------------------- user overrides

VALID_ENTRY = """
[[accelerator]]
id = "{id}"
name = "Test accelerator"
vendor = "test"
aliases = ["{alias}"]
peak_tflops = {{ fp32 = 50, bf16 = 800, fp8 = 1600 }}
memory_gb = 80
memory_bandwidth_tbs = 3.0
scaleup_bandwidth_gbs = 900
devices_per_node = 8
tdp_w = 700
spec_source = "unit test"
spec_status = "estimate"
default_price_tier = "gpu_cloud"
prices = [
  {{ tier = "gpu_cloud", usd_per_hour = {price}, source = "my contract", date = "2026-05", status = "V-vendor" }},
]
"""


def _entry(id: str = "my-asic", alias: str = "myasic", price: float = 1.5) -> str:
    return VALID_ENTRY.format(id=id, alias=alias, price=price)


def test_user_file_overrides_and_extends(tmp_path):
    path = tmp_path / "mine.toml"
    h100 = _entry(id="h100", alias="h100-sxm", price=1.11)
    path.write_text(h100 + _entry(id="my-asic", alias="myasic", price=0.75), encoding="utf-8")
    builtin = load_catalog()
    cat = load_catalog(extra=[path])
    assert len(cat.ids()) == len(builtin.ids()) + 1
    assert cat.get("h100").price().usd_per_hour == pytest.approx(1.11)
    assert cat.get("H100-SXM").price().source == "my contract"
    assert cat.get("my-asic").peak_flops("bf16") == pytest.approx(800e12)
    assert cat.get("MYASIC").id == "my-asic"
    assert cat.get("b200").price().usd_per_hour == pytest.approx(4.0)  # untouched
    # the built-in catalog is not mutated by loading an override
    assert load_catalog().get("h100").price().usd_per_hour == pytest.approx(2.3)


def test_later_user_files_win(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(_entry(price=1.0), encoding="utf-8")
    b.write_text(_entry(price=2.0), encoding="utf-8")
    assert load_catalog(extra=[a, b]).get("my-asic").price().usd_per_hour == 2.0
    assert load_catalog(extra=[str(b), str(a)]).get("my-asic").price().usd_per_hour == 1.0


GOOD = _entry()

MALFORMED = [
    # (case id, file text, text the one-line message must contain)
    ("bad-toml", "[[accelerator]\nid = 'x'\n", "not valid TOML"),
    ("empty", "", "no [[accelerator]] entries"),
    ("missing-field", GOOD.replace("memory_gb = 80\n", ""), "memory_gb"),
    ("negative", GOOD.replace("memory_gb = 80", "memory_gb = -80"), "memory_gb"),
    ("zero-bandwidth", GOOD.replace("memory_bandwidth_tbs = 3.0", "memory_bandwidth_tbs = 0"), "bandwidth"),
    ("nan-price", GOOD.replace("usd_per_hour = 1.5", "usd_per_hour = nan"), "usd_per_hour"),
    ("nan-peak", GOOD.replace("bf16 = 800", "bf16 = nan"), "peak_tflops"),
    ("inf-memory", GOOD.replace("memory_gb = 80", "memory_gb = inf"), "memory_gb"),
    ("negative-peak", GOOD.replace("fp8 = 1600", "fp8 = -1600"), "fp8"),
    ("unknown-dtype", GOOD.replace("fp8 = 1600", "int8 = 1600"), "peak_tflops"),
    ("wrong-tier", GOOD.replace('tier = "gpu_cloud"', 'tier = "spot"'), "tier"),
    ("wrong-default-tier", GOOD.replace('default_price_tier = "gpu_cloud"', 'default_price_tier = "x"'),
     "default_price_tier"),
    ("default-tier-absent", GOOD.replace('default_price_tier = "gpu_cloud"', 'default_price_tier = "committed"'),
     "default_price_tier"),
    ("no-prices", GOOD.split("prices = [")[0], "prices"),
    ("bad-date", GOOD.replace('date = "2026-05"', 'date = "May 2026"'), "date"),
    ("typo-field", GOOD.replace("tdp_w = 700", "tdp_watts = 700"), "tdp_watts"),
    ("bad-id", GOOD.replace('id = "my-asic"', 'id = "My ASIC"'), "id"),
    ("string-number", GOOD.replace("memory_gb = 80", 'memory_gb = "lots"'), "memory_gb"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "needle"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_user_file_raises_one_line_error(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as ei:
        load_catalog(extra=[path])
    msg = str(ei.value)
    assert needle in msg
    assert str(path) in msg
    assert "\n" not in msg
    assert ei.value.field == "catalog"


def test_missing_user_file_raises(tmp_path):
    with pytest.raises(CatalogError) as ei:
        load_catalog(extra=[tmp_path / "nope.toml"])
    assert "cannot read" in str(ei.value) and ei.value.field == "catalog"
