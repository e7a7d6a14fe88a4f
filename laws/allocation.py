"""Compute-optimal allocation power laws in training FLOPs C (monomials, so DGP).

- ``allocation`` form: N* = k_N·C^a_N params and D* = k_D·C^a_D tokens, both fitted (Porian et al. 2024).
- ``tokens-allocation`` form: D* = k_D·C^a_D tokens fitted, N* = C/(6·D*) derived from C = 6·N·D
  (Llama 3, Meta 2024 §3.2.1, whose "N*(C)" is the optimal number of training *tokens*).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from laws.base import Law, Output


@dataclass(frozen=True)
class AllocationLaw(Law):
    """N*(C) = k_N·C^a_N, D*(C) = k_D·C^a_D."""

    form: ClassVar[str] = "allocation"
    coefficient_names: ClassVar[tuple[str, ...]] = ("k_N", "a_N", "k_D", "a_D")
    output_specs: ClassVar[tuple[Output, ...]] = (
        Output("params", ("flops",), ("k_N", "a_N"), units="parameters", description="N* = k_N·C^a_N"),
        Output("tokens", ("flops",), ("k_D", "a_D"), units="training tokens", description="D* = k_D·C^a_D"),
    )

    def formula(self, flops, k_N, a_N):
        return k_N * flops**a_N

    def formula_tokens(self, flops, k_D, a_D):
        return k_D * flops**a_D


@dataclass(frozen=True)
class TokensAllocationLaw(Law):
    """D*(C) = k_D·C^a_D tokens; N* = C/(6·D*) = C^(1-a_D)/(6·k_D) params."""

    form: ClassVar[str] = "tokens-allocation"
    coefficient_names: ClassVar[tuple[str, ...]] = ("k_D", "a_D")
    output_specs: ClassVar[tuple[Output, ...]] = (
        Output("tokens", ("flops",), ("k_D", "a_D"), units="training tokens", description="D* = k_D·C^a_D"),
        Output("params", ("flops",), ("k_D", "a_D"), units="parameters",
               description="N* = C/(6·D*), assuming C = 6·N·D"),
    )

    def formula(self, flops, k_D, a_D):
        return k_D * flops**a_D

    def formula_params(self, flops, k_D, a_D):
        return flops ** (1.0 - a_D) / (6.0 * k_D)
