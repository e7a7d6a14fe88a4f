"""Solving a sweep's grid points in grid order: in this process, or on a pool of worker processes.

A ``Grid`` is the base request and the swept axes; point ``i`` is the i-th element of the axes' cartesian
product (row-major, as ``itertools.product``), built on demand, so no list of requests or plans is held.
``solve_points`` yields one ``SweepPoint`` per grid point, in order. With ``workers > 1`` the points go to worker
processes in contiguous chunks (neighbouring points reuse the programs a worker has compiled for their
constraint set and layouts) and at most ``2 × workers`` chunks are in flight, so memory stays bounded however
large the grid. Each point is ``optimize`` of its request and the sweep carries nothing from one point to the
next, so the number of workers and the chunking change nothing: rows from workers equal a serial run's
(tests/test_sweep_stream.py; the planner gives the same plan in any process, tests/test_determinism.py).

Workers start with ``forkserver`` where the platform has it, else ``spawn`` -- never ``fork``: the caller may
run planner calls in other threads, and a forked child would inherit their locks mid-use.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from planner.errors import InfeasiblePlanError, InputError
from planner.request import PlanRequest

MAX_CHUNK = 64  # points per task sent to a worker
CHUNKS_PER_WORKER = 4  # at least this many chunks per worker when the grid allows (load balance: large plans
# take several times longer than small ones)
# Imported once by the fork server, so workers fork with them loaded. Only third-party modules: Python 3.11's
# fork server does not apply the caller's sys.path before preloading, so a planner module could resolve to another
# copy of the package than the caller's (the workers themselves get the caller's sys.path). Not cvxpy: workers
# solve on the cached cone programs (planner.program_cache) and import cvxpy only to compile one on a cache miss
# (then in parallel); preloading it cost every pooled sweep ~1 s of serial import (1,000 budgets, warm cache:
# 5.5 s without, 5.9-6.5 s with).
PRELOAD = ["numpy"]
MIN_POINTS_PER_WORKER = 50  # below this a worker's start-up (imports, compiling its programs) costs more


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Grid:
    """The base request's fields and the swept axes (PlanRequest field -> values), in product order."""

    fields: dict[str, Any]
    axes: dict[str, list[Any]]

    @property
    def total(self) -> int:
        """Grid points."""
        return math.prod(len(v) for v in self.axes.values())

    def update(self, index: int) -> dict[str, Any]:
        """The axis values of point ``index`` (row-major: the last axis varies fastest)."""
        out: dict[str, Any] = {}
        for name in reversed(self.axes):
            values = self.axes[name]
            index, k = divmod(index, len(values))
            out[name] = values[k]
        return {n: out[n] for n in self.axes}

    def request(self, index: int) -> PlanRequest:
        """The PlanRequest of point ``index`` (InputError if an axis value is out of range)."""
        return PlanRequest(**{**self.fields, **self.update(index)})


@dataclass(frozen=True)
class SweepPoint:
    """One solved grid point: its index and axis values, and either its row (and Plan, when kept) or why it
    could not be planned."""

    index: int
    point: dict[str, Any]
    row: dict[str, Any] | None = None
    failure: Any = None  # planner.sweep.SweepFailure
    plan: Any = None  # planner.plan.Plan, when the caller keeps plans


def solve_point(grid: Grid, index: int, keep_plan: bool) -> SweepPoint:
    """Plan point ``index``; an input error (infeasible, unsupported precision ...) becomes its failure."""
    from planner.optimize import optimize
    from planner.sweep import SweepFailure, plan_row

    req = grid.request(index)
    point = {n: getattr(req, n) for n in grid.axes}
    try:
        plan = optimize(req)
    except InputError as e:
        relax = e.relaxations if isinstance(e, InfeasiblePlanError) else {}
        failure = SweepFailure(point=point, field=e.field, reason=str(e).replace("\n", " "), relaxations=relax)
        return SweepPoint(index, point, failure=failure)
    return SweepPoint(index, point, row=plan_row(plan, req), plan=plan if keep_plan else None)


def chunk_size(total: int, workers: int) -> int:
    """Points per task: about ``CHUNKS_PER_WORKER`` tasks per worker, at most ``MAX_CHUNK``."""
    return max(1, min(MAX_CHUNK, math.ceil(total / (workers * CHUNKS_PER_WORKER))))


def solve_points(grid: Grid, *, workers: int = 1, keep_plans: bool = False) -> Iterator[SweepPoint]:
    """Every point of ``grid`` solved, in grid order, on ``workers`` processes (1: in this process)."""
    workers = max(1, min(workers, grid.total // MIN_POINTS_PER_WORKER))
    if workers == 1:
        return (solve_point(grid, i, keep_plans) for i in range(grid.total))
    return _pooled(grid, workers, keep_plans)


# ------------------------------------------------------------------------------------------ worker processes

_WORKER: dict[str, Any] = {}  # in a worker process: the grid and whether to return plans (set by _start_worker)


def _start_worker(grid: Grid, keep_plans: bool) -> None:
    """Worker initializer (a module-level function, so spawn and forkserver can pickle it): keep the grid, and
    import the planner now, so the first task does not pay for it."""
    import planner.optimize  # noqa: F401

    _WORKER.update(grid=grid, keep_plans=keep_plans)


def _solve_chunk(start: int, stop: int) -> list[SweepPoint]:
    grid, keep = _WORKER["grid"], _WORKER["keep_plans"]
    return [solve_point(grid, i, keep) for i in range(start, stop)]


def _context() -> multiprocessing.context.BaseContext:
    """forkserver (numpy imported once in the server, then each worker forked from it), else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # takes effect when this process first starts its fork server
    return ctx


def _pooled(grid: Grid, workers: int, keep_plans: bool) -> Iterator[SweepPoint]:
    size = chunk_size(grid.total, workers)
    starts = iter(range(0, grid.total, size))
    pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_start_worker,
                               initargs=(grid, keep_plans))
    pending: deque = deque()
    done = False
    try:
        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                pending.append(pool.submit(_solve_chunk, start, min(start + size, grid.total)))

        for _ in range(2 * workers):
            submit()
        while pending:
            try:
                points = pending.popleft().result()
            except BrokenProcessPool:
                raise InputError("workers", "a sweep worker process stopped unexpectedly (out of memory, or a "
                                 "script without `if __name__ == '__main__':`); rerun with fewer workers") from None
            submit()  # keep the workers busy while the caller consumes this chunk
            yield from points
        done = True
    finally:
        if not done:  # stopped early (an error, the consumer closed the stream, SIGTERM): stop the workers now
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
        pool.shutdown(wait=done, cancel_futures=True)
