"""Accelerator catalog: dense peak FLOP/s per dtype, memory, bandwidth, power and dated prices.

The data lives in ``catalog.toml`` (package data). Users extend or override it with their own TOML file of
the same schema (``load_catalog(extra=[path])``). Everything is validated by pydantic at load time; files
are parsed as data only (tomllib), never executed.
"""

from __future__ import annotations

import math
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from planner_errors import FieldError

Dtype = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "fp6", "fp4"]
PriceTier = Literal["hyperscaler", "gpu_cloud", "committed"]
PRICE_TIERS: tuple[str, ...] = ("hyperscaler", "gpu_cloud", "committed")


# One 400 Gb/s NIC per device (ConnectX-7 in HGX H100/H200 nodes; MLPerf Inference v4.1 H200 system
# description: 8 GPUs per node with InfiniBand 400 Gb/s adapters), i.e. 50 GB/s per direction.
DEFAULT_SCALEOUT_GBS = 50.0
# PCIe 4.0 x16: 64 GB/s bidirectional (PCI-SIG PCIe 4.0 specification: 16 GT/s x16 lanes).
PCIE4_X16_BIDIR_GBS = 64.0


class CatalogError(FieldError):
    """Bad catalog file or unknown accelerator id; ``field`` names the offending option."""

    def __init__(self, message: str, field: str = "gpu"):
        super().__init__(message, field)


