"""Serving demand, the serving-configuration chooser, serving dollars, and the program's serving posynomials.

All three use ``cost_models.serving`` (one model): the chooser and ``serving_cost_usd`` evaluate it on the
rounded shape in numpy, ``program_serving_terms`` hands the same forms to the program as posynomials in N.

Chooser: for each tensor-parallel degree (1..devices per node that split the heads), the largest batch that
fits in memory and meets the TPOT limit (TPOT grows with the batch, so a bisection finds it), skipped if the
TTFT limit fails at that degree; among those, the lowest $ per million output tokens (input tokens priced
alongside when the demand has them). ``binding`` says what stopped the batch ("memory", "tpot" or
"max_batch") and "ttft" when the TTFT limit ruled out a cheaper degree.
"""

from __future__ import annotations

import math
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from cost_models.architecture import ModelShape
from cost_models.catalog import Accelerator
from cost_models.serving import DEFAULT_MAX_BATCH, Efficiency, Precision, ServingConfig, Workload
from cost_models.serving_point import ServingPoint, fewest_devices, max_batch_in_memory, serving_point, tp_degrees
from cost_models.serving_terms import FIXED_EXPONENTS, ServingTerms, fit_features, serving_terms
from planner.errors import InputError
from planner.plan import ServingSummary  # the plan's `inference` object (re-exported here)

DEFAULT_PROMPT_TOKENS = 1024
DEFAULT_OUTPUT_TOKENS = 256


