"""The fit's machinery: kernels against the laws' formulas, pruning, run blocks, bootstrap workers, to_law().

Independent computations are written out here (the Muennighoff law by hand from the authors' README code,
the Huber objective from its definition), not taken from the code under test.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from conftest import shared_data

from laws import fit as F
from laws.base import LawInfo
from laws.catalog import load_law_file
from laws.fit import kernels as K
from laws.fit.multistart import Problem, resample_counts, solve
from laws.fit.optimizer import Prune
from laws.muennighoff import MuennighoffLaw

SMALL_GRID = {"alpha": (0.5,), "beta": (0.5,), "e": (0.5,), "a": (5.0, 10.0), "b": (5.0, 10.0)}
TRUE_CHIN = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.30}  # synthetic, Chinchilla-like


def _runs(n=40, seed=2, noise=0.004):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(5e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(3e11), n))
    t = TRUE_CHIN
    L = (t["E"] + t["A"] * N ** -t["alpha"] + t["B"] * D ** -t["beta"]) * np.exp(rng.normal(0, noise, n))
    return N, D, L


def _huber(r, delta=1e-3):  # written out from the definition (Huber 1964)
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


# ------------------------------------------------------------------------ Muennighoff: one definition


def _muennighoff_by_hand(N, D, U, E, A, B, alpha, beta, R_D_star, R_N_star):
    """The datablations README ``scaling_law`` with its documented U = min(U, D) (optimal_allocation)."""
    U = min(U, D)
    G = ((alpha * A) / (beta * B)) ** (1 / (alpha + beta))
    RD = max(D / U - 1, 0)
    UN = min(N, (U * G) ** (beta / alpha) * G)
    RN = max(N / UN - 1, 0)
    return (E + A / (UN + UN * R_N_star * (1 - math.exp(-RN / R_N_star))) ** alpha
            + B / (U + U * R_D_star * (1 - math.exp(-RD / R_D_star))) ** beta)


def test_muennighoff_fitter_equals_law_when_data_is_not_exhausted():
    """Regression (issue 16): at N = 1e9, D = 2e10, U = 1e11 (D < U) the fitter's copy gave 2.4145, the law
    2.5646. Now the objective is built on the law: a run exactly on the law has zero objective."""
    c = {**F.MUENNIGHOFF_BASE, **F.MUENNIGHOFF_RSTAR}
    expect = _muennighoff_by_hand(1e9, 2e10, 1e11, **c)
    assert expect == pytest.approx(2.5646, abs=5e-5)
    law = MuennighoffLaw(LawInfo("m", "muennighoff", "t", "c", "s"), c)
    assert float(law.predict(params=1e9, tokens=2e10, unique_tokens=1e11)) == pytest.approx(expect, rel=1e-14)
    assert float(F.muennighoff_loss(1e9, 2e10, 1e11, **c)) == pytest.approx(expect, rel=1e-14)
    f = F.muennighoff_objective(c["R_D_star"], c["R_N_star"], params=[1e9], tokens=[2e10], unique_tokens=[1e11],
                                loss=[expect])
    assert float(f) < 1e-25  # the old copy: Huber(log(2.4145 / 2.5646)) = 5.9e-5
    n_eff, d_eff = F.muennighoff_effective(1e9, 2e10, 1e11, **c)
    assert float(d_eff) == pytest.approx(2e10, rel=1e-15)  # only D unique tokens seen, none repeated


def test_muennighoff_fit_predicts_with_the_law(tmp_path):
    rng = np.random.default_rng(4)
    N = np.exp(rng.uniform(np.log(1e8), np.log(3e9), 30))
    U = np.exp(rng.uniform(np.log(1e9), np.log(1e11), 30))
    D = U * np.exp(rng.uniform(np.log(0.3), np.log(30.0), 30))  # some runs see less than U
    c = {**F.MUENNIGHOFF_BASE, **F.MUENNIGHOFF_RSTAR}
    L = np.array([_muennighoff_by_hand(*x, **c) for x in zip(N, D, U, strict=True)])
    res = F.fit_muennighoff(N, D, U, L)
    assert res.objective < 1e-12
    law = load_law_file(res.to_toml(tmp_path / "m.toml", "m"))
    np.testing.assert_allclose(res.predict(N, D, U), law.predict(params=N, tokens=D, unique_tokens=U), rtol=1e-14)
    np.testing.assert_allclose(res.predict(N, D, U), L, rtol=1e-6)


# ------------------------------------------------------------------------ kernels call the laws


@pytest.mark.parametrize("form", ["chinchilla", "kaplan", "muennighoff"])
def test_objective_equals_huber_of_the_law(form):
    N, D, L = _runs()
    U = D / 3.0
    rng = np.random.default_rng(1)
    for _ in range(5):
        if form == "chinchilla":
            c = {"E": rng.uniform(1, 2), "A": rng.uniform(100, 900), "B": rng.uniform(500, 3000),
                 "alpha": rng.uniform(0.2, 0.5), "beta": rng.uniform(0.2, 0.5)}
            pred = c["E"] + c["A"] / N ** c["alpha"] + c["B"] / D ** c["beta"]
        elif form == "kaplan":
            c = {"Nc": 10 ** rng.uniform(12, 15), "Dc": 10 ** rng.uniform(12, 14), "alpha_N": rng.uniform(0.05, 0.1),
                 "alpha_D": rng.uniform(0.08, 0.12)}
            pred = ((c["Nc"] / N) ** (c["alpha_N"] / c["alpha_D"]) + c["Dc"] / D) ** c["alpha_D"]
        else:
            c = {**F.MUENNIGHOFF_BASE, "R_D_star": rng.uniform(2, 40), "R_N_star": rng.uniform(1, 10)}
            pred = np.array([_muennighoff_by_hand(*x, **c) for x in zip(N, D, U, strict=True)])
        f = F.huber_objective(form, c, params=N, tokens=D, loss=L, unique_tokens=U)
        assert float(f) == pytest.approx(float(_huber(np.log(pred) - np.log(L)).sum()), rel=1e-10)


def test_kaplan_kernel_gradient():
    N, D, L = _runs(n=30)
    xn, xd = np.log(N) - 20, np.log(D) - 23
    k = K.KaplanKernel(xn, xd, np.log(L), 1e-3)
    th = np.array([[12.0, 3.0, 0.08, 0.1], [10.0, 1.0, 0.3, 0.2]])
    f, g = k(th, None)
    for j in range(4):
        e = np.zeros(4)
        e[j] = 1e-7
        num = (k(th + e, None)[0] - k(th - e, None)[0]) / 2e-7
        np.testing.assert_allclose(g[:, j], num, rtol=1e-5, atol=1e-9)


def test_run_blocks_sum_to_the_whole(monkeypatch):
    """Many runs are evaluated in blocks of runs (bounded memory); the sums equal one pass."""
    N, D, L = _runs(n=50)
    k = K.ChinchillaKernel(np.log(N) - 20, np.log(D) - 23, np.log(L), 1e-3)
    th = np.array([[5.0, 7.0, 0.5, 0.3, 0.3], [1.0, 2.0, 0.0, 0.1, 0.4], [9.0, 3.0, 0.2, 0.6, 0.2]])
    w = np.random.default_rng(0).integers(0, 3, size=(3, 50)).astype(float)
    f0, g0 = k(th, w)
    monkeypatch.setattr(K, "MAX_RUN_BLOCK", 7)
    monkeypatch.setattr(K, "BLOCK_ELEMS", 10)
    f1, g1 = k(th, w)
    np.testing.assert_allclose(f1, f0, rtol=1e-12)
    np.testing.assert_allclose(g1, g0, rtol=1e-11, atol=1e-15)


# ------------------------------------------------------------------------ pruning keeps the optimum


def test_pruned_grid_reaches_the_unpruned_optimum_on_chinchilla_points():
    """The full 4,500-start Hoffmann grid on the 240 Epoch points: pruning starts that fall 5x behind the best
    at checkpoints leaves the optimum unchanged to 1e-9 in the objective."""
    with shared_data("chinchilla_fig4_epoch_svg_extracted.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.sort(np.argsort(loss, kind="stable")[:-5])
    n, d, loss = n[keep], c[keep] / (6 * n[keep]), loss[keep]
    st = F.CHINCHILLA.setup({"params": n, "tokens": d, "loss": loss}, 1e-3, F.HOFFMANN_GRID, {})
    lo, hi = np.array([-np.inf, -np.inf, -10.0, 0.0, 0.0]), np.array([np.inf, np.inf, 5.0, 5.0, 5.0])
    pr = Problem(st.kernel, st.starts, lo, hi, n.size)
    assert pr.starts.shape[0] == 4500
    pruned, full = solve(pr), solve(pr, prune=None)
    assert pruned.objective == pytest.approx(full.objective, rel=1e-9)
    np.testing.assert_allclose(pruned.theta, full.theta, rtol=1e-5, atol=1e-6)


def test_prune_spares_the_best():
    from laws.fit.optimizer import _prune

    f = np.array([1.0, 100.0, 4.9, 6.0, np.inf, 50.0])
    active = np.ones(6, bool)
    _prune(f, active, Prune(factor=5.0, keep=2))
    assert active.tolist() == [True, False, True, False, False, False]
    active = np.ones(6, bool)
    _prune(f, active, Prune(factor=5.0, keep=4))  # the 4 lowest stay whatever their ratio
    assert active.tolist() == [True, False, True, True, False, True]


# ------------------------------------------------------------------------ bootstrap: chunks and workers


def test_resample_counts_in_chunks_equal_one_draw():
    a = np.concatenate(list(resample_counts(np.random.default_rng(9), 17, 250, 100)))
    b = np.random.default_rng(9).multinomial(17, np.full(17, 1 / 17), size=250)
    np.testing.assert_array_equal(a, b)


def test_bootstrap_workers_identical_to_serial():
    N, D, L = _runs()
    calls: list[tuple[int, int]] = []
    serial = F.fit_chinchilla(N, D, L, bootstrap=250, seed=7, grid=SMALL_GRID)
    par = F.fit_chinchilla(N, D, L, bootstrap=250, seed=7, grid=SMALL_GRID, workers=2,
                           progress=lambda done, total: calls.append((done, total)))
    for k in serial.coefficients:
        np.testing.assert_array_equal(par.bootstrap[k], serial.bootstrap[k])
    assert calls[0] == (0, 250) and calls[-1] == (250, 250)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    with pytest.raises(F.FitError) as e:
        F.fit_chinchilla(N, D, L, bootstrap=10, grid=SMALL_GRID, workers=0)
    assert e.value.field == "workers"


def test_default_workers_only_for_a_large_bootstrap(monkeypatch):
    """workers=None (the CLI's default): every core once bootstraps x runs reach AUTO_WORK, else this process;
    a bad count names the field."""
    from laws.fit import multistart

    monkeypatch.setattr(multistart, "default_workers", lambda: 7)
    assert multistart.workers_for(None, 1000, 240) == 1
    assert multistart.workers_for(None, multistart.AUTO_WORK // 240 + 1, 240) == 7
    assert multistart.workers_for(3, 10, 10) == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(F.FitError) as e:
            multistart.workers_for(bad, 10, 10)
        assert e.value.field == "workers"
    N, D, L = _runs()
    auto = F.fit_chinchilla(N, D, L, bootstrap=50, seed=7, grid=SMALL_GRID, workers=None)
    serial = F.fit_chinchilla(N, D, L, bootstrap=50, seed=7, grid=SMALL_GRID)
    for k in serial.coefficients:
        np.testing.assert_array_equal(auto.bootstrap[k], serial.bootstrap[k])


# ------------------------------------------------------------------------ result: to_law()


def test_to_law_is_the_law_file(tmp_path):
    N, D, L = _runs()
    res = F.fit_chinchilla(N, D, L, bootstrap=20, grid=SMALL_GRID)
    law = res.to_law("mine")
    from_file = load_law_file(res.to_toml(tmp_path / "mine.toml", "mine"))
    import dataclasses

    assert dataclasses.replace(law.info, source=from_file.info.source) == from_file.info
    assert dict(law.coefficients) == dict(from_file.coefficients)
    np.testing.assert_array_equal(law.bootstrap["A"], from_file.bootstrap["A"])
    # the allocation is the law's: N_opt from ChinchillaLaw.compute_optimal
    n_opt, d_opt = law.compute_optimal(1e21)
    o = res.compute_optimal(1e21)["value"]
    assert o["N_opt"] == pytest.approx(float(n_opt), rel=1e-14) and o["D_opt"] == pytest.approx(float(d_opt), rel=1e-14)
    with pytest.raises(F.FitError) as e:
        res.predict(params=1e9)
    assert e.value.field == "tokens"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


# ------------------------------------------------------------------------ the shipped example runs


def test_example_runs_are_the_generator_output_and_recover_the_law():
    import importlib.util
    from importlib import resources
    from pathlib import Path

    from laws.runs import parse_runs

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_example_runs.py"
    spec = importlib.util.spec_from_file_location("make_example_runs", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shipped = resources.files("laws").joinpath("examples", "runs.csv").read_text(encoding="utf-8")
    assert shipped == mod.text()  # regenerate with scripts/make_example_runs.py after changing it
    assert "SYNTHETIC" in shipped.splitlines()[0]
    runs = parse_runs(shipped)
    res = F.fit_runs(runs, "chinchilla", bootstrap=200, seed=0)
    for k, v in {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}.items():
        lo, hi = res.ci95[k]
        assert lo <= v <= hi, (k, v, lo, hi)
