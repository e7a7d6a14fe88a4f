"""planner fit: CSV in, fitted law out, usable by planner optimize (with loss_ci from the bootstrap)."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def _synthetic(path: Path, noise: float = 0.004, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    n = np.repeat(np.logspace(7.5, 9.5, 8), 6)
    d = np.tile(np.logspace(9, 11, 6), 8)
    loss = (1.8 + 480 * n**-0.35 + 2000 * d**-0.37) * np.exp(rng.normal(0, noise, n.size))
    path.write_text("params,tokens,loss\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(n, d, loss, strict=True)))


def test_fit_then_optimize_with_loss_ci(tmp_path):
    runs, law = tmp_path / "runs.csv", tmp_path / "mylaw.toml"
    _synthetic(runs)
    r = runner.invoke(app, ["fit", str(runs), "--bootstrap", "100", "--budget", "1e22", "--out", str(law), "--json"])
    assert r.exit_code == 0, r.output
    fit = json.loads(r.stdout)
    c = fit["coefficients"]
    assert c["alpha"] == pytest.approx(0.35, abs=0.03) and c["beta"] == pytest.approx(0.37, abs=0.03)
    assert c["E"] == pytest.approx(1.8, abs=0.05)
    lo, hi = fit["ci95"]["alpha"]
    assert lo <= c["alpha"] <= hi
    assert fit["law_file"] == str(law) and fit["n_bootstrap"] == 100

    r = runner.invoke(app, ["optimize", "--law", str(law), "--budget", "1e22", "--json"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["law"] == "mylaw"
    lo, hi = plan["loss_ci"]
    assert lo < plan["loss"] < hi
    # the plan's optimum is the fitted law's closed form (Hoffmann eq. 4) with the fitted coefficients
    g = (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1 / (c["alpha"] + c["beta"]))
    n_opt = plan["continuous"]["params"]  # the program's optimum; the launchable plan rounds its shape
    assert n_opt == pytest.approx(g * (1e22 / 6) ** (c["beta"] / (c["alpha"] + c["beta"])), rel=1e-3)
    assert n_opt == pytest.approx(fit["derived"]["N_opt"], rel=1e-3)


def test_fit_table_output(tmp_path):
    runs = tmp_path / "runs.csv"
    _synthetic(runs)
    r = runner.invoke(app, ["fit", str(runs)])
    assert r.exit_code == 0, r.output
    assert "alpha" in r.stdout and "Huber objective" in r.stdout


@pytest.mark.parametrize(
    "body,needle",
    [
        ("params,tokens\n1e9,2e10\n", "missing required column 'loss'"),
        ("params,tokens,loss\n1e9,2e10,2.5\n1e9,-2e10,2.5\n", "line 3"),
        ("", "empty"),
    ],
)
def test_fit_bad_csv_one_line(tmp_path, body, needle):
    f = tmp_path / "runs.csv"
    f.write_text(body)
    r = runner.invoke(app, ["fit", str(f)])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and needle in r.stderr.lower()


def test_fit_unknown_form_and_missing_file(tmp_path):
    r = runner.invoke(app, ["fit", str(tmp_path / "none.csv")])
    assert r.exit_code == 2 and r.stderr.startswith("error: ")
    f = tmp_path / "runs.csv"
    _synthetic(f)
    r = runner.invoke(app, ["fit", str(f), "--form", "cubic"])
    assert r.exit_code == 2 and "--form" in r.stderr


def test_fit_cli_on_chinchilla_points(tmp_path):
    import csv

    rows = list(csv.DictReader(shared_data("chinchilla_fig4_epoch_svg_extracted.csv").open()))
    rows.sort(key=lambda r: float(r["loss"]))
    rows = rows[:-5]  # Epoch drops the 5 highest-loss points (arXiv 2404.10102)
    f = tmp_path / "chinchilla.csv"
    with f.open("w") as out:
        out.write("params,tokens,loss\n")
        for r in rows:
            n, c = float(r["Model Size"]), float(r["Training FLOP"])
            out.write(f"{n},{c / (6 * n)},{r['loss']}\n")
    res = runner.invoke(app, ["fit", str(f), "--json"])
    assert res.exit_code == 0, res.output
    c = json.loads(res.stdout)["coefficients"]
    # Epoch's estimates (laws.md §3): E 1.8172, alpha 0.3478, beta 0.3658; A 482.01, B 2085.43
    assert c["E"] == pytest.approx(1.8172, abs=0.01)
    assert c["alpha"] == pytest.approx(0.3478, abs=0.01) and c["beta"] == pytest.approx(0.3658, abs=0.01)
    assert c["A"] == pytest.approx(482.01, rel=0.15) and c["B"] == pytest.approx(2085.43, rel=0.15)


def test_power_law_file_loads_and_evaluates(tmp_path):
    # Step-Law-shaped synthetic LR data, eta = 1.79·N^-0.713·D^0.307 (Li et al. 2025), with 3% noise.
    rng = np.random.default_rng(5)
    n = np.repeat(np.logspace(8, 10, 6), 4)
    d = np.tile(np.logspace(10, 12, 4), 6)
    lr = 1.79 * n**-0.713 * d**0.307 * np.exp(rng.normal(0, 0.03, n.size))
    runs, law = tmp_path / "lr.csv", tmp_path / "lr.toml"
    runs.write_text("params,tokens,loss,lr\n" + "".join(f"{a},{b},2.5,{c}\n" for a, b, c in zip(n, d, lr, strict=True)))
    r = runner.invoke(app, ["fit", str(runs), "--form", "power", "--y", "lr", "--out", str(law), "--json"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["coefficients"]
    assert c["a_params"] == pytest.approx(-0.713, abs=0.03) and c["a_tokens"] == pytest.approx(0.307, abs=0.03)
    r = runner.invoke(app, ["laws", "eval", str(law), "--params", "7e9", "--tokens", "2e12", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["outputs"]["lr"]
    assert got == pytest.approx(c["k"] * 7e9 ** c["a_params"] * 2e12 ** c["a_tokens"], rel=1e-9)
    # a power law does not predict loss: optimize refuses it in one line
    r = runner.invoke(app, ["optimize", "--law", str(law), "--budget", "1e22"])
    assert r.exit_code == 2 and "does not predict loss" in r.output


def test_fit_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    runs, png = tmp_path / "runs.csv", tmp_path / "fit.png"
    _synthetic(runs)
    r = runner.invoke(app, ["fit", str(runs), "--plot", str(png), "--json"])
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = runner.invoke(app, ["fit", str(runs), "--form", "power", "--y", "loss", "--plot", str(png)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
