"""Exports: CSV, JSON and the xlsx capacity plan (live formulas of the Inputs sheet, escaped text cells)."""

import ast
import csv
import json
import operator
import re
import shutil
import subprocess
import zipfile

import pytest
from typer.testing import CliRunner

from cli import app
from planner import PlanRequest, optimize
from planner.export import escape_text, to_json, write_csv, write_json, write_xlsx
from planner.sweep import ROW_KEYS, sweep

openpyxl = pytest.importorskip("openpyxl")
runner = CliRunner()

# Independent constants: H100 SXM dense bf16 peak 989.4 TFLOP/s and TDP 700 W (NVIDIA H100 datasheet);
# energy assumptions 0.70 power utilisation and PUE 1.2, goodput 0.90, serving at 50% of peak (planner docs).
H100_PEAK, H100_TDP, UTIL, PUE, GOODPUT, SERVE_EFF = 989.4e12, 700.0, 0.70, 1.2, 0.90, 0.5


# ----------------------------------------------------------------------------- a tiny formula evaluator

_REF = re.compile(r"(?:([A-Za-z_]+)!)?\$?([A-Z]{1,3})\$?(\d+)")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}


def evaluate(wb, sheet: str, coord: str) -> float:
    """The value of a cell, computing formulas (refs, + - * / ^, numbers) recursively; never exec/eval."""
    value = wb[sheet][coord].value
    if not (isinstance(value, str) and value.startswith("=")):
        return 0.0 if value is None else value
    refs: list[tuple[str, str]] = []

    def sub(m):
        refs.append((m.group(1) or sheet, f"{m.group(2)}{m.group(3)}"))
        return f"REF{len(refs) - 1}"

    tree = ast.parse(_REF.sub(sub, value[1:]).replace("^", "**"), mode="eval")

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id.startswith("REF"):
            return evaluate(wb, *refs[int(node.id[3:])])
        raise AssertionError(f"unexpected formula element {ast.dump(node)} in {value}")

    return walk(tree)


def headers(ws) -> dict[str, str]:
    """Header text -> column letter of the first row."""
    return {c.value: c.column_letter for c in ws[1] if c.value}


def column(ws, needle: str) -> str:
    hits = [letter for text, letter in headers(ws).items() if needle in text]
    assert len(hits) == 1, (needle, headers(ws))
    return hits[0]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def plan():
    # given MFU and price so every expected number below is computed from constants typed in this file
    return optimize(budget_flops=1e22, gpu="h100", mfu=0.4, price=2.0, inference_tokens=1e12)


@pytest.fixture(scope="module")
def result():
    return sweep(PlanRequest(budget_flops=1e21, mfu=0.4), budgets="1e20:1e22:3", gpus="h100,a100-80gb")


# ------------------------------------------------------------------------------------------------- CSV


