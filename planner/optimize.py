"""optimize(): resolve law and hardware, solve the program for each discrete choice, explain the best plan.

Discrete choices are enumerated around the geometric program: accelerator × precision (a re-solve of one
compiled program each) × law variant -- the expert count E of a mixture-of-experts model (the Joint MoE law at
a fixed E is of Chinchilla form in active params and tokens) or the number of epochs over a limited pool of
unique tokens (the Muennighoff law at fixed epochs is of Chinchilla form). The best feasible candidate by the
objective wins; for data-constrained plans candidates are ranked by the full Muennighoff law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cost_models.architecture import active_non_embedding_params, active_params, total_params
from cost_models.catalog import Accelerator, CatalogError, load_catalog
from cost_models.inference import DEFAULT_EFFICIENCY, usd_per_million_tokens
from cost_models.throughput import (
    DEFAULT_GOODPUT,
    DEFAULT_MFU,
    MOE_MFU_FACTOR,
    default_mfu,
    energy_kwh,
    generation,
)
from cost_models.training import cost_usd, gpu_hours, state_bytes_per_device, training_flops
from laws.base import Law, LawError
from laws.catalog import get_law
from planner.errors import InfeasiblePlanError, InputError
from planner.hyperparams import law_batch_tokens, law_hyperparameters
from planner.plan import Alternative, ConstraintReport, InferenceCost, Plan, RoundedPlan
from planner.program import CONSTRAINTS, COUPLING, DATA, Solution, get_program
from planner.request import PlanRequest
from planner.rounding import fit_shape, plan_parallelism

# request field -> constraint name (limits on the program)
_LIMIT_FIELDS = {
    "budget_flops": "flops",
    "dollars": "dollars",
    "gpu_hours": "gpu_hours",
    "deadline_days": "deadline",
    "max_gpus": "max_devices",
    "max_params": "max_params",
    "max_tokens": "max_tokens",
    "min_params": "min_params",
    "min_tokens": "min_tokens",
    "target_loss": "target_loss",
}
_FIELD_OF = {v: k for k, v in _LIMIT_FIELDS.items()}
_PRECISIONS = ("bf16", "fp8", "fp4")
_BASE_PARAMS = ("peak", "mfu", "price", "bytes_per_param", "serve_peak", "serve_efficiency", "serve_tokens",
                "bstar", "seq_per_tp", "step_seconds")

# Critical batch B_crit(L) = B*·L^(−1/alpha_B), Kaplan et al. 2020 eq. 1.4 / 5.3 and Table 5 (B* 2.1e8 tokens,
# alpha_B 0.21; laws.md §1). L is the plan's predicted loss under the chosen law.
KAPLAN_BSTAR = 2.1e8
KAPLAN_ALPHA_B = 0.21


def critical_batch_tokens(loss):
    """Kaplan's critical batch in tokens at ``loss`` (nats/token)."""
    return KAPLAN_BSTAR * loss ** (-1.0 / KAPLAN_ALPHA_B)


# Data-constrained grid (Muennighoff et al. 2023, laws.md §7): epochs over the unique tokens, and params as a
# multiple r of N_opt(U), the params the unique data supports. Repeated tokens lose value with R_D* ≈ 15 epochs
# and excess params with R_N* ≈ 5, so both grids are roughly geometric and stop where the law saturates.
EPOCH_GRID = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0, 32.0, 40.0, 48.0,
              64.0, 96.0, 128.0, 256.0, 512.0, 1000.0)
PARAMS_RATIO_GRID = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)

# What each law form's N counts, for rounding to a shape (laws.md: Chinchilla/Epoch and Muennighoff count total
# params including embeddings; Kaplan counts non-embedding params; Joint MoE counts active params incl. embeddings).
_PARAMS_COUNT = {"chinchilla": "total", "kaplan": "non_embedding", "muennighoff": "total", "joint-moe": "active"}


