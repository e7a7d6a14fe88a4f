"""Explain a plan: the launchable numbers, what binds, what each limit is worth (dual elasticity and a re-solve
at +10%), learning-rate settings and notes."""

from __future__ import annotations

import math

import numpy as np

from cost_models.architecture import active_non_embedding_params, active_params, total_params
from cost_models.throughput import energy_kwh
from planner.hyperparams import law_batch_tokens, law_hyperparameters
from planner.plan import ConstraintReport, ParallelismPlan, Plan, RoundedPlan
from planner.program import CONSTRAINTS, DATA, INTERNAL, Param, get_program
from planner.request import PlanRequest, hours_to_days
from planner.solve import Solved, critical_batch_tokens, lr_law_of
from planner.whole import WholePlan

BINDING_SLACK = 1e-3  # a constraint binds when its dual is positive and its relative slack at most this

_SHADOW_UNIT = {
    "loss": "loss change (nats/token) if the limit rises 10% (a re-solve)",
    "cost": "total cost change (USD) if the limit rises 10% (a re-solve)",
    "time": "wall-clock change (hours) if the limit rises 10% (a re-solve)",
}


def _program_objective(s: Solved, sol, objective: str) -> float:
    if objective == "loss":
        return s.var.loss(sol.params, sol.effective_tokens)
    return sol.value


def constraint_reports(request: PlanRequest, s: Solved) -> tuple[list[ConstraintReport], list[str], dict]:
    """One report per user limit (and per internal constraint that binds), at the program's optimum."""
    sol = s.sol
    base = _program_objective(s, sol, request.objective)
    reports, binding, shadow = [], [], {}
    program = get_program(s.var.law, s.structure)
    for name, (lhs, rhs) in sorted(sol.sides.items()):
        lam = sol.duals.get(name, 0.0)
        if name in DATA:
            continue
        if name in INTERNAL and (lam <= 0 or name not in ("memory", "replica", "throughput")):
            continue
        sense, unit = CONSTRAINTS[name]
        if sense == ">=" or name.startswith("min_"):
            limit, value = lhs, rhs
            slack = (value - limit) / limit if limit else 0.0
        else:
            value, limit = lhs, rhs
            slack = (limit - value) / limit if limit else 0.0
        if abs(slack) < 1e-6:  # solver tolerance: print 0, never "-0.0%"
            slack = 0.0
        is_binding = lam > 0 and abs(slack) <= BINDING_SLACK
        change = 0.0
        key = Param.GOODPUT if name == "throughput" else name  # throughput capacity scales with goodput
        if lam > 0 and key in s.values:  # a re-solve with this limit 10% higher
            bumped = dict(s.values)
            bumped[key] = bumped[key] * 1.1
            again = program.solve(bumped)
            if again.status == "optimal":
                change = _program_objective(s, again, request.objective) - base
        reports.append(ConstraintReport(name=name, limit=limit, value=value, unit=unit,
                                        sense=sense, slack=slack, elasticity=lam,
                                        objective_change_per_10pct=change, binding=is_binding))
        shadow[name] = change
        if is_binding and name not in INTERNAL:
            binding.append(name)
    if s.var.unique_tokens is not None:  # the value of more unique data (envelope theorem, see below)
        lam = _unique_tokens_elasticity(s.var, sol.params, sol.effective_tokens, request.objective, sol.duals)
        u = s.var.unique_tokens
        used = min(sol.tokens, u)
        change = base * (1.1 ** (-lam) - 1)
        is_binding = lam > 0 and sol.tokens >= u * (1 - BINDING_SLACK)
        reports.append(ConstraintReport(name="unique_tokens", limit=u, value=used, unit=CONSTRAINTS["unique_tokens"][1],
                                        sense="<=", slack=(u - used) / u, elasticity=lam,
                                        objective_change_per_10pct=change, binding=is_binding))
        shadow["unique_tokens"] = change
        if is_binding:
            binding.append("unique_tokens")
    return reports, binding, shadow


def _unique_tokens_elasticity(var, params: float, effective_tokens: float, objective: str,
                              duals: dict[str, float]) -> float:
    """−d ln(objective)/d ln(unique tokens) at the plan (envelope theorem: U enters only the law, so its value
    is the law's own sensitivity at fixed N and D, times the target's elasticity for objectives cost and time).
    Its "Δ per +10%" is this elasticity applied to 10%, not a re-solve (a re-solve would re-run the data grid)."""
    h = 0.01
    lo, hi = (float(var.exact.predict(params=params, tokens=effective_tokens, unique_tokens=var.unique_tokens * f))
              for f in (math.exp(-h), math.exp(h)))
    loss_elasticity = -(math.log(hi) - math.log(lo)) / (2 * h)
    scale = 1.0 if objective == "loss" else duals.get("target_loss", 0.0)
    return max(scale * loss_elasticity, 0.0)


