"""The disk cache of compiled cone programs (planner.program_cache): keyed by law, constraint set and versions;
a damaged, foreign or stale file is ignored and rebuilt, never trusted; a cached cold run never imports cvxpy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import planner.program as program
import planner.program_cache as pc
from cost_models.catalog import load_catalog
from cost_models.cluster import candidate_layouts
from planner.optimize import _law, _variants
from planner.request import PlanRequest
from planner.solve import Candidate, program_inputs, shape_for

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE = pc.MAX_FILE


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(pc.ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(program, "DIRECT", True)
    return tmp_path / "cache"


def _inputs(limits=frozenset({"flops"}), **fields):
    request = PlanRequest.parse(gpu="h100", **({"budget_flops": 1e22} | fields))
    var = _variants(request, _law(request))[0]
    acc = load_catalog().get("h100")
    cand = Candidate(acc, "bf16", acc.peak_flops("bf16"), 2.0, "given")
    lay = candidate_layouts(acc.devices_per_node, max_pp=8)[0]
    st, values = program_inputs(request, var, cand, lay, shape_for(var, 1e9, request.seq_len), 1e9, limits)
    return var.law, st, values


def _compiled(law, st, values):
    """A fresh program's answer, and the cache file it wrote."""
    prog = program.TrainingProgram(law, st)
    sol = prog.solve(values)
    return prog, sol, pc.path_of(pc.program_key(law, st))


def test_folder_from_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv(pc.ENV, str(tmp_path / "x"))
    assert pc.cache_dir() == tmp_path / "x"
    monkeypatch.delenv(pc.ENV)
    d = pc.cache_dir()
    assert d.name == "planner" and d.is_absolute()


def test_hit_reuses_the_file_without_building_cvxpy(cache):
    law, st, values = _inputs()
    first, sol, path = _compiled(law, st, values)
    assert path.is_file() and path.parent.parent == cache and first._cvx is not None   # a miss compiled it
    second = program.TrainingProgram(law, st)
    again = second.solve(values)
    assert second._cvx is None   # the hit never built the cvxpy problem
    assert (again.params, again.tokens, again.duals, again.sides) == (sol.params, sol.tokens, sol.duals, sol.sides)
    # the stored maps are the compiled ones, array for array
    h1, a1 = first.cone().to_arrays()
    h2, a2 = second.cone().to_arrays()
    assert h1 == h2 and a1.keys() == a2.keys()
    assert all(np.array_equal(a1[k], a2[k]) and a1[k].dtype == a2[k].dtype for k in a1)
    assert not list(path.parent.glob("*.tmp*")) and len(list(path.parent.iterdir())) == 1   # no temporary left


def test_key_changes_with_law_constraints_and_versions(cache, monkeypatch):
    law, st, values = _inputs()
    base = pc.path_of(pc.program_key(law, st))
    other_law = law.with_coefficients(A=law.coefficients["A"] * 1.01)
    _, st2, _ = _inputs(frozenset({"flops", "max_params"}), max_params=1e10)
    assert pc.path_of(pc.program_key(other_law, st)) != base
    assert pc.path_of(pc.program_key(law, st2)) != base
    elastic = program.Structure(**{**st.__dict__, "elastic": "flops"})
    assert pc.path_of(pc.program_key(law, elastic)) != base
    installed = pc.versions()
    assert set(installed) == set(pc.PACKAGES)
    for package in pc.PACKAGES:
        monkeypatch.setattr(pc, "versions", lambda p=package: {**installed, p: "0.0.0-other"})
        assert pc.path_of(pc.program_key(law, st)) != base, package
    monkeypatch.setattr(pc, "versions", lambda: dict(installed))
    assert pc.path_of(pc.program_key(law, st)) == base


def test_other_law_is_not_served_the_cached_program(cache):
    """A file for another law, copied under this key's name, is foreign: ignored and rebuilt."""
    law, st, values = _inputs()
    _, sol, path = _compiled(law, st, values)
    other_law = law.with_coefficients(A=law.coefficients["A"] * 1.5)
    other_path = pc.path_of(pc.program_key(other_law, st))
    other_path.write_bytes(path.read_bytes())   # the first law's program under the second law's name
    assert pc.load(pc.program_key(other_law, st)) is None
    prog = program.TrainingProgram(other_law, st)
    moved = prog.solve(values)
    assert prog._cvx is not None   # rebuilt
    assert moved.params != sol.params   # the other law's own answer (a larger A wants a larger model)
    assert pc.load(pc.program_key(other_law, st)) is not None   # and the rebuilt file replaced the foreign one