@dataclass(frozen=True)
class _Variant:
    """One law variant: the program's law (Chinchilla form in (N, D)) and what it fixes.

    Data-constrained variants keep the base law and scale its inputs: the program's loss is
    law(params_scale·N, tokens_scale·D_eff) under D <= epochs·U and N <= params_limit.
    """

    law: Law
    law_id: str
    count: str = "total"
    experts: int = 1
    epochs: float | None = None
    unique_tokens: float | None = None
    params_limit: float | None = None
    params_limit_ratio: float = 1.0
    max_epochs: float | None = None
    params_scale: float = 1.0
    tokens_scale: float = 1.0
    exact: Law | None = None  # the full law the plan's loss is evaluated with (Muennighoff)

    def program_loss(self, params: float, effective_tokens: float) -> float:
        """The loss the program sees at (N, D_eff)."""
        return float(self.law.predict(params=params * self.params_scale, tokens=effective_tokens * self.tokens_scale))

    def loss(self, params: float, effective_tokens: float) -> float:
        """The plan's loss at (N, D_eff): the full law when there is one, else the program's law."""
        if self.exact is not None:
            return float(self.exact.predict(params=params, tokens=effective_tokens, unique_tokens=self.unique_tokens))
        return self.program_loss(params, effective_tokens)


@dataclass(frozen=True)
class _Candidate:
    """One discrete choice: an accelerator at a precision, with its price and throughput assumptions."""

    acc: Accelerator
    precision: str
    peak: float
    price: float
    price_source: str


def optimize(request: PlanRequest | None = None, /, **fields: Any) -> Plan:
    """The best plan under the request's limits and objective.

    ``optimize(PlanRequest(...))`` or ``optimize(budget_flops=1e22, gpu="h100")``. Raises InputError
    (one line, naming the field) for bad input and InfeasiblePlanError naming the limit to relax.
    """
    if request is None:
        request = PlanRequest.parse(**fields)
    elif fields:
        raise TypeError("pass either a PlanRequest or keyword fields, not both")

    variants = _variants(request, _law(request))
    candidates = _candidates(request)
    plans: list[Plan] = []
    failures: list[InfeasiblePlanError] = []
    data_grid = request.unique_tokens is not None
    single = len(candidates) * len(variants) == 1
    for cand in candidates:
        if data_grid:  # coarse pass over the (epochs, params ratio) grid, then the fine points near the best
            solved = _solve_each(request, cand, [v for v in variants if _coarse(v)], failures, single)
            if solved:
                best = min(solved, key=lambda s: s.estimate(request.objective)).var
                near = [v for v in variants if not _coarse(v) and _near(v, best)]
                solved += _solve_each(request, cand, near, failures, single, solved[-1].sol.params)
                solved = [min(solved, key=lambda s: s.estimate(request.objective))]  # explain only the best
        else:
            solved = _solve_each(request, cand, variants, failures, single)
        for s in solved:
            plans.append(_plan(request, s.var, s.cand, s.mfu, s.mfu_source, s.goodput, s.values, s.sol, s.tp))
    if not plans:
        first = failures[0]
        what = "accelerator" if len(candidates) > 1 else "choice"
        raise InfeasiblePlanError(first.field, f"no {what} can meet every limit; e.g. {first.detail}",
                                  first.relaxations)
    best = min(plans, key=lambda p: p.objective_value)
    if len(plans) > 1 or failures:
        alts, seen = [], set()
        for p in sorted(plans, key=lambda p: p.objective_value):
            key = (p.gpu, p.precision, p.experts, None if p.epochs is None else round(p.epochs, 3))
            if key in seen:  # an epochs variant whose data limit is slack repeats a smaller one's plan
                continue
            seen.add(key)
            alts.append(Alternative(gpu=p.gpu, precision=p.precision, experts=p.experts, epochs=p.epochs,
                                    feasible=True, objective_value=p.objective_value, loss=p.loss,
                                    cost_usd=p.total_cost_usd, hours=p.hours))
        best = best.model_copy(update={"alternatives": alts})
    return best


def _solve_each(request: PlanRequest, cand: _Candidate, variants: list[_Variant],
                failures: list[InfeasiblePlanError], single: bool, hint: float | None = None) -> list[_Solved]:
    """Solve every variant on ``cand``; infeasible ones go to ``failures`` (raised when it is the only choice).
    Each solve starts from the previous one's params for the size-dependent assumptions (MFU, expert ratio)."""
    out = []
    for var in variants:
        try:
            out.append(_solve(request, var, cand, hint))
            hint = out[-1].sol.params
        except InfeasiblePlanError as e:
            if single:
                raise
            failures.append(e)
    return out


