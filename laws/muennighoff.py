"""Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (arXiv 2305.16264; NeurIPS 2023), eqs. 5-6
and the authors' code (github.com/huggingface/datablations, README "Parametric Fit").

L(N, D, U) = E + A/N'^alpha + B/D'^beta with effective unique tokens and parameters

    U_D = min(U, D)                     unique tokens seen (U: unique tokens available)
    R_D = D/U_D - 1                     repeated epochs
    D'  = U_D + U_D·R_D*·(1 - exp(-R_D/R_D*))
    U_N = min(N, N_opt(U_D)),  R_N = N/U_N - 1,  N' = U_N + U_N·R_N*·(1 - exp(-R_N/R_N*))

N_opt(U) = G·(U·G)^(beta/alpha), G = (alpha·A/(beta·B))^(1/(alpha+beta)), is the base Chinchilla law's
compute-optimal N for U tokens. A run of D < U tokens sees only D unique tokens, so U_D = min(U, D): the
authors' definition (datablations README ``scaling_law``, which asserts U <= D, and its ``optimal_allocation``,
which passes U = min(U_BASE, D)). The exp and min make it non-DGP; at a FIXED number
of epochs D/U_D, though, D' = m·D with a constant m (:meth:`MuennighoffLaw.effective_tokens_multiplier`), and
while N <= N_opt(D/epochs) (a monomial bound, :meth:`params_limit`) N' = N, so the law is of Chinchilla form
(:meth:`at_epochs`) and a planner can enumerate epochs, one geometric program each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from laws.base import Law, LawError, LawInfo, Output
from laws.chinchilla import ChinchillaLaw, allocation_constant

_BASE = ("E", "A", "B", "alpha", "beta")
_ALL = _BASE + ("R_D_star", "R_N_star")
_NOT_DGP = "exp and min in the effective tokens/params; enumerate epochs with at_epochs(epochs)"


def optimal_params_for_tokens(tokens, A, B, alpha, beta):
    """The base law's compute-optimal N for D tokens: G·(D·G)^(beta/alpha) (a monomial in D)."""
    g = allocation_constant(A, B, alpha, beta)
    return g * (tokens * g) ** (beta / alpha)


def unique_tokens_seen(tokens, unique_tokens):
    """U_D = min(U, D): unique tokens a run of D tokens sees (the authors' ``U = min(U_BASE, D)``)."""
    return np.minimum(unique_tokens, tokens)


def repeated(count, base):
    """R = count/base - 1, the repeats beyond the first pass (0 when count <= base)."""
    return np.maximum(count / base - 1.0, 0.0)


def discounted(base, repeats, r_star):
    """base + base·R*·(1 - exp(-R/R*)): eq. 5 / 6 of Muennighoff et al. 2023 (repeats worth less and less)."""
    return base + base * r_star * (1.0 - np.exp(-repeats / r_star))


def discounted_dlog_rstar(base, repeats, r_star):
    """d/d(log R*) of :func:`discounted` (for fitting R* in log space)."""
    x = np.exp(-repeats / r_star)
    return base * (r_star * (1.0 - x) - repeats * x)


def effective_tokens(tokens, unique_tokens, R_D_star):
    """D' = U_D + U_D·R_D*·(1 - exp(-R_D/R_D*)), U_D = min(U, D), R_D = D/U_D - 1."""
    u = unique_tokens_seen(tokens, unique_tokens)
    return discounted(u, repeated(tokens, u), R_D_star)


def params_base(params, unique_tokens, A, B, alpha, beta, tokens=None):
    """U_N = min(N, N_opt(U_D)): the params the unique data supports (U_D = min(U, D) when ``tokens`` is given)."""
    u = unique_tokens if tokens is None else unique_tokens_seen(tokens, unique_tokens)
    return np.minimum(params, optimal_params_for_tokens(u, A, B, alpha, beta))


def effective_params(params, unique_tokens, A, B, alpha, beta, R_N_star, tokens=None):
    """N' = U_N + U_N·R_N*·(1 - exp(-R_N/R_N*)), U_N = min(N, N_opt(U_D)), R_N = N/U_N - 1.

    U_D = min(U, D) when ``tokens`` D is given, else U."""
    u_n = params_base(params, unique_tokens, A, B, alpha, beta, tokens=tokens)
    return discounted(u_n, repeated(params, u_n), R_N_star)


