"""One error base class (planner_errors.FieldError) for laws, cost_models and planner; the CLI catches it."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli import app
from cost_models.catalog import CatalogError
from laws.base import LawError
from laws.fit import FitError
from laws.runs import RunsError
from planner.errors import InfeasiblePlanError, InputError
from planner_errors import FieldError


@pytest.mark.parametrize("cls", [LawError, RunsError, FitError, CatalogError, InputError, InfeasiblePlanError])
def test_every_input_error_is_a_field_error(cls):
    assert issubclass(cls, FieldError)
    e = cls("x", "y") if cls is not InputError and cls is not InfeasiblePlanError else cls("budget_flops", "bad")
    assert isinstance(e.field, str) and e.detail


def test_laws_and_cost_models_do_not_import_planner():
    code = "import sys, laws, laws.fit, cost_models, cost_models.catalog; print('planner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_reports_a_field_error_in_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[law]]\nid = 'x'\n")
    r = CliRunner().invoke(app, ["laws", "show", str(bad)])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