def test_stale_version_is_ignored(cache, monkeypatch):
    law, st, values = _inputs()
    _, _, path = _compiled(law, st, values)
    key = pc.program_key(law, st)
    stale = {**key, "versions": {**key["versions"], "cvxpy": "0.1"}}
    pc.save(stale, program.TrainingProgram(law, st).cone())
    path.write_bytes(pc.path_of(stale).read_bytes())   # a file written under other versions, at this key's name
    assert pc.load(key) is None


def _rebuilt(law, st, values, path, sol, monkeypatch):
    assert pc.load(pc.program_key(law, st)) is None
    prog = program.TrainingProgram(law, st)
    again = prog.solve(values)
    assert prog._cvx is not None and again.params == sol.params   # compiled again, same answer
    monkeypatch.setattr(pc, "MAX_FILE", MAX_FILE)
    assert pc.load(pc.program_key(law, st)) is not None           # and stored again


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "tampered_array", "tampered_header",
                                    "pickled", "oversize", "directory", "inconsistent"])
def test_damaged_files_are_ignored_and_rebuilt(cache, monkeypatch, damage):
    law, st, values = _inputs()
    _, sol, path = _compiled(law, st, values)
    raw = path.read_bytes()
    key = pc.program_key(law, st)
    if damage == "garbage":
        path.write_bytes(os.urandom(len(raw)))
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage in ("tampered_array", "tampered_header", "pickled", "inconsistent"):
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = json.loads(arrays["header"].tobytes())
        if damage == "tampered_array":   # a changed number, header and checksum as they were
            arrays["q_map_data"] = arrays["q_map_data"] * 1.0001
        elif damage == "tampered_header":   # a consistent-looking header that does not match the arrays
            header["cone"]["m"] += 3
            arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        elif damage == "pickled":   # an object array: np.load(allow_pickle=False) refuses it
            arrays["dual_sign"] = np.array([object()] * len(arrays["dual_sign"]), dtype=object)
        else:   # the checksum recomputed over out-of-range indices: the structural checks refuse it
            arrays["var_col"] = arrays["var_col"] + 10_000
            header["arrays_sha256"] = pc._arrays_hash({k: v for k, v in arrays.items() if k != "header"})
            arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    elif damage == "oversize":
        monkeypatch.setattr(pc, "MAX_FILE", len(raw) - 1)
    elif damage == "directory":
        path.unlink()
        path.mkdir()
        assert pc.load(key) is None
        prog = program.TrainingProgram(law, st)
        assert prog.solve(values).params == sol.params   # solved, the cache just not written
        return
    _rebuilt(law, st, values, path, sol, monkeypatch)


def test_folder_keeps_at_most_max_programs(cache, monkeypatch):
    import time

    monkeypatch.setattr(pc, "MAX_PROGRAMS", 2)
    paths = []
    for limits, fields in ((frozenset({"flops"}), {}), (frozenset({"flops", "max_params"}), {"max_params": 1e10}),
                           (frozenset({"flops", "min_params"}), {"min_params": 1e8})):
        law, st, values = _inputs(limits, **fields)
        paths.append(_compiled(law, st, values)[2])
        time.sleep(0.02)   # distinct modification times
    assert sorted(p.name for p in paths[0].parent.glob("*.npz")) == sorted(p.name for p in paths[1:])


def test_unwritable_folder_still_solves(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(pc.ENV, str(blocker / "cache"))
    monkeypatch.setattr(program, "DIRECT", True)
    law, st, values = _inputs()
    sol = program.TrainingProgram(law, st).solve(values)
    assert sol.status == "optimal"


_COLD = """
import sys, json
from planner import optimize
plan = optimize(budget_flops=1e22, gpu="h100")
print(json.dumps({"cvxpy": "cvxpy" in sys.modules, "scipy_stats": "scipy.stats" in sys.modules,
                  "export": "planner.export" in sys.modules, "params": plan.params}))
"""


def test_cached_cold_run_does_not_import_cvxpy(tmp_path):
    """The first cold run compiles (imports cvxpy) and stores; the second loads and never imports cvxpy,
    scipy.stats or planner.export, and plans the same model."""
    env = {**os.environ, pc.ENV: str(tmp_path / "cache")}
    runs = [json.loads(subprocess.run([sys.executable, "-c", _COLD], cwd=ROOT, env=env, capture_output=True,
                                      text=True, check=True, timeout=300).stdout.strip().splitlines()[-1])
            for _ in range(2)]
    assert runs[0]["cvxpy"] is True
    assert runs[1] == {"cvxpy": False, "scipy_stats": False, "export": False, "params": runs[0]["params"]}


def test_versions_match_installed_metadata():
    """The directory scan reads the same versions importlib.metadata reports (the cache key depends on them)."""
    from importlib import metadata

    for name, version in pc.versions().items():
        try:
            expected = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected = "absent"
        assert version == expected, name
