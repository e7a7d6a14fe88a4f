"""The fitting objectives at given coefficients, for checks and plots: sum_i Huber_delta(log L_hat_i - log L_i)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from laws.fit.common import DEFAULT_DELTA, FitError, as_arrays, huber
from laws.fit.forms import MUENNIGHOFF_BASE, base_coefficients
from laws.fit.kernels import ChinchillaKernel, MuennighoffKernel
from laws.kaplan import kaplan_log_loss


def chinchilla_objective(params, tokens, loss, *, E, A, B, alpha, beta, delta: float = DEFAULT_DELTA,
                         weights=None, grad: bool = False):
    """Sum over runs of Huber_delta(LSE(log A - alpha·log N, log B - beta·log D, log E) - log L).

    Coefficients may be arrays (one objective per element). With ``grad``, also returns the gradient with
    respect to (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta), shape (..., 5).
    """
    d = as_arrays(params=params, tokens=tokens, loss=loss)
    co = np.broadcast_arrays(*(np.asarray(v, float) for v in (A, B, E, alpha, beta)))
    shape = co[0].shape
    th = np.stack([np.log(co[0]).ravel(), np.log(co[1]).ravel(), np.log(co[2]).ravel(), co[3].ravel(),
                   co[4].ravel()], axis=1)
    w = None if weights is None else np.broadcast_to(np.asarray(weights, float), (th.shape[0], d["loss"].size))
    kernel = ChinchillaKernel(np.log(d["params"]), np.log(d["tokens"]), np.log(d["loss"]), delta)
    f, g = kernel(th, w)
    f = f.reshape(shape)
    return (f, g.reshape(*shape, 5)) if grad else f


def muennighoff_objective(R_D_star, R_N_star, *, params, tokens, unique_tokens, loss,
                          base: Any = MUENNIGHOFF_BASE, delta: float = DEFAULT_DELTA, weights=None,
                          grad: bool = False):
    """Sum over runs of Huber_delta(log L_hat - log L) for the data-constrained law, base law held fixed.

    R_D_star, R_N_star may be arrays (broadcast together). With ``grad``, also the gradient with respect to
    (log R_D*, log R_N*), shape (..., 2). ``base``: chinchilla coefficients (dict, Law or FitResult).
    """
    d = as_arrays(params=params, tokens=tokens, unique_tokens=unique_tokens, loss=loss)
    kernel = MuennighoffKernel.from_runs(d["params"], d["tokens"], d["unique_tokens"], d["loss"],
                                         base_coefficients(base), delta)
    rd, rn = np.broadcast_arrays(np.asarray(R_D_star, float), np.asarray(R_N_star, float))
    th = np.stack([np.log(rd).ravel(), np.log(rn).ravel()], axis=1)
    w = None if weights is None else np.broadcast_to(np.asarray(weights, float), (th.shape[0], d["loss"].size))
    f, g = kernel(th, w)
    f = f.reshape(rd.shape)
    return (f, g.reshape(*rd.shape, 2)) if grad else f


def huber_objective(form: str, coefficients: Mapping[str, Any], *, params, tokens, loss, unique_tokens=None,
                    delta: float = DEFAULT_DELTA):
    """The fitting objective of ``form`` at given coefficients: sum_i Huber_delta(log L_hat_i - log L_i).

    chinchilla: E, A, B, alpha, beta; kaplan: Nc, Dc, alpha_N, alpha_D; muennighoff: E, A, B, alpha, beta,
    R_D_star, R_N_star (and unique_tokens). Coefficient values may be arrays (vectorized).
    """
    c = dict(coefficients)
    if form == "chinchilla":
        return chinchilla_objective(params, tokens, loss, delta=delta, **c)
    if form == "kaplan":
        d = as_arrays(params=params, tokens=tokens, loss=loss)
        pred = kaplan_log_loss(d["params"], d["tokens"], **{k: np.asarray(v, float)[..., None] for k, v in c.items()})
        return huber(pred - np.log(d["loss"]), delta).sum(-1)
    if form == "muennighoff":
        base = {k: c.pop(k) for k in ("E", "A", "B", "alpha", "beta")}
        return muennighoff_objective(c["R_D_star"], c["R_N_star"], params=params, tokens=tokens,
                                     unique_tokens=unique_tokens, loss=loss, base=base, delta=delta)
    raise FitError(f"unknown form {form!r}; allowed: chinchilla, kaplan, muennighoff", field="form")
