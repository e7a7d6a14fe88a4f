"""The batch law's token accounting in numbers (the program's critical_batch / large_batch constraints).

At or below the batch law's optimum B_law every processed token counts; above it the tokens needed grow in
proportion to the batch (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", eq. 2.11's
large-batch regime D = D_min·(1 + B/B_noise) ≈ D_min·B/B_noise), with B_noise = B_law(D_eff, N) =
coef · D_eff^beta · N^gamma evaluated at the progress reached (the effective tokens D_eff):

    D = D_eff · max(1, B / B_law(D_eff, N))

Units: tokens and batch in tokens; N in the law's params.

Powers are taken with ``power`` (numpy's array loop), here and in the vectorized whole-cluster scan
(``planner.whole_scan``), so that one plan evaluated alone and thousands evaluated at once agree bit for bit:
numpy's vectorized power may differ from Python's ``**`` (and from numpy's scalar power) by an ulp.
"""

from __future__ import annotations

import numpy as np


def power(x, exponent: float):
    """``x ** exponent`` through numpy's ufunc loop, for a number (a numpy float) or an array alike."""
    return np.power(x, exponent)


def law_batch(coef: float, beta: float, gamma: float, effective_tokens: float, params: float) -> float:
    """The batch law's optimum B_law in tokens at (D_eff, N)."""
    return float(coef * power(effective_tokens, beta) * power(params, gamma))


def tokens_processed(effective_tokens: float, batch: float, coef: float, beta: float, gamma: float,
                     params: float) -> float:
    """Processed tokens D that yield ``effective_tokens`` at ``batch``."""
    return effective_tokens * max(1.0, batch / law_batch(coef, beta, gamma, effective_tokens, params))


def effective_tokens(tokens: float, batch: float, coef: float, beta: float, gamma: float, params: float) -> float:
    """Effective tokens D_eff from processed ``tokens`` at ``batch`` (the inverse of ``tokens_processed``).

    Above the optimum D = D_eff^(1-beta) · B / (coef · N^gamma), so D_eff = (D · coef · N^gamma / B)^(1/(1-beta)).
    """
    if batch <= law_batch(coef, beta, gamma, tokens, params):
        return tokens
    return float(power(tokens * coef * power(params, gamma) / batch, 1.0 / (1.0 - beta)))
