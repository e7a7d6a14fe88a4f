"""Law evaluations shared by every cluster and batch one plan's search tries (the law is the slow part).

The scan evaluates the law on arrays of rows where that gives what it gives on scalars, bit for bit
(``ARRAY_EXACT_FORMS``), and one by one otherwise.
"""

from __future__ import annotations

import numpy as np

from cost_models.architecture import ModelShape
from planner.request import PlanRequest
from planner.solve import Solved
from planner.whole_serving import _serve_cost

# Law forms whose formula gives on arrays exactly what it gives on scalars: each power is taken of the input
# itself, and a scalar input (a 0-d array) goes through the same numpy loop as an array (numpy's vectorized
# power is not Python's ``**``, nor numpy's scalar power). Kaplan's and Muennighoff's forms take powers of
# derived numpy scalars and differ by an ulp. tests/test_whole_vector.py checks each form of the set.
ARRAY_EXACT_FORMS = frozenset({"chinchilla", "joint-moe"})


def _tokens_for_loss(var, n: float, target: float) -> float | None:
    """Effective tokens at which the program's law reaches ``target`` at ``n`` params (None if it never does):
    the loss falls with tokens, so the crossing is bracketed on a 65-point geometric grid, seven times nested
    (16 decades / 64^7: the bracket is below 1e-11 relative)."""
    lo, hi = 1e3, 1e19
    if var.program_loss(n, hi) > target:
        return None
    for _ in range(7):
        grid = np.geomspace(lo, hi, 65)
        i = int(np.argmax(np.asarray(var.program_losses(n, grid)) <= target))  # the first grid point that reaches it
        if i == 0:
            return float(grid[0])
        lo, hi = float(grid[i - 1]), float(grid[i])
    return hi


def _tokens_for_loss_many(var, ns: np.ndarray, target: float) -> list[float | None]:
    """``_tokens_for_loss`` at every N of ``ns`` at once (the same grids and the same law values, row by row:
    only for a law of ARRAY_EXACT_FORMS, where the law on arrays is the law on scalars)."""
    ns = np.ascontiguousarray(ns, dtype=float)
    out: list[float | None] = [None] * len(ns)
    hi = np.full(len(ns), 1e19)
    rows = np.flatnonzero(~(np.asarray(var.program_losses(ns, hi), dtype=float) > target))
    n, lo, hi = ns[rows], np.full(len(rows), 1e3), hi[rows]
    found = np.full(len(rows), np.nan)
    live = np.ones(len(rows), dtype=bool)
    for _ in range(7):
        grid = np.geomspace(lo, hi, 65, axis=1)
        i = np.argmax(np.asarray(var.program_losses(n[:, None], grid), dtype=float) <= target, axis=1)
        first = live & (i == 0)
        found[first] = grid[first, 0]
        live &= ~first
        step = np.flatnonzero(live)
        lo[step], hi[step] = grid[step, i[step] - 1], grid[step, i[step]]
    found[live] = hi[live]
    for r, x in zip(rows.tolist(), found.tolist(), strict=True):
        out[r] = x
    return out


class LawMemo:
    """Law evaluations shared by every cluster and batch tried for one plan (the law is the slow part)."""

    def __init__(self, var):
        self.var = var
        self.need: dict[tuple[float, float], float | None] = {}
        self.losses: dict[tuple[float, float], tuple[float, float]] = {}
        self.serving: dict[tuple[int, int], float] = {}
        # without a full law the plan's loss is the program's (``_Variant.loss``): evaluate the law once
        self.one_law = getattr(var, "exact", "unknown") is None

    def tokens_for_loss(self, n: float, target: float) -> float | None:
        key = (n, target)
        if key not in self.need:
            self.need[key] = _tokens_for_loss(self.var, n, target)
        return self.need[key]

    def tokens_for_loss_many(self, ns: list[float], target: float) -> list[float | None]:
        """``tokens_for_loss`` at each N of ``ns``; the new ones at once where the law allows (``loss_arrays``)."""
        new = [n for n in dict.fromkeys(ns) if (n, target) not in self.need]
        if len(new) > 1 and self._on_arrays():
            for n, x in zip(new, _tokens_for_loss_many(self.var, np.array(new), target), strict=True):
                self.need[(n, target)] = x
        return [self.tokens_for_loss(n, target) for n in ns]

    def _on_arrays(self) -> bool:
        """The law evaluated on arrays equals it on scalars (see ARRAY_EXACT_FORMS); robust plans are not."""
        return (self.one_law and getattr(self.var, "robust", None) is None
                and getattr(getattr(self.var, "law", None), "form", None) in ARRAY_EXACT_FORMS)

    def serve_cost(self, request: PlanRequest, solved: Solved, shape: ModelShape) -> float:
        key = (shape.layers, shape.d_model)
        if key not in self.serving:
            self.serving[key] = _serve_cost(request, solved, shape)
        return self.serving[key]

    def loss_arrays(self, n: np.ndarray, deff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``loss`` at every (n[i], deff[i]): (plan losses, program losses), bit for bit. On arrays for the
        forms of ARRAY_EXACT_FORMS; one by one for other laws, a full law (data-constrained) or robust plans."""
        n, deff = np.ascontiguousarray(n, dtype=float), np.ascontiguousarray(deff, dtype=float)
        if not self._on_arrays() or not len(n):
            pairs = [self.loss(a, b) for a, b in zip(n.tolist(), deff.tolist(), strict=True)]
            return (np.array([p[0] for p in pairs], dtype=float).reshape(len(n)),
                    np.array([p[1] for p in pairs], dtype=float).reshape(len(n)))
        program = np.asarray(self.var.program_losses(n, deff), dtype=float)
        return program, program

    def loss(self, n: float, deff: float) -> tuple[float, float]:
        """(plan loss, program loss) at (n, deff)."""
        key = (n, deff)
        if key not in self.losses:
            if self.one_law:
                loss = self.var.program_loss(n, deff)
                self.losses[key] = (loss, loss)
            else:
                self.losses[key] = (self.var.loss(n, deff), self.var.program_loss(n, deff))
        return self.losses[key]