def _law(request: PlanRequest) -> Law:
    """The request's law; MoE and data-constrained requests default to the law that models them."""
    law_id = request.law
    if "law" not in request.model_fields_set:
        if request.is_moe:
            law_id = "joint-moe-2025"
        elif request.unique_tokens is not None:
            law_id = "muennighoff-2023"
    try:
        return get_law(law_id)
    except LawError as e:
        raise InputError("law", str(e)) from None


def _pow2_upto(n: int) -> list[int]:
    return [2**i for i in range(int(math.log2(n)) + 1)]


def _variants(request: PlanRequest, law: Law) -> list[_Variant]:
    """The law variants to enumerate: expert counts (MoE), epochs (limited unique data), or the law itself."""
    if request.is_moe:
        if law.form != "joint-moe":
            raise InputError("law", f"MoE plans need a law with an expert count (joint-moe-2025); {law.id} has none")
        experts = [request.experts] if request.experts else _pow2_upto(request.max_experts)
        out = []
        for e in experts:
            try:
                out.append(_Variant(law.at_experts(e), law.id, count="active", experts=e))
            except LawError as err:
                if len(experts) == 1:
                    raise InputError("experts", str(err)) from None
        return out
    if law.form == "joint-moe":
        raise InputError("law", f"law {law.id} is a mixture-of-experts law: pass moe (--moe) or experts (--experts)")
    if request.unique_tokens is not None:
        if law.form != "muennighoff":
            raise InputError("law", f"data-constrained plans need the Muennighoff law (muennighoff-2023); "
                             f"{law.id} has no repetition term")
        return _data_variants(law, request.unique_tokens, request.max_epochs)
    if law.form == "muennighoff":
        raise InputError("law", f"law {law.id} needs the unique tokens available (unique_tokens, --unique-tokens)")
    if law.inputs != ("params", "tokens") or law.output != "loss":
        raise InputError("law", f"law {law.id} does not predict loss from params and tokens")
    return [_Variant(law, law.id, count=_PARAMS_COUNT.get(law.form, "total"))]


def _is_pow2(x: float) -> bool:
    return x >= 1 and float(x).is_integer() and (int(x) & (int(x) - 1)) == 0


def _coarse(var: _Variant) -> bool:
    """The coarse data grid: powers of two of epochs and params ratio (plus the largest epochs allowed)."""
    return _is_pow2(var.params_limit_ratio) and (_is_pow2(var.epochs) or var.epochs == var.max_epochs)


def _near(var: _Variant, best: _Variant) -> bool:
    """Within a factor 2 of the best coarse point in both epochs and params ratio."""
    return (best.epochs / 2 < var.epochs < best.epochs * 2
            and best.params_limit_ratio / 2 < var.params_limit_ratio < best.params_limit_ratio * 2)


def _data_variants(law: Law, unique_tokens: float, max_epochs: float) -> list[_Variant]:
    """(epochs, params ratio) grid for the Muennighoff law: each variant scales the base law's inputs by the
    law's own effective-tokens and effective-params factors at that grid point."""
    base = law.at_epochs(1.0)  # the base Chinchilla law (effective tokens = tokens at one epoch)
    n_opt = float(law.params_limit(unique_tokens))
    out = []
    epochs = [k for k in EPOCH_GRID if k < max_epochs] + [max_epochs]
    for k in epochs:
        m = law.effective_tokens_multiplier(k)
        for r in PARAMS_RATIO_GRID:
            n = r * n_opt
            q = float(law.predict("effective_params", params=n, tokens=k * unique_tokens,
                                  unique_tokens=unique_tokens)) / n
            out.append(_Variant(base, law.id, epochs=k, unique_tokens=unique_tokens, params_limit=n,
                                params_limit_ratio=r, max_epochs=max_epochs, params_scale=q, tokens_scale=m,
                                exact=law))
    return out


