"""Benchmark ``planner fit``: before/after on Chinchilla's 240 points, scaling in runs, bootstrap workers.

Measured in one run, so the ratios hold on a noisy shared machine:

1. The full 4,500-start Hoffmann grid on the 240 Epoch points (Chinchilla Fig. 4, 5 highest losses dropped,
   D = C/6N; ``--synthetic`` without ../shared/data): the current fit vs the fit of an earlier commit
   (``--before REV``, default the commit before the fit was split and pruned; its ``laws/fit.py`` is read with
   ``git show`` into a temporary module), and vs a plain per-start scipy L-BFGS-B loop on a subsample of
   starts (scaled). Prints times, ratios and the objective difference (target: <= 1e-9 relative).
2. Scaling: synthetic runs (n = 240 ... ``--max-runs``), full grid; CPU time per run should stay flat or fall
   (linear), and the process's peak memory stays bounded (blocks of at most 8,192 problem x run elements).
3. 1,000 bootstrap refits with ``workers=1`` and ``workers=2``: times and whether the samples are identical.

Run from the repository root: ``python benchmarks/bench_fit.py [--synthetic] [--before REV] [--max-runs N]``.
Nothing is asserted; timings are never test assertions.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from laws import fit as F  # noqa: E402
from laws.fit.kernels import ChinchillaKernel  # noqa: E402

DATA = Path(os.environ.get("PLANNER_SHARED_DATA") or ROOT.parent / "shared" / "data")
EPOCH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}  # Besiroglu et al. 2024, v2 table
BEFORE = "6bd74ea"  # last commit with the single-file laws/fit.py (no pruning, scipy polish)


def synthetic(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(math.log(4e7), math.log(1.6e10), n))
    C = np.exp(rng.uniform(math.log(6e18), math.log(3e21), n))
    D = C / (6 * N)
    c = EPOCH
    L = (c["E"] + c["A"] * N ** -c["alpha"] + c["B"] * D ** -c["beta"]) * np.exp(rng.normal(0, 0.01, n))
    return N, D, L


def load_points(use_synthetic: bool):
    """(N params, D tokens, L loss, label)."""
    path = DATA / "chinchilla_fig4_epoch_svg_extracted.csv"
    if use_synthetic or not path.is_file():
        return (*synthetic(240), "240 synthetic runs (Epoch constants, 1% log-normal noise)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    N = np.array([float(r["Model Size"]) for r in rows])
    C = np.array([float(r["Training FLOP"]) for r in rows])
    L = np.array([float(r["loss"]) for r in rows])
    keep = np.sort(np.argsort(L, kind="stable")[:-5])  # Epoch drops the 5 highest-loss points
    N, C, L = N[keep], C[keep], L[keep]
    return N, C / (6 * N), L, f"{keep.size} Chinchilla points ({path.name}, 5 highest losses dropped)"


def load_before(rev: str):
    """The ``laws/fit.py`` of commit ``rev`` as a module, or None (no git, or no such file)."""
    try:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:laws/fit.py"], capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "fit_before.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("fit_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fit_before"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


CPU: list[float] = []  # CPU seconds of the last timed() call (best of its repeats)


def timed(fn, repeat: int = 1):
    """(best wall time of ``repeat`` calls, last result); the matching CPU time goes to CPU[-1]."""
    best, cpu, out = math.inf, math.inf, None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    CPU.append(cpu)
    return best, out


def max_rss_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scipy_loop(N, D, L, every: int):
    """One scipy L-BFGS-B call (default options) per start of every ``every``-th start: (time per start, best f)."""
    kernel = ChinchillaKernel(np.log(N), np.log(D), np.log(L), F.DEFAULT_DELTA)
    order = ("a", "b", "e", "alpha", "beta")
    starts = np.array(np.meshgrid(*(F.HOFFMANN_GRID[k] for k in order), indexing="ij")).reshape(5, -1).T[::every]
    bounds = [F.CHINCHILLA_BOUNDS.get(k, (None, None)) for k in order]

    def fun(v):
        f, g = kernel(v[None, :], None)
        return float(f[0]), g[0]

    t0 = time.perf_counter()
    best = min(minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds).fun for x0 in starts)
    return (time.perf_counter() - t0) / len(starts), float(best)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", action="store_true", help="use 240 synthetic runs instead of the Chinchilla data")
    ap.add_argument("--before", default=BEFORE, help=f"git revision to compare against (default {BEFORE})")
    ap.add_argument("--max-runs", type=int, default=100_000, help="largest synthetic run count in the scaling test")
    ap.add_argument("--loop-every", type=int, default=45, help="scipy loop over every K-th start (time scaled)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many timings for the 240-point fits")
    args = ap.parse_args(argv)

    N, D, L, label = load_points(args.synthetic)
    print(f"data: {label}; start grid 4,500 (Hoffmann et al. 2022 App. D.2); Huber delta 1e-3, summed\n")

    t_new, new = timed(lambda: F.fit_chinchilla(N, D, L), args.repeat)
    c_new = CPU[-1]
    print(f"after : fit_chinchilla, full grid          {t_new:7.3f} s ({c_new:.3f} s CPU)   objective "
          f"{new.objective!r}")
    old_mod = load_before(args.before)
    if old_mod is not None:
        t_old, old = timed(lambda: old_mod.fit_chinchilla(N, D, L), args.repeat)
        rel = (new.objective - old.objective) / old.objective
        c_old = CPU[-1]
        print(f"before: {args.before} fit_chinchilla, full grid {t_old:7.3f} s ({c_old:.3f} s CPU)   objective "
              f"{old.objective!r}")
        print(f"        speed-up before/after {t_old / t_new:.1f}x wall, {c_old / c_new:.1f}x CPU; objective after - "
              f"before = {rel:+.1e} relative "
              f"({'same optimum' if abs(rel) <= 1e-9 else 'DIFFERENT'} at 1e-9)")
    per_start, f_loop = scipy_loop(N, D, L, max(1, args.loop_every))
    t_loop = per_start * 4500
    print(f"scipy loop, one L-BFGS-B per start ({4500 // args.loop_every} starts timed, x{args.loop_every}): "
          f"{t_loop:.1f} s = {t_loop / t_new:.0f}x the fit; its best objective {f_loop!r}\n")

    print("scaling (synthetic runs, full grid):")
    print(f"{'runs':>9} {'time s':>8} {'CPU s':>7} {'µs per run':>11} {'vs 240':>7} {'max RSS MB':>10}" +
          ("  before: time s" if old_mod is not None else ""))
    base = None
    for n in sorted({240, 2400, 24_000, args.max_runs}):
        if n > args.max_runs:
            continue
        Ns, Ds, Ls = synthetic(n, seed=1)
        t, _ = timed(lambda Ns=Ns, Ds=Ds, Ls=Ls: F.fit_chinchilla(Ns, Ds, Ls))
        cpu = CPU[-1]
        base = base or cpu / n
        line = f"{n:>9,} {t:8.2f} {cpu:7.2f} {1e6 * cpu / n:11.1f} {cpu / n / base:7.2f} {max_rss_mb():10.0f}"
        if old_mod is not None and n <= 2400:
            t_o, _ = timed(lambda Ns=Ns, Ds=Ds, Ls=Ls: old_mod.fit_chinchilla(Ns, Ds, Ls))
            line += f"  {t_o:8.2f} ({CPU[-1] / cpu:.1f}x CPU)"
        print(line, flush=True)

    B = args.bootstrap
    t1, serial = timed(lambda: F.fit_chinchilla(N, D, L, bootstrap=B, seed=0))
    t2, par = timed(lambda: F.fit_chinchilla(N, D, L, bootstrap=B, seed=0, workers=2))
    same = all(np.array_equal(serial.bootstrap[k], par.bootstrap[k]) for k in serial.coefficients)
    print(f"\nfit + {B} bootstraps: workers=1 {t1:.2f} s, workers=2 {t2:.2f} s ({t1 / t2:.2f}x); samples identical: "
          f"{'yes' if same else 'NO'}")
    if old_mod is not None:
        t_ob, _ = timed(lambda: old_mod.fit_chinchilla(N, D, L, bootstrap=B, seed=0))
        print(f"before: fit + {B} bootstraps {t_ob:.2f} s ({t_ob / t1:.1f}x workers=1)")
    for k in ("E", "A", "B", "alpha", "beta"):
        lo, hi = serial.ci95[k]
        print(f"  {k:>5} = {serial.coefficients[k]:<10.5g} stderr {serial.stderr[k]:<9.3g} 95% [{lo:.5g}, {hi:.5g}]")


if __name__ == "__main__":
    main()
