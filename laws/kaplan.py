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

from laws.base import Law, Output


def kaplan_loss(params, tokens, Nc, Dc, alpha_N, alpha_D):
    """Loss (nats/token) for non-embedding ``params`` N and ``tokens`` D; numpy or cvxpy (log-log convex)."""
    return ((Nc / params) ** (alpha_N / alpha_D) + Dc / tokens) ** alpha_D


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

    def formula_loss_at_steps(self, params, steps, Nc_S, Sc, alpha_N_S, alpha_S):
        return kaplan_learning_curve(params, steps, Nc_S, Sc, alpha_N_S, alpha_S)

    def formula_critical_batch_tokens(self, loss, B_star, alpha_B):
        return kaplan_critical_batch(loss, B_star, alpha_B)