class ServingDemand(BaseModel):
    """What users ask of the served model: lifetime tokens, per-request lengths and latency limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: float | None = Field(default=None, gt=0, le=1e18, allow_inf_nan=False, description="output tokens")
    input_tokens: float | None = Field(default=None, ge=0, le=1e19, allow_inf_nan=False,
                                       description="prompt tokens (default: tokens × prompt/output)")
    prompt_tokens: int = Field(default=DEFAULT_PROMPT_TOKENS, ge=1, le=10_000_000, description="per request")
    output_tokens: int = Field(default=DEFAULT_OUTPUT_TOKENS, ge=1, le=10_000_000, description="per request")
    tpot_ms: float | None = Field(default=None, gt=0, le=1e6, allow_inf_nan=False)
    ttft_ms: float | None = Field(default=None, gt=0, le=1e7, allow_inf_nan=False)

    @property
    def workload(self) -> Workload:
        return Workload(prompt_tokens=self.prompt_tokens, output_tokens=self.output_tokens)

    @property
    def total_input_tokens(self) -> float:
        """Input tokens priced: as given, else output tokens × prompt/output length."""
        if self.input_tokens is not None:
            return self.input_tokens
        return (self.tokens or 0.0) * self.prompt_tokens / self.output_tokens


def split_context(context: int, tokens: float | None = None, input_tokens: float | None = None) -> tuple[int, int]:
    """(prompt, output) tokens per request for a ``context`` = prompt + output, in the demand's input:output
    ratio (default 1024:256)."""
    if context < 2:
        raise InputError("context", f"must be at least 2 tokens (one prompt, one output), got {context}")
    if tokens and input_tokens is not None:
        ratio = input_tokens / tokens
    else:
        ratio = DEFAULT_PROMPT_TOKENS / DEFAULT_OUTPUT_TOKENS
    output = min(max(1, round(context / (1.0 + ratio))), context - 1)
    return context - output, output


def serving_dollars(point: ServingPoint, demand: ServingDemand) -> float:
    """USD to serve ``demand`` at ``point``: output tokens · $/output token + input tokens · $/input token."""
    return ((demand.tokens or 0.0) * point.usd_per_million_output_tokens
            + demand.total_input_tokens * point.usd_per_million_input_tokens) / 1e6


def summarize(point: ServingPoint, demand: ServingDemand, binding: list[str]) -> ServingSummary:
    """The plan-facing summary of an evaluated configuration for ``demand`` (``serve-cost`` prints it too)."""
    tokens = demand.tokens
    cost = None if tokens is None else serving_dollars(point, demand)
    return ServingSummary(
        tokens=tokens, input_tokens=demand.total_input_tokens if tokens is not None else demand.input_tokens,
        cost_usd=cost, usd_per_million_tokens=point.usd_per_million_output_tokens,
        usd_per_million_input_tokens=point.usd_per_million_input_tokens, gpu=point.accelerator,
        gpus=point.tensor_parallel, batch=point.batch, tensor_parallel=point.tensor_parallel,
        precision=point.precision, kv_precision=point.kv_precision,
        tokens_per_second_per_gpu=point.tokens_per_second_per_device, tpot_ms=point.tpot_s * 1e3,
        ttft_ms=point.ttft_s * 1e3, binding=binding, prompt_tokens=point.prompt_tokens,
        output_tokens=point.output_tokens,
        gpu_hours=None if cost is None else cost / point.usd_per_device_hour,
        gpu_seconds_per_token=1.0 / point.tokens_per_second_per_device,
        gpu_seconds_per_input_token=point.prefill_s_per_token,
    )


class ServingChoice(BaseModel):
    """The chosen serving configuration, its evaluation and what limits it."""

    model_config = ConfigDict(frozen=True)

    config: ServingConfig
    point: ServingPoint
    binding: list[str]
    candidates: int = Field(description="tensor-parallel degrees compared")


def _point(shape, acc, cfg, work, price, eff) -> ServingPoint:
    return serving_point(shape, acc, cfg, work, price, eff)


def largest_batch(shape: ModelShape, acc, tp: int, work: Workload, precision: str, kv_precision: str | None,
                  price: float, tpot_ms: float | None, max_batch: int = DEFAULT_MAX_BATCH,
                  eff: Efficiency | None = None) -> tuple[int, str]:
    """Largest batch at degree ``tp`` that fits and meets ``tpot_ms`` (0 if none) and what stops it."""
    probe = ServingConfig(tensor_parallel=tp, batch=1, precision=precision, kv_precision=kv_precision)
    b_mem = max_batch_in_memory(shape, acc, probe, work)
    hi, why = (b_mem, "memory") if b_mem < max_batch else (max_batch, "max_batch")
    if hi < 1 or tpot_ms is None:
        return hi, why

    def ok(b: int) -> bool:
        cfg = probe.model_copy(update={"batch": b})
        return _point(shape, acc, cfg, work, price, eff).tpot_s * 1e3 <= tpot_ms

    if ok(hi):
        return hi, why
    if not ok(1):
        return 0, "tpot"
    lo = 1  # ok(lo) and not ok(hi): TPOT grows with the batch
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo, "tpot"


def choose_serving(shape: ModelShape, acc, demand: ServingDemand, *, precision: Precision = "bf16",
                   kv_precision: Precision | None = None, price: float, tensor_parallel: int | None = None,
                   max_batch: int = DEFAULT_MAX_BATCH, eff: Efficiency | None = None) -> ServingChoice:
    """The cheapest configuration: per TP degree the largest batch meeting memory and the latency limits.
    Memoized on the shape and the plain numbers it reads (``_choice_key``); a hit returns its own ``binding``
    list."""
    key = _choice_key(shape, acc, demand, precision, kv_precision, price, tensor_parallel, max_batch, eff)
    if key is None:
        return _choose(shape, acc, demand, precision, kv_precision, price, tensor_parallel, max_batch, eff)
    choice = _choose_memo(_Keyed(key, (shape, acc, demand, precision, kv_precision, price, tensor_parallel,
                                       max_batch, eff)))
    return choice.model_copy(update={"binding": list(choice.binding)})


def _choose(shape: ModelShape, acc, demand: ServingDemand, precision: Precision, kv_precision: Precision | None,
            price: float, tensor_parallel: int | None, max_batch: int, eff: Efficiency | None) -> ServingChoice:
    """``choose_serving`` computed."""
    work = demand.workload
    degrees = [tensor_parallel] if tensor_parallel else tp_degrees(shape, acc)
    in_per_out = demand.total_input_tokens / demand.tokens if demand.tokens else 0.0
    best: tuple[float, ServingConfig, ServingPoint, str] | None = None
    ttft_ruled_out, fits_somewhere, tpot_best = [], False, math.inf
    for tp in degrees:
        b, why = largest_batch(shape, acc, tp, work, precision, kv_precision, price, demand.tpot_ms, max_batch, eff)
        if b < 1:
            if why == "tpot":
                fits_somewhere = True
                one = ServingConfig(tensor_parallel=tp, batch=1, precision=precision, kv_precision=kv_precision)
                tpot_best = min(tpot_best, _point(shape, acc, one, work, price, eff).tpot_s * 1e3)
            continue
        fits_somewhere = True
        cfg = ServingConfig(tensor_parallel=tp, batch=b, precision=precision, kv_precision=kv_precision)
        pt = _point(shape, acc, cfg, work, price, eff)
        usd = pt.usd_per_million_output_tokens + in_per_out * pt.usd_per_million_input_tokens
        if demand.ttft_ms is not None and pt.ttft_s * 1e3 > demand.ttft_ms:
            ttft_ruled_out.append((usd, pt.ttft_s * 1e3))
            continue
        if best is None or usd < best[0]:
            best = (usd, cfg, pt, why)
    if best is None:
        if not fits_somewhere:
            need = fewest_devices(shape, acc, precision, kv_precision, work)
            raise InputError("gpus", f"the model plus one sequence's KV cache ({work.context} tokens) does not fit "
                                     f"at any tensor-parallel degree {degrees} of {acc.id}; it needs at least "
                                     f"{need if need is not None else 'more than 10,000,000'} devices")
        if ttft_ruled_out:
            fastest = min(t for _, t in ttft_ruled_out)
            raise InputError("ttft_ms", f"no configuration meets {demand.ttft_ms:g} ms; the fastest prefill is "
                                        f"{fastest:.3g} ms")
        raise InputError("tpot_ms", f"no configuration meets {demand.tpot_ms:g} ms per output token; the "
                                    f"fastest is {tpot_best:.3g} ms (batch 1)")
    usd, cfg, pt, why = best
    binding = [why] + (["ttft"] if any(u < usd for u, _ in ttft_ruled_out) else [])
    return ServingChoice(config=cfg, point=pt, binding=binding, candidates=len(degrees))


# ------------------------------------------------------------------------------------------------ memoization
# The program re-chooses the configuration and refits the terms at every anchor of its fixed point (about ten
# per plan); the rounded shapes repeat, and so do anchors. Both are pure functions of plain numbers, memoized
# in bounded, thread-safe lru_caches keyed on tuples of exactly the fields they read. Results are frozen models
# shared between hits: nothing mutates them (``choose_serving`` hands out a fresh ``binding`` list).

MEMO_SIZE = 1024


class _Keyed:
    """Arguments carried with the hashable key that stands for them: the cache compares the key only."""

    __slots__ = ("args", "key")

    def __init__(self, key: tuple, args: tuple):
        self.key, self.args = key, args

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Keyed) and self.key == other.key


def accelerator_key(acc) -> tuple | None:
    """Every field of ``acc`` as a hashable tuple, so a key cannot miss a field the serving model may read
    (None: not a catalog ``Accelerator``, not memoized)."""
    if not isinstance(acc, Accelerator):
        return None
    held = _ACC_KEYS.get(id(acc))
    if held is not None and held[0] is acc:   # the entry holds the object, so its id is not reused meanwhile
        return held[1]
    key = _frozen(acc)
    if len(_ACC_KEYS) >= 256:
        _ACC_KEYS.clear()
    _ACC_KEYS[id(acc)] = (acc, key)
    return key


_ACC_KEYS: dict[int, tuple[Accelerator, tuple]] = {}   # id -> (the frozen accelerator, its key)


def _frozen(v):
    """``v`` as nested tuples of plain values (models by field, dicts sorted by key)."""
    if isinstance(v, BaseModel):
        return (type(v).__name__, *(_frozen(getattr(v, f)) for f in type(v).model_fields))
    if isinstance(v, dict):
        return tuple(sorted((k, _frozen(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return tuple(_frozen(x) for x in v)
    return v


def _choice_key(shape, acc, demand, precision, kv_precision, price, tensor_parallel, max_batch, eff) -> tuple | None:
    a = accelerator_key(acc)
    if a is None:
        return None
    return (shape, a, demand.prompt_tokens, demand.output_tokens, demand.tokens, demand.total_input_tokens,
            demand.tpot_ms, demand.ttft_ms, precision, kv_precision, price, tensor_parallel, max_batch, eff)


@lru_cache(maxsize=MEMO_SIZE)
def _choose_memo(k: _Keyed) -> ServingChoice:
    return _choose(*k.args)


# --------------------------------------------------------------------------------------------- params -> shape


@lru_cache(maxsize=4096)
def _rounded(params: float, count: str, experts: int) -> ModelShape:
    from planner.rounding import fit_shape

    return fit_shape(params, count=count, experts=experts).shape


def rounded_shape(params: float, *, count: str = "total", experts: int = 1) -> ModelShape:
    """The repo's rounded shape for ``params`` (``planner.rounding.fit_shape``), cached."""
    return _rounded(float(f"{params:.6g}"), count, experts)


