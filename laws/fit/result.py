"""The result of a fit: coefficients with bootstrap uncertainty, derived allocation, diagnostics; ``to_law()``.

Predictions and the compute-optimal allocation are the laws' own formulas: ``to_law()`` builds the same Law
object the written law file loads as (``laws.catalog``), and ``predict`` evaluates it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from laws.base import Law
from laws.chinchilla import chinchilla_loss, compute_optimal_allocation
from laws.fit.common import DEFAULT_DELTA, FitError
from laws.fit.diagnostics import Diagnostic
from laws.kaplan import kaplan_compute_optimal, kaplan_loss

_CITATIONS = {
    "chinchilla": "fitted by planner fit (Hoffmann et al. 2022 method: Huber delta {delta:g} on log loss, L-BFGS from "
                  "a {starts:,}-point grid)",
    "kaplan": "fitted by planner fit (Kaplan et al. 2020 form, eq. 1.5; Huber delta {delta:g} on log loss, L-BFGS "
              "from a {starts:,}-point grid)",
    "muennighoff": "fitted by planner fit (Muennighoff et al. 2023 data-constrained form; R_D*, R_N* fitted with the "
                   "base law held fixed; Huber delta {delta:g} on log loss, L-BFGS from a {starts:,}-point grid)",
    "power": "fitted by planner fit (power law, OLS in log space)",
}
_FORM_TITLE = {"chinchilla": "Chinchilla form", "kaplan": "Kaplan form", "muennighoff":
               "Muennighoff data-constrained form", "power": "Power law"}
_SYMBOL = {"params": "N", "tokens": "D", "unique_tokens": "U"}

# What each derived quantity is (printed by ``planner fit``).
DERIVED_MEANING = {
    "budget_flops": "training FLOPs C the allocation is for",
    "N_opt": "loss-optimal params at C (6·N·D = C)",
    "D_opt": "loss-optimal training tokens at C",
    "tokens_per_param": "D_opt / N_opt",
    "loss_opt": "predicted loss at (N_opt, D_opt)",
    "a": "exponent of N_opt ∝ C^a",
    "b": "exponent of D_opt ∝ C^b",
    "G": "N_opt = G·(C/6)^a (Hoffmann et al. 2022, eq. 4)",
    "D_eff_saturation_multiple": "effective tokens saturate at this multiple of the unique tokens (1 + R_D*)",
    "N_eff_saturation_multiple": "effective params saturate at this multiple of N_opt(U) (1 + R_N*)",
}


def _pct(a: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(a, [2.5, 97.5])
    return float(lo), float(hi)


def _fmt_float(v: float) -> str:
    v = float(v)
    if not math.isfinite(v):
        raise FitError(f"cannot write non-finite value {v!r} to a law file", field="coefficients")
    return repr(v)


def _toml_str(s: str) -> str:
    return json.dumps(str(s), ensure_ascii=False)


def optimal_allocation(form: str, c: dict[str, Any], budget: float) -> dict[str, Any]:
    """N_opt, D_opt, tokens per param, loss and exponents at ``budget`` FLOPs, vectorized over coefficient arrays
    (the laws' closed forms: ``laws.chinchilla.compute_optimal_allocation``, ``laws.kaplan.kaplan_compute_optimal``)."""
    a = {k: np.asarray(v, float) for k, v in c.items()}
    if form == "chinchilla":
        opt = compute_optimal_allocation(budget, a["A"], a["B"], a["alpha"], a["beta"])
        loss = chinchilla_loss(opt["params"], opt["tokens"], a["E"], a["A"], a["B"], a["alpha"], a["beta"])
        extra = {"G": opt["G"]}
    else:
        opt = kaplan_compute_optimal(budget, a["Nc"], a["Dc"], a["alpha_N"], a["alpha_D"])
        loss = kaplan_loss(opt["params"], opt["tokens"], a["Nc"], a["Dc"], a["alpha_N"], a["alpha_D"])
        extra = {}
    n, d = opt["params"], opt["tokens"]
    return {"budget_flops": np.full_like(n, budget), "N_opt": n, "D_opt": d, "tokens_per_param": d / n,
            "loss_opt": loss, "a": opt["a"], "b": opt["b"], **extra}


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted law: values, bootstrap uncertainty and diagnostics (lmfit / scikit-learn style).

    ``coefficients`` name -> value (chinchilla: E, A, B, alpha, beta; kaplan: Nc, Dc, alpha_N, alpha_D;
    muennighoff: R_D_star, R_N_star with the base law in ``fixed``; power: k and a_<x> exponents).
    ``stderr`` / ``ci95`` are bootstrap standard deviations and 2.5-97.5 percentile intervals (NaN without a
    bootstrap; for the power law, OLS standard errors and t intervals then). ``bootstrap`` holds the samples
    (None without). ``objective`` is the minimized sum of Huber losses on log loss (power: sum of squared log
    residuals). ``derived``: quantities computed from the coefficients (with ``derived_stderr`` /
    ``derived_ci95`` when bootstrapped), e.g. N_opt, D_opt (tokens), tokens_per_param at ``budget_flops``
    (meanings in ``DERIVED_MEANING``). ``diagnostics``: :class:`Diagnostic` records. ``stats``: residual RMS in
    loss and log loss, distinct input values. ``ranges``: min/max of each input.
    """

    form: str
    coefficients: dict[str, float]
    stderr: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    bootstrap: dict[str, np.ndarray | None]
    objective: float
    n_runs: int
    diagnostics: tuple[Diagnostic, ...]
    derived: dict[str, float] = field(default_factory=dict)
    derived_stderr: dict[str, float] = field(default_factory=dict)
    derived_ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)
    delta: float = DEFAULT_DELTA
    n_starts: int = 0
    source: str = "runs"
    target: str = "y"  # power law: the fitted column (e.g. "lr")

    # ------------------------------------------------------------------ the law
    def _all_coefficients(self) -> dict[str, Any]:
        return {**self.fixed, **self.coefficients}

    @property
    def bootstrap_samples(self) -> dict[str, np.ndarray] | None:
        """The bootstrap samples as name -> array, or None without a bootstrap."""
        if any(v is None for v in self.bootstrap.values()) or not self.bootstrap:
            return None
        return dict(self.bootstrap)  # type: ignore[arg-type]

    def law_entry(self, id: str = "fitted", title: str | None = None, *, samples: bool = True) -> dict[str, Any]:
        """The ``[[law]]`` table of the law file (catalog schema), as a dict."""
        if not isinstance(id, str) or not id.strip() or "#" in id:
            raise FitError(f"law id must be a non-empty string without '#', got {id!r}", field="id")
        validity = ", ".join(f"{_SYMBOL.get(k, k)} in [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in self.ranges.items())
        entry: dict[str, Any] = {
            "id": id.strip(), "form": self.form, "title": title or f"{_FORM_TITLE[self.form]} fitted to {self.source}",
            "citation": _CITATIONS[self.form].format(delta=self.delta, starts=self.n_starts), "status": "fitted",
            "params_counts": "as in the input runs", "tokens_counts": "as in the input runs",
            "loss_units": "as in the input runs",
            "validity": f"{validity} of the fitted runs" if validity else "range of the fitted runs",
        }
        if self.form == "power":
            entry["output"] = self.target
        coefs = self._all_coefficients()
        entry["coefficients"] = {k: float(v) for k, v in coefs.items()}
        smp = self.bootstrap_samples
        if samples and smp is not None:
            m = next(iter(smp.values())).size
            entry["bootstrap"] = {k: np.asarray(smp[k], float) if k in smp else np.full(m, float(v))
                                  for k, v in coefs.items()}
        return entry

    def to_law(self, id: str = "fitted", title: str | None = None) -> Law:
        """The fitted law as a ``laws`` Law (the object its law file loads as), with the bootstrap samples."""
        from laws.catalog import law_from_dict

        return law_from_dict(self.law_entry(id, title), source=self.source)

    def predict(self, params=None, tokens=None, unique_tokens=None, **xs) -> np.ndarray:
        """Predicted loss (nats/token) at params N and tokens D (and unique_tokens U for muennighoff);
        for the power law, y at the named inputs (``predict(params=..., tokens=...)``). Evaluates ``to_law()``."""
        law = self.to_law()
        given = {"params": params, "tokens": tokens, "unique_tokens": unique_tokens, **xs}
        given = {k: v for k, v in given.items() if v is not None}
        missing = [k for k in law.inputs if k not in given]
        if missing:
            raise FitError(f"{self.form} predict needs {', '.join(law.inputs)}", field=missing[0])
        extra = [k for k in given if k not in law.inputs]
        if extra:
            raise FitError(f"{self.form} predict takes {', '.join(law.inputs)}", field=extra[0])
        return law.predict(**given)

    def compute_optimal(self, budget: float) -> dict[str, Any]:
        """Loss-optimal N (params) and D (tokens) under 6·N·D = budget FLOPs, with bootstrap stderr / ci95.

        Chinchilla: Hoffmann et al. 2022 eq. 4; Kaplan: the minimum of eq. 1.5 along 6·N·D = C. Returns
        value / stderr / ci95 dicts.
        """
        if self.form not in ("chinchilla", "kaplan"):
            raise FitError(f"compute-optimal allocation is defined for chinchilla and kaplan fits, not {self.form}",
                           field="form")
        with np.errstate(all="ignore"):
            value = {k: float(v) for k, v in optimal_allocation(self.form, self.coefficients, float(budget)).items()}
        out: dict[str, Any] = {"value": value, "stderr": {}, "ci95": {}}
        smp = self.bootstrap_samples
        if smp is not None:
            with np.errstate(all="ignore"):  # degenerate refits (alpha or beta at 0) give inf / nan allocations
                for k, v in optimal_allocation(self.form, smp, float(budget)).items():
                    v = np.asarray(v, float)
                    v = v[np.isfinite(v)]
                    if v.size > 1:
                        out["stderr"][k] = float(np.std(v, ddof=1))
                        out["ci95"][k] = _pct(v)
        return out

    # ------------------------------------------------------------------ reporting
    def summary(self) -> str:
        """A plain-text report: coefficients with stderr and 95% interval, derived values, diagnostics."""
        lines = [f"{self.form} fit to {self.source}: {self.n_runs} runs, objective {self.objective:.7g}"]
        for k, v in self.coefficients.items():
            se, (lo, hi) = self.stderr.get(k, math.nan), self.ci95.get(k, (math.nan, math.nan))
            lines.append(f"  {k:>12} = {v:<14.6g} stderr {se:<10.3g} 95% [{lo:.6g}, {hi:.6g}]")
        for k, v in self.derived.items():
            extra = ""
            if k in self.derived_ci95:
                lo, hi = self.derived_ci95[k]
                extra = f" 95% [{lo:.4g}, {hi:.4g}]"
            meaning = f"  ({DERIVED_MEANING[k]})" if k in DERIVED_MEANING else ""
            lines.append(f"  {k:>16} = {v:.6g}{extra}{meaning}")
        lines += [f"  - {d}" for d in self.diagnostics]
        return "\n".join(lines)

    def to_dict(self, *, samples: bool = False) -> dict[str, Any]:
        """JSON-ready dict (bootstrap samples only if ``samples``)."""
        d = {
            "form": self.form, "coefficients": dict(self.coefficients), "stderr": dict(self.stderr),
            "ci95": {k: list(v) for k, v in self.ci95.items()}, "objective": self.objective,
            "n_runs": self.n_runs, "diagnostics": [x.to_dict() for x in self.diagnostics],
            "derived": dict(self.derived), "derived_stderr": dict(self.derived_stderr),
            "derived_ci95": {k: list(v) for k, v in self.derived_ci95.items()}, "stats": dict(self.stats),
            "ranges": {k: list(v) for k, v in self.ranges.items()}, "fixed": dict(self.fixed), "delta": self.delta,
            "n_starts": self.n_starts, "source": self.source,
        }
        smp = self.bootstrap_samples
        d["n_bootstrap"] = 0 if smp is None else int(next(iter(smp.values())).size)
        if samples and smp is not None:
            d["bootstrap"] = {k: v.tolist() for k, v in smp.items()}
        return d

    def to_toml(self, path: str | Path, id: str, title: str | None = None, *, samples: bool = True) -> Path:
        """Write a law file in the catalog's schema (``[[law]]`` with ``[law.coefficients]`` and, with a
        bootstrap, ``[law.bootstrap]``), loadable by ``laws.catalog.load_law_file``; the file loads as
        :meth:`to_law`. Floats keep full precision. Written atomically (temp file + rename).
        """
        entry = self.law_entry(id, title, samples=samples)
        out = ["# Written by planner fit. Coefficients at full float precision.", "[[law]]"]
        out += [f"{k} = {_toml_str(v)}" for k, v in entry.items() if isinstance(v, str)]
        out.append("[law.coefficients]")
        out += [f"{k} = {_fmt_float(v)}" for k, v in entry["coefficients"].items()]
        if "bootstrap" in entry:
            out.append("[law.bootstrap]")
            for k, arr in entry["bootstrap"].items():
                vals = [_fmt_float(v) for v in arr]
                chunks = [", ".join(vals[i : i + 6]) for i in range(0, len(vals), 6)]
                out.append(f"{k} = [\n  " + ",\n  ".join(chunks) + ",\n]")
        return write_atomic(Path(path), "\n".join(out) + "\n")


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise FitError(f"cannot write {path} ({e.strerror})", field="out") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise FitError(f"cannot write {path} ({e.strerror})", field="out") from None
    return path
