"""`planner laws show` and `planner laws eval`: JSON contract, values against independent formulas, errors."""

import json

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_laws_show_json_has_citation_units_and_coefficients():
    r = run("laws", "show", "chinchilla-epoch-2024", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["id"] == "chinchilla-epoch-2024"
    assert info["coefficients"]["E"] == pytest.approx(1.8172)
    assert info["coefficients"]["alpha"] == pytest.approx(0.3478)
    assert "Besiroglu" in info["citation"] or "Epoch" in info["citation"]
    assert info["params_counts"]  # what N counts is stated
    r = run("laws", "show", "deepseek-2024")
    assert r.exit_code == 0 and "deepseek-2024" in r.stdout


def test_laws_eval_chinchilla_matches_closed_form():
    n, d = 7e10, 1.4e12
    r = run("laws", "eval", "chinchilla-epoch-2024", "--params", str(n), "--tokens", str(d), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    by_hand = 1.8172 + 482.01 / n**0.3478 + 2085.43 / d**0.3658
    assert out["outputs"]["loss"] == pytest.approx(by_hand, rel=1e-12)
    assert out["inputs"] == {"params": n, "tokens": d}


def test_laws_eval_deepseek_at_a_budget_matches_eq1():
    # DeepSeek LLM eq. 1: eta_opt = 0.3118 C^-0.1250, B_opt = 0.2920 C^0.3271 (laws.md §6)
    c = 1e22
    r = run("laws", "eval", "deepseek-2024", "--flops", str(c), "--output", "learning_rate", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)["outputs"]
    assert set(out) == {"learning_rate"}
    assert out["learning_rate"] == pytest.approx(0.3118 * c**-0.1250, rel=1e-9)


def test_laws_eval_kaplan_critical_batch_from_loss():
    # Kaplan 2020 eq. 1.4: B_crit(L) = B* / L^(1/alpha_B); B* = 2.1e8 tokens, alpha_B = 0.21 (Table 5)
    k = {"B_star": 2.1e8, "alpha_B": 0.21}
    r = run("laws", "eval", "kaplan-2020", "--loss", "3.0", "--output", "critical_batch_tokens", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["outputs"]["critical_batch_tokens"]
    assert got == pytest.approx(k["B_star"] / 3.0 ** (1 / k["alpha_B"]), rel=1e-9)


def test_laws_eval_human_output_lists_each_output():
    r = run("laws", "eval", "steplaw-2025", "--params", "7e9", "--tokens", "2e12")
    assert r.exit_code == 0, r.output
    assert "learning_rate = " in r.stdout and "batch_tokens = " in r.stdout


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["laws", "show", "no-such-law"], "law"),
        (["laws", "eval", "no-such-law", "--params", "1e9"], "law"),
        (["laws", "eval", "kaplan-2020", "--params", "1e9"], "needs"),
        (["laws", "eval", "chinchilla-epoch-2024", "--params", "-1", "--tokens", "1e9"], "params"),
        (["laws", "eval", "chinchilla-epoch-2024", "--params", "nan", "--tokens", "1e9"], "params"),
        (["laws", "eval", "chinchilla-epoch-2024", "--params", "1e9", "--tokens", "1e9", "--output", "zz"], "zz"),
    ],
)
def test_laws_errors_are_one_line_exit_2(argv, needle):
    r = run(*argv)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], r.output


def test_laws_eval_mccandlish_and_moe_lr_inputs():
    # McCandlish et al. 2018 eq. 2.11: S = S_min·(1 + B_noise/B); E = E_min·(1 + B/B_noise)
    r = run("laws", "eval", "mccandlish-2018", "--noise-scale", "2e6", "--batch-tokens", "4e6", "--min-steps", "1e4",
            "--min-tokens", "3e10", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)["outputs"]
    assert out["steps"] == pytest.approx(1e4 * (1 + 2e6 / 4e6))
    assert out["tokens"] == pytest.approx(3e10 * (1 + 4e6 / 2e6))
    # Joint MoE eq. 8: LR = exp(8.39)·N^-0.81·E^-0.25 with N active non-embedding params
    r = run("laws", "eval", "joint-moe-2025", "--non-embedding-params", "1e9", "--experts", "8", "--json")
    assert r.exit_code == 0, r.output
    lr = json.loads(r.stdout)["outputs"]["learning_rate"]
    assert lr == pytest.approx(2.718281828459045**8.39 * 1e9**-0.81 * 8**-0.25, rel=1e-9)
