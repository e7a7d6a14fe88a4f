"""Issue 13 points 3, 4, 6, 7 and issue 16 point 8: hostile files, partial writes, malformed inputs, the xlsx.

Every case here failed before the fix (a hang, a MemoryError, a traceback, an inf plan, a destroyed file or a wrong
number); each must now exit 2 with one line naming the option and the allowed range, or give the right numbers.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from planner.errors import InputError
from planner.safe_io import (
    MAX_CATALOG_FILE,
    MAX_LAW_FILE,
    MAX_RUNS_FILE,
    MAX_SHAPE_FILE,
    Outputs,
    read_text_limited,
)

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

LAW = """[[law]]
id = "{id}"
form = "chinchilla"
title = "{title}"
citation = "{citation}"
[law.coefficients]
E = {E}
A = {A}
B = {B}
alpha = {alpha}
beta = {beta}
"""
GOOD = dict(id="mine", title="t", citation="c", E=1.8, A=482.0, B=2085.0, alpha=0.3478, beta=0.3658)


def law_text(**kw) -> str:
    return LAW.format(**{**GOOD, **kw})


def runs_csv(n: int = 12) -> str:
    """A small valid runs file: a Chinchilla law at 12 (N, D) points."""
    rows = ["params,tokens,loss"]
    for i in range(n):
        N, D = 1e8 * 2 ** (i % 4), 2e9 * 3 ** (i // 4)
        rows.append(f"{N:g},{D:g},{1.8 + 482 * N ** -0.35 + 2085 * D ** -0.37:.6f}")
    return "\n".join(rows) + "\n"


def one_line_error(result, *needles: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback; each needle in it."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err and err.startswith("error:"), err
    for n in needles:
        assert n in err, (n, err)
    return err


# ------------------------------------------------------------------------------------------ point 3: readers

def _hostile(kind: str, tmp_path: Path, limit: int, suffix: str) -> str:
    p = tmp_path / f"f{suffix}"
    if kind == "dev-zero":
        return "/dev/zero"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "directory":
        p.mkdir()
    elif kind == "oversize":  # sparse: limit + 1 bytes without writing them
        with open(p, "wb") as fh:
            fh.truncate(limit + 1)
    elif kind == "utf16":
        p.write_text(law_text() if suffix == ".toml" else runs_csv(), encoding="utf-16")
    elif kind == "latin1":
        p.write_bytes("title = \"Müller\"\n".encode("latin-1"))
    return str(p)


READERS = {  # reader -> (command builder, option named in the error, size limit, suffix)
    "law": (lambda f: ["optimize", "--budget", "1e22", "--law", f], "--law", MAX_LAW_FILE, ".toml"),
    "runs": (lambda f: ["fit", f], "RUNS.csv", MAX_RUNS_FILE, ".csv"),
    "catalog": (lambda f: ["gpus", "--catalog", f], "--catalog", MAX_CATALOG_FILE, ".toml"),
    "shape": (lambda f: ["cost", "--tokens", "1e12", "--shape", f], "--shape", MAX_SHAPE_FILE, ".toml"),
}
KINDS = ["dev-zero", "fifo", "directory", "oversize", "utf16", "latin1"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_refuses_hostile_files(tmp_path, reader, kind):
    build, option, limit, suffix = READERS[reader]
    path = _hostile(kind, tmp_path, limit, suffix)
    err = one_line_error(runner.invoke(app, build(path)))
    if not (reader == "law" and kind == "dev-zero"):  # /dev/zero is not a .toml path: "unknown law"
        assert err.startswith(f"error: {option}:"), err
    expected = {"dev-zero": "not a regular file", "fifo": "not a regular file", "directory": "directory",
                "oversize": "the limit is", "utf16": "UTF-16", "latin1": "not UTF-8"}[kind]
    if not (reader == "law" and kind == "dev-zero"):
        assert expected in err, err


def test_read_text_limited_api(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"\xef\xbb\xbfhello")
    assert read_text_limited(f, "x", 100) == "hello"  # a UTF-8 byte-order mark is dropped
    f.write_bytes(b"h\x00e\x00")  # UTF-16 without a BOM decodes as "UTF-8" with NULs
    with pytest.raises(InputError, match="NUL"):
        read_text_limited(f, "x", 100)
    f.write_bytes(b"x" * 101)
    with pytest.raises(InputError, match="the limit is 101 bytes|100 bytes") as info:
        read_text_limited(f, "x", 100)
    assert info.value.field == "x"


def test_deeply_nested_toml_is_one_line(tmp_path):
    f = tmp_path / "deep.toml"
    f.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    one_line_error(runner.invoke(app, ["laws", "show", str(f)]), "nested too deeply")
    one_line_error(runner.invoke(app, ["gpus", "--catalog", str(f)]), "--catalog")
    one_line_error(runner.invoke(app, ["cost", "--tokens", "1e12", "--shape", str(f)]), "--shape")


def test_runs_field_over_csv_limit(tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text("params,tokens,loss,note\n" + runs_csv().splitlines()[1] + "," + "x" * 131_073 + "\n")
    one_line_error(runner.invoke(app, ["fit", str(f)]), "131,072")


def test_runs_row_cap_is_stated(tmp_path):
    from laws.runs import MAX_RUNS, read_runs

    body = runs_csv().splitlines()[1]
    f = tmp_path / "runs.csv"
    f.write_text("params,tokens,loss\n" + (body + "\n") * MAX_RUNS)
    assert len(read_runs(f)) == MAX_RUNS  # the cap itself is accepted, and read in one linear pass
    f.write_text("params,tokens,loss\n" + (body + "\n") * (MAX_RUNS + 1))
    one_line_error(runner.invoke(app, ["fit", str(f)]), f"more than {MAX_RUNS:,} runs")


def test_identical_runs_cannot_identify_the_law(tmp_path):
    f = tmp_path / "same.csv"
    f.write_text("params,tokens,loss\n" + "1e9,2e10,2.5\n" * 10)
    one_line_error(runner.invoke(app, ["fit", str(f)]), "cannot identify")
    f.write_text("params,tokens,loss\n" + "".join(f"{1e9 * (1 + i % 2):g},2e10,{2.5 + i / 100}\n" for i in range(10)))
    one_line_error(runner.invoke(app, ["fit", str(f)]), "tokens")  # tokens never vary: no tokens exponent


# ------------------------------------------------------------------------------------------ point 6: law files

@pytest.mark.parametrize("coef,value,shown", [
    ("A", "0.0", "A = 0"), ("B", "-5.0", "B = -5"), ("E", "-1.0", "E = -1"), ("A", str(2 ** 70), "A = 1.18059e+21"),
    ("B", "1e308", "B = 1e+308"), ("E", "1e-308", "E = 1e-308"), ("alpha", "1e20", "alpha = 1e+20"),
    ("beta", "1e-308", "beta = 1e-308"), ("E", "inf", "must be a finite number"),
    ("A", "true", "must be a number"), ("alpha", '"0.3"', "must be a number"),
])
def test_law_coefficients_out_of_range(tmp_path, coef, value, shown):
    f = tmp_path / "law.toml"
    f.write_text(law_text(**{coef: value}))
    err = one_line_error(runner.invoke(app, ["optimize", "--budget", "1e22", "--law", str(f)]), "--law:", shown)
    assert "[" in err and "]" in err  # the allowed range is stated


def test_builtin_laws_are_within_their_ranges():
    from laws.catalog import catalog, coefficient_range

    for law in catalog().values():
        for k, v in law.coefficients.items():
            lo, hi = coefficient_range(law.form, k)
            assert lo <= v <= hi, (law.id, k, v)


# ------------------------------------------------------------------------------------------ point 6: requests

@pytest.mark.parametrize("args,needles", [
    (["optimize", "--budget", "1e-308"], ("--budget", "[1e12, 1e32]")),
    (["optimize", "--budget", "1e22", "--mfu", "5e-324"], ("--mfu", "[0.001, 1]")),
    (["optimize", "--dollars", "1e-300"], ("--dollars", "[1, 1e13]")),
    (["optimize", "--budget", "1e22", "--goodput", "1e-310"], ("--goodput",)),
    (["cost", "--tokens", "1e12", "--params", "1e9", "--mfu", "5e-324"], ("--mfu", "[0.001, 1]")),
    (["cost", "--tokens", "1e-308", "--params", "1e9"], ("--tokens",)),
    (["optimize", "--budget", "1e22", "--gpu", "x" * 5000], ("--gpu", "at most 200 characters")),
    (["optimize", "--budget", "1e22", "--law", "a" * 5000 + ".toml"], ("--law", "4096")),
    (["optimize", "--budget", "1e22", "--csv", "/tmp/" + "a" * 5000 + ".csv"], ("--csv",)),
    (["fit", "/tmp/" + "b" * 5000 + ".csv"], ("RUNS.csv",)),
])
def test_denormals_and_long_names_refused(args, needles):
    err = one_line_error(runner.invoke(app, args), *needles)
    assert len(err) < 600  # a 5,000-character name is not echoed whole


def test_fit_out_directory_and_long_id(tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text(runs_csv())
    one_line_error(runner.invoke(app, ["fit", str(f), "--out", str(tmp_path)]), "--out", "directory")
    one_line_error(runner.invoke(app, ["fit", str(f), "--id", "x" * 5000, "--out", str(tmp_path / "l.toml")]),
                   "--id")


def test_request_models_raise_input_error():
    from planner import PlanRequest
    from planner.evaluate import RunRequest, ServeRequest

    cases = [
        (PlanRequest, dict(dollars=True), "dollars"),
        (PlanRequest, dict(budget_flops=1e22, seq_len=True), "seq_len"),
        (PlanRequest, dict(budget_flops=-1), "budget_flops"),
        (PlanRequest, dict(budget_flops=1e22, nope=1), "nope"),
        (PlanRequest, dict(objective="cost"), "target_loss"),
        (PlanRequest, dict(), "limits"),
        (RunRequest, dict(tokens=True), "tokens"),
        (RunRequest, dict(tokens=1e12, zero_stage=True), "zero_stage"),
        (RunRequest, dict(tokens=1e12, mfu=5e-324), "mfu"),
        (ServeRequest, dict(params=1e9, batch=True), "batch"),
    ]
    for model, kw, field in cases:
        with pytest.raises(InputError) as info:
            model(**kw)
        assert info.value.field == field, (model.__name__, kw, info.value)
        assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="dollars"):
        PlanRequest.model_validate({"dollars": True})
    assert PlanRequest(budget_flops=1e22, check_memory=True).check_memory is True  # a bool field takes bools


# ------------------------------------------------------------------------------------------ point 4: writes

OUTPUTS = ["--csv", "--json-out", "--xlsx", "--plot", "--emit-out"]


def _outputs(tmp_path: Path) -> dict[str, Path]:
    files = {o: tmp_path / f"out{o.replace('-', '_')}{ext}" for o, ext in
             zip(OUTPUTS, (".csv", ".json", ".xlsx", ".png", ".txt"), strict=True)}
    for p in files.values():
        p.write_text("OLD")
    return files


def _args(files: dict[str, Path]) -> list[str]:
    args = ["optimize", "--budget", "1e22", "--emit", "megatron"]
    for o, p in files.items():
        args += [o, str(p)]
    return args


def test_failed_last_write_leaves_every_old_file(tmp_path, monkeypatch):
    import matplotlib.figure

    files = _outputs(tmp_path)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    one_line_error(runner.invoke(app, _args(files)), "--plot", "No space left on device")
    assert all(p.read_text() == "OLD" for p in files.values())
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(p.name for p in files.values())  # no temp left


def test_failed_rename_leaves_old_files(tmp_path, monkeypatch):
    import planner.safe_io

    files = _outputs(tmp_path)

    def fail(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(planner.safe_io.os, "replace", fail)
    one_line_error(runner.invoke(app, _args(files)), "Input/output error")
    assert all(p.read_text() == "OLD" for p in files.values())
    assert len(list(tmp_path.iterdir())) == len(files)


def test_all_outputs_replace_old_files(tmp_path):
    files = _outputs(tmp_path)
    result = runner.invoke(app, _args(files))
    assert result.exit_code == 0, result.output
    assert all(p.read_bytes() != b"OLD" and p.stat().st_size > 0 for p in files.values())
    assert len(list(tmp_path.iterdir())) == len(files)


def test_partial_writer_never_replaces(tmp_path):
    dest = tmp_path / "x.csv"
    dest.write_text("OLD")

    def half(tmp):
        tmp.write_text("NEW, half")
        raise OSError(27, "File too large")

    with pytest.raises(InputError, match="File too large"):
        with Outputs() as outs:
            outs.write(dest, "csv", half)
    assert dest.read_text() == "OLD" and len(list(tmp_path.iterdir())) == 1


def test_file_size_limit_keeps_old_file(tmp_path):
    """A real failing write: RLIMIT_FSIZE (ulimit -f) below the new file's size; Python ignores SIGXFSZ."""
    resource = pytest.importorskip("resource")
    old = tmp_path / "sweep.csv"
    old.write_text("OLD\n" * 10)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))

    out = subprocess.run([sys.executable, "-m", "cli", "sweep", "--budget", "1e21,1e22", "--csv", str(old)],
                         cwd=ROOT, capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "--csv" in out.stderr and "Traceback" not in out.stderr
    assert old.read_text() == "OLD\n" * 10 and len(list(tmp_path.iterdir())) == 1


def test_outputs_to_devices_and_directories_refused(tmp_path):
    one_line_error(runner.invoke(app, ["optimize", "--budget", "1e22", "--csv", "/dev/full"]), "--csv",
                   "not a regular file")
    one_line_error(runner.invoke(app, ["sweep", "--budget", "1e22", "--xlsx", str(tmp_path)]), "--xlsx", "directory")
    one_line_error(runner.invoke(app, ["optimize", "--budget", "1e22", "--csv", str(tmp_path / "a.csv"),
                                       "--json-out", str(tmp_path / "a.csv")]), "give different files")


def test_help_says_existing_files_are_replaced():
    for command, options in (("optimize", OUTPUTS), ("sweep", OUTPUTS[:4]), ("fit", ["--out", "--plot"])):
        text = " ".join(runner.invoke(app, [command, "--help"], env={"COLUMNS": "300"}).output.split())
        assert text.count("existing file is replaced") >= len(options), (command, text)


# ------------------------------------------------------------------------------------------ xlsx (points 6, 7; 16.8)

def _sheet_rows(path: Path, sheet: str, data_only: bool) -> list[dict]:
    openpyxl = pytest.importorskip("openpyxl")
    ws = openpyxl.load_workbook(path, data_only=data_only)[sheet]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_xlsx_formulas_carry_the_plans_numbers(tmp_path):
    import planner
    from planner.export import write_xlsx
    from planner.sweep import sweep

    plan = planner.optimize(budget_flops=1e22, gpu="h100", inference_tokens=1e12)
    f = write_xlsx(plan, tmp_path / "p.xlsx")
    row = _sheet_rows(f, "Plan", data_only=True)[0]
    assert row["Training FLOPs (FLOP)"] == pytest.approx(6 * plan.params * plan.tokens, rel=1e-12)
    assert row["Training FLOPs (FLOP)"] == pytest.approx(plan.flops, rel=1e-9)
    assert row["Device-hours (h)"] == pytest.approx(plan.gpu_hours, rel=1e-9)
    assert row["Wall-clock (h)"] == pytest.approx(plan.hours, rel=1e-9)
    assert row["Training cost (USD)"] == pytest.approx(plan.cost_usd, rel=1e-9)
    assert row["Energy (kWh)"] == pytest.approx(plan.energy_kwh, rel=1e-6)
    assert row["Serving cost (USD)"] == pytest.approx(plan.inference.cost_usd, rel=1e-6)
    assert row["Total cost (USD)"] == pytest.approx(plan.total_cost_usd, rel=1e-6)
    live = _sheet_rows(f, "Plan", data_only=False)[0]
    assert str(live["Training FLOPs (FLOP)"]).startswith("=6*")  # still a live formula

    result = sweep(planner.PlanRequest(budget_flops=1e21), budgets="1e21,1e22,1e23", gpus=["h100", "b200"])
    rows = _sheet_rows(write_xlsx(result, tmp_path / "s.xlsx"), "Plan", data_only=True)
    assert len(rows) == len(result.plans) == 6
    for r, p in zip(rows, result.plans, strict=True):
        assert r["Training cost (USD)"] == pytest.approx(p.cost_usd, rel=1e-9)
        assert r["Device-hours (h)"] == pytest.approx(p.gpu_hours, rel=1e-9)


def test_xlsx_recalculated_by_libreoffice(tmp_path, monkeypatch):
    """LibreOffice (always recalculating on load) computes the same numbers as the cached values."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("soffice not installed (apt-get install libreoffice-calc-nogui): recalculation not checked")
    import planner
    from planner import export
    from planner.workbook import book

    plan = planner.optimize(budget_flops=1e22, gpu="h100", inference_tokens=1e12)
    cached = export.write_xlsx(plan, tmp_path / "cached.xlsx")
    monkeypatch.setattr(book, "add_cached_values", lambda path, cached: None)  # formulas only
    bare = export.write_xlsx(plan, tmp_path / "bare.xlsx")
    profile = tmp_path / "profile"
    (profile / "user").mkdir(parents=True)
    (profile / "user" / "registrymodifications.xcu").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        '<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" '
        'oor:op="fuse"><value>0</value></prop></item>\n</oor:items>\n')
    out = tmp_path / "out"
    run = subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "xlsx",
                          "--outdir", str(out), str(bare)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    recalculated = _sheet_rows(out / "bare.xlsx", "Plan", data_only=True)[0]
    ours = _sheet_rows(cached, "Plan", data_only=True)[0]
    numeric = [k for k, v in ours.items() if isinstance(v, float)]
    assert "Training cost (USD)" in numeric and "Energy (kWh)" in numeric
    for k in numeric:
        assert recalculated[k] == pytest.approx(ours[k], rel=1e-9), k


def test_xlsx_escapes_control_characters_from_a_law_file(tmp_path):
    law = tmp_path / "law.toml"
    law.write_text(law_text(title="bell\\u0007 esc\\u001b[31m", citation="nul-ish\\u0001 vt\\u000b"))
    out = tmp_path / "p.xlsx"
    result = runner.invoke(app, ["optimize", "--budget", "1e22", "--law", str(law), "--xlsx", str(out)])
    assert result.exit_code == 0, result.output
    openpyxl = pytest.importorskip("openpyxl")
    texts = [c.value for row in openpyxl.load_workbook(out)["Inputs"].iter_rows() for c in row
             if isinstance(c.value, str)]
    assert any("nul-ish\\x01 vt\\x0b" in t for t in texts), texts
    assert not any(ch in t for t in texts for ch in "\x01\x07\x0b\x1b")


def test_xlsx_lists_the_coefficients_of_the_law_file_used(tmp_path):
    """A law file that reuses a built-in id: the Inputs sheet shows the file's coefficients (point 7)."""
    from laws.catalog import get_law

    builtin = get_law("chinchilla-epoch-2024")
    law = tmp_path / "law.toml"
    law.write_text(law_text(id="chinchilla-epoch-2024", citation="my own fit", E=2.25, A=321.5, B=1234.5,
                            alpha=0.31, beta=0.29))
    out = tmp_path / "p.xlsx"
    result = runner.invoke(app, ["optimize", "--budget", "1e22", "--law", str(law), "--xlsx", str(out)])
    assert result.exit_code == 0, result.output
    openpyxl = pytest.importorskip("openpyxl")
    ws = openpyxl.load_workbook(out)["Inputs"]
    coefs = {str(a).strip(): b for a, b, *_ in ws.iter_rows(values_only=True)
             if isinstance(a, str) and a.startswith("  ") and isinstance(b, float)}
    assert coefs == {"E": 2.25, "A": 321.5, "B": 1234.5, "alpha": 0.31, "beta": 0.29}
    assert coefs["E"] != builtin.coefficients["E"]

    import planner
    from planner.export import write_xlsx

    plan = planner.optimize(budget_flops=1e22, law=str(law))
    ws = openpyxl.load_workbook(write_xlsx(plan, tmp_path / "lib.xlsx"))["Inputs"]  # no law given: id + citation
    values = [b for a, b, *_ in ws.iter_rows(values_only=True) if isinstance(a, str) and a.startswith("  ")
              and isinstance(b, float)]
    assert not any(math.isclose(v, builtin.coefficients["A"]) for v in values)