def plan_serving(params: float, demand: ServingDemand, *, accelerator, price: float, precision: Precision = "bf16",
                 kv_precision: Precision | None = None, count: str = "total", experts: int = 1,
                 config: ServingConfig | None = None, max_batch: int = DEFAULT_MAX_BATCH,
                 shape: ModelShape | None = None, eff: Efficiency | None = None) -> ServingSummary:
    """The serving figures of a plan: the rounded shape of ``params`` (or ``shape``) served with ``config``
    (the program's choice) or, without it, with the chooser's configuration."""
    shape = shape or rounded_shape(params, count=count, experts=experts)
    if config is not None:
        pt = serving_point(shape, accelerator, config, demand.workload, price, eff)
        return summarize(pt, demand, ["given"])
    choice = choose_serving(shape, accelerator, demand, precision=precision, kv_precision=kv_precision, price=price,
                            max_batch=max_batch, eff=eff)
    return summarize(choice.point, demand, choice.binding)


def serving_cost_usd(params: float, demand: ServingDemand, config: ServingConfig, *, accelerator, price: float,
                     count: str = "total", experts: int = 1, shape: ModelShape | None = None,
                     eff: Efficiency | None = None) -> float:
    """Dollars to serve ``demand`` (output + input tokens) with ``config``; the model is ``shape`` or the
    rounded shape of ``params``. What the plan reports and ``serve-cost`` prints."""
    shape = shape or rounded_shape(params, count=count, experts=experts)
    return serving_dollars(serving_point(shape, accelerator, config, demand.workload, price, eff), demand)