def _candidates(request: PlanRequest) -> list[_Candidate]:
    try:
        catalog = load_catalog(request.catalog)
        if request.gpu.strip().lower() == "any":
            accs = list(catalog.accelerators.values())
        else:
            accs = [catalog.get(k) for k in request.gpu.split(",") if k.strip()]
    except CatalogError as e:
        raise InputError("catalog" if e.field == "catalog" else "gpu", str(e)) from None
    precisions = _PRECISIONS if request.precision == "any" else (request.precision,)
    out = []
    for acc in accs:
        for prec in precisions:
            try:
                peak = acc.peak_flops(prec)
            except CatalogError as e:
                if len(accs) == 1 and len(precisions) == 1:
                    raise InputError("precision", str(e)) from None
                continue
            if request.price:
                price, source = request.price, "given"
            else:
                try:
                    entry = acc.price(request.price_tier)
                except CatalogError as e:
                    if len(accs) == 1:
                        raise InputError("price_tier", str(e)) from None
                    continue
                price = entry.usd_per_hour
                source = f"{acc.id} {entry.tier}: {entry.source} ({entry.date}, {entry.status})"
            out.append(_Candidate(acc, prec, peak, price, source))
    if not out:
        raise InputError("precision", f"no accelerator in {request.gpu!r} supports {request.precision}")
    return out


def _mfu(request: PlanRequest, cand: _Candidate, params: float | None, moe: bool = False) -> tuple[float, str]:
    if request.mfu:
        return request.mfu, "given"
    gen = generation(cand.acc)
    mfu = default_mfu(cand.acc, params, moe)
    regime = "" if params is None or default_mfu(cand.acc, params) == DEFAULT_MFU[gen] else \
        ", small-model regime (< 10B params)"
    moe_s = f", x{MOE_MFU_FACTOR} for MoE" if moe else ""
    return mfu, f"default for {gen} accelerators{regime}{moe_s} (cost_models.throughput)"


def _expert_ratio(var: _Variant, params: float, seq_len: int) -> float:
    """Total / active params of the MoE shape nearest ``params`` active params (1 for a dense model)."""
    if var.experts == 1:
        return 1.0
    shape = fit_shape(params, count=var.count, experts=var.experts, seq_len=seq_len).shape
    return float(total_params(shape)) / float(active_params(shape))


@dataclass
class _Solved:
    """A solved program for one (candidate, variant), before the plan is sized, rounded and explained."""

    var: _Variant
    cand: _Candidate
    sol: Solution
    mfu: float
    mfu_source: str
    goodput: float
    values: dict[str, float]
    tp: int

    def estimate(self, objective: str) -> float:
        """The objective at the program's optimum (the loss under the variant's full law)."""
        if objective == "loss":
            deff = self.sol.effective_tokens if self.sol.effective_tokens is not None else self.sol.tokens
            return self.var.loss(self.sol.params, deff)
        return self.sol.value


