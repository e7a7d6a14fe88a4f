"""What the terminal output says: plurals, one loss column, explained fit quantities, units, help markup."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from cli import _plural, app

runner = CliRunner()


def test_plural():
    assert [_plural(n, "node") for n in (0, 1, 2, 1024)] == ["0 nodes", "1 node", "2 nodes", "1,024 nodes"]


def test_small_plan_says_one_node_and_one_loss_column():
    r = runner.invoke(app, ["optimize", "--budget", "1e20", "--gpu", "h100,b200"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "1 node ×" in r.stdout
    assert not re.search(r"(?<![\d.,])1 (nodes|devices)\b", r.stdout)  # "4.101 devices" is fine
    header = next(line for line in r.stdout.splitlines() if "precision" in line and "gpu" in line)
    assert len(re.findall(r"\bloss\b", header)) == 1
    r = runner.invoke(app, ["optimize", "--objective", "cost", "--target-loss", "2.6", "--gpu", "h100,b200"],
                      terminal_width=200)
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stdout.splitlines() if "precision" in line and "gpu" in line)
    assert len(re.findall(r"\bloss\b", header)) == 1 and "cost" in header


def test_plot_help_names_the_extra():
    for cmd in (["fit", "--help"], ["optimize", "--help"], ["sweep", "--help"]):
        r = runner.invoke(app, cmd, terminal_width=200)
        assert "planner[plot]" in r.stdout, cmd


def test_fit_explains_derived_quantities(tmp_path):
    runs = tmp_path / "runs.csv"
    assert runner.invoke(app, ["example", str(runs)]).exit_code == 0
    r = runner.invoke(app, ["fit", str(runs)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "N_opt ∝ C^a" in r.stdout and "D_opt ∝ C^b" in r.stdout and "N_opt = G·(C/6)^a" in r.stdout
    assert runner.invoke(app, ["example", str(runs)]).exit_code == 2  # no silent overwrite
    assert runner.invoke(app, ["example", str(runs), "--force"]).exit_code == 0


def test_laws_eval_prints_units():
    r = runner.invoke(app, ["laws", "eval", "chinchilla-epoch-2024", "--params", "1e9", "--tokens", "2e10"])
    assert r.exit_code == 0 and r.stdout.strip().endswith("nats/token"), r.stdout
    r = runner.invoke(app, ["laws", "eval", "chinchilla-epoch-2024", "--params", "1e9", "--tokens", "2e10", "--json"])
    assert '"units": {"loss": "nats/token"}' in r.stdout