def program_serving_terms(n_lo: float, n_hi: float, config: ServingConfig, demand: ServingDemand, *, accelerator,
                          price: float, count: str = "total", experts: int = 1, points: int = 25,
                          anchor: float | None = None, fixed_exponents: bool = False,
                          eff: Efficiency | None = None, measure_error: bool = True) -> ServingTerms:
    """Posynomials in the program's N (``count`` params, e.g. "active" for MoE) for one configuration,
    the shape features fitted on the rounded shapes over [n_lo, n_hi] (see cost_models.serving_terms).
    Serving dollars = tokens · max(output branches) + input tokens · input terms.

    With ``anchor`` (the N of the current solution) the terms are exact at the rounded shape of ``anchor``:
    solve, re-anchor at the solution, re-solve; the layer count of the rounded shapes jumps when the width
    steps up, so an unanchored monomial of the KV cache is off by up to ~20-60% within a decade.
    ``fixed_exponents``: slopes from ``FIXED_EXPONENTS`` (N, N^(2/3), N^(1/3)), so every configuration's
    posynomial has the same exponents and ``merge_terms`` leaves three coefficients. ``measure_error=False``
    with both ``anchor`` and ``fixed_exponents``: the same terms without measuring ``max_rel_error`` over the
    sample (NaN; see ``fit_features``). Memoized on the plain numbers it reads."""
    a = accelerator_key(accelerator)
    args = (n_lo, n_hi, config, demand.workload, accelerator, price, count, experts, points, anchor,
            fixed_exponents, eff, measure_error)
    if a is None:
        return _terms(*args)
    return _terms_memo(_Keyed((n_lo, n_hi, config, demand.prompt_tokens, demand.output_tokens, a, price, count,
                               experts, points, anchor, fixed_exponents, eff, measure_error), args))