def _solve(request: PlanRequest, var: _Variant, cand: _Candidate, hint: float | None = None) -> _Solved:
    """Solve the program for one variant on one candidate; ``hint`` is a guess of the params (for the
    assumptions that depend on model size)."""
    law = var.law
    active = {c for f, c in _LIMIT_FIELDS.items() if getattr(request, f) is not None}
    if request.check_memory:
        active.add("memory")
    if _coupled(request):
        active |= {"critical_batch", "dp_min"} | ({"step_time"} if request.min_step_seconds else set())
    if var.unique_tokens is not None:
        active |= DATA
    active = frozenset(active)
    inference = request.inference_tokens is not None
    tp = _tensor_parallel(request, cand.acc)
    goodput = request.goodput or DEFAULT_GOODPUT
    values: dict[str, float] = {
        "peak": cand.peak,
        "price": cand.price,
        "bytes_per_param": request.bytes_per_param,
        "memory": cand.acc.memory_bytes,
        "serve_peak": cand.peak,
        "serve_efficiency": DEFAULT_EFFICIENCY,
        "serve_tokens": request.inference_tokens or 0.0,
        "bstar": KAPLAN_BSTAR,
        "seq_per_tp": request.seq_len / tp,
        "step_seconds": request.min_step_seconds or 0.0,
    }
    for f, c in _LIMIT_FIELDS.items():
        if c in active:
            v = getattr(request, f)
            values[c] = v * 24.0 if c == "deadline" else float(v)
    values = {k: v for k, v in values.items() if k in _BASE_PARAMS or k in active}
    if var.unique_tokens is not None:
        values["unique_tokens"] = var.epochs * var.unique_tokens
        values["data_params"] = var.params_limit
        values["params_scale"] = var.params_scale
        values["tokens_scale"] = var.tokens_scale
    unused = set() if inference else {"serve_peak", "serve_efficiency", "serve_tokens"}
    if "critical_batch" not in active:
        unused |= {"bstar", "seq_per_tp", "step_seconds"}
    elif "step_time" not in active:
        unused.add("step_seconds")
    for k in unused:
        values.pop(k)

    program = get_program(law, active, request.objective, inference, bcrit_exponent=1.0 / KAPLAN_ALPHA_B)
    # Two assumptions depend on the model the program picks: the default MFU (size regime, MoE) and, for MoE,
    # the total/active params ratio that memory scales with. Solve, update them, re-solve until they settle.
    moe = var.experts > 1
    mfu, mfu_source = _mfu(request, cand, hint, moe)
    ratio = _expert_ratio(var, hint or 1e10, request.seq_len)
    for attempt in range(4):
        values["mfu"] = mfu * goodput
        values["bytes_per_param"] = request.bytes_per_param * ratio
        sol = program.solve(values)
        if sol.status not in ("optimal", "optimal_inaccurate"):
            break
        new_mfu, new_source = _mfu(request, cand, sol.params, moe)
        new_ratio = _expert_ratio(var, sol.params, request.seq_len)
        if new_mfu == mfu and abs(new_ratio / ratio - 1.0) < 0.01:
            mfu_source = new_source
            break
        if attempt == 3:
            mfu_source += "; params sit at the 10B regime boundary, solved with this MFU"
            break
        mfu, mfu_source, ratio = new_mfu, new_source, new_ratio
    if sol.status == "infeasible":
        raise _diagnose(law, active, request.objective, inference, values)
    if sol.status == "unbounded":
        raise InputError("limits", "no limit bounds the plan: set budget_flops, dollars or gpu_hours")
    if sol.status not in ("optimal", "optimal_inaccurate"):
        raise InputError("solver", "the solvers (CLARABEL, SCS) could not solve this request")
    return _Solved(var, cand, sol, mfu, mfu_source, goodput, values, tp)


def _coupled(request: PlanRequest) -> bool:
    """Batch coupling: on when the user sets it, else when wall-clock is limited or is the objective."""
    if request.batch_coupling is not None:
        return request.batch_coupling
    return request.deadline_days is not None or request.objective == "time"


def _tensor_parallel(request: PlanRequest, acc: Accelerator) -> int:
    """Tensor-parallel degree: given, else min(8, devices per node) (TP within a node, Llama 3 405B: TP8)."""
    return request.tensor_parallel or min(8, acc.devices_per_node)


def _lr_law(request: PlanRequest) -> str:
    return request.lr_law or ("joint-moe-2025" if request.is_moe else "steplaw-2025")