def test_csv_of_a_sweep(result, tmp_path):
    path = write_csv(result, tmp_path / "s.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 6 and tuple(rows[0]) == ROW_KEYS
    for got, want in zip(rows, result.rows, strict=True):
        assert float(got["loss"]) == want["loss"] and float(got["total_cost_usd"]) == want["total_cost_usd"]
        assert got["gpu"] == want["gpu"] and got["dollars"] == ""


def test_csv_of_a_plan(plan, tmp_path):
    rows = list(csv.DictReader(write_csv(plan, tmp_path / "p.csv").open(encoding="utf-8")))
    assert len(rows) == 1 and float(rows[0]["params"]) == plan.params and rows[0]["gpu"] == "h100"


def test_escape_text():
    assert escape_text("=1+1") == "'=1+1" and escape_text("+x") == "'+x" and escape_text("-x") == "'-x"
    assert escape_text("@x") == "'@x" and escape_text("\tx") == "'\tx" and escape_text("h100") == "h100"


# ------------------------------------------------------------------------------------------------ JSON


def test_json_of_plan_and_sweep(plan, result, tmp_path):
    p = json.loads(write_json(plan, tmp_path / "p.json").read_text())
    assert p == json.loads(json.dumps(plan.summary()))
    s = json.loads(write_json(result, tmp_path / "s.json").read_text())
    assert s["points"] == 6 and s == json.loads(json.dumps(to_json(result)))


# ------------------------------------------------------------------------------------------------ xlsx


def test_xlsx_plan_formulas_reproduce_the_plan(plan, tmp_path):
    path = write_xlsx(plan, tmp_path / "plan.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Inputs", "Plan"]
    ws = wb["Plan"]
    assert ws.freeze_panes == "B2" and wb["Inputs"].freeze_panes == "A2"
    col = {k: column(ws, k) for k in ("Device-hours", "Wall-clock (h)", "Training cost", "Total cost", "Energy",
                                      "Training FLOPs", "USD per million", "Serving cost", "Params", "Tokens D")}
    # derived cells are formulas that reference the Inputs sheet
    gh = ws[f"{col['Device-hours']}2"].value
    assert gh.startswith("=") and re.search(r"Inputs!\$B\$\d+", gh) and "3600" in gh
    assert re.search(r"Inputs!\$[A-Z]\$\d+", ws[f"{column(ws, 'Price (USD')}2"].value)
    assert "Inputs!" in ws[f"{col['Energy']}2"].value and "/1000" in ws[f"{col['Energy']}2"].value
    # units in the headers, number formats on the values
    assert "(USD)" in ws[f"{col['Total cost']}1"].value and "(kWh)" in ws[f"{col['Energy']}1"].value
    assert ws[f"{col['Total cost']}2"].number_format == "#,##0"
    assert ws[f"{col['Params']}2"].number_format == "0.000E+00"

    n, d = plan.params, plan.tokens
    flops = 6 * n * d
    gpu_hours = flops / (H100_PEAK * 0.4 * GOODPUT * 3600)
    hours = gpu_hours / plan.gpus
    # serving: the serving model's device-seconds per output / input token at the serving price (2.0 $/h)
    inf = plan.inference
    per_m = 2.0 * inf.gpu_seconds_per_token * 1e6 / 3600
    serve = (inf.tokens * inf.gpu_seconds_per_token + inf.input_tokens * inf.gpu_seconds_per_input_token) * 2.0 / 3600
    want = {
        "Training FLOPs": flops, "Device-hours": gpu_hours, "Wall-clock (h)": hours, "Training cost": gpu_hours * 2.0,
        "USD per million": per_m, "Serving cost": serve,
        "Total cost": gpu_hours * 2.0 + serve, "Energy": plan.gpus * H100_TDP * UTIL * hours * PUE / 1000,
    }
    for k, v in want.items():
        assert evaluate(wb, "Plan", f"{col[k]}2") == pytest.approx(v, rel=1e-9), k
    # ... and agree with the planner's own numbers
    assert evaluate(wb, "Plan", f"{col['Total cost']}2") == pytest.approx(plan.total_cost_usd, rel=1e-9)
    assert evaluate(wb, "Plan", f"{col['Device-hours']}2") == pytest.approx(plan.gpu_hours, rel=1e-9)
    assert evaluate(wb, "Plan", f"{col['Energy']}2") == pytest.approx(plan.energy_kwh, rel=1e-9)
    assert evaluate(wb, "Plan", f"{col['USD per million']}2") == pytest.approx(
        plan.inference.usd_per_million_tokens, rel=1e-9)


def _inputs_row(wb, first_col_value: str, header_value: str | None = None) -> int:
    ws = wb["Inputs"]
    rows = [c.row for c in ws["A"] if c.value == first_col_value]
    assert rows, first_col_value
    return rows[0]  # the Accelerators table comes before the Throughput table


def test_xlsx_is_live_editing_a_price_moves_the_totals(result, tmp_path):
    wb = openpyxl.load_workbook(write_xlsx(result, tmp_path / "sweep.xlsx"))
    ws = wb["Plan"]
    assert ws.max_row == 1 + len(result.rows)
    cost, acc = column(ws, "Training cost"), column(ws, "Accelerator")
    h100_rows = [r for r in range(2, ws.max_row + 1) if ws[f"{acc}{r}"].value == "h100"]
    assert len(h100_rows) == 3
    before = {r: evaluate(wb, "Plan", f"{cost}{r}") for r in range(2, ws.max_row + 1)}
    for r, row in zip(range(2, ws.max_row + 1), result.rows, strict=True):
        assert before[r] == pytest.approx(row["cost_usd"], rel=1e-9)
    # double the H100 price in Inputs: every H100 training cost doubles, the A100 rows do not move
    price_row = _inputs_row(wb, "h100")
    cell = wb["Inputs"][f"B{price_row}"]
    assert cell.value == pytest.approx(2.3)  # the catalog's H100 gpu_cloud price
    cell.value = 4.6
    for r in range(2, ws.max_row + 1):
        factor = 2.0 if r in h100_rows else 1.0
        assert evaluate(wb, "Plan", f"{cost}{r}") == pytest.approx(before[r] * factor, rel=1e-12)
    # editing MFU in the Throughput table moves device-hours inversely
    gh = column(ws, "Device-hours")
    mfu_ref = ws[f"{column(ws, 'MFU')}{h100_rows[0]}"].value  # e.g. =Inputs!$D$30
    m = re.fullmatch(r"=Inputs!\$([A-Z])\$(\d+)", mfu_ref)
    old = evaluate(wb, "Plan", f"{gh}{h100_rows[0]}")
    wb["Inputs"][f"{m.group(1)}{m.group(2)}"].value = 0.2
    assert evaluate(wb, "Plan", f"{gh}{h100_rows[0]}") == pytest.approx(old * 2, rel=1e-12)


def test_xlsx_inputs_sheet_documents_law_and_assumptions(result, tmp_path):
    wb = openpyxl.load_workbook(write_xlsx(result, tmp_path / "s.xlsx"))
    ws = wb["Inputs"]
    labels = {c.value: c.row for c in ws["A"] if isinstance(c.value, str)}
    for key in ("Goodput", "Power utilization", "PUE", "Law", "law id", "Accelerators",
                "Throughput", "Assumptions"):
        assert key in labels, key
    assert ws[f"B{labels['Goodput']}"].value == GOODPUT and ws[f"B{labels['PUE']}"].value == PUE
    assert ws[f"B{labels['law id']}"].value == "chinchilla-epoch-2024"
    assert "Besiroglu" in ws[f"D{labels['law id']}"].value
    assert ws[f"B{labels['  alpha']}"].value == pytest.approx(0.3478)
    assert "swept: budget_flops" in labels and "swept: gpu" in labels


def test_xlsx_sweep_with_failures_has_infeasible_sheet(tmp_path):
    res = sweep(PlanRequest(dollars=1e8, min_params=1e11, min_tokens=1e12), dollars=[1e3, 1e8])
    wb = openpyxl.load_workbook(write_xlsx(res, tmp_path / "f.xlsx"))
    assert wb.sheetnames == ["Inputs", "Plan", "Infeasible"]
    ws = wb["Infeasible"]
    assert ws["A2"].value == 1e3 and "dollars" in ws["C2"].value


MALICIOUS = '=HYPERLINK("http://evil.example","click")'
CATALOG = """
[[accelerator]]
id = "evil"
name = '{name}'
vendor = "test"
peak_tflops = {{ bf16 = 800 }}
memory_gb = 80
memory_bandwidth_tbs = 3.0
devices_per_node = 8
tdp_w = 700
spec_source = "unit test"
spec_status = "estimate"
default_price_tier = "gpu_cloud"
prices = [
  {{ tier = "gpu_cloud", usd_per_hour = 2.0, source = "+cmd|' /C calc'!A0", date = "2026-05", status = "@SUM(1)" }},
]
"""
LAW = """
[[law]]
id = '{id}'
form = "chinchilla"
title = "-2+3"
citation = "@SUM(A1:A9)"
[law.coefficients]
E = 1.8172
A = 482.01
B = 2085.43
alpha = 0.3478
beta = 0.3658
"""


def test_formula_injection_is_escaped(tmp_path):
    cat = tmp_path / "cat.toml"
    cat.write_text(CATALOG.format(name=MALICIOUS), encoding="utf-8")
    law = tmp_path / "law.toml"
    law.write_text(LAW.format(id=MALICIOUS), encoding="utf-8")
    res = sweep(PlanRequest(budget_flops=1e21, gpu="evil", catalog=(str(cat),), law=str(law)), budgets=[1e20, 1e21])
    assert res.rows[0]["gpu"] == "evil" and res.plans[0].law == MALICIOUS
    path = write_xlsx(res, tmp_path / "evil.xlsx")
    wb = openpyxl.load_workbook(path)
    found = 0
    for ws in wb:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith(("=", "+", "-", "@")) and c.data_type == "f":
                    # our own formulas only: arithmetic of cell references, never a function call
                    assert re.fullmatch(r"=[A-Za-z0-9$!+\-*/().]+", c.value), c.value
                    assert "(" not in c.value.replace("*(", "").replace("/(", ""), c.value
                elif isinstance(c.value, str) and c.value.startswith(("=", "+", "-", "@")):
                    assert c.data_type == "s" and c.quotePrefix, (ws.title, c.coordinate, c.value)
                    found += 1
    assert found >= 4  # accelerator name, price source, law id (Inputs and Plan), citation, title
    raw = zipfile.ZipFile(path).read("xl/worksheets/sheet2.xml").decode()
    assert "HYPERLINK" in raw and "<f>HYPERLINK" not in raw and "<f>=HYPERLINK" not in raw
    # CSV: a leading apostrophe
    csv_rows = list(csv.reader(write_csv(res, tmp_path / "evil.csv").open(encoding="utf-8")))
    assert all(not v.startswith(("=", "+", "@")) for row in csv_rows[1:] for v in row if not _is_number(v))


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def test_missing_openpyxl_is_a_one_line_error(plan, tmp_path, monkeypatch):
    import sys

    from planner import InputError

    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(InputError) as ei:
        write_xlsx(plan, tmp_path / "x.xlsx")
    assert ei.value.field == "xlsx" and "planner[xlsx]" in str(ei.value)


def test_unwritable_path_is_an_input_error(plan, tmp_path):
    from planner import InputError

    for fn, field in ((write_csv, "csv"), (write_json, "json_out"), (write_xlsx, "xlsx")):
        with pytest.raises(InputError) as ei:
            fn(plan, tmp_path / "no" / "such" / "dir" / "f")
        assert ei.value.field == field


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_recalculates_to_the_python_numbers(result, tmp_path):
    (tmp_path / "in").mkdir()
    src = write_xlsx(result, tmp_path / "in" / "s.xlsx")
    out = tmp_path / "out"
    subprocess.run(["soffice", "--headless", "--calc", "--convert-to", "xlsx", "--outdir", str(out), str(src)],
                   check=True, capture_output=True, timeout=180)
    wb = openpyxl.load_workbook(out / "s.xlsx", data_only=True)  # values cached by LibreOffice's recalculation
    ws = wb["Plan"]
    cols = {"Training cost": "cost_usd", "Total cost": "total_cost_usd", "Device-hours": "gpu_hours",
            "Wall-clock (h)": "hours", "Energy": "energy_kwh"}
    for k, key in cols.items():
        letter = column(ws, k)
        for r, row in zip(range(2, ws.max_row + 1), result.rows, strict=True):
            assert ws[f"{letter}{r}"].value == pytest.approx(row[key], rel=1e-6), (k, r)


# -------------------------------------------------------------------------------------------------- CLI


def test_cli_optimize_exports(tmp_path):
    files = {ext: tmp_path / f"plan.{ext}" for ext in ("csv", "json", "xlsx")}
    r = runner.invoke(app, ["optimize", "--budget", "1e21", "--csv", str(files["csv"]), "--json-out",
                            str(files["json"]), "--xlsx", str(files["xlsx"]), "--json"])
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout)
    assert json.loads(files["json"].read_text())["loss"] == printed["loss"]
    assert openpyxl.load_workbook(files["xlsx"]).sheetnames == ["Inputs", "Plan"]
    assert "wrote" in r.stderr


def test_cli_sweep_xlsx(tmp_path):
    path = tmp_path / "s.xlsx"
    r = runner.invoke(app, ["sweep", "--budget", "1e20:1e22:3", "--gpus", "h100,b200", "--xlsx", str(path)])
    assert r.exit_code == 0, r.output
    assert openpyxl.load_workbook(path)["Plan"].max_row == 7


def test_cli_unwritable_export_is_one_line(tmp_path):
    r = runner.invoke(app, ["optimize", "--budget", "1e21", "--xlsx", str(tmp_path / "no" / "x.xlsx")])
    assert r.exit_code == 2 and r.stderr.startswith("error: --xlsx: cannot write") and r.stderr.count("\n") == 1
