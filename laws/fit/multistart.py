"""Multistart and bootstrap: one fitting problem solved from a grid of starts, then refitted on resamples.

The grid (e.g. Hoffmann et al. 2022's 4,500 starts) runs as one batch of :func:`minimize_batched`; starts more
than ``Prune.factor`` x the best objective at a checkpoint stop early. The few best distinct end points are
polished with tight tolerances. Bootstrap: runs are resampled with replacement (multinomial counts used as
weights, drawn from a numpy Generator chunk by chunk in a fixed order); each replicate is refitted from every
distinct local optimum the grid found (``basins``), and replicates run in chunks of a size that does not depend
on ``workers``, so ``workers=N`` gives exactly the serial numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from laws.fit.common import FitError, Progress
from laws.fit.optimizer import Prune, minimize_batched

BASIN_FACTOR = 1.5  # bootstrap refits start from every grid local optimum with objective <= 1.5 x best
GRID_PRUNE = Prune()
BOOT_WEIGHTS = 2_000_000  # most (replicates x starts x runs) weights held per bootstrap chunk


@dataclass(frozen=True)
class Problem:
    """One fitting problem in internal coordinates: ``kernel(theta, w) -> (f, grad)``, starts and bounds."""

    kernel: Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]]
    starts: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: int  # runs


@dataclass(frozen=True)
class Solution:
    """Best internal point, its objective, and the distinct near-best optima (warm starts for the bootstrap)."""

    theta: np.ndarray
    objective: float
    basins: np.ndarray


def distinct(x: np.ndarray, f: np.ndarray, k: int, *, ftol: float = 1e-9, xtol: float = 1e-3) -> list[int]:
    """Indices of up to k lowest-objective points that differ from each other (in objective or location)."""
    order = np.argsort(f, kind="stable")
    keep: list[int] = []
    for i in order:
        if not np.isfinite(f[i]):
            break
        if all(abs(f[i] - f[j]) > ftol * max(abs(f[j]), 1e-300) or np.max(np.abs(x[i] - x[j])) > xtol for j in keep):
            keep.append(int(i))
        if len(keep) >= k:
            break
    return keep


def solve(pr: Problem, *, n_polish: int = 5, n_basins: int = 4, prune: Prune | None = GRID_PRUNE) -> Solution:
    """Batched L-BFGS from every start (pruned), then a tight polish of the best distinct end points."""
    x, f, _ = minimize_batched(lambda th, rows: pr.kernel(th, None), pr.starts, pr.lower, pr.upper, gtol=1e-6,
                               ftol=1e-9, max_iter=500, prune=prune)
    cand = distinct(x, f, n_polish, ftol=1e-6, xtol=1e-2)
    if not cand:
        raise FitError("the objective is not finite at any start: check the runs", field="runs")
    xp, fp, _ = minimize_batched(lambda th, rows: pr.kernel(th, None), x[cand], pr.lower, pr.upper, gtol=1e-11,
                                 ftol=1e-15, max_iter=20000)
    worse = ~(fp <= f[cand])  # keep a batched end point if the polish did not improve it
    xp[worse], fp[worse] = x[cand][worse], f[cand][worse]
    order = np.argsort(fp, kind="stable")
    px, pf = xp[order], fp[order]
    keep = [i for i in distinct(px, pf, n_basins, ftol=1e-7, xtol=1e-2) if pf[i] <= BASIN_FACTOR * pf[0]]
    return Solution(px[0], float(pf[0]), px[keep])


def resample_counts(rng: np.random.Generator, n: int, n_boot: int, chunk: int) -> Iterator[np.ndarray]:
    """Multinomial resampling counts (replicates, n), chunk by chunk; the same stream as one draw of n_boot."""
    for start in range(0, n_boot, chunk):
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_boot - start))


def chunk_size(n_boot: int, n: int, k: int) -> int:
    """Replicates per chunk: about 10 progress updates, >= 100 replicates, <= BOOT_WEIGHTS weights."""
    return max(1, min(n_boot, max(100, -(-n_boot // 10)), BOOT_WEIGHTS // max(1, n * k)))


def refit(pr: Problem, basins: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Refit each resample (row of ``counts``) from every basin; the best internal theta per resample."""
    m, k = counts.shape[0], basins.shape[0]
    w = np.repeat(counts.astype(float), k, axis=0)
    x, f, _ = minimize_batched(lambda th, rows: pr.kernel(th, w[rows]), np.tile(basins, (m, 1)), pr.lower, pr.upper)
    f = np.where(np.isfinite(f), f, np.inf).reshape(m, k)
    return x.reshape(m, k, -1)[np.arange(m), np.argmin(f, axis=1)]


# Resampled runs (bootstraps x runs) below which worker processes cost more than they save: starting one takes
# ~0.9 s; 1,000 bootstraps of 240 runs took 1.6 s serially and 2.0 s on 2 workers, 10,000 took 4.6 s and 3.7 s.
AUTO_WORK = 1_000_000


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def workers_for(workers: int | None, n_boot: int, n_runs: int) -> int:
    """The processes to use: ``workers``, or for None every core when n_boot x n_runs >= AUTO_WORK, else 1."""
    if workers is None:
        return default_workers() if n_boot * n_runs >= AUTO_WORK else 1
    if isinstance(workers, bool) or not (isinstance(workers, int) and workers >= 1):
        raise FitError(f"workers must be a whole number >= 1 (or None: every core for a large bootstrap), got "
                       f"{workers!r}", field="workers")
    return workers


def bootstrap(pr: Problem, basins: np.ndarray, n_boot: int, rng: np.random.Generator, progress: Progress | None,
              *, workers: int | None = 1) -> np.ndarray:
    """Refit n_boot resampled data sets; internal thetas (n_boot, p). ``workers`` > 1 uses processes (None: see
    ``workers_for``); the chunks do not depend on it, so every count gives the serial numbers."""
    workers = workers_for(workers, n_boot, pr.n)
    chunk = chunk_size(n_boot, pr.n, basins.shape[0])
    out = np.empty((n_boot, basins.shape[1]))
    if progress is not None:
        progress(0, n_boot)
    counts = resample_counts(rng, pr.n, n_boot, chunk)
    n_chunks = math.ceil(n_boot / chunk)
    if workers == 1 or n_chunks == 1:
        for i, c in enumerate(counts):
            out[i * chunk : i * chunk + c.shape[0]] = refit(pr, basins, c)
            if progress is not None:
                progress(min(n_boot, (i + 1) * chunk), n_boot)
        return out
    import multiprocessing

    done = 0
    with ProcessPoolExecutor(max_workers=min(workers, n_chunks), mp_context=multiprocessing.get_context("spawn")) as ex:
        pending: dict[Future, int] = {}
        for i, c in enumerate(counts):  # at most 2 chunks per worker in flight: bounded memory
            while len(pending) >= 2 * workers:
                done = _collect(pending, out, chunk, done, n_boot, progress)
            pending[ex.submit(refit, pr, basins, c)] = i
        while pending:
            done = _collect(pending, out, chunk, done, n_boot, progress)
    return out


def _collect(pending: dict[Future, int], out: np.ndarray, chunk: int, done: int, n_boot: int,
             progress: Progress | None) -> int:
    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
    for fut in finished:
        i = pending.pop(fut)
        res = fut.result()
        out[i * chunk : i * chunk + res.shape[0]] = res
        done += res.shape[0]
        if progress is not None:
            progress(done, n_boot)
    return done