def _terms(n_lo: float, n_hi: float, config: ServingConfig, work: Workload, accelerator, price: float, count: str,
           experts: int, points: int, anchor: float | None, fixed_exponents: bool, eff: Efficiency | None,
           measure_error: bool) -> ServingTerms:
    """``program_serving_terms`` computed."""
    fits = fit_features(lambda n: rounded_shape(n, count=count, experts=experts), config, work, n_lo, n_hi, points,
                        anchor, FIXED_EXPONENTS if fixed_exponents else None, measure_error)
    return serving_terms(fits, accelerator, config, work, price, eff, n_range=(n_lo, n_hi))


@lru_cache(maxsize=MEMO_SIZE)
def _terms_memo(k: _Keyed) -> ServingTerms:
    return _terms(*k.args)


def enumerate_configs(accelerator, shape: ModelShape, precision: Precision, kv_precision: Precision | None = None,
                      max_batch: int = DEFAULT_MAX_BATCH) -> list[ServingConfig]:
    """Configurations for the program: every valid TP degree × power-of-two batches up to ``max_batch``."""
    batches = [2**i for i in range(int(math.log2(max_batch)) + 1)]
    return [ServingConfig(tensor_parallel=t, batch=b, precision=precision, kv_precision=kv_precision)
            for t in tp_degrees(shape, accelerator) for b in batches]


# --------------------------------------------------------------------------------------------- for the program


def demand_from_request(request) -> ServingDemand | None:
    """The serving demand of a plan request, or None without ``inference_tokens``. Reads the proposed
    PlanRequest fields ``inference_tokens``, ``inference_input_tokens``, ``context`` (prompt + output tokens
    per request, default 1280 split 4:1 or in the input:output token ratio), ``tpot_ms`` and ``ttft_ms``
    (absent fields count as not given)."""
    tokens = getattr(request, "inference_tokens", None)
    if tokens is None:
        return None
    input_tokens = getattr(request, "inference_input_tokens", None)
    context = getattr(request, "context", None)
    if context is None and input_tokens is None:
        prompt, output = DEFAULT_PROMPT_TOKENS, DEFAULT_OUTPUT_TOKENS
    else:
        prompt, output = split_context(context or DEFAULT_PROMPT_TOKENS + DEFAULT_OUTPUT_TOKENS, tokens, input_tokens)
    return ServingDemand(tokens=tokens, input_tokens=input_tokens, prompt_tokens=prompt, output_tokens=output,
                         tpot_ms=getattr(request, "tpot_ms", None), ttft_ms=getattr(request, "ttft_ms", None))


class ProgramServing(BaseModel):
    """The chooser's configuration at an anchor N and its posynomials in N, for one solve of the program."""

    model_config = ConfigDict(frozen=True)

    anchor: float
    choice: ServingChoice
    terms: ServingTerms


def program_serving(anchor: float, demand: ServingDemand, *, accelerator, price: float,
                    precision: Precision = "bf16", kv_precision: Precision | None = None, count: str = "total",
                    experts: int = 1, n_range: tuple[float, float] | None = None, fixed_exponents: bool = False,
                    max_batch: int = DEFAULT_MAX_BATCH, eff: Efficiency | None = None,
                    measure_error: bool = True) -> ProgramServing:
    """Serving for a solve of the program around ``anchor`` (the current N): the chooser's configuration for
    the rounded shape of ``anchor`` and that configuration's terms, exact at the anchor, fitted over
    ``n_range`` (default anchor/4 .. anchor·4). Solve, call again at the solution, re-solve until the
    configuration repeats; the terms' tpot/ttft/memory posynomials keep the configuration feasible as N moves.
    ``measure_error``: see ``program_serving_terms``."""
    shape = rounded_shape(anchor, count=count, experts=experts)
    choice = choose_serving(shape, accelerator, demand, precision=precision, kv_precision=kv_precision, price=price,
                            max_batch=max_batch, eff=eff)
    lo, hi = n_range or (anchor / 4.0, anchor * 4.0)
    terms = program_serving_terms(lo, hi, choice.config, demand, accelerator=accelerator, price=price, count=count,
                                  experts=experts, anchor=anchor, fixed_exponents=fixed_exponents, eff=eff,
                                  measure_error=measure_error)
    return ProgramServing(anchor=anchor, choice=choice, terms=terms)
