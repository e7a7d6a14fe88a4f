"""optimize(): resolve law and hardware, solve the program for each discrete choice, explain the best plan.

Discrete choices are enumerated around the geometric program: accelerator × precision × law variant -- the
expert count E of a mixture-of-experts model (the Joint MoE law at a fixed E is of Chinchilla form in active
params and tokens) or the number of epochs over a limited pool of unique tokens (the Muennighoff law at fixed
epochs is of Chinchilla form) -- × training layout (a probe layout, then the fastest layouts at the probe's
size: ``planner.solve``, ``planner.layout_rank``). Each candidate's continuous optimum is made a whole cluster
(``planner.whole``), re-solved at that cluster and verified against every limit; the best verified plan by the
objective wins and is explained (``planner.explain``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cost_models.catalog import CatalogError, load_catalog
from laws.base import Law, LawError
from laws.catalog import get_law
from planner.errors import InfeasiblePlanError, InputError
from planner.layout_rank import ranked_layouts
from planner.plan import Alternative, Plan
from planner.request import PlanRequest, hours_to_days
from planner.solve import (
    DEFAULT_START,
    FIELD_OF,
    Candidate,
    Solved,
    compute_optimal_start,
    diagnose,
    probe_layout,
    solve_layout,
    solver_failure,
    start_layout,
)
from planner.whole import WholePlan
from planner.whole_search import make_whole

# --precision any tries these; fp4 training has no verified loss model here, so it is only used when asked for.
_PRECISIONS = ("bf16", "fp16", "fp8")
# Native training precision when none is given: bf16, or fp16 where the device has no bf16 (V100).
_NATIVE = ("bf16", "fp16")


# Data-constrained grid (Muennighoff et al. 2023, eqs. 5-6): epochs over the unique tokens, and params as a
# multiple r of N_opt(U), the params the unique data supports. Repeated tokens lose value with R_D* ≈ 15 epochs
# and excess params with R_N* ≈ 5, so both grids are roughly geometric and stop where the law saturates.
EPOCH_GRID = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0, 32.0, 40.0, 48.0,
              64.0, 96.0, 128.0, 256.0, 512.0, 1000.0)
PARAMS_RATIO_GRID = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)

# What each law form's N counts, for rounding (per their papers: Chinchilla/Epoch and Muennighoff count total
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
    robust: Any = None  # planner.robust_terms.RobustTerms (robust plans): the loss over the law's samples

    def program_loss(self, params: float, effective_tokens: float) -> float:
        """The loss the program sees at (N, D_eff) (robust plans: the exact robust loss over all samples)."""
        return float(self.program_losses(params, effective_tokens))

    def program_losses(self, params, effective_tokens):
        """``program_loss`` over arrays (numpy broadcasting)."""
        if self.robust is not None:
            return self.robust.value(params * self.params_scale, effective_tokens * self.tokens_scale)
        return self.law.predict(params=params * self.params_scale, tokens=effective_tokens * self.tokens_scale)

    def loss(self, params: float, effective_tokens: float) -> float:
        """The plan's loss at (N, D_eff): the full law when there is one, else the program's law."""
        if self.exact is not None:
            return float(self.exact.predict(params=params, tokens=effective_tokens, unique_tokens=self.unique_tokens))
        return self.program_loss(params, effective_tokens)


def optimize(request: PlanRequest | None = None, /, **fields: Any) -> Plan:
    """The best plan under the request's limits and objective.

    ``optimize(PlanRequest(...))`` or ``optimize(budget_flops=1e22, gpu="h100")``. Raises InputError
    (one line, naming the field) for bad input and InfeasiblePlanError naming the limit to relax.
    """
    if request is None:
        request = PlanRequest.parse(**fields)
    elif fields:
        raise TypeError("pass either a PlanRequest or keyword fields, not both")
    try:
        if request.robust is not None:
            from planner.robust_plan import optimize_robust

            return optimize_robust(request, _optimize)
        return _optimize(request)
    except InfeasiblePlanError as e:
        if not e.relaxations:
            raise
        raise _checked_relaxations(request, e) from None


def _checked_relaxations(request: PlanRequest, e: InfeasiblePlanError) -> InfeasiblePlanError:
    """Keep only relaxations that re-solve to a launchable plan (nudged past the program's value in growing
    steps, since whole devices, sequences and steps can need more than the continuous optimum)."""
    ok: dict[str, float] = {}
    parts = []
    for field, value in e.relaxations.items():
        lowers = field.startswith("min_")
        for step in (1.0, 1.01, 1.03, 1.1, 1.3, 2.0, 4.0, 10.0):  # growing nudges past the program's value
            value = value / step if lowers else value * step
            v = math.ceil(value) if field == "max_gpus" else value
            try:
                _optimize(request.model_copy(update={field: v}))
            except InputError:  # still infeasible (or the solver could not certify it): a larger step
                continue
            ok[field] = v
            shown = f"${v:,.0f}" if field == "dollars" else (f"{v:.0f}" if field == "max_gpus" else f"{v:.4g}")
            parts.append(f"{'lower' if lowers else 'raise'} {field} to {shown}")
            break
    if not ok:
        return InfeasiblePlanError(e.field, "no plan meets every limit, and no single limit relaxed alone fixes it")
    first = next(iter(ok))
    return InfeasiblePlanError(first, "no plan meets every limit; any one of these fixes it (each checked by a "
                               "re-solve): " + "; ".join(parts), ok)


def _optimize(request: PlanRequest, robust: Any = None) -> Plan:
    """The best plan; ``robust`` (planner.robust_terms.RobustTerms) replaces the law's loss in every variant."""
    variants = _variants(request, _law(request))
    if robust is not None:
        variants = [dataclasses.replace(v, robust=robust) for v in variants]
    candidates = _candidates(request)
    plans: list[tuple[Solved, WholePlan]] = []   # made whole and verified; only the best is explained
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
            try:
                plans.append(whole_of(request, s))
            except InfeasiblePlanError as e:
                if single:
                    raise
                failures.append(e)
    if not plans:
        first = failures[0]
        what = "accelerator" if len(candidates) > 1 else "choice"
        raise InfeasiblePlanError(first.field, f"no {what} can meet every limit; e.g. {first.detail}",
                                  first.relaxations)
    from planner.explain import explain, objective_value

    def value(found: tuple[Solved, WholePlan]) -> float:
        return objective_value(request.objective, found[1])

    best = explain(request, *min(plans, key=value))
    if len(plans) > 1 or failures:
        alts, seen = [], set()
        for s, w in sorted(plans, key=value):
            epochs = None if s.var.unique_tokens is None else w.tokens / s.var.unique_tokens
            key = (s.cand.acc.id, s.cand.precision, w.shape.experts, None if epochs is None else round(epochs, 3))
            if key in seen:  # an epochs variant whose data limit is slack repeats a smaller one's plan
                continue
            seen.add(key)
            alts.append(Alternative(gpu=s.cand.acc.id, precision=s.cand.precision, experts=w.shape.experts,
                                    epochs=epochs, feasible=True, objective_value=value((s, w)), loss=w.loss,
                                    cost_usd=w.total_cost_usd, hours=w.hours))
        best = best.model_copy(update={"alternatives": alts})
    return best


