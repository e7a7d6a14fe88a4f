"""Optimal learning-rate and batch-size power laws (all monomials, so all DGP).

- ``deepseek`` form, DeepSeek LLM (Bi et al. 2024, arXiv 2401.02954, §3), in compute C = M·D FLOPs
  with M = non-embedding FLOPs per token including attention (:func:`deepseek_flops_per_token`):
  eta_opt = k_lr·C^a_lr (eq. 1), B_opt = k_batch·C^a_batch tokens (eq. 1), M_opt = k_M·C^a_M FLOPs/token and
  D_opt = k_D·C^a_D tokens (§3.2). Primary output: learning_rate.
- ``steplaw`` form, Step Law (Li et al. 2025, arXiv 2503.04715), N non-embedding params, D tokens:
  eta = k_lr·N^a_lr_params·D^a_lr_tokens, B = k_batch·D^a_batch tokens. Primary output: learning_rate.
Exponents are stored with their signs (eta falls with C: a_lr = -0.125).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from laws.base import Law, Output


def deepseek_flops_per_token(n_layer, d_model, seq_len):
    """DeepSeek LLM model scale M = 72·n_layer·d_model² + 12·n_layer·d_model·l_seq (non-embedding FLOPs per
    token, attention included, vocabulary excluded; Bi et al. 2024 §3.2). Compute C = M·D."""
    return 72.0 * n_layer * d_model**2 + 12.0 * n_layer * d_model * seq_len


_DS_LR = ("k_lr", "a_lr")
_DS_B = ("k_batch", "a_batch")
_DS_M = ("k_M", "a_M")
_DS_D = ("k_D", "a_D")


@dataclass(frozen=True)
class DeepSeekLaw(Law):
    """DeepSeek LLM hyperparameter and allocation laws in compute C (FLOPs, C = M·D)."""

    form: ClassVar[str] = "deepseek"
    coefficient_names: ClassVar[tuple[str, ...]] = _DS_LR + _DS_B + _DS_M + _DS_D
    output_specs: ClassVar[tuple[Output, ...]] = (
        Output("learning_rate", ("flops",), _DS_LR, units="peak learning rate",
               description="eta_opt = k_lr·C^a_lr (eq. 1)"),
        Output("batch_tokens", ("flops",), _DS_B, units="tokens per batch",
               description="B_opt = k_batch·C^a_batch (eq. 1)"),
        Output("flops_per_token", ("flops",), _DS_M, units="non-embedding FLOPs per token (M)",
               description="M_opt = k_M·C^a_M (§3.2)"),
        Output("tokens", ("flops",), _DS_D, units="training tokens", description="D_opt = k_D·C^a_D (§3.2)"),
    )

    def formula(self, flops, k_lr, a_lr):
        return k_lr * flops**a_lr

    def formula_batch_tokens(self, flops, k_batch, a_batch):
        return k_batch * flops**a_batch

    def formula_flops_per_token(self, flops, k_M, a_M):
        return k_M * flops**a_M

    def formula_tokens(self, flops, k_D, a_D):
        return k_D * flops**a_D


_SL_LR = ("k_lr", "a_lr_params", "a_lr_tokens")
_SL_B = ("k_batch", "a_batch")


@dataclass(frozen=True)
class StepLaw(Law):
    """Step Law: eta(N, D) and B(D); N non-embedding params, B in tokens."""

    form: ClassVar[str] = "steplaw"
    coefficient_names: ClassVar[tuple[str, ...]] = _SL_LR + _SL_B
    output_specs: ClassVar[tuple[Output, ...]] = (
        Output("learning_rate", ("params", "tokens"), _SL_LR, units="peak learning rate",
               description="eta = k_lr·N^a_lr_params·D^a_lr_tokens"),
        Output("batch_tokens", ("tokens",), _SL_B, units="tokens per batch", description="B = k_batch·D^a_batch"),
    )

    def formula(self, params, tokens, k_lr, a_lr_params, a_lr_tokens):
        return k_lr * params**a_lr_params * tokens**a_lr_tokens

    def formula_batch_tokens(self, tokens, k_batch, a_batch):
        return k_batch * tokens**a_batch
