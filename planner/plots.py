"""Plots (PNG, matplotlib's Agg backend): isoFLOP curves of a plan's law, Pareto frontiers of a sweep, and a
fitted law against the runs it was fitted to.

matplotlib is an optional extra (``pip install planner[plot]``); it is imported only when a plot is drawn and
its absence is a one-line InputError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from planner.errors import InputError
from planner.plan import Plan
from planner.safe_io import Outputs, write_output
from planner.sweep import FRONTIERS, SweepResult


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError("plot", "plotting needs matplotlib: install planner[plot]") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, field: str, outputs: Outputs | None = None) -> Path:
    """Write ``fig`` as PNG through a temporary file renamed into place (staged in ``outputs`` when given)."""
    plt = _pyplot()
    try:
        return write_output(path, field, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png"),
                            outputs)
    finally:
        plt.close(fig)


def _law_of(plan: Plan, law: Any = None):
    if law is not None and not isinstance(law, str):
        return law
    from laws.base import LawError
    from laws.catalog import get_law

    try:
        return get_law(law or plan.law)
    except LawError as e:
        hint = "" if law else " (a plan from a law file: pass law=<the file>)"
        raise InputError("law", f"cannot draw isoFLOP curves: {e}{hint}") from None


def isoflop_curves(law: Any, budgets: Sequence[float], *, points: int = 121, span: float = 100.0
                   ) -> list[dict[str, Any]]:
    """For each budget C, loss along 6·N·D = C for N in [N*/span, N*·span] (N* the curve's own minimum on a
    wide grid). Returns dicts with budget, params, tokens, loss arrays and the minimum (params_opt, loss_opt)."""
    out = []
    for c in budgets:
        wide = np.geomspace(max(c / 6 / 1e17, 1e3), (c / 6) ** 0.5 * 1e4, 2001)  # D = C/(6N) >= 1e... tokens
        wide = wide[(c / (6 * wide)) > 1]
        n_opt = wide[int(np.argmin(law.predict(params=wide, tokens=c / (6 * wide))))]
        n = np.geomspace(n_opt / span ** 0.5, n_opt * span ** 0.5, points)
        d = c / (6 * n)
        loss = np.asarray(law.predict(params=n, tokens=d), dtype=float)
        i = int(np.argmin(loss))
        out.append({"budget": float(c), "params": n, "tokens": d, "loss": loss, "params_opt": float(n[i]),
                    "loss_opt": float(loss[i])})
    return out


def plot_isoflop(plan: Plan, path: str | Path, *, budgets: Sequence[float] | None = None, law: Any = None,
                 field: str = "plot", outputs: Outputs | None = None) -> Path:
    """Loss vs params along isoFLOP lines (6·N·D = C) from the plan's law, each curve's optimum marked, and
    the plan itself as a star. ``budgets`` default: the plan's FLOPs × 0.01, 0.1, 1, 10, 100."""
    plt = _pyplot()
    law = _law_of(plan, law)
    budgets = list(budgets) if budgets else [plan.flops * f for f in (1e-2, 1e-1, 1.0, 1e1, 1e2)]
    curves = isoflop_curves(law, budgets)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    cmap = plt.get_cmap("viridis")
    for k, cv in enumerate(curves):
        color = cmap(k / max(len(curves) - 1, 1))
        ax.plot(cv["params"], cv["loss"], color=color, label=f"C = {cv['budget']:.2g} FLOP")
        ax.plot([cv["params_opt"]], [cv["loss_opt"]], "o", color=color, markeredgecolor="black")
    opt = [cv["params_opt"] for cv in curves]
    ax.plot(opt, [cv["loss_opt"] for cv in curves], "--", color="grey", lw=1, label="compute-optimal")
    ax.plot([plan.params], [plan.loss], "*", color="crimson", ms=16, markeredgecolor="black",
            label=f"plan: N = {plan.params:.3g}, loss {plan.loss:.4g}")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("predicted loss (nats/token)")
    ax.set_title(f"isoFLOP curves, law {law.id}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, field, outputs)


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def plot_pareto(result: SweepResult, path: str | Path, *, field: str = "plot", outputs: Outputs | None = None
                ) -> Path:
    """Two panels from a sweep: loss vs total dollars and wall-clock hours vs total dollars; every feasible
    point with one marker and colour per accelerator (legend), the Pareto frontier as a line."""
    plt = _pyplot()
    if not result.rows:
        raise InputError(field, "the sweep has no feasible points to plot")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    labels = {"loss": "predicted loss (nats/token)", "hours": "wall-clock (hours)",
              "total_cost_usd": "total cost (USD)"}
    for ax, (name, (x, y)) in zip(axes, FRONTIERS.items(), strict=True):
        gpus = list(dict.fromkeys(str(r.get("gpu", "")) for r in result.rows))
        for k, gpu in enumerate(gpus):
            pts = [r for r in result.rows if str(r.get("gpu", "")) == gpu]
            ax.scatter([r[x] for r in pts], [r[y] for r in pts], s=16, marker=_MARKERS[k % len(_MARKERS)],
                       color=_COLORS[k % len(_COLORS)], alpha=0.6, label=gpu or "points")
        front = result.frontier(name)
        ax.plot([r[x] for r in front], [r[y] for r in front], "-", lw=1.5, color="black", label="Pareto frontier")
        ax.set_xscale("log")
        if y == "hours":
            ax.set_yscale("log")
        ax.set_xlabel(labels[x])
        ax.set_ylabel(labels[y])
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path, field, outputs)


