"""Fuzz the command line: random good and bad argument combinations never crash (issue: hard inputs).

Every invocation must exit 0 or 2, print no traceback, and on exit 2 print exactly one line on stderr.
"""

import json
import random

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

BAD_NUMBERS = ["0", "-1", "nan", "inf", "-inf", "1e40", "abc", "", "1e308"]
BAD_INTS = ["0", "-3", "1.5", "x", "100000000"]
BAD_WORDS = ["nope", "", "fp3", "speed"]
# option -> good values (a bad one is drawn a quarter of the time)
OPTIMIZE = {
    "--budget": ["1e18", "1e22", "3e24", "1e26", "1e29"], "--dollars": ["1e4", "1e6", "5e7", "1e9"],
    "--gpu-hours": ["1e4", "5e5", "1e7"], "--deadline-days": ["0.5", "3", "14", "90", "1000"],
    "--max-gpus": ["8", "64", "512", "16384"], "--gpu": ["h100", "a100-80gb", "any", "h100,b200", "tpu-v5p",
                                                          "mi300x", "v100"],
    "--law": ["chinchilla-epoch-2024", "kaplan-2020", "chinchilla-hoffmann-2022-unrounded"],
    "--mfu": ["0.2", "0.4", "0.6", "1"], "--price": ["0.5", "2", "10"], "--precision": ["bf16", "fp8", "fp4", "any"],
    "--objective": ["loss", "cost", "time"], "--target-loss": ["1.9", "2.1", "2.5", "3"],
    "--inference-tokens": ["1e9", "1e12", "1e15"], "--min-params": ["1e8", "1e10", "1e12"],
    "--max-params": ["1e9", "1e11"], "--min-tokens": ["1e9", "1e12"], "--seq-len": ["1024", "4096", "8192"],
    "--tensor-parallel": ["1", "4", "8"], "--min-step-seconds": ["0.5", "5", "60"], "--goodput": ["0.5", "0.9", "1"],
    "--price-tier": ["hyperscaler", "gpu_cloud", "committed"],
}
LIMITS = ["--budget", "--dollars", "--gpu-hours"]
COST = {
    "--params": ["1e8", "7e9", "7e10", "4e11"], "--gpu": ["h100", "a100-80gb", "b200", "tpu-v5p"],
    "--gpus": ["8", "64", "1024"], "--mfu": ["0.3", "0.5"], "--precision": ["bf16", "fp8"],
    "--layers": ["32", "80"], "--d-model": ["4096", "8192"], "--zero-stage": ["0", "1", "3"],
    "--recompute": ["none", "selective", "full"], "--seq-len": ["2048", "8192"],
}
SERVE = {
    "--params": ["1e9", "7e9", "7e10"], "--gpu": ["h100", "a100-80gb", "mi300x"], "--gpus": ["1", "4", "8"],
    "--batch": ["1", "32", "256"], "--prompt-tokens": ["128", "4096"], "--output-tokens": ["64", "1024"],
    "--precision": ["bf16", "fp8"], "--layers": ["32"], "--d-model": ["4096"],
}
FLAGS = {"optimize": ["--json", "--batch-coupling", "--no-batch-coupling"], "cost": ["--json"],
         "serve-cost": ["--json"]}
BAD = {k: BAD_INTS for k in ("--max-gpus", "--gpus", "--batch", "--seq-len", "--tensor-parallel", "--layers",
                             "--d-model", "--zero-stage", "--prompt-tokens", "--output-tokens")}


def _value(rng: random.Random, option: str, good: list[str]) -> str:
    if rng.random() < 0.75:
        return rng.choice(good)
    if option in BAD:
        return rng.choice(BAD[option])
    return rng.choice(BAD_WORDS if not good[0][0].isdigit() else BAD_NUMBERS)


def _args(rng: random.Random) -> list[str]:
    command = rng.choice(["optimize"] * 6 + ["cost"] * 2 + ["serve-cost", "gpus", "laws", "bogus"])
    table = {"optimize": OPTIMIZE, "cost": COST, "serve-cost": SERVE}.get(command, {})
    args = [command]
    chosen = rng.sample(sorted(table), k=min(len(table), rng.randint(0, 4)))
    if command == "optimize" and rng.random() < 0.8:
        chosen.append(rng.choice(LIMITS))
    if command == "cost" and rng.random() < 0.85:
        args += ["--tokens", _value(rng, "--tokens", ["1e9", "2e12", "1.5e13"])]
    if command in ("cost", "serve-cost") and "--params" not in chosen and rng.random() < 0.7:
        chosen.append("--params")
    for option in dict.fromkeys(chosen):
        args += [option, _value(rng, option, table[option])]
    for flag in FLAGS.get(command, []):
        if rng.random() < 0.3:
            args.append(flag)
    if command in ("gpus", "laws") and rng.random() < 0.5:
        args.append("--json")
    if rng.random() < 0.05:
        args.append(rng.choice(["--unknown", "extra", "--budget"]))
    return args


def _cases() -> list[list[str]]:
    rng = random.Random(20261122)
    return [_args(rng) for _ in range(1000)]


CASES = _cases()  # the same 1,000 invocations as one seeded stream, run in chunks of 50
CHUNK = 50
SEEN: dict[int, dict[int, int]] = {}  # chunk -> exit code -> count


@pytest.mark.parametrize("chunk", range(len(CASES) // CHUNK))
def test_fuzz_cli_never_crashes(chunk):
    seen = SEEN.setdefault(chunk, {0: 0, 2: 0})
    seen.update({0: 0, 2: 0})
    for args in CASES[chunk * CHUNK : (chunk + 1) * CHUNK]:
        r = runner.invoke(app, args)
        context = f"planner {' '.join(args)}\nstdout: {r.stdout[-400:]}\nstderr: {r.stderr[-800:]}"
        assert r.exception is None or isinstance(r.exception, SystemExit), context + f"\n{r.exception!r}"
        assert r.exit_code in (0, 2), context
        assert "Traceback" not in r.stdout + r.stderr, context
        assert "nan" not in r.stdout.lower().replace("nano", ""), context
        if r.exit_code == 2:
            assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, context
        elif "--json" in args and args[0] in ("optimize", "cost", "serve-cost", "gpus", "laws"):
            json.loads(r.stdout)
        seen[r.exit_code] += 1


def test_fuzz_cli_exercised_good_and_bad_inputs():
    """Runs after the chunks (file order): both good and bad inputs were exercised."""
    if len(SEEN) < len(CASES) // CHUNK:
        pytest.skip("only some fuzz chunks ran (selected with -k)")
    assert sum(s[0] for s in SEEN.values()) > 300 and sum(s[2] for s in SEEN.values()) > 200
