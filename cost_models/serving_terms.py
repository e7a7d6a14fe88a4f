"""The serving model as posynomials in the parameter count N, for the geometric program.

``cost_models.serving`` writes every serving time, memory and price as a linear form: constants (set by the
accelerator, the serving configuration, the workload and the price) times shape features (``FEATURES``:
weight params, params read per step, matmul params, KV elements per token per device, 4·layers·d_attn,
layers, layers·d_model). Under the repo's shape conventions (``planner.rounding``) each feature of the
rounded shape grows roughly as a power of N, so each is fitted here as a monomial c·N^e over the range
[n_lo, n_hi] of the program, and a form becomes a posynomial: a list of terms (coefficient, exponent of N),
all coefficients positive. ``evaluate_terms`` is the numpy evaluator of exactly those terms.

Fit: least squares of ln(feature) on ln(N) over log-spaced N, then the intercept is moved to the middle of
the log residuals' range, which minimizes the largest relative error for that slope. The largest relative
error of each feature over the sample is stored with it (``Monomial.max_rel_error``): rounding to whole
layers and to widths in steps of 128/1024 makes the features step functions of N, so the error does not
shrink below a few percent however the range is chosen. For a fixed shape (the plan's rounded model)
``exact_features`` gives zero-exponent monomials and the terms are exact.

Decode: step = max(memory + θ·compute, compute + θ·memory) + all-reduce (``serving.branch_forms``) is not a
posynomial. The program should use an epigraph variable s (seconds per step, or $ per output token) with two
posynomial constraints, memory-branch terms <= s and compute-branch terms <= s
(``ServingTerms.usd_per_output_token["memory"|"compute"]``, each with the all-reduce included). That is
exact for any θ. With the calibrated θ = 1 the two branches are the same posynomial, memory + compute +
all-reduce terms, and the program can use it directly with no epigraph: that sum is what the published
throughputs support best (docs/serving.md), while the pure max (θ = 0) under-prices near the crossover.
The same holds for TPOT and TTFT limits (both branches <= the target); the memory fit is one posynomial
<= usable bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict

from cost_models.architecture import ModelShape
from cost_models.serving import (
    USABLE_MEMORY_FRACTION,
    Efficiency,
    LinearForm,
    ServingConfig,
    Workload,
    decode_branch_forms,
    memory_form,
    prefill_branch_forms,
    shape_features,
    usd_per_input_token_form,
    usd_per_output_token_forms,
)

Term = tuple[float, float]  # (coefficient, exponent of N)


class Monomial(BaseModel):
    """c · N^e, with the largest relative error of the fit over its sample."""

    model_config = ConfigDict(frozen=True)

    coef: float
    exponent: float
    max_rel_error: float = 0.0

    def __call__(self, n):
        return self.coef * np.asarray(n, dtype=float) ** self.exponent


# Exponents of N the features follow under the rounding conventions, for a program compiled once with fixed
# exponents (coefficients as cvxpy Parameters): params ∝ N; N ∝ layers · d_model² with layers ∝ d_model
# (planner.rounding's aspect rule, held at a constant ratio), so layers ∝ N^(1/3), layers · d_model ∝
# N^(2/3); the KV cache ∝ layers with a fixed number of KV heads (GQA: 8 from d_model 2048 up).
FIXED_EXPONENTS: dict[str, float] = {
    "weight_params": 1.0, "read_params": 1.0, "prefill_read_params": 1.0, "matmul_params": 1.0,
    "kv_elements": 1.0 / 3.0, "attn_coef": 2.0 / 3.0, "layers": 1.0 / 3.0, "layer_width": 2.0 / 3.0,
}


def fit_monomial(ns, values, exponent: float | None = None) -> Monomial:
    """Monomial through (ns, values) in log space: least-squares slope (or ``exponent``), minimax intercept."""
    x, y = np.log(np.asarray(ns, dtype=float)), np.log(np.asarray(values, dtype=float))
    if np.ptp(y) == 0.0 and exponent is None:
        return Monomial(coef=float(np.exp(y[0])), exponent=0.0, max_rel_error=0.0)
    slope = float(np.polyfit(x, y, 1)[0]) if exponent is None else float(exponent)
    resid = y - slope * x
    intercept = float((resid.max() + resid.min()) / 2.0)
    rel = np.exp(y - (intercept + slope * x)) - 1.0
    return Monomial(coef=float(np.exp(intercept)), exponent=slope, max_rel_error=float(np.abs(rel).max()))


def fit_features(shape_of: Callable[[float], ModelShape], config: ServingConfig, workload: Workload,
                 n_lo: float, n_hi: float, points: int = 25, anchor: float | None = None,
                 exponents: dict[str, float] | None = None, measure_error: bool = True) -> dict[str, Monomial]:
    """Each shape feature of ``shape_of(N)`` fitted as a monomial of N over ``points`` log-spaced N in
    [n_lo, n_hi]. ``shape_of`` is the rounding rule (e.g. ``lambda n: fit_shape(n).shape``).

    With ``anchor`` the slope is the fitted one but the monomial passes exactly through the feature of
    ``shape_of(anchor)``: exact at the anchor (the plan's rounded shape), the fitted trend around it.
    ``max_rel_error`` is then measured over the sample for the anchored monomial. With ``exponents`` (e.g.
    ``FIXED_EXPONENTS``) the slopes are those and only the coefficients are fitted. With both, the sample
    serves only to measure ``max_rel_error``: ``measure_error=False`` skips it (the rounding of ``points``
    shapes) and leaves ``max_rel_error`` NaN, not measured; the monomials are the same."""
    if not (0 < n_lo <= n_hi):
        raise ValueError(f"need 0 < n_lo <= n_hi, got {n_lo}, {n_hi}")
    at = None if anchor is None else shape_features(shape_of(float(anchor)), config, workload)
    sample = not (at is not None and exponents is not None and not measure_error)
    ns = np.geomspace(n_lo, n_hi, points) if n_hi > n_lo else np.array([n_lo])
    rows = [shape_features(shape_of(float(n)), config, workload) for n in ns] if sample else []
    if at is not None and exponents is not None:  # anchoring keeps only the slopes of a fit: these
        slopes = {k: float(exponents[k]) for k in at}
    else:
        if len(ns) == 1 and exponents is None:
            fits = {k: Monomial(coef=v, exponent=0.0) for k, v in rows[0].items()}
        else:
            fits = {k: fit_monomial(ns, [r[k] for r in rows], None if exponents is None else exponents[k])
                    for k in rows[0]}
        if at is None:
            return fits
        slopes = {k: m.exponent for k, m in fits.items()}
    powers: dict[float, np.ndarray] = {}
    out = {}
    for k, e in slopes.items():
        coef = at[k] / anchor**e
        if not sample:
            out[k] = Monomial(coef=coef, exponent=e, max_rel_error=math.nan)
            continue
        values = np.array([r[k] for r in rows])
        if e not in powers:
            powers[e] = ns**e
        err = float(np.abs(coef * powers[e] / values - 1.0).max())
        out[k] = Monomial(coef=coef, exponent=e, max_rel_error=err)
    return out


def exact_features(shape: ModelShape, config: ServingConfig, workload: Workload) -> dict[str, Monomial]:
    """The features of one fixed shape as constant monomials (exponent 0): terms are then exact."""
    return {k: Monomial(coef=v, exponent=0.0) for k, v in shape_features(shape, config, workload).items()}


def form_terms(form: LinearForm, fits: dict[str, Monomial]) -> list[Term]:
    """The posynomial of a linear form: one term per nonzero constant, constant · c · N^e."""
    return [(c * fits[k].coef, fits[k].exponent) for k, c in form.items() if c != 0.0]


def merge_terms(terms: list[Term]) -> list[Term]:
    """Terms with equal exponents summed: with ``FIXED_EXPONENTS`` a serving posynomial has at most three
    terms, c1·N + c2·N^(2/3) + c3·N^(1/3), whose coefficients a compiled program can take as Parameters."""
    out: dict[float, float] = {}
    for c, e in terms:
        key = round(e, 12)
        out[key] = out.get(key, 0.0) + c
    return sorted(((c, e) for e, c in out.items()), key=lambda t: -t[1])


def evaluate_terms(terms: list[Term], n):
    """sum(coef · N^exponent) in numpy (N scalar or array)."""
    n = np.asarray(n, dtype=float)
    return sum((c * n**e for c, e in terms), np.zeros_like(n))


class ServingTerms(BaseModel):
    """Posynomials in N for one serving configuration. Units: $ per token, seconds, bytes per device."""

    model_config = ConfigDict(frozen=True)

    config: ServingConfig
    workload: Workload
    accelerator: str
    usd_per_device_hour: float
    n_range: tuple[float, float]
    usd_per_output_token: dict[str, list[Term]]  # "memory" / "compute" branch; cost = max of the two
    usd_per_input_token: list[Term]
    tpot_s: dict[str, list[Term]]  # "memory" / "compute"; TPOT = max of the two (all-reduce in both)
    ttft_s: dict[str, list[Term]]
    memory_bytes_per_device: list[Term]
    usable_memory_bytes: float
    max_rel_error: dict[str, float]  # per shape feature, of its monomial fit (NaN: not measured)

    def usd_terms(self, tokens: float, input_tokens: float) -> dict[str, list[Term]]:
        """Serving dollars for ``tokens`` output and ``input_tokens`` input tokens on each decode branch
        (dollars = max over branches; with the calibrated θ = 1 the branches are equal)."""
        inp = [(input_tokens * c, e) for c, e in self.usd_per_input_token] if input_tokens else []
        return {b: [(tokens * c, e) for c, e in self.usd_per_output_token[b]] + inp for b in ("memory", "compute")}

    def output_usd(self, n):
        """$ per output token at N (numpy; max of the branches)."""
        return np.maximum(*(evaluate_terms(self.usd_per_output_token[b], n) for b in ("memory", "compute")))

    def input_usd(self, n):
        """$ per input token at N (numpy)."""
        return evaluate_terms(self.usd_per_input_token, n)

    def tpot(self, n):
        return np.maximum(*(evaluate_terms(self.tpot_s[b], n) for b in ("memory", "compute")))

    def ttft(self, n):
        return np.maximum(*(evaluate_terms(self.ttft_s[b], n) for b in ("memory", "compute")))

    def memory(self, n):
        return evaluate_terms(self.memory_bytes_per_device, n)


def serving_terms(fits: dict[str, Monomial], accelerator, config: ServingConfig, workload: Workload,
                  usd_per_device_hour: float, eff: Efficiency | None = None,
                  n_range: tuple[float, float] = (0.0, 0.0)) -> ServingTerms:
    """Every serving quantity of ``config`` as a posynomial in N, from fitted (or exact) feature monomials."""
    eff = eff or Efficiency()
    d = decode_branch_forms(accelerator, config, workload, eff)
    p = prefill_branch_forms(accelerator, config, workload, eff)
    out = usd_per_output_token_forms(accelerator, config, workload, eff, usd_per_device_hour)
    return ServingTerms(
        config=config, workload=workload, accelerator=accelerator.id, usd_per_device_hour=usd_per_device_hour,
        n_range=n_range,
        usd_per_output_token={b: form_terms(out[b], fits) for b in ("memory", "compute")},
        usd_per_input_token=form_terms(usd_per_input_token_form(accelerator, config, workload, eff,
                                                                usd_per_device_hour), fits),
        tpot_s={b: form_terms(d[b], fits) for b in ("memory", "compute")},
        ttft_s={b: form_terms(p[b], fits) for b in ("memory", "compute")},
        memory_bytes_per_device=form_terms(memory_form(config, workload), fits),
        usable_memory_bytes=USABLE_MEMORY_FRACTION * accelerator.memory_bytes,
        max_rel_error={k: m.max_rel_error for k, m in fits.items()},
    )