def _plan(request: PlanRequest, var: _Variant, cand: _Candidate, mfu: float, mfu_source: str, goodput: float,
          values: dict[str, float], sol: Solution, tp: int) -> Plan:
    acc = cand.acc
    law = var.law
    N, D = sol.params, sol.tokens
    coupled = sol.batch_tokens is not None
    D_eff = sol.effective_tokens if coupled else D
    flops = float(training_flops(N, D))
    gh = float(gpu_hours(flops, cand.peak, mfu * goodput))
    bytes_per_param = values["bytes_per_param"]
    notes = []
    # Size the cluster: fewest whole devices that hold the states and meet the deadline (or the sizing
    # horizon when no deadline is given), within max_gpus. GPU-hours and dollars do not depend on the
    # split; only the wall-clock does.
    g_min = math.ceil(float(state_bytes_per_device(N, 1.0, bytes_per_param)) / acc.memory_bytes - 1e-9)
    g_min = max(g_min, 1) if request.check_memory else 1
    if coupled:  # the program chose the devices together with the batch
        gpus = max(g_min, math.ceil(sol.devices - 1e-6))
        if request.max_gpus:
            gpus = min(gpus, request.max_gpus)
    elif request.objective == "time":
        gpus = int(request.max_gpus)
    else:
        horizon_h = (request.deadline_days or request.sizing_days) * 24.0
        gpus = max(g_min, math.ceil(gh / horizon_h - 1e-9))
        if request.max_gpus:
            gpus = min(gpus, request.max_gpus)
    hours = gh / gpus
    if coupled and request.min_step_seconds:  # wall-clock is also at least steps × the step-time floor
        hours = max(hours, D / sol.batch_tokens * request.min_step_seconds / 3600.0)
    gh = gpus * hours  # paid device-hours (idle time included when the step floor binds)
    if not coupled and request.deadline_days is None and request.objective != "time":
        notes.append(
            f"no deadline given: cluster sized to finish in {request.sizing_days:g} days (sizing only, not a limit)"
        )
    if request.check_memory:
        what = "" if var.experts == 1 else f" of total params ({bytes_per_param / request.bytes_per_param:.3g}" \
            " x active)"
        notes.append(
            f"memory: {request.bytes_per_param:g} bytes/param{what} (mixed-precision Adam, ZeRO-3 sharded); "
            "activations not modelled"
        )
    if sol.status == "optimal_inaccurate":
        notes.append(f"solver {sol.solver} reported an inaccurate solution; treat numbers with care")
    loss = var.loss(N, D_eff)
    b_crit = float(critical_batch_tokens(loss))
    lr_law = _lr_law(request)
    batch_law, batch_law_id = law_batch_tokens(lr_law, D, flops)
    if coupled:
        batch = sol.batch_tokens
    else:  # the law's optimal batch, or more if the sized cluster needs a sequence on every data-parallel rank
        dp_batch = gpus * request.seq_len / tp
        batch = max(batch_law, dp_batch)
        if dp_batch > batch_law and batch > 0.05 * b_crit:
            notes.append(
                f"the sized cluster needs a batch of at least {batch:.3g} tokens, above the {batch_law_id} optimum "
                f"{batch_law:.3g} and {batch / b_crit:.0%} of the critical batch {b_crit:.3g}: expect that share "
                "of extra tokens; pass --deadline-days to plan it"
            )
    train_cost = float(cost_usd(gh, cand.price))
    mem_per_gpu = float(state_bytes_per_device(N, gpus, bytes_per_param))
    if var.unique_tokens is not None:
        notes.append(
            f"data: {D / var.unique_tokens:.3g} epochs over {var.unique_tokens:.3g} unique tokens, params "
            f"{N / float(var.exact.params_limit(var.unique_tokens)):.3g} x "
            "N_opt of the unique data; loss from the full Muennighoff law (grid of epochs x params ratio)"
        )

    inference = None
    serve_cost = 0.0
    if request.inference_tokens is not None:
        per_million = float(usd_per_million_tokens(cand.price, cand.peak / (2 * N), DEFAULT_EFFICIENCY))
        serve_cost = per_million * request.inference_tokens / 1e6
        inference = InferenceCost(tokens=request.inference_tokens, cost_usd=serve_cost,
                                  usd_per_million_tokens=per_million, efficiency=DEFAULT_EFFICIENCY)
        active_s = " active" if var.experts > 1 else ""
        notes.append(
            f"serving: compute-bound decode, 2N{active_s} FLOPs per token at {DEFAULT_EFFICIENCY:.0%} of "
            f"{cand.precision} peak on the training accelerator (cost_models.inference)"
        )
    total_cost = train_cost + serve_cost
    objective_value = {"loss": loss, "cost": total_cost, "time": hours}[request.objective]

    observed = {
        "throughput": flops / (gpus * hours * 3600.0),
        "flops": flops,
        "dollars": total_cost,
        "gpu_hours": gh,
        "deadline": hours,
        "memory": mem_per_gpu,
        "max_devices": float(gpus),
        "max_params": N,
        "max_tokens": D,
        "min_params": N,
        "min_tokens": D,
        "target_loss": var.program_loss(N, D_eff),
        "critical_batch": D,
        "dp_min": batch,
        "step_time": hours,
        "unique_tokens": D,
        "data_params": N,
    }
    limits = {**values, "throughput": cand.peak * mfu * goodput}
    if coupled:
        limits["critical_batch"] = D_eff * (1 + batch / b_crit)
        limits["dp_min"] = gpus * request.seq_len / tp
        if request.min_step_seconds:
            limits["step_time"] = D / batch * request.min_step_seconds / 3600.0
    duals = {k: v for k, v in sol.duals.items() if k not in DATA}  # the data grid's own bounds are internal
    if var.unique_tokens is not None:
        duals["unique_tokens"] = _unique_tokens_elasticity(var, N, D_eff, request.objective, sol.duals)
        limits["unique_tokens"] = var.unique_tokens
        observed["unique_tokens"] = min(D, var.unique_tokens)
    reports, binding, shadow = [], [], {}
    for name, lam in duals.items():
        sense, unit = CONSTRAINTS[name]
        lim, val = limits[name], observed[name]
        slack = (lim - val) / lim if sense == "<=" else (val - lim) / lim
        change = objective_value * (1.1 ** (-lam if sense == "<=" else lam) - 1.0)
        tol = max(1e-3, 1.0 / gpus) if name in ("deadline", "max_devices") else 1e-3
        is_binding = lam > 0 or (name != "throughput" and abs(slack) <= tol)
        reports.append(
            ConstraintReport(
                name=name, limit=lim, value=val, unit=unit, sense=sense, slack=slack,
                elasticity=lam, objective_change_per_10pct=change, binding=is_binding,
            )
        )
        shadow[name] = change
        if is_binding:
            binding.append(name)

    loss_ci = None
    samples = law.predict_bootstrap(params=N, tokens=D_eff)
    if samples is not None:
        lo, hi = np.percentile(samples, [2.5, 97.5])
        loss_ci = (float(lo), float(hi))

    energy = None
    if acc.tdp_w:
        energy = float(energy_kwh(gpus, acc.tdp_w, hours))
    fit, par, rounded = _round(request, var, cand, mfu * goodput, N, D, D_eff, batch, gpus, observed, limits)
    hp = law_hyperparameters(lr_law, float(active_non_embedding_params(fit.shape)), rounded.tokens, rounded.flops,
                             rounded.steps, var.experts)
    return Plan(
        objective=request.objective, objective_value=objective_value, target_loss=request.target_loss,
        law=var.law_id, law_citation=law.info.citation, params=N, tokens=D, tokens_per_param=D / N,
        effective_tokens=D_eff, batch_tokens=batch, batch_sequences=batch / request.seq_len, seq_len=request.seq_len,
        steps=D / batch, critical_batch_tokens=b_crit, batch_coupling=coupled, law_batch_tokens=batch_law,
        batch_law=batch_law_id, tensor_parallel=tp,
        flops=flops, loss=loss, loss_ci=loss_ci, gpu=acc.id, gpu_name=acc.name, precision=cand.precision,
        peak_flops_per_gpu=cand.peak, mfu=mfu, mfu_source=mfu_source, goodput=goodput,
        price_usd_per_gpu_hour=cand.price, price_source=cand.price_source, gpus=gpus, hours=hours,
        days=hours / 24.0, gpu_hours=gh, cost_usd=train_cost, total_cost_usd=total_cost, energy_kwh=energy,
        memory_per_gpu_gb=mem_per_gpu / 1e9, inference=inference, binding=binding, shadow_prices=shadow,
        shadow_price_unit=_SHADOW_UNIT[request.objective], constraints=reports, solver=sol.solver,
        status=sol.status, notes=notes + par.notes, total_params=rounded.total_params,
        active_params=rounded.active_params, experts=fit.shape.experts, top_k=fit.shape.top_k,
        unique_tokens=var.unique_tokens, epochs=None if var.unique_tokens is None else D / var.unique_tokens,
        learning_rate=hp.learning_rate, min_learning_rate=hp.min_learning_rate, lr_schedule=hp.lr_schedule,
        warmup_steps=hp.warmup_steps, lr_law=hp.lr_law,
        shape=fit.shape.model_dump(), parallelism=par.model_dump(exclude={"memory"}), rounded=rounded,
    )


