"""Days become hours in one place (planner.request); nothing else multiplies or divides by 24."""

import re
from pathlib import Path

from planner import PlanRequest
from planner.request import HOURS_PER_DAY, days_to_hours, hours_to_days

ROOT = Path(__file__).resolve().parents[1]


def test_deadline_and_sizing_in_hours():
    r = PlanRequest(budget_flops=1e22, deadline_days=14)
    assert r.deadline_hours == 14 * 24 and r.sizing_hours == 30 * 24
    assert PlanRequest(budget_flops=1e22).deadline_hours is None
    assert hours_to_days(days_to_hours(2.5)) == 2.5 and HOURS_PER_DAY == 24.0


def test_no_other_day_hour_conversion():
    pattern = re.compile(r"[*/]\s*24(\.0)?\b")
    offenders = []
    for path in [*ROOT.glob("planner/**/*.py"), *ROOT.glob("cost_models/*.py"), *ROOT.glob("cli/*.py")]:
        if path.name == "request.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and 'f"=' not in code:  # spreadsheet formulas (xlsx) convert in the sheet
                offenders.append(f"{path.name}:{i}: {line.strip()}")
    assert not offenders, offenders
