"""The one error base class of laws, cost_models and planner: bad input that names its field.

A top-level module of the distribution that imports nothing: laws/ and cost_models/ must not import planner/
(importing ``planner.errors`` would run ``planner/__init__``), and neither should depend on the other, so the
base sits below all three. LawError, RunsError, FitError (laws), CatalogError (cost_models) and InputError
(planner) subclass it, and the command line catches exactly this class: one line on stderr, exit code 2.
"""

from __future__ import annotations


class FieldError(ValueError):
    """Bad input. ``field`` names the offending input (an API field, option or column), ``detail`` the reason."""

    def __init__(self, message: str, field: str, detail: str | None = None):
        super().__init__(message)
        self.field = field
        self.detail = detail if detail is not None else message