def _solve_each(request: PlanRequest, cand: Candidate, variants: list[_Variant],
                failures: list[InfeasiblePlanError], single: bool, hint: float | None = None) -> list[Solved]:
    """Solve every variant on ``cand``; infeasible ones go to ``failures`` (raised when it is the only choice).
    Each solve starts from the previous one's params for the size-dependent terms (shape, expert ratio)."""
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


def _candidates(request: PlanRequest) -> list[Candidate]:
    """Every (accelerator, precision) the request allows, priced; InputError naming the field at fault."""
    if not request.catalog:   # the built-in catalog does not change: its candidates are made once per choice
        return list(_builtin_candidates(request.gpu, request.precision, request.price, request.price_tier))
    return _candidates_in(request.catalog, request.gpu, request.precision, request.price, request.price_tier)


@lru_cache(maxsize=256)
def _builtin_candidates(gpu: str, precision: str, price_given: float | None, price_tier: str | None
                        ) -> tuple[Candidate, ...]:
    """``_candidates_in`` the built-in catalog, memoized (the candidates are frozen; errors are not cached)."""
    return tuple(_candidates_in((), gpu, precision, price_given, price_tier))


def _candidates_in(catalog_files: tuple[str, ...], gpu: str, precision: str, price_given: float | None,
                   price_tier: str | None) -> list[Candidate]:
    try:
        catalog = load_catalog(catalog_files)
        if gpu.strip().lower() == "any":
            accs = list(catalog.accelerators.values())
        else:
            accs = [catalog.get(k) for k in gpu.split(",") if k.strip()]
    except CatalogError as e:
        raise InputError("catalog" if e.field == "catalog" else "gpu", str(e)) from None
    out = []
    for acc in accs:
        if precision == "any":
            precisions = [p for p in _PRECISIONS if p in acc.peak_tflops or p == "bf16"]
        elif precision == "native":
            precisions = [next((p for p in _NATIVE if p in acc.peak_tflops), "bf16")]
        else:
            precisions = [precision]
        for prec in precisions:
            try:
                peak = acc.peak_flops(prec)
            except CatalogError as e:
                if len(accs) == 1 and precision not in ("any", "native"):
                    raise InputError("precision", str(e)) from None
                continue
            if price_given:
                usd, source = price_given, "given"
            else:
                try:
                    entry = acc.price(price_tier)
                except CatalogError as e:
                    if len(accs) == 1:
                        raise InputError("price_tier", str(e)) from None
                    continue
                usd = entry.usd_per_hour
                source = f"{acc.id} {entry.tier}: {entry.source} ({entry.date}, {entry.status})"
            out.append(Candidate(acc, prec, peak, usd, source))
    if not out:
        raise InputError("precision", f"no accelerator in {gpu!r} supports {precision}")
    return out




