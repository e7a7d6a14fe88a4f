"""Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (arXiv 2001.08361).

Outputs of the ``kaplan`` form (N = non-embedding parameters, eq. 2.1):
- ``loss``: joint L(N, D) = ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D (eq. 1.5 / 4.1, Table 2);
- ``loss_at_steps``: learning curve L(N, S_min) = (N_c^S/N)^alpha_N^S + (S_c/S_min)^alpha_S (eq. 1.6 / 5.6,
  Table 3), S_min the steps trained at a batch far above the critical batch (eq. 5.4);
- ``critical_batch_tokens``: B_crit(L) = B*·L^(-1/alpha_B) tokens (eq. 1.4 / 5.3, Table 5).
The learning-curve and critical-batch coefficients are optional, so a fitted L(N, D) file (four coefficients)
loads as this form with only ``loss``. All three outputs are DGP: a log-log convex power of a posynomial, a
posynomial and a monomial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from laws.base import Law, Output


def kaplan_loss(params, tokens, Nc, Dc, alpha_N, alpha_D):
    """Loss (nats/token) for non-embedding ``params`` N and ``tokens`` D; numpy or cvxpy (log-log convex)."""
    return ((Nc / params) ** (alpha_N / alpha_D) + Dc / tokens) ** alpha_D


def kaplan_log_terms(log_params, log_tokens, log_Nc, log_Dc, alpha_N, alpha_D):
    """The joint law in log space: log L = alpha_D·logsumexp(t_N, t_D) with t_N = (alpha_N/alpha_D)·(log Nc -
    log N) and t_D = log Dc - log D. Returns (t_N, t_D) (numpy broadcasting)."""
    return (alpha_N / alpha_D) * (log_Nc - log_params), log_Dc - log_tokens


def kaplan_log_loss(params, tokens, Nc, Dc, alpha_N, alpha_D):
    """log L of :func:`kaplan_loss`, computed stably (log-sum-exp); numpy."""
    t_n, t_d = kaplan_log_terms(np.log(params), np.log(tokens), np.log(Nc), np.log(Dc), alpha_N, alpha_D)
    return alpha_D * np.logaddexp(t_n, t_d)


def kaplan_compute_optimal(flops, Nc, Dc, alpha_N, alpha_D):
    """Loss-optimal N and D of :func:`kaplan_loss` under 6·N·D = ``flops``, vectorized over coefficients.

    Minimizing (Nc/N)^p + 6·Dc·N/C over N (p = alpha_N/alpha_D) gives N^(p+1) = p·Nc^p·C/(6·Dc), computed in
    logs. Returns a dict: ``params``, ``tokens`` = C/(6N), exponents ``a`` = 1/(p+1) (N_opt ∝ C^a) and
    ``b`` = p/(p+1) (D_opt ∝ C^b).
    """
    p = np.asarray(alpha_N, dtype=float) / np.asarray(alpha_D, dtype=float)
    flops = np.asarray(flops, dtype=float)
    params = np.exp((np.log(p) + p * np.log(Nc) + np.log(flops / 6.0) - np.log(Dc)) / (p + 1.0))
    return {"params": params, "tokens": flops / (6.0 * params), "a": 1.0 / (p + 1.0), "b": p / (p + 1.0)}


def kaplan_learning_curve(params, steps, Nc_S, Sc, alpha_N_S, alpha_S):
    """Loss after ``steps`` = S_min optimizer steps (eq. 1.6): (N_c/N)^alpha_N + (S_c/S_min)^alpha_S."""
    return (Nc_S / params) ** alpha_N_S + (Sc / steps) ** alpha_S


def kaplan_critical_batch(loss, B_star, alpha_B):
    """Critical batch in tokens at ``loss`` (nats/token): B* / L^(1/alpha_B) (eq. 1.4); a monomial in L."""
    return B_star * loss ** (-1.0 / alpha_B)


_JOINT = ("Nc", "Dc", "alpha_N", "alpha_D")
_CURVE = ("Nc_S", "Sc", "alpha_N_S", "alpha_S")
_BCRIT = ("B_star", "alpha_B")


@dataclass(frozen=True)
class KaplanLaw(Law):
    """L = ((Nc/N)^(alpha_N/alpha_D) + Dc/D)^alpha_D; N counts non-embedding parameters.

    Optional outputs: ``loss_at_steps`` (coefficients Nc_S, Sc, alpha_N_S, alpha_S) and
    ``critical_batch_tokens`` (B_star, alpha_B).
    """

    form: ClassVar[str] = "kaplan"
    coefficient_names: ClassVar[tuple[str, ...]] = _JOINT
    optional_coefficient_names: ClassVar[tuple[str, ...]] = _CURVE + _BCRIT
    output_specs: ClassVar[tuple[Output, ...]] = (
        Output("loss", ("params", "tokens"), _JOINT, units="nats/token",
               description="converged loss L(N, D), eq. 1.5"),
        Output("loss_at_steps", ("params", "steps"), _CURVE, units="nats/token",
               description="learning curve L(N, S_min), eq. 1.6; steps = S_min (batch far above B_crit)"),
        Output("critical_batch_tokens", ("loss",), _BCRIT, units="tokens",
               description="critical batch B_crit(L) = B*/L^(1/alpha_B), eq. 1.4"),
    )

    def formula(self, params, tokens, Nc, Dc, alpha_N, alpha_D):
        return kaplan_loss(params, tokens, Nc, Dc, alpha_N, alpha_D)

    def compute_optimal(self, flops):
        """Loss-optimal (params, tokens) of L(N, D) under 6·N·D = flops (:func:`kaplan_compute_optimal`)."""
        c = self.coefficients
        opt = kaplan_compute_optimal(flops, c["Nc"], c["Dc"], c["alpha_N"], c["alpha_D"])
        return opt["params"], opt["tokens"]

    def formula_loss_at_steps(self, params, steps, Nc_S, Sc, alpha_N_S, alpha_S):
        return kaplan_learning_curve(params, steps, Nc_S, Sc, alpha_N_S, alpha_S)

    def formula_critical_batch_tokens(self, loss, B_star, alpha_B):
        return kaplan_critical_batch(loss, B_star, alpha_B)
