"""Mixture-of-Experts laws: Ludziejewski et al. 2025, "Joint MoE Scaling Laws: Mixture of Experts Can Be Memory
Efficient" (ICML 2025, arXiv 2502.05172).

Loss (eq. 6), N_act = active parameters INCLUDING embedding and unembedding, D tokens, E experts (top-1):

    L(N_act, D, E) = a·Ê^delta·N_act^(alpha + gamma·ln Ê) + b·Ê^omega·D^(beta + zeta·ln Ê) + c

with Clark et al. (2022)'s transform 1/Ê = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max (eq. 4). The paper
stores alpha and beta NEGATIVE (N^alpha with alpha < 0). For a fixed E the law is of Chinchilla form in
(N_act, D) (eq. 5, Table 4): :meth:`JointMoELaw.at_experts` returns that ChinchillaLaw, so a planner solves one
geometric program per expert count. ``expr`` accepts the loss only with ``experts`` as a number.

Learning rate (eq. 8), N_act\\e = active NON-embedding parameters (input ``non_embedding_params``):
LR = exp(8.39 - 0.81·ln N_act\\e - 0.25·ln E) = e^lr_log_k · N^lr_a_params · E^lr_a_experts, a monomial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from laws.base import Law, LawError, LawInfo, Output
from laws.chinchilla import ChinchillaLaw

_LOSS = ("a", "alpha", "delta", "gamma", "b", "beta", "omega", "zeta", "E_start", "E_max", "c")
_LR = ("lr_log_k", "lr_a_params", "lr_a_experts")


def clark_effective_experts(experts, E_start, E_max):
    """Ê from 1/Ê = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max (Clark et al. 2022; Ê(1) = E_start)."""
    return 1.0 / (1.0 / (experts - 1.0 + 1.0 / (1.0 / E_start - 1.0 / E_max)) + 1.0 / E_max)


def joint_moe_terms(experts, a, alpha, delta, gamma, b, beta, omega, zeta, E_start, E_max):
    """Table 4's per-E Chinchilla coefficients (m, mu, n, nu): m = a·Ê^delta, mu = alpha + gamma·ln Ê,
    n = b·Ê^omega, nu = beta + zeta·ln Ê (mu, nu negative, as in the paper)."""
    e_hat = clark_effective_experts(experts, E_start, E_max)
    log_e = np.log(e_hat)
    return a * e_hat**delta, alpha + gamma * log_e, b * e_hat**omega, beta + zeta * log_e


@dataclass(frozen=True)
class JointMoELaw(Law):
    """Joint MoE loss L(N_act, D, E) (eq. 6) and, when its coefficients are given, the MoE LR law (eq. 8)."""

    form: ClassVar[str] = "joint-moe"
    coefficient_names: ClassVar[tuple[str, ...]] = _LOSS
    optional_coefficient_names: ClassVar[tuple[str, ...]] = _LR
    input_minimum: ClassVar[dict[str, float]] = {"experts": 1.0}
    output_specs: ClassVar[tuple[Output, ...]] = (
        Output("loss", ("params", "tokens", "experts"), _LOSS, constant_inputs=("experts",), units="nats/token",
               description="eq. 6; params = active params incl. embeddings",
               dgp_note="DGP in (params, tokens) at a fixed number of experts; see at_experts(E)"),
        Output("learning_rate", ("non_embedding_params", "experts"), _LR, units="peak learning rate",
               description="eq. 8; non_embedding_params = active non-embedding params"),
    )

    def formula(self, params, tokens, experts, a, alpha, delta, gamma, b, beta, omega, zeta, E_start, E_max, c):
        m, mu, n, nu = joint_moe_terms(experts, a, alpha, delta, gamma, b, beta, omega, zeta, E_start, E_max)
        return m * params**mu + n * tokens**nu + c

    def formula_learning_rate(self, non_embedding_params, experts, lr_log_k, lr_a_params, lr_a_experts):
        return np.exp(lr_log_k) * non_embedding_params**lr_a_params * experts**lr_a_experts

    def per_expert_coefficients(self, experts: float) -> dict[str, float]:
        """Table 4's (m, mu, n, nu, c) at ``experts`` (mu, nu negative as printed)."""
        e = float(self._numeric_inputs({"experts": experts})["experts"])
        c = self.coefficients
        m, mu, n, nu = joint_moe_terms(e, *(c[k] for k in _LOSS[:-1]))
        return {"m": float(m), "mu": float(mu), "n": float(n), "nu": float(nu), "c": c["c"]}

    def at_experts(self, experts: float) -> ChinchillaLaw:
        """The law at a fixed number of experts as a Chinchilla law in (N_act, D) (eq. 5):
        A = a·Ê^delta, alpha = -(alpha + gamma·ln Ê), B = b·Ê^omega, beta = -(beta + zeta·ln Ê), E = c.
        Its ``compute_optimal`` is eq. 7 with |mu|, |nu| (the printed eq. 7 needs magnitudes)."""
        t = self.per_expert_coefficients(experts)
        if t["mu"] >= 0 or t["nu"] >= 0:
            raise LawError(f"law {self.id}: at {experts:g} experts the exponents are not decreasing "
                           f"(mu {t['mu']:.4g}, nu {t['nu']:.4g})", field="experts")
        e = float(experts)
        info = LawInfo(
            id=f"{self.id}@experts={e:g}", form=ChinchillaLaw.form, title=f"{self.info.title} at E = {e:g}",
            citation=self.info.citation, status=self.info.status, params_counts=self.info.params_counts,
            tokens_counts=self.info.tokens_counts, loss_units=self.info.loss_units,
            validity=self.info.validity, source=self.info.source,
        )
        coefs = {"E": t["c"], "A": t["m"], "B": t["n"], "alpha": -t["mu"], "beta": -t["nu"]}
        return ChinchillaLaw(info=info, coefficients=coefs)