def _solve(request: PlanRequest, var: _Variant, cand: Candidate, hint: float | None) -> Solved:
    """Solve one variant on one candidate: the probe layout first, then the fastest layouts at its size."""
    law = var.law
    probe = probe_layout(request, cand, var.experts)
    first = None
    start = compute_optimal_start(request, var) if hint is None else None
    if start is not None:  # one solve from the closed form; kept only when it is a fixed point of the rounding
        first = solve_layout(request, law, var, cand, start_layout(request, var, probe), start, iterations=1)
        if first.sol.status != "optimal" or not first.settled:
            first = None
    if first is None:
        first = solve_layout(request, law, var, cand, probe, hint or DEFAULT_START)
    if first.sol.status == "infeasible":
        raise diagnose(request, law, (first.structure, first.values))
    if first.sol.status == "unbounded":
        raise InputError("limits", "no limit bounds the plan: set budget_flops, dollars or gpu_hours")
    if first.sol.status != "optimal":
        raise solver_failure(first.sol)
    solved = [first]
    tried = {first.layout}
    last = None
    for _round in range(2):  # the fastest layouts at the best plan so far, solved from its size
        best = min(solved, key=lambda s: _layout_rank(s, request.objective))
        if best is last:  # the same ranking again: every layout it gives was tried
            break
        last = best
        for lay in ranked_layouts(request, cand, best.shape, best.sol.batch_tokens, best.sol.devices):
            if lay in tried:
                continue
            tried.add(lay)
            s = solve_layout(request, law, var, cand, lay, best.sol.params, iterations=3)
            if s.sol.status == "optimal":
                solved.append(s)
                tried.add(s.layout)
    solved.sort(key=lambda s: _layout_rank(s, request.objective))
    return _Ranked(solved)


def _layout_rank(s: Solved, objective: str) -> tuple:
    """Objective first (to 1e-7 relative: layouts often tie, e.g. when only FLOPs bind), then the device-seconds
    the layout needs for its plan, so ties go to the most efficient layout, the same one on every call."""
    est = s.estimate(objective)
    needed = s.sol.sides.get("throughput", (math.inf, 0.0))[0] * s.sol.devices
    return (round(math.log(est) * 1e7) if est > 0 else est, needed, s.layout.label())


class _Ranked(list):
    """Solved layouts of one (variant, candidate), best first; behaves as the best one for ranking."""

    @property
    def var(self):
        return self[0].var

    @property
    def sol(self):
        return self[0].sol

    def estimate(self, objective: str) -> float:
        return self[0].estimate(objective)


def whole_of(request: PlanRequest, ranked: list[Solved]) -> tuple[Solved, WholePlan]:
    """The best launchable plan among the solved layouts (each made a whole cluster and verified), with the
    solved layout it was made from."""
    for s in ranked:
        whole = make_whole(request, s)
        if whole is not None:
            return s, whole
    s = ranked[0]
    # the binding user limits, loosened a little: whole devices and sequences need slightly more than the
    # continuous optimum (``optimize`` checks each by a re-solve and nudges it further if needed)
    fixes = {}
    for name, lam in s.sol.duals.items():
        field = FIELD_OF.get(name)
        if lam > 0 and field and name in s.values:
            v = hours_to_days(s.values[name]) if name == "deadline" else s.values[name]
            fixes[field] = v / 1.02 if field.startswith("min_") else v * 1.02
    raise InfeasiblePlanError(
        next(iter(fixes), "limits"), f"the program's optimum ({s.sol.params:.4g} params on {s.sol.devices:.4g} x "
        f"{s.cand.acc.id}) has no whole cluster (devices a multiple of tp x pp, whole sequences per batch) that "
        "meets every limit", fixes)
