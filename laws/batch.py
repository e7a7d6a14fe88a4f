"""Steps/tokens trade-off of data-parallel training: McCandlish et al. 2018, "An Empirical Model of Large-Batch
Training" (arXiv 1812.06162), as used by Kaplan et al. 2020 eqs. 5.1-5.5.

(S/S_min - 1)(E/E_min - 1) = 1 with E = B·S tokens processed, equivalently

    S = S_min·(1 + B_noise/B)      (steps; a posynomial in S_min, B_noise, 1/B)
    E = E_min·(1 + B/B_noise)      (tokens; a posynomial)

and B_crit = E_min/S_min ≈ B_noise. At B = B_noise training takes 2·S_min steps and 2·E_min tokens. The law has
no fitted coefficients; the noise scale (critical batch) comes from a measurement or a law such as Kaplan's
B_crit(L). Inputs: ``batch_tokens`` B, ``noise_scale`` B_noise (tokens), ``min_steps`` S_min, ``min_tokens``
E_min, or the actual ``steps`` / ``tokens`` for the inverse (non-DGP) outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from laws.base import Law, Output

_INVERSE = "a quotient by a posynomial; use steps / tokens as the DGP outputs"


@dataclass(frozen=True)
class McCandlishLaw(Law):
    """Steps and tokens needed at batch B to reach a fixed loss, from the minimums S_min, E_min."""

    form: ClassVar[str] = "mccandlish"
    coefficient_names: ClassVar[tuple[str, ...]] = ()
    output_specs: ClassVar[tuple[Output, ...]] = (
        Output("steps", ("min_steps", "noise_scale", "batch_tokens"), (), units="optimizer steps",
               description="S = S_min·(1 + B_noise/B)"),
        Output("tokens", ("min_tokens", "noise_scale", "batch_tokens"), (), units="tokens processed",
               description="E = E_min·(1 + B/B_noise)"),
        Output("critical_batch_tokens", ("min_tokens", "min_steps"), (), units="tokens",
               description="B_crit = E_min/S_min"),
        Output("implied_min_steps", ("steps", "noise_scale", "batch_tokens"), (), dgp=False,
               units="optimizer steps", description="S_min = S/(1 + B_noise/B) (Kaplan eq. 5.4)",
               dgp_note=_INVERSE),
        Output("implied_min_tokens", ("tokens", "noise_scale", "batch_tokens"), (), dgp=False,
               units="tokens", description="E_min = E/(1 + B/B_noise) (Kaplan eq. 5.5 in tokens)",
               dgp_note=_INVERSE),
    )

    def formula(self, min_steps, noise_scale, batch_tokens):
        return min_steps + min_steps * noise_scale / batch_tokens

    def formula_tokens(self, min_tokens, noise_scale, batch_tokens):
        return min_tokens + min_tokens * batch_tokens / noise_scale

    def formula_critical_batch_tokens(self, min_tokens, min_steps):
        return min_tokens / min_steps

    def formula_implied_min_steps(self, steps, noise_scale, batch_tokens):
        return steps / (1.0 + noise_scale / batch_tokens)

    def formula_implied_min_tokens(self, tokens, noise_scale, batch_tokens):
        return tokens / (1.0 + batch_tokens / noise_scale)
