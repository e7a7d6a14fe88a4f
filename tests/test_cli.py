"""CLI: JSON contract, tables, one-line errors with exit code 2, lazy cvxpy import."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

REQUIRED_KEYS = {
    "params", "tokens", "flops", "loss", "gpu", "gpus", "hours", "gpu_hours", "cost_usd", "mfu", "law",
    "binding", "shadow_prices",
}


def run(*args):
    return runner.invoke(app, list(args))


def test_optimize_json_contract():
    r = run("optimize", "--budget", "1e22", "--gpu", "h100", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)  # exactly one JSON object on stdout
    assert REQUIRED_KEYS <= set(data)
    assert data["gpu"] == "h100" and data["law"] == "chinchilla-epoch-2024"
    assert data["binding"] == ["flops"]
    assert isinstance(data["shadow_prices"]["flops"], float) and data["shadow_prices"]["flops"] < 0
    assert 0.97e22 <= data["flops"] <= 1e22  # the launchable plan: whole shape and steps, never over the budget
    assert data["gpu_hours"] == pytest.approx(data["gpus"] * data["hours"])


def test_cli_matches_python_api():
    from planner import optimize

    r = run("optimize", "--dollars", "1e6", "--deadline-days", "10", "--mfu", "0.45", "--json")
    assert r.exit_code == 0, r.output
    got, want = json.loads(r.stdout), optimize(dollars=1e6, deadline_days=10, mfu=0.45).summary()
    assert got.keys() == want.keys()
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-7)
    # params/tokens lie along a flat valley of the objective: equal to the interior-point tolerance
    for key in ("params", "tokens", "gpus", "cost_usd", "batch_tokens"):
        assert got[key] == pytest.approx(want[key], rel=2e-3), key
    assert (got["gpu"], got["law"], got["binding"]) == (want["gpu"], want["law"], want["binding"])


def test_optimize_table():
    r = run("optimize", "--budget", "1e22", "--gpu", "h100")
    assert r.exit_code == 0
    assert "params" in r.stdout and "binds" in r.stdout and "flops" in r.stdout


@pytest.mark.parametrize(
    "args,option",
    [
        (["--budget", "-1"], "--budget"),
        (["--budget", "0"], "--budget"),
        (["--budget", "nan"], "--budget"),
        (["--budget", "inf"], "--budget"),
        (["--budget", "abc"], "--budget"),
        (["--budget", "1e22", "--gpu", "nope"], "--gpu"),
        (["--budget", "1e22", "--law", "nope"], "--law"),
        (["--budget", "1e22", "--mfu", "2"], "--mfu"),
        (["--budget", "1e22", "--max-gpus", "1.5"], "--max-gpus"),
        (["--budget", "1e22", "--precision", "fp3"], "--precision"),
        (["--gpu", "h100"], "--budget"),
        (["--budget", "1e22", "--nonsense"], "--nonsense"),
    ],
)
def test_bad_input_one_line_exit_2(args, option):
    r = run("optimize", *args)
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert option in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_gpu_lists_allowed_values():
    r = run("optimize", "--budget", "1e22", "--gpu", "nope")
    assert "allowed:" in r.stderr and "h100" in r.stderr


def test_infeasible_one_line_names_option():
    r = run("optimize", "--dollars", "5e5", "--min-params", "7e10", "--min-tokens", "1.4e12", "--mfu", "0.4")
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1
    assert "raise --dollars to $" in r.stderr


def test_gpus_and_laws_list():
    r = run("gpus", "--json")
    assert r.exit_code == 0
    ids = [a["id"] for a in json.loads(r.stdout)["accelerators"]]
    assert "h100" in ids
    r = run("laws", "--json")
    assert r.exit_code == 0
    law_ids = {x["id"] for x in json.loads(r.stdout)["laws"]}
    assert {"chinchilla-epoch-2024", "chinchilla-hoffmann-2022", "kaplan-2020"} <= law_ids
    assert run("gpus").exit_code == 0 and "h100" in run("gpus").stdout
    assert run("laws").exit_code == 0


@pytest.mark.parametrize("argv", [["--help"], ["optimize", "--help"]])
def test_help_does_not_import_cvxpy(argv):
    code = (
        "import sys\nfrom typer.testing import CliRunner\nimport cli\n"
        f"r = CliRunner().invoke(cli.app, {argv!r})\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('cvxpy', 'scipy', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "body,args",
    [
        ("", ["optimize", "--budget", "1e22", "--catalog", "{f}"]),
        ("garbage = [", ["optimize", "--budget", "1e22", "--catalog", "{f}"]),
        ('[[accelerator]]\nid = "x"\n', ["gpus", "--catalog", "{f}"]),
        ("", ["optimize", "--budget", "1e22", "--law", "{f}"]),
        ("garbage = [", ["optimize", "--budget", "1e22", "--law", "{f}"]),
        ("", ["cost", "--tokens", "1e12", "--shape", "{f}"]),
        ("", ["fit", "{f}"]),
    ],
)
def test_malformed_and_empty_files_one_line(tmp_path, body, args):
    f = tmp_path / "input.toml"
    f.write_text(body)
    r = run(*[a.replace("{f}", str(f)) for a in args])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "argv,code,expect",
    [
        (["optimize", "--help"], 0, "Usage: planner optimize [OPTIONS]"),
        (["serve-cost", "--help"], 0, "Usage: planner serve-cost [OPTIONS]"),
        (["optimize", "--budget", "-1"], 2, "error: --budget: must be a number of FLOPs"),
        (["optimize", "--bogus", "1"], 2, "error: No such option: --bogus"),
        (["nope"], 2, "error: No such command 'nope'."),
        (["laws", "show", "kaplan-2020"], 0, "kaplan-2020"),
        (["gpus", "--json"], 0, '"accelerators"'),
    ],
)
def test_program_builds_only_the_named_command(argv, code, expect):
    """Run as a program (``app()``), the CLI builds only the command it runs; parsing, help and errors are the
    same as the full app's."""
    prog = "import sys; from cli import app; sys.argv = ['planner'] + sys.argv[1:]; app()"
    out = subprocess.run([sys.executable, "-c", prog, *argv], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == code, out.stderr
    assert expect in (out.stdout + out.stderr)
    assert "Traceback" not in out.stderr