def _unique_tokens_elasticity(var: _Variant, params: float, effective_tokens: float, objective: str,
                              duals: dict[str, float]) -> float:
    """−d ln(objective)/d ln(unique tokens) at the plan (envelope theorem: U enters only the law, so its value
    is the law's own sensitivity at fixed N and D, times the target's elasticity for objectives cost and time)."""
    h = 0.01
    lo, hi = (float(var.exact.predict(params=params, tokens=effective_tokens, unique_tokens=var.unique_tokens * f))
              for f in (math.exp(-h), math.exp(h)))
    loss_elasticity = -(math.log(hi) - math.log(lo)) / (2 * h)
    scale = 1.0 if objective == "loss" else duals.get("target_loss", 0.0)
    return max(scale * loss_elasticity, 0.0)


def _round(request: PlanRequest, var: _Variant, cand: _Candidate, mfu_eff: float, N: float, D: float, D_eff: float,
           batch: float, gpus: int, observed: dict[str, float], limits: dict[str, float]):
    """Round to a concrete shape and cluster and re-evaluate loss, FLOPs, hours and dollars."""
    fit = fit_shape(N, count=var.count, experts=var.experts, seq_len=request.seq_len)
    shape = fit.shape
    par = plan_parallelism(shape, gpus, cand.acc, global_batch_tokens=batch, precision=cand.precision,
                           zero_stage=3 if request.check_memory else 1)
    n_r = float(fit.achieved)
    b_r = float(par.global_batch_tokens)
    steps = max(round(D / b_r), 1)
    d_r = steps * b_r
    loss_r = var.loss(n_r, D_eff * d_r / D)
    flops_r = float(training_flops(active_params(shape), d_r))
    gh_r = float(gpu_hours(flops_r, cand.peak, mfu_eff))
    hours_r = gh_r / par.devices
    cost_r = float(cost_usd(gh_r, cand.price))
    after = {"flops": flops_r, "dollars": cost_r + (observed["dollars"] - observed["gpu_hours"] * cand.price),
             "gpu_hours": gh_r, "deadline": hours_r, "max_devices": float(par.devices), "max_params": n_r,
             "min_params": n_r, "max_tokens": d_r, "min_tokens": d_r,
             "target_loss": var.program_loss(n_r, D_eff * d_r / D)}
    checks = {_FIELD_OF[k]: (limits[k] / 24.0 if k == "deadline" else limits[k],
                             v / 24.0 if k == "deadline" else v)
              for k, v in after.items() if k in limits and k in _FIELD_OF}
    rounded = RoundedPlan(
        params=n_r, params_counted_as=var.count, total_params=float(total_params(shape)),
        active_params=float(active_params(shape)), shape_rel_error=fit.rel_error, tokens=d_r, batch_tokens=b_r,
        steps=steps, loss=loss_r, flops=flops_r, gpus=par.devices, hours=hours_r, gpu_hours=gh_r, cost_usd=cost_r,
        memory_per_gpu_gb=par.memory_per_device_gb, memory_fits=par.fits, limits=checks,
    )
    return fit, par, rounded