class Price(BaseModel):
    """One price point in USD per device-hour, with where and when it was read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: PriceTier
    usd_per_hour: float = Field(gt=0, allow_inf_nan=False)
    source: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}(-\d{2}){0,2}$", description="date of the source page, YYYY[-MM[-DD]]")
    status: str = Field(min_length=1, description="how the price was verified, in words: vendor pricing page, "
                        "secondary source, recalled, unverified, or estimate")
    low: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    high: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class Accelerator(BaseModel):
    """One accelerator SKU. Peak FLOP/s are dense (no 2:4 sparsity), in TFLOP/s (1e12) per device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    vendor: str
    aliases: tuple[str, ...] = ()
    peak_tflops: dict[Dtype, float] = Field(description="dense peak TFLOP/s per dtype")
    memory_gb: float = Field(gt=0, allow_inf_nan=False)
    memory_bandwidth_tbs: float = Field(gt=0, allow_inf_nan=False)
    scaleup_bandwidth_gbs: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="intra-node link per device, bidirectional"
    )
    scaleout_bandwidth_gbs: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="inter-node network per device, GB/s per direction (default: DEFAULT_SCALEOUT_GBS; TPUs: ICI)",
    )
    devices_per_node: int = Field(gt=0)
    tdp_w: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    spec_source: str = Field(min_length=1)
    spec_status: str = Field(min_length=1)
    prices: tuple[Price, ...] = Field(min_length=1)
    default_price_tier: PriceTier
    notes: str = ""

    @field_validator("peak_tflops")
    @classmethod
    def _finite_positive(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("at least one dtype is required")
        for k, x in v.items():
            if not (isinstance(x, int | float) and math.isfinite(x) and x > 0):
                raise ValueError(f"peak_tflops.{k} must be a positive finite number, got {x!r}")
        return v

    @model_validator(mode="after")
    def _default_tier_present(self) -> Accelerator:
        if not any(p.tier == self.default_price_tier for p in self.prices):
            raise ValueError(f"default_price_tier {self.default_price_tier!r} has no entry in prices")
        return self

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype`` (fp16 and bf16 share a rate where only one is listed)."""
        table = self.peak_tflops
        if dtype not in table and dtype in ("bf16", "fp16"):
            other = "fp16" if dtype == "bf16" else "bf16"
            if other in table and not (dtype == "bf16" and self.id.startswith("v100")):
                dtype = other
        if dtype not in table:
            allowed = ", ".join(sorted(table))
            raise CatalogError(f"{self.id} has no {dtype} rate; allowed precisions: {allowed}", "precision")
        return table[dtype] * 1e12

    def price(self, tier: str | None = None) -> Price:
        """Price entry for ``tier`` (default: the catalog's default tier)."""
        tier = tier or self.default_price_tier
        for p in self.prices:
            if p.tier == tier:
                return p
        allowed = ", ".join(p.tier for p in self.prices)
        raise CatalogError(f"{self.id} has no {tier!r} price; allowed tiers: {allowed}", "price-tier")

    @property
    def scaleup_bytes_per_s(self) -> float:
        """Scale-up link per device and direction, bytes/s (half the bidirectional figure; PCIe-only cards:
        PCIe 4.0 x16, 32 GB/s per direction)."""
        return (self.scaleup_bandwidth_gbs or PCIE4_X16_BIDIR_GBS) / 2.0 * 1e9

    @property
    def scaleout_bytes_per_s(self) -> float:
        """Scale-out network per device and direction, bytes/s. TPU pods have no separate scale-out tier within
        a pod: the ICI torus is used (half its bidirectional per-chip figure)."""
        if self.scaleout_bandwidth_gbs:
            return self.scaleout_bandwidth_gbs * 1e9
        if self.vendor == "google" and self.scaleup_bandwidth_gbs:
            return self.scaleup_bandwidth_gbs / 2.0 * 1e9
        return DEFAULT_SCALEOUT_GBS * 1e9

    @property
    def memory_bytes(self) -> float:
        """Device memory in bytes (GB as marketed, 1e9)."""
        return self.memory_gb * 1e9


class Catalog(BaseModel):
    """All accelerators by id, with alias lookup."""

    model_config = ConfigDict(frozen=True)

    accelerators: dict[str, Accelerator]

    def get(self, key: str) -> Accelerator:
        """Accelerator by id or alias (case-insensitive); CatalogError listing the allowed ids otherwise."""
        k = key.strip().lower()
        if k in self.accelerators:
            return self.accelerators[k]
        for acc in self.accelerators.values():
            if k in (a.lower() for a in acc.aliases):
                return acc
        allowed = ", ".join(sorted(self.accelerators))
        raise CatalogError(f"unknown accelerator {key!r}; allowed: {allowed}", "gpu")

    def ids(self) -> list[str]:
        return list(self.accelerators)


def _parse(text: str, origin: str) -> list[Accelerator]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"catalog {origin}: not valid TOML ({e})", "catalog") from None
    except RecursionError:
        raise CatalogError(f"catalog {origin}: not valid TOML (nested too deeply)", "catalog") from None
    rows = data.get("accelerator")
    if not isinstance(rows, list) or not rows:
        raise CatalogError(f"catalog {origin}: no [[accelerator]] entries", "catalog")
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(Accelerator.model_validate(row))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            where = f"{loc}: " if loc else ""  # model-level checks have no loc; their message names the field
            name = row.get("id", f"#{i + 1}") if isinstance(row, dict) else f"#{i + 1}"
            msg = f"catalog {origin}: accelerator {name}: {where}{err['msg']}"
            raise CatalogError(msg, "catalog") from None
    return out


@lru_cache(maxsize=1)
def _builtin() -> tuple[Accelerator, ...]:
    text = resources.files("cost_models").joinpath("catalog.toml").read_text(encoding="utf-8")
    return tuple(_parse(text, "built-in catalog.toml"))


def load_catalog(extra: list[str | Path] | tuple[str | Path, ...] = ()) -> Catalog:
    """The built-in catalog, with entries from each ``extra`` TOML file added or overriding by id."""
    accs = {a.id: a for a in _builtin()}
    for path in extra:
        from planner.errors import InputError  # not at import time: planner imports cost_models
        from planner.safe_io import MAX_CATALOG_FILE, read_text_limited, shown

        try:  # size-limited, regular files only, strict UTF-8
            text = read_text_limited(path, "catalog", MAX_CATALOG_FILE)
        except InputError as e:
            raise CatalogError(f"catalog file {e.detail}", "catalog") from None
        for a in _parse(text, shown(path)):
            accs[a.id] = a
    return Catalog(accelerators=accs)