def _runs_arrays(runs: Any) -> dict[str, np.ndarray]:
    """params, tokens, loss (and unique_tokens if present) from a laws.runs.Runs, a mapping of arrays or a
    sequence of dicts."""
    if isinstance(runs, Mapping):
        cols = {k: np.asarray(v, dtype=float) for k, v in runs.items()}
    elif isinstance(runs, Sequence) and runs and isinstance(runs[0], Mapping):
        cols = {k: np.asarray([r.get(k, np.nan) for r in runs], dtype=float) for k in runs[0]}
    else:
        cols = {}
        for k in ("params", "tokens", "loss", "unique_tokens"):
            v = getattr(runs, k, None)
            if v is not None:
                cols[k] = np.asarray(v, dtype=float)
    missing = [k for k in ("params", "tokens", "loss") if k not in cols]
    if missing:
        raise InputError("runs_file", f"runs need columns params, tokens, loss; missing {', '.join(missing)}")
    return cols


def plot_fit(fit_result: Any, runs: Any, path: str | Path, *, field: str = "plot", outputs: Outputs | None = None
             ) -> Path:
    """A fitted loss law against its runs: loss vs params with the law's curve at a few token counts, and
    observed vs predicted loss. ``fit_result`` is a ``laws.fit.FitResult`` or any law with
    ``predict(params=, tokens=)``; ``runs`` a ``laws.runs.Runs``, a mapping of columns or a list of dicts."""
    plt = _pyplot()
    if getattr(fit_result, "form", None) == "power":
        raise InputError("form", "plot_fit draws loss laws (chinchilla, kaplan, muennighoff), not a power-law fit")
    cols = _runs_arrays(runs)
    n, d, y = cols["params"], cols["tokens"], cols["loss"]
    extra = {"unique_tokens": cols["unique_tokens"]} if getattr(fit_result, "form", None) == "muennighoff" else {}
    if getattr(fit_result, "form", None) == "muennighoff" and "unique_tokens" not in cols:
        raise InputError("runs_file", "a muennighoff fit needs a unique_tokens column to plot")
    pred = np.asarray(fit_result.predict(params=n, tokens=d, **extra), dtype=float)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    sc = ax1.scatter(n, y, c=np.log10(d), cmap="viridis", s=18, edgecolor="black", linewidths=0.3, zorder=3)
    fig.colorbar(sc, ax=ax1, label="log10 tokens D")
    if not extra:
        grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 200)
        levels = np.unique(np.quantile(d, [0.0, 0.25, 0.5, 0.75, 1.0]))
        cmap = plt.get_cmap("viridis")
        lo, hi = np.log10(d.min()), np.log10(d.max())
        for t in levels:
            curve = np.asarray(fit_result.predict(params=grid, tokens=np.full_like(grid, t)), dtype=float)
            ax1.plot(grid, curve, color=cmap(0.5 if hi == lo else (np.log10(t) - lo) / (hi - lo)), lw=1.2,
                     label=f"fit at D = {t:.2g}")
        ax1.legend(fontsize=8)
    ax1.set_xscale("log")
    ax1.set_xlabel("parameters N")
    ax1.set_ylabel("loss (nats/token)")
    ax1.set_title(f"{getattr(fit_result, 'form', 'law')} fit to {len(y)} runs")
    ax1.grid(True, which="both", alpha=0.3)

    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax2.plot([lo, hi], [lo, hi], "--", color="grey", lw=1, label="predicted = observed")
    ax2.scatter(y, pred, s=18, color="tab:blue", edgecolor="black", linewidths=0.3)
    rms = float(np.sqrt(np.mean((pred - y) ** 2)))
    ax2.set_xlabel("observed loss")
    ax2.set_ylabel("predicted loss")
    ax2.set_title(f"observed vs predicted (RMS {rms:.3g})")
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    return _save(fig, path, field, outputs)