_SHADOW_UNIT = {
    "loss": "loss change (nats/token) if the limit rises 10%",
    "cost": "total cost change (USD) if the limit rises 10%",
    "time": "wall-clock change (hours) if the limit rises 10%",
}


def _describe(name: str, old: float, new: float) -> str:
    field = _FIELD_OF.get(name, name)
    if name == "deadline":
        return f"{field} from {old / 24:.4g} to {new / 24:.4g} days"
    if name == "dollars":
        return f"{field} from ${old:,.0f} to ${new:,.0f}"
    if name == "max_devices":
        return f"{field} from {old:.0f} to {math.ceil(new - 1e-6):.0f}"
    return f"{field} from {old:.4g} to {new:.4g}"


def _diagnose(law: Law, active: frozenset[str], objective: str, inference: bool,
              values: dict[str, float]) -> InfeasiblePlanError:
    """Which single limit, relaxed alone, makes the request feasible, and to what value."""
    fixes: dict[str, float] = {}
    parts = []
    for name in sorted(active - {"memory"} - COUPLING - DATA):
        sol = get_program(law, active, objective, inference, elastic=name).solve(values)
        if sol.status not in ("optimal", "optimal_inaccurate"):
            continue
        factor = max(sol.value, 1.0) * (1 + 1e-6)
        lowers = name.startswith("min_")
        new = values[name] / factor if lowers else values[name] * factor
        fixes[_FIELD_OF.get(name, name)] = new / 24.0 if name == "deadline" else new
        parts.append(("lower " if lowers else "raise ") + _describe(name, values[name], new))
    if not parts:
        return InfeasiblePlanError("limits", "no plan meets every limit, and no single limit relaxed alone fixes it")
    first = next(iter(fixes))
    detail = "no plan meets every limit; any one of these fixes it: " + "; ".join(parts)
    return InfeasiblePlanError(first, detail, fixes)
