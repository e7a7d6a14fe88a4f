"""Errors the planner raises for bad requests and infeasible plans (all one-line, all naming a field)."""

from __future__ import annotations

from planner_errors import FieldError


class InputError(FieldError):
    """A request field is out of range or unknown. ``field`` is the API field name, ``detail`` the reason."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"{field}: {detail}", field, detail)


class InfeasiblePlanError(InputError):
    """No plan satisfies every limit. ``relaxations`` maps each limit that could fix it alone to its new value."""

    def __init__(self, field: str, detail: str, relaxations: dict[str, float] | None = None):
        super().__init__(field, detail)
        self.relaxations = relaxations or {}
