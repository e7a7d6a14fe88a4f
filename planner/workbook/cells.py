"""Cells of the capacity-plan workbook: number formats, safe text, and a sheet writer that remembers each
formula's computed value (written as the cell's cached result by ``planner.workbook.cached``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from planner.errors import InputError

# Text starting with one of these would become a formula in a spreadsheet: xlsx cells get Excel's quote prefix,
# CSV cells a leading apostrophe (planner.export.escape_text).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

FMT_SCI = "0.000E+00"
FMT_USD = "#,##0"
FMT_USD_CENTS = "#,##0.00"
FMT_HOURS = "#,##0.0"
FMT_INT = "#,##0"
FMT_LOSS = "0.0000"
FMT_FRAC = "0.0%"
FMT_PLAIN = "0.00"


def load_openpyxl():
    try:
        import openpyxl
    except ImportError:
        raise InputError("xlsx", "writing .xlsx needs openpyxl: install planner[xlsx]") from None
    return openpyxl


XLSX_MAX_TEXT = 32_767  # characters in one cell (Excel's limit)


def xlsx_text(s: str) -> str:
    """Text an xlsx cell can hold: control characters XML forbids shown as \\xNN, at most 32,767 characters."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    s = ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return s if len(s) <= XLSX_MAX_TEXT else s[: XLSX_MAX_TEXT - 1] + "…"


class Sheet:
    """A worksheet writer that escapes text, styles headers and remembers each formula's computed value."""

    def __init__(self, ws, styles):
        self.ws = ws
        self.st = styles
        self.cached: dict[str, float] = {}  # cell reference -> the formula's value, written as its cached value

    def put(self, row: int, col: int, value: Any, fmt: str | None = None, *, bold: bool = False,
            edit: bool = False):
        c = self.ws.cell(row=row, column=col)
        if isinstance(value, str):
            value = xlsx_text(value)
        c.value = value
        if isinstance(value, str) and value.startswith(FORMULA_START):
            c.data_type = "s"  # text, never a formula
            c.quotePrefix = True
        if fmt:
            c.number_format = fmt
        if bold:
            c.font = self.st["bold"]
        if edit:
            c.fill = self.st["edit"]
        return c

    def formula(self, row: int, col: int, text: str, fmt: str | None = None, value: float | None = None):
        """A live formula; ``value`` (the same arithmetic on the same inputs) is stored as its cached result."""
        c = self.ws.cell(row=row, column=col)
        c.value = text if text.startswith("=") else "=" + text
        if value is not None and math.isfinite(value):
            self.cached[c.coordinate] = float(value)
        if fmt:
            c.number_format = fmt
        c.fill = self.st["derived"]
        return c

    def header(self, row: int, values: Sequence[str]) -> None:
        for j, v in enumerate(values, 1):
            c = self.put(row, j, v)
            c.font = self.st["bold"]
            c.fill = self.st["header"]
            c.alignment = self.st["wrap"]


def text(s: Any) -> str:
    return "" if s is None else str(s)


def col(n: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(n)
