"""Every `planner ...` command in README.md's fenced bash blocks runs as written and exits 0.

The commands run in README order in one temporary folder (so `planner example runs.csv`, then `planner fit
runs.csv --out law.toml`, then `planner optimize --law law.toml` work as a reader would run them), in-process
through typer's CliRunner. Comments after `#` are dropped; `a && planner b` runs the planner part.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("planner "):
                    out.append(part)
    return out


COMMANDS = readme_commands()


def test_readme_has_commands():
    assert len(COMMANDS) >= 20
    assert any(c.startswith("planner example") for c in COMMANDS)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("i", range(len(COMMANDS)), ids=[c[:60] for c in COMMANDS])
def test_readme_command_runs(i, workdir, monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("openpyxl")
    monkeypatch.chdir(workdir)
    if i > 0 and not (workdir / f".done-{i - 1}").exists():  # run earlier commands first when selected alone
        for j in range(i):
            if not (workdir / f".done-{j}").exists():
                _run(j)
    _run(i)


def _run(i: int) -> None:
    cmd = COMMANDS[i]
    argv = shlex.split(cmd, comments=True)[1:]
    r = CliRunner().invoke(app, argv, catch_exceptions=False)
    assert r.exit_code == 0, f"{cmd}\n{r.output}"
    Path(f".done-{i}").touch()
