"""Shared test helpers: where the published run data lives, and what to do when it is absent."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

DATA = Path(os.environ.get("PLANNER_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def in_ci() -> bool:
    """True under CI (``CI=true``, as GitHub Actions and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def shared_data(name: str) -> Path:
    """The path of a published data file in ../shared/data (or $PLANNER_SHARED_DATA).

    Absent: the test skips on a developer machine but FAILS under CI, where a silently skipped data test would
    hide a broken reproduction."""
    path = DATA / name
    if not path.is_file():
        msg = f"reference data {path} not found (set PLANNER_SHARED_DATA)"
        if in_ci():
            pytest.fail(msg + "; data tests must run under CI")
        pytest.skip(msg)
    return path


def make_whole_calls(request_fields: dict) -> list:
    """(request, solved) of every ``make_whole`` call one plan makes (an infeasible plan still records its
    calls)."""
    import importlib

    from planner import optimize

    module = importlib.import_module("planner.optimize")  # the module (planner.optimize is the function)
    seen, real = [], module.make_whole

    def spy(request, solved):
        seen.append((request, solved))
        return real(request, solved)

    module.make_whole = spy
    try:
        optimize(**request_fields)
    except Exception:  # noqa: BLE001 - an infeasible plan still recorded its (request, solved) pairs
        pass
    finally:
        module.make_whole = real
    return seen


_CACHE_DIR: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Each test process caches compiled programs in its own temporary folder (planner.program_cache): tests never
    read a developer's cache, and parallel test processes never share one."""
    global _CACHE_DIR
    _CACHE_DIR = tempfile.mkdtemp(prefix="planner-test-cache-")
    os.environ["PLANNER_CACHE_DIR"] = _CACHE_DIR


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CACHE_DIR:
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)
