"""Plots: isoFLOP curves, Pareto frontiers and a fit against its runs render to valid PNGs (Agg backend)."""

import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from planner import InputError, PlanRequest, optimize
from planner.sweep import sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()

# Epoch AI refit (Besiroglu et al. 2024, arXiv 2404.10102, v2 table), typed here independently of the catalog.
E, A, B, ALPHA, BETA = 1.8172, 482.01, 2085.43, 0.3478, 0.3658


def assert_png(path, min_bytes=10_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, "not a PNG"
    assert len(data) > min_bytes, f"suspiciously small PNG ({len(data)} bytes)"
    # IHDR: width and height (big-endian) after the 8-byte signature and the 8-byte chunk header
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 300 and height > 200


def test_missing_matplotlib_is_a_one_line_error(tmp_path, monkeypatch):
    from planner.plots import plot_isoflop

    plan = optimize(budget_flops=1e21)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(InputError) as ei:
        plot_isoflop(plan, tmp_path / "x.png")
    assert ei.value.field == "plot" and "planner[plot]" in str(ei.value) and "\n" not in str(ei.value)


def test_isoflop_minima_follow_the_closed_form():
    from laws.catalog import get_law
    from planner.plots import isoflop_curves

    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    for cv in isoflop_curves(get_law("chinchilla-epoch-2024"), [1e20, 1e22, 1e24]):
        n_opt = g * (cv["budget"] / 6) ** (BETA / (ALPHA + BETA))  # Hoffmann et al. 2022 eq. 4
        step = 100 ** (1 / 120)  # the curve's grid spacing
        assert n_opt / step <= cv["params_opt"] <= n_opt * step
        np.testing.assert_allclose(6 * cv["params"] * cv["tokens"], cv["budget"], rtol=1e-12)


@pytest.fixture()
def plt_available():
    pytest.importorskip("matplotlib")


def test_plot_isoflop_png(tmp_path, plt_available):
    from planner.plots import plot_isoflop

    out = plot_isoflop(optimize(budget_flops=1e22), tmp_path / "iso.png")
    assert_png(out)


def test_plot_pareto_png(tmp_path, plt_available):
    from planner.plots import plot_pareto

    res = sweep(PlanRequest(dollars=1e5, deadline_days=30), dollars="1e4:1e7:4", deadlines=[7, 30])
    assert_png(plot_pareto(res, tmp_path / "pareto.png"))


def test_plot_pareto_tells_accelerators_apart(tmp_path, plt_available, monkeypatch):
    import planner.plots as plots

    figs = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, field, outputs=None: figs.append(fig) or path)
    res = sweep(PlanRequest(budget_flops=1e21), budgets="1e21:1e23:3", gpus=["h100", "b200"])
    plots.plot_pareto(res, tmp_path / "pareto.png")
    for ax in figs[0].axes:
        labels = ax.get_legend_handles_labels()[1]
        assert "h100" in labels and "b200" in labels and "Pareto frontier" in labels
    markers = {c.get_paths()[0].vertices.tobytes() for c in figs[0].axes[0].collections}
    assert len(markers) == 2  # one marker shape per accelerator


def test_plot_pareto_without_points_is_an_input_error(tmp_path, plt_available):
    from planner.plots import plot_pareto

    res = sweep(PlanRequest(dollars=1e3, min_params=1e11, min_tokens=1e12), dollars=[1e3])
    with pytest.raises(InputError) as ei:
        plot_pareto(res, tmp_path / "p.png")
    assert ei.value.field == "plot"


def _synthetic_runs(seed=0):
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(5e7, 2e9, 6), 4)
    d = np.tile(np.geomspace(1e9, 6e10, 4), 6)
    loss = (E + A / n**ALPHA + B / d**BETA) * np.exp(rng.normal(0, 0.005, n.size))
    return n, d, loss


def test_plot_fit_with_a_fit_result(tmp_path, plt_available):
    from laws.fit import fit_chinchilla
    from planner.plots import plot_fit

    n, d, loss = _synthetic_runs()
    fit = fit_chinchilla(n, d, loss)
    assert_png(plot_fit(fit, {"params": n, "tokens": d, "loss": loss}, tmp_path / "fit.png"))


def test_plot_fit_with_a_law_and_row_dicts(tmp_path, plt_available):
    from laws.catalog import get_law
    from planner.plots import plot_fit

    n, d, loss = _synthetic_runs(1)
    runs = [{"params": a, "tokens": b, "loss": c} for a, b, c in zip(n, d, loss, strict=True)]
    assert_png(plot_fit(get_law("chinchilla-epoch-2024"), runs, tmp_path / "law.png"))
    with pytest.raises(InputError) as ei:
        plot_fit(get_law("chinchilla-epoch-2024"), [{"params": 1.0, "tokens": 2.0}], tmp_path / "bad.png")
    assert ei.value.field == "runs_file"


def test_cli_plots(tmp_path, plt_available):
    iso, par = tmp_path / "iso.png", tmp_path / "par.png"
    r = runner.invoke(app, ["optimize", "--budget", "1e21", "--plot", str(iso)])
    assert r.exit_code == 0, r.output
    assert_png(iso)
    r = runner.invoke(app, ["sweep", "--budget", "1e20:1e23:4", "--plot", str(par), "--json"])
    assert r.exit_code == 0, r.output
    assert_png(par)
