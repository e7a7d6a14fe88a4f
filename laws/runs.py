"""A team's own training runs, read from a CSV file for ``planner fit``.

Columns (header on line 1, names case-insensitive, any order):

- required: ``params`` (parameters N, count), ``tokens`` (training tokens D), ``loss`` (final loss, nats/token);
- optional: ``unique_tokens`` (unique tokens U in the data, for the data-constrained form), ``flops`` (training
  FLOPs), ``batch_tokens`` (batch size in tokens), ``lr`` (peak learning rate).

Any other column (run names, notes) is ignored. Every value must be a positive finite number. Blank lines and
lines whose first cell starts with ``#`` are skipped. Errors are one line and carry the 1-based file line
(header = line 1) and the offending column in ``RunsError.field``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planner_errors import FieldError

REQUIRED = ("params", "tokens", "loss")
OPTIONAL = ("unique_tokens", "flops", "batch_tokens", "lr")
COLUMNS = REQUIRED + OPTIONAL
# Most runs in one file. The fit's cost is (start grid) x (runs): the 4,500-start Chinchilla fit of 10,000 runs
# takes about a minute, so a larger file is refused with this number rather than left running for hours.
MAX_RUNS = 10_000
MAX_FIELD = csv.field_size_limit()  # 131,072 characters (the csv module's limit)


class RunsError(FieldError):
    """A runs file that cannot be used; ``field`` names the offending column (or ``file`` / ``rows``)."""

    def __init__(self, message: str, field: str = "file"):
        super().__init__(message, field)


@dataclass(frozen=True, eq=False)
class Runs:
    """Validated runs as float64 arrays, one entry per run (row). Optional columns are None when absent.

    Units: params in parameters, tokens / unique_tokens / batch_tokens in tokens, flops in FLOPs, loss in
    nats/token (or whatever the file used, consistently), lr dimensionless. ``lines`` holds each run's file line.
    """

    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    unique_tokens: np.ndarray | None = None
    flops: np.ndarray | None = None
    batch_tokens: np.ndarray | None = None
    lr: np.ndarray | None = None
    warnings: tuple[str, ...] = ()
    source: str = "runs"
    lines: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = None
        for name in COLUMNS:
            value = getattr(self, name)
            if value is None:
                if name in REQUIRED:
                    raise RunsError(f"{self.source}: column {name!r} is required", field=name)
                continue
            arr = np.array(value, dtype=float).reshape(-1)
            if n is not None and arr.size != n:
                raise RunsError(f"{self.source}: column {name!r} has {arr.size} values, expected {n}", field=name)
            n = arr.size
            bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
            if bad.size:
                where = self._where(int(bad[0]))
                raise RunsError(
                    f"{where}: column {name!r} must be a positive finite number, got {arr[bad[0]]!r}", field=name
                )
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def _where(self, i: int) -> str:
        if self.lines is not None:
            return f"{self.source} line {int(self.lines[i])}"
        return f"{self.source} run {i + 1}"

    def __len__(self) -> int:
        return int(self.params.size)

    @property
    def n_runs(self) -> int:
        """Number of runs (rows)."""
        return len(self)

    def columns(self) -> tuple[str, ...]:
        """Names of the columns present (required first)."""
        return tuple(c for c in COLUMNS if getattr(self, c) is not None)

    def column(self, name: str) -> np.ndarray:
        """One column by name; RunsError if it was not in the file."""
        if name not in COLUMNS:
            raise RunsError(f"{self.source}: unknown column {name!r}; known: {', '.join(COLUMNS)}", field=name)
        value = getattr(self, name)
        if value is None:
            raise RunsError(f"{self.source}: column {name!r} is needed but absent", field=name)
        return value


def read_runs(
    path: str | Path, *, min_rows: int = 5, rename: Mapping[str, str] | None = None, name: str | None = None
) -> Runs:
    """Read and validate a runs CSV (csv module, no pandas).

    ``min_rows``: fewest runs accepted (5 for the 5-coefficient Chinchilla fit). ``rename`` maps a canonical
    column to the file's header, e.g. ``{"loss": "val_loss"}``. ``name`` is used in messages (default: path).
    Duplicate rows (identical in every recognised column) are reported in ``Runs.warnings``, not rejected.
    """
    from planner.errors import InputError  # not at import time: the planner package imports laws
    from planner.safe_io import MAX_RUNS_FILE, read_text_limited, shown

    src = name or shown(path)
    try:
        text = read_text_limited(path, "file", MAX_RUNS_FILE)
    except InputError as e:
        raise RunsError(e.detail, field="file") from None
    return parse_runs(text, source=src, min_rows=min_rows, rename=rename)


def parse_runs(
    text: str, *, source: str = "runs.csv", min_rows: int = 5, rename: Mapping[str, str] | None = None
) -> Runs:
    """Validate CSV text with a header line; see ``read_runs``. At most ``MAX_RUNS`` runs, fields of at most
    ``MAX_FIELD`` characters."""
    try:
        return _parse_runs(text, source=source, min_rows=min_rows, rename=rename)
    except csv.Error as e:  # e.g. a field over the csv module's limit
        raise RunsError(f"{source}: not a readable CSV ({e}); fields may have at most {MAX_FIELD:,} characters",
                        field="file") from None


def _parse_runs(text: str, *, source: str, min_rows: int, rename: Mapping[str, str] | None) -> Runs:
    reader = csv.reader(text.splitlines(keepends=True))
    header: list[str] | None = None
    header_line = 1
    for row in reader:
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        header, header_line = [c.strip().lower() for c in row], reader.line_num
        break
    if header is None:
        raise RunsError(f"{source} line 1: empty file; expected a header with columns {', '.join(REQUIRED)}")

    aliases = {canon: canon for canon in COLUMNS}
    for canon, col in (rename or {}).items():
        if canon not in COLUMNS:
            raise RunsError(f"{source}: cannot rename unknown column {canon!r}; known: {', '.join(COLUMNS)}",
                            field=canon)
        aliases[canon] = col.strip().lower()
    seen: dict[str, int] = {}
    for j, col in enumerate(header):
        if col and col in seen and col in aliases.values():
            raise RunsError(f"{source} line {header_line}: column {col!r} appears twice", field=col)
        seen.setdefault(col, j)
    index: dict[str, int] = {}
    for canon, col in aliases.items():
        if col in seen:
            index[canon] = seen[col]
        elif canon in REQUIRED:
            have = ", ".join(repr(c) for c in header if c) or "none"
            label = repr(canon) if col == canon else f"{canon!r} (as {col!r})"
            raise RunsError(f"{source} line {header_line}: missing required column {label}; columns found: {have}",
                            field=canon)

    values: dict[str, list[float]] = {c: [] for c in index}
    lines: list[int] = []
    for row in reader:
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        line = reader.line_num
        if len(lines) >= MAX_RUNS:
            raise RunsError(f"{source} line {line}: more than {MAX_RUNS:,} runs; the fit takes at most {MAX_RUNS:,} "
                            "(average repeated runs, or fit a sample)", field="rows")
        if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
            raise RunsError(f"{source} line {line}: {len(row)} fields but the header has {len(header)}",
                            field="file")
        for canon, j in index.items():
            raw = row[j].strip() if j < len(row) else ""
            values[canon].append(_positive(raw, source, line, canon))
        lines.append(line)

    n = len(lines)
    if n < min_rows:
        raise RunsError(
            f"{source} line {header_line + 1 if not lines else lines[-1]}: {n} run{'s' if n != 1 else ''} found; "
            f"a {min_rows}-coefficient fit needs at least {min_rows}", field="rows")

    warnings: list[str] = []
    first: dict[tuple[float, ...], int] = {}
    keys = list(index)
    for i in range(n):
        key = tuple(values[c][i] for c in keys)
        if key in first:
            warnings.append(f"{source} line {lines[i]}: duplicates line {first[key]} "
                            f"(params={values['params'][i]:g}, tokens={values['tokens'][i]:g}, "
                            f"loss={values['loss'][i]:g}); it counts twice in the fit")
        else:
            first[key] = lines[i]

    arrays = {c: np.asarray(v, dtype=float) for c, v in values.items()}
    return Runs(**arrays, warnings=tuple(warnings), source=source, lines=np.asarray(lines, dtype=int))


def _positive(raw: str, source: str, line: int, column: str) -> float:
    try:
        x = float(raw)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        hint = " (leave the column out if it is not known for every run)" if not raw and column in OPTIONAL else ""
        raise RunsError(f"{source} line {line}: column {column!r} must be a positive finite number, got {raw!r}{hint}",
                        field=column)
    return x


def check_identifiable(runs: Runs, vary: Sequence[str], n_coefficients: int) -> None:
    """RunsError unless the runs can identify a law of ``n_coefficients`` whose exponents act on ``vary``: at
    least ``n_coefficients`` distinct input points, and at least two distinct values of each column in ``vary``.
    (Ten copies of one run fit any coefficients equally well.)"""
    inputs = [c for c in runs.columns() if c != "loss"] if not vary else list(vary)
    present = [c for c in inputs if getattr(runs, c, None) is not None]
    for c in present if vary else ():
        col = runs.column(c)
        if np.unique(col).size < 2:
            raise RunsError(f"{runs.source}: every run has {c} = {col[0]:g}; the data cannot identify the law "
                            f"(its {c} exponent needs at least 2 distinct {c} values)", field="rows")
    if present:
        points = np.unique(np.column_stack([runs.column(c) for c in present]), axis=0).shape[0]
        if points < n_coefficients:
            raise RunsError(f"{runs.source}: {len(runs)} runs at only {points} distinct ({', '.join(present)}) "
                            f"point{'s' if points != 1 else ''}; the data cannot identify the law's {n_coefficients} "
                            f"coefficients (needs at least {n_coefficients} distinct points)", field="rows")
