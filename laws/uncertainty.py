"""Published parameter uncertainty of catalog laws, turned into deterministic coefficient samples.

A fitted law file carries its own bootstrap (``[law.bootstrap]``). A published law carries only what its paper
reports; where that is a bootstrap standard error per coefficient, :func:`with_samples` draws seeded samples from
a normal distribution with those standard errors, in the coordinates the authors bootstrapped in, so that
robust plans (``planner.robust``) work with the published law too.

Only one catalog law publishes such uncertainty (checked against the authors' notebook):

- ``chinchilla-epoch-2024``: Besiroglu, Erdil, Barnett, You 2024, "Chinchilla Scaling: A replication attempt",
  arXiv 2404.10102. Standard errors from 4,000 bootstrap refits, printed in the authors' notebook
  (epoch-research/analyzing-chinchilla, ``data_analysis.ipynb``, 2024-05-14; the cell "Parameter estimates and
  their standard errors" in transformed coordinates, printed as "A: 6.178 (0.258)", "B: 7.643 (0.421)",
  "E: 0.597 (0.014)", i.e. log A, log B, log E): log A 0.258, log B 0.421, log E 0.014, alpha 0.01540,
  beta 0.02060 (the last two from the untransformed table, "alpha: 0.34781 (0.01540)", "beta: 0.36585 (0.02060)";
  its E SE 0.02566 = 1.81686 x 0.01412). Re-read in the notebook on 2026-12-02. The authors
  draw from a multivariate normal in these coordinates themselves (same notebook, the compute-threshold cell).
  Their covariance matrix is not printed, so the draws here are **independent**: the correlations between
  log A and alpha (and log B and beta), which partly cancel at the fitted data, are lost, so intervals far from
  the fitted range are wider than the authors' joint bootstrap would give.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

DEFAULT_SAMPLES = 500  # uncompressed, a robust program grows by one posynomial per sample (planner.robust_terms)
DEFAULT_SEED = 20240415  # fixed: the published law's samples are the same on every machine and call


@dataclasses.dataclass(frozen=True)
class PublishedUncertainty:
    """Bootstrap standard errors of a published law, per coefficient, in the coordinate they were reported in.

    ``log_se``: SE of log(coefficient) (A, B, E: normal in log space, always positive); ``se``: SE of the
    coefficient itself (exponents). ``source``: the paper and table or notebook cell.
    """

    law_id: str
    log_se: Mapping[str, float]
    se: Mapping[str, float]
    source: str
    correlated: bool = False


PUBLISHED: dict[str, PublishedUncertainty] = {
    "chinchilla-epoch-2024": PublishedUncertainty(
        law_id="chinchilla-epoch-2024",
        # Besiroglu et al. 2024 (arXiv 2404.10102), authors' notebook data_analysis.ipynb, transformed SEs
        log_se={"A": 0.258, "B": 0.421, "E": 0.014},
        # same notebook, untransformed table: alpha 0.34781 (0.01540), beta 0.36585 (0.02060)
        se={"alpha": 0.01540, "beta": 0.02060},
        source="Besiroglu et al. 2024, arXiv 2404.10102: bootstrap standard errors (4,000 refits) from the "
               "authors' notebook data_analysis.ipynb (log A 0.258, log B 0.421, log E 0.014, alpha 0.0154, "
               "beta 0.0206); correlations not published, drawn independently",
    ),
}


def published_uncertainty(law_id: str) -> PublishedUncertainty | None:
    """The published uncertainty of catalog law ``law_id`` (None if its paper reports none we verified)."""
    return PUBLISHED.get(law_id)


def published_samples(law: Any, n: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED) -> dict[str, np.ndarray] | None:
    """``n`` seeded coefficient samples around ``law``'s coefficients from its published standard errors.

    Coefficients in ``log_se`` are drawn as exp(log c + se·z), those in ``se`` as c + se·z, z ~ N(0, 1)
    independent (numpy ``default_rng(seed)``); coefficients without a published SE stay at their value. Samples
    with a non-positive exponent are redrawn. None if the law has no published uncertainty.
    """
    pu = PUBLISHED.get(getattr(law, "id", ""))
    if pu is None:
        return None
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for k, v in law.coefficients.items():
        if k in pu.log_se:
            out[k] = np.exp(math.log(v) + pu.log_se[k] * rng.standard_normal(n))
        elif k in pu.se:
            z = rng.standard_normal(n)
            x = v + pu.se[k] * z
            while np.any(x <= 0):  # never at these SEs (20+ sigma); kept so no sample is ever invalid
                bad = x <= 0
                x[bad] = v + pu.se[k] * rng.standard_normal(int(bad.sum()))
            out[k] = x
        else:
            out[k] = np.full(n, float(v))
    return out


def with_samples(law: Any, n: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED) -> Any:
    """``law`` itself if it has bootstrap samples; else a copy carrying its published samples; else ``law``."""
    if getattr(law, "bootstrap", None) is not None:
        return law
    smp = published_samples(law, n, seed)
    return law if smp is None else dataclasses.replace(law, bootstrap=smp)


__all__ = ["PUBLISHED", "PublishedUncertainty", "published_samples", "published_uncertainty", "with_samples"]
