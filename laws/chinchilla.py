"""Chinchilla form L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2; Approach 3).

The formula lives here once, in three shapes that tests hold equal: ``chinchilla_loss`` (numpy or cvxpy
posynomial), ``chinchilla_log_terms`` (the same law in log space, log L = logsumexp of the terms, which the
fitter differentiates) and ``compute_optimal_allocation`` (its closed-form minimum along 6·N·D = C, eq. 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from laws.base import Law


def chinchilla_loss(params, tokens, E, A, B, alpha, beta):
    """Loss (nats/token) for ``params`` N and ``tokens`` D; numpy or cvxpy (a posynomial)."""
    return E + A * params ** (-alpha) + B * tokens ** (-beta)


def chinchilla_log_terms(log_params, log_tokens, a, b, e, alpha, beta):
    """The law in log space: log L = logsumexp(a - alpha·log N, b - beta·log D, e) with a, b, e = log A, log B,
    log E. Returns the three terms (numpy broadcasting)."""
    return a - alpha * log_params, b - beta * log_tokens, e


def allocation_constant(A, B, alpha, beta):
    """G = (alpha·A/(beta·B))^(1/(alpha+beta)) of Hoffmann et al. 2022 eq. 4 (N_opt = G·(C/6)^a)."""
    return (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))


def compute_optimal_allocation(flops, A, B, alpha, beta):
    """Loss-optimal N and D under 6·N·D = ``flops`` (Hoffmann et al. 2022, eq. 4), vectorized over coefficients.

    Returns a dict: ``params`` N_opt = G·(C/6)^a, ``tokens`` D_opt = C/(6·N_opt), ``G``, and the exponents
    ``a`` = beta/(alpha+beta) (N_opt ∝ C^a) and ``b`` = alpha/(alpha+beta) (D_opt ∝ C^b).
    """
    g = allocation_constant(A, B, alpha, beta)
    a = beta / (alpha + beta)
    flops = np.asarray(flops, dtype=float)
    params = g * (flops / 6.0) ** a
    return {"params": params, "tokens": flops / (6.0 * params), "G": g, "a": a, "b": alpha / (alpha + beta)}


@dataclass(frozen=True)
class ChinchillaLaw(Law):
    """L = E + A·N^-alpha + B·D^-beta. What N and D count is in ``info``."""

    form: ClassVar[str] = "chinchilla"
    coefficient_names: ClassVar[tuple[str, ...]] = ("E", "A", "B", "alpha", "beta")
    inputs: ClassVar[tuple[str, ...]] = ("params", "tokens")

    def formula(self, params, tokens, E, A, B, alpha, beta):
        return chinchilla_loss(params, tokens, E, A, B, alpha, beta)

    def compute_optimal(self, flops):
        """Closed-form loss-optimal (params, tokens) under 6·N·D = flops (Hoffmann et al. 2022, eq. 4).

        N_opt = G·(C/6)^(beta/(alpha+beta)), D_opt = C/(6·N_opt), G = (alpha·A/(beta·B))^(1/(alpha+beta)).
        """
        c = self.coefficients
        opt = compute_optimal_allocation(flops, c["A"], c["B"], c["alpha"], c["beta"])
        return opt["params"], opt["tokens"]
