"""Consuming a streamed sweep in bounded memory: a digest for display and a CSV written row by row.

``SweepDigest`` keeps what a summary shows -- counts, the first rows, the first failures and the Pareto
frontiers -- and nothing else, so a 100,000-point sweep needs memory for its frontiers, not for its rows. The
frontiers are kept online (each new row is compared with the current exact frontier only); at the end
``frontier(name)`` applies ``pareto_indices`` to the kept rows, which gives the same rows as ``pareto_indices``
over every row (the tolerance step only ever looks at the exact frontier).
"""

from __future__ import annotations

import bisect
import csv
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from planner.sweep import FRONTIERS, ROW_KEYS, SweepFailure, SweepResult, _value, pareto_indices
from planner.sweep_pool import SweepPoint


class OnlineFrontier:
    """The rows not dominated in (x, y), both minimized, as rows arrive (ties: the earlier row is kept)."""

    def __init__(self, x: str, y: str) -> None:
        self.x, self.y = x, y
        self._keys: list[tuple[float, float, int]] = []  # (x, y, arrival), x ascending and y descending
        self._rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any], seq: int) -> None:
        vx, vy = _value(row, self.x), _value(row, self.y)
        if vx is None or vy is None:
            return
        pos = bisect.bisect_right(self._keys, (vx, float("inf"), seq))
        if pos > 0 and self._keys[pos - 1][1] <= vy:  # a kept row with x' <= x has y' <= y
            return
        if pos > 0 and self._keys[pos - 1][0] == vx:  # same x, larger y: the new row dominates it
            pos -= 1
            del self._keys[pos], self._rows[pos]
        end = pos
        while end < len(self._keys) and self._keys[end][1] >= vy:  # larger x, no smaller y: dominated
            end += 1
        self._keys[pos:end] = [(vx, vy, seq)]
        self._rows[pos:end] = [row]

    def rows(self, rtol: float | None = None) -> list[dict[str, Any]]:
        """The frontier with ``pareto_indices``' tolerance applied, cheapest first."""
        order = sorted(range(len(self._keys)), key=lambda k: self._keys[k][2])  # arrival order, as in the sweep
        kept = [self._rows[k] for k in order]
        kwargs = {} if rtol is None else {"rtol": rtol}
        return [kept[i] for i in pareto_indices(kept, self.x, self.y, **kwargs)]


class SweepDigest:
    """Counts, the first ``keep_rows`` rows and ``keep_failures`` failures, and the frontiers of a sweep."""

    def __init__(self, axes: dict[str, list[Any]], *, keep_rows: int = 40, keep_failures: int = 3) -> None:
        self.axes = axes
        self.keep_rows, self.keep_failures = keep_rows, keep_failures
        self.points = self.feasible = self.failed = 0
        self.rows: list[dict[str, Any]] = []
        self.failures: list[SweepFailure] = []
        self._frontiers = {name: OnlineFrontier(x, y) for name, (x, y) in FRONTIERS.items()}
        self._t0 = time.perf_counter()
        self.elapsed_s = 0.0

    @classmethod
    def of_result(cls, result: SweepResult, *, keep_rows: int = 40, keep_failures: int = 3) -> SweepDigest:
        """The digest of a finished sweep (its elapsed time kept)."""
        digest = cls(result.axes, keep_rows=keep_rows, keep_failures=keep_failures)
        for row in result.rows:
            digest.add_row(row)
        for f in result.failures:
            digest.add_failure(f)
        digest.elapsed_s = result.elapsed_s
        return digest

    def add_row(self, row: dict[str, Any]) -> None:
        if len(self.rows) < self.keep_rows:
            self.rows.append(row)
        for f in self._frontiers.values():
            f.add(row, self.points)
        self.points += 1
        self.feasible += 1

    def add_failure(self, failure: SweepFailure) -> None:
        if len(self.failures) < self.keep_failures:
            self.failures.append(failure)
        self.points += 1
        self.failed += 1

    def add(self, p: SweepPoint) -> None:
        if p.failure is not None:
            self.add_failure(p.failure)
        else:
            self.add_row(p.row)
        self.elapsed_s = time.perf_counter() - self._t0

    def frontier(self, name: str = "loss-cost") -> list[dict[str, Any]]:
        """The rows on frontier ``name``, cheapest first (as ``SweepResult.frontier``)."""
        if name not in self._frontiers:
            from planner.errors import InputError

            raise InputError("pareto", f"unknown frontier {name!r}; allowed: {', '.join(FRONTIERS)}")
        return self._frontiers[name].rows()

    def rows_of(self, points: Iterable[SweepPoint], progress: Callable[[int, int], None] | None = None,
                total: int = 0) -> Iterator[dict[str, Any]]:
        """The feasible rows of ``points``, each point added to the digest as it passes."""
        for p in points:
            self.add(p)
            if progress is not None:
                progress(self.points, total)
            if p.row is not None:
                yield p.row

    def consume(self, points: Iterable[SweepPoint], progress: Callable[[int, int], None] | None = None,
                total: int = 0) -> None:
        """Add every point of ``points``."""
        for _ in self.rows_of(points, progress, total):
            pass


def write_csv_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` to ``path`` as they come (``planner.export.write_csv`` writes through it): columns
    ``ROW_KEYS``, formula-like text escaped; returns the rows written. Use it on a staged temporary file
    (``planner.safe_io.Outputs``) so the destination is replaced only by a complete file."""
    from planner.export import escape_text

    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(ROW_KEYS), extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: escape_text(v) if isinstance(v, str) else ("" if v is None else v)
                        for k, v in row.items()})
            n += 1
    return n