def muennighoff_loss(params, tokens, unique_tokens, E, A, B, alpha, beta, R_D_star, R_N_star):
    """Loss (nats/token) of the data-constrained law at N params, D tokens trained, U unique tokens."""
    d_eff = effective_tokens(tokens, unique_tokens, R_D_star)
    n_eff = effective_params(params, unique_tokens, A, B, alpha, beta, R_N_star, tokens=tokens)
    return E + A * n_eff ** (-alpha) + B * d_eff ** (-beta)


@dataclass(frozen=True)
class MuennighoffLaw(Law):
    """Data-constrained Chinchilla law: loss from params N, tokens D and unique tokens U (not DGP)."""

    form: ClassVar[str] = "muennighoff"
    coefficient_names: ClassVar[tuple[str, ...]] = _ALL
    output_specs: ClassVar[tuple[Output, ...]] = (
        Output("loss", ("params", "tokens", "unique_tokens"), _ALL, dgp=False, units="nats/token",
               description="E + A/N'^alpha + B/D'^beta", dgp_note=_NOT_DGP),
        Output("effective_tokens", ("tokens", "unique_tokens"), ("R_D_star",), dgp=False, units="tokens",
               description="D', repeated tokens discounted", dgp_note=_NOT_DGP),
        Output("effective_params", ("params", "tokens", "unique_tokens"), ("A", "B", "alpha", "beta", "R_N_star"),
               dgp=False, units="parameters", description="N', parameters beyond N_opt(U) discounted",
               dgp_note=_NOT_DGP),
    )

    def formula(self, params, tokens, unique_tokens, E, A, B, alpha, beta, R_D_star, R_N_star):
        return muennighoff_loss(params, tokens, unique_tokens, E, A, B, alpha, beta, R_D_star, R_N_star)

    def formula_effective_tokens(self, tokens, unique_tokens, R_D_star):
        return effective_tokens(tokens, unique_tokens, R_D_star)

    def formula_effective_params(self, params, tokens, unique_tokens, A, B, alpha, beta, R_N_star):
        return effective_params(params, unique_tokens, A, B, alpha, beta, R_N_star, tokens=tokens)

    # ------------------------------------------------------------ fixed epochs: a Chinchilla law
    def _epochs(self, epochs) -> float:
        e = float(epochs)
        if not np.isfinite(e) or e < 1.0:
            raise LawError(f"law {self.id}: epochs must be finite and at least 1, got {epochs!r}", field="epochs")
        return e

    def effective_tokens_multiplier(self, epochs: float) -> float:
        """D'/D for D = epochs·U tokens (epochs >= 1): (1 + R_D*·(1 - exp(-(epochs-1)/R_D*))) / epochs.

        A constant for a fixed number of epochs, so D' = m·D is a monomial in D."""
        e = self._epochs(epochs)
        r = self.coefficients["R_D_star"]
        return float((1.0 + r * (1.0 - np.exp(-(e - 1.0) / r))) / e)

    def params_limit(self, unique_tokens):
        """N_opt(U): up to this many params N' = N (no excess-parameter discount). A monomial in U, so
        ``N <= law.params_limit(D / epochs)`` is a valid geometric-program constraint (numpy or cvxpy)."""
        c = self.coefficients
        return optimal_params_for_tokens(unique_tokens, c["A"], c["B"], c["alpha"], c["beta"])

    def at_epochs(self, epochs: float) -> ChinchillaLaw:
        """The law at a fixed number of epochs over the unique data, as a Chinchilla law in (N, D):
        L = E + A/N^alpha + (B·m^-beta)/D^beta with m = :meth:`effective_tokens_multiplier`.
        Exact while N <= params_limit(D / epochs); beyond that it over-predicts the value of extra params."""
        e = self._epochs(epochs)
        m = self.effective_tokens_multiplier(e)
        c = self.coefficients
        info = LawInfo(
            id=f"{self.id}@epochs={e:g}", form=ChinchillaLaw.form,
            title=f"{self.info.title} at {e:g} epochs", citation=self.info.citation, status=self.info.status,
            params_counts=self.info.params_counts,
            tokens_counts=f"training tokens D = {e:g} x unique tokens; effective tokens D' = {m:.6g} x D",
            loss_units=self.info.loss_units,
            validity=f"exact while N <= N_opt(D/{e:g}) (params_limit); {self.info.validity}",
            source=self.info.source,
        )
        coefs = {"E": c["E"], "A": c["A"], "B": c["B"] * m ** (-c["beta"]), "alpha": c["alpha"], "beta": c["beta"]}
        return ChinchillaLaw(info=info, coefficients=coefs)