def parallelism_of(w: WholePlan, per_node: int) -> ParallelismPlan:
    """The launchable plan's cluster and what the cluster model predicts for it."""
    lay = w.layout
    dp = w.devices // (lay.tp * lay.pp)
    seqs = int(round(w.batch_tokens / w.shape.seq_len))
    est = w.estimate
    return ParallelismPlan(
        layout=lay, dp=dp, devices=w.devices, nodes=-(-w.devices // per_node), devices_per_node=per_node,
        grad_accum_steps=seqs // (dp * lay.micro_batch), global_batch_sequences=seqs,
        global_batch_tokens=int(w.batch_tokens), mfu=est.mfu, step_seconds=est.step_seconds,
        step_breakdown=est.step_breakdown, memory_per_device_gb=est.memory_bytes / 1e9,
        usable_memory_gb=est.usable_memory_bytes / 1e9,
        memory_breakdown_gb={k: v / 1e9 for k, v in est.memory_breakdown.items()}, fits=est.fits)


def explain(request: PlanRequest, s: Solved, w: WholePlan) -> Plan:
    """The Plan for the launchable plan ``w`` made from the program's solution ``s``."""
    cand, var, sol = s.cand, s.var, s.sol
    acc = cand.acc
    law = var.law
    notes: list[str] = []
    reports, binding, shadow = constraint_reports(request, s)
    goodput = request.goodput or 0.90
    # MFU on the plan's own FLOPs (6·N·D with the law's N), so device-hours = flops / (peak · mfu · goodput)
    mfu = w.flops / (w.gpu_hours * 3600.0 * cand.peak * goodput)
    if request.mfu:
        mfu_source = "given (--mfu); the step is model FLOPs at that MFU, no communication terms"
    else:
        mfu_source = (f"predicted by the cluster model for {w.layout.label()} on {w.devices} x {acc.id} "
                      "(cost_models.cluster; calibration in docs/calibration.md)")
    if request.deadline_days is None and request.objective != "time":
        if w.hours <= request.sizing_hours * (1 + 1e-6):
            notes.append(f"no deadline given: cluster sized to finish within {request.sizing_days:g} days "
                         "(sizing only, not a limit)")
        else:
            notes.append(f"no deadline given: finishing within {request.sizing_days:g} days is out of reach (more "
                         "devices than the batch law's optimal batch can feed, or a worse objective), so the cluster "
                         "trades time against dollars at par (least dollars x hours per FLOP: 1% sooner is worth 1% "
                         f"more dollars); the plan runs {hours_to_days(w.hours):.0f} days (pass --deadline-days to "
                         "bound it)")
    if var.unique_tokens is not None:
        notes.append(f"data: {w.tokens / var.unique_tokens:.3g} epochs over {var.unique_tokens:.3g} unique tokens; "
                     "loss from the full Muennighoff law (grid of epochs x params ratio)")
    if cand.precision in ("fp8", "fp4"):
        notes.append(f"{cand.precision} training is priced at its peak FLOP/s with no loss penalty: no published "
                     "precision scaling law with verified coefficients is applied; expect some loss degradation")
    lr_law = lr_law_of(request)
    batch_law, batch_law_id = law_batch_tokens(lr_law, w.tokens, w.flops)
    b_crit = float(critical_batch_tokens(w.loss))
    hp = law_hyperparameters(lr_law, float(active_non_embedding_params(w.shape)), w.tokens, w.flops, w.steps,
                             var.experts)
    inference = None
    if s.serving is not None:
        from planner.serving import demand_from_request, plan_serving
        from planner.solve import serving_accelerator
        from planner.whole_serving import _serving_choice

        serve_acc, serve_price = serving_accelerator(request, cand)
        choice = _serving_choice(request, cand, w.shape)  # the chooser on the launchable model
        inference = plan_serving(w.params, demand_from_request(request), accelerator=serve_acc, price=serve_price,
                                 config=choice.config, shape=w.shape)
        inference = inference.model_copy(update={"binding": choice.binding})
        notes.append(f"serving: {inference.gpus} x {inference.gpu} per replica at batch {inference.batch} "
                     f"({inference.precision}), {inference.tpot_ms:.3g} ms per output token, "
                     f"${inference.usd_per_million_tokens:.3g}/M output tokens (cost_models.serving, calibration in "
                     "docs/serving.md)")
    loss_ci = None
    samples = law.predict_bootstrap(params=w.params, tokens=w.effective_tokens)
    if samples is not None:
        lo, hi = np.percentile(samples, [2.5, 97.5])
        loss_ci = (float(lo), float(hi))
    energy = float(energy_kwh(w.devices, acc.tdp_w, w.hours)) if acc.tdp_w else None
    par = parallelism_of(w, acc.devices_per_node)
    limits = _limit_values(request, w)
    rounded = RoundedPlan(
        params=w.params, params_counted_as=var.count, total_params=float(total_params(w.shape)),
        active_params=float(active_params(w.shape)), shape_rel_error=w.params / sol.params - 1.0, tokens=w.tokens,
        batch_tokens=w.batch_tokens, steps=w.steps, loss=w.loss, flops=w.flops, gpus=w.devices, hours=w.hours,
        gpu_hours=w.gpu_hours, cost_usd=w.cost_usd, memory_per_gpu_gb=w.estimate.memory_bytes / 1e9,
        memory_fits=w.estimate.fits, limits=limits,
    )
    continuous = {"params": sol.params, "tokens": sol.tokens, "effective_tokens": sol.effective_tokens,
                  "batch_tokens": sol.batch_tokens, "devices": sol.devices, "hours": sol.hours,
                  "objective_value": _program_objective(s, sol, request.objective)}
    return Plan(
        objective=request.objective, objective_value=objective_value(request.objective, w),
        target_loss=request.target_loss, law=var.law_id, law_citation=law.info.citation, params=w.params,
        tokens=w.tokens,
        tokens_per_param=w.tokens / w.params, effective_tokens=w.effective_tokens, batch_tokens=w.batch_tokens,
        batch_sequences=w.batch_tokens / request.seq_len, seq_len=request.seq_len, steps=float(w.steps),
        critical_batch_tokens=b_crit,
        batch_coupling=request.batch_coupling is not False, law_batch_tokens=batch_law, batch_law=batch_law_id,
        tensor_parallel=w.layout.tp, flops=w.flops, loss=w.loss, loss_ci=loss_ci, gpu=acc.id, gpu_name=acc.name,
        precision=cand.precision, peak_flops_per_gpu=cand.peak, mfu=mfu, mfu_source=mfu_source, goodput=goodput,
        price_usd_per_gpu_hour=cand.price, price_source=cand.price_source, gpus=w.devices, hours=w.hours,
        days=hours_to_days(w.hours), gpu_hours=w.gpu_hours, cost_usd=w.cost_usd, total_cost_usd=w.total_cost_usd,
        energy_kwh=energy, memory_per_gpu_gb=w.estimate.memory_bytes / 1e9, inference=inference, binding=binding,
        shadow_prices=shadow, shadow_price_unit=_SHADOW_UNIT[request.objective], constraints=reports,
        solver=sol.solver, status=sol.status, notes=notes, total_params=rounded.total_params,
        active_params=rounded.active_params, experts=w.shape.experts, top_k=w.shape.top_k,
        unique_tokens=var.unique_tokens, epochs=None if var.unique_tokens is None else w.tokens / var.unique_tokens,
        learning_rate=hp.learning_rate, min_learning_rate=hp.min_learning_rate, lr_schedule=hp.lr_schedule,
        warmup_steps=hp.warmup_steps, lr_law=hp.lr_law, shape=w.shape, parallelism=par,
        step_seconds=w.estimate.step_seconds, step_breakdown=w.estimate.step_breakdown, rounded=rounded,
        continuous=continuous,
    )


def objective_value(objective: str, w: WholePlan) -> float:
    """The launchable plan's objective: loss (nats/token), total cost (USD) or wall-clock (hours)."""
    return {"loss": w.loss, "cost": w.total_cost_usd, "time": w.hours}[objective]


def _limit_values(request: PlanRequest, w: WholePlan) -> dict[str, tuple[float, float]]:
    """(limit, value) of every user limit at the launchable plan."""
    pairs = {
        "budget_flops": (request.budget_flops, w.flops), "dollars": (request.dollars, w.total_cost_usd),
        "gpu_hours": (request.gpu_hours, w.gpu_hours), "deadline_days": (request.deadline_days, hours_to_days(w.hours)),
        "max_gpus": (request.max_gpus, float(w.devices)), "max_params": (request.max_params, w.params),
        "min_params": (request.min_params, w.params), "max_tokens": (request.max_tokens, w.tokens),
        "min_tokens": (request.min_tokens, w.tokens), "target_loss": (request.target_loss, w.program_loss),
    }
    return {k: (float(v[0]), float(v[1])) for k, v in pairs.items() if v[0] is not None and math.isfinite(v[1])}
