"""Compiled cone programs on disk, so a cold run with a cached program never imports cvxpy.

One file per program in ``<cache folder>/programs/``: an ``.npz`` (read with ``allow_pickle=False``) holding the
numeric arrays and a JSON header (as bytes) with the full key and a SHA-256 of every array. The key is the law
(form, class, coefficients), the program's Structure, the versions of planner, cvxpy, numpy, scipy and clarabel,
a hash of the source files that define the program, and the array format. A file that is truncated, corrupt,
over the size limit, for another key or version, or inconsistent is ignored (and rebuilt), never trusted.
Writes go through a temporary file renamed into place; at most MAX_PROGRAMS files are kept (the least recently
written are deleted). The cache is best-effort: an unwritable folder only means the next cold run compiles
again.

Folder: ``$PLANNER_CACHE_DIR`` if set, else the user cache folder (platformdirs when installed, else
``~/.cache/planner``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from dataclasses import fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from laws.base import Law
from planner.safe_io import MIB

ENV = "PLANNER_CACHE_DIR"
MAX_FILE = 16 * MIB
MAX_PROGRAMS = 2000   # files kept in the folder; the least recently written beyond it are deleted (~10 KB each)
PACKAGES = ("planner", "cvxpy", "numpy", "scipy", "clarabel")
# Modules whose code shapes the compiled program: a change in any of them is a different program.
_SOURCES = ("planner.formulation", "planner.program", "planner.cone", "cost_models.cluster", "cost_models.training",
            "laws.base", "planner.robust_terms")


def cache_dir() -> Path:
    """The folder the planner caches in (created on write, not here)."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".cache" / "planner"
    return Path(platformdirs.user_cache_dir("planner"))


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Installed versions of the packages a compiled program depends on, read from the first ``*.dist-info``
    folder of each on ``sys.path`` (one directory scan; importlib.metadata, 10 ms for five packages, only for
    those not found that way); nothing is imported."""
    from importlib import metadata

    want = {name.replace("-", "_"): name for name in PACKAGES}
    out: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = [e.name for e in os.scandir(entry or ".") if e.name.endswith(".dist-info")]
        except OSError:
            continue
        for folder in names:
            dist, _, version = folder[: -len(".dist-info")].partition("-")
            name = want.get(dist.lower().replace("-", "_").replace(".", "_"))
            if name is not None and name not in out and version:
                out[name] = version
    for name in PACKAGES:
        if name not in out:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                out[name] = "absent"
    return {name: out[name] for name in PACKAGES}


@lru_cache(maxsize=64)
def _source_hash(modules: tuple[str, ...]) -> str:
    from importlib.util import find_spec

    h = hashlib.sha256()
    for mod in modules:
        module = sys.modules.get(mod)
        path = getattr(module, "__file__", None) if module else getattr(find_spec(mod), "origin", None)
        h.update(mod.encode())
        if path:
            try:
                h.update(Path(path).read_bytes())
            except OSError:
                h.update(b"unreadable")
    return h.hexdigest()


def _structure(st: Any) -> dict[str, Any]:
    """A dataclass's compared fields as JSON data (frozensets sorted; nested dataclasses such as the robust loss's
    terms, tuples and floats as JSON writes them, exactly)."""
    out = {}
    for f in fields(st):
        if not f.compare:
            continue
        v = getattr(st, f.name)
        if isinstance(v, frozenset):
            v = sorted(v)
        elif is_dataclass(v):
            v = {"type": type(v).__qualname__, **_structure(v)}
        elif isinstance(v, tuple):
            v = json.loads(json.dumps(v))  # nested tuples as lists
        out[f.name] = v
    return out


def program_key(law: Law, st: Any) -> dict[str, Any]:
    """Everything a compiled program depends on, as JSON-able data."""
    from planner.cone import FORMAT

    law_module = type(law).__module__
    return {
        "format": FORMAT,
        "law": {"form": law.form, "class": f"{law_module}.{type(law).__qualname__}",
                "coefficients": {k: float(v) for k, v in sorted(law.coefficients.items())}},
        "structure": _structure(st),
        "versions": versions(),
        "source": _source_hash((*_SOURCES, law_module)),
    }


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def path_of(key: dict[str, Any]) -> Path:
    return cache_dir() / "programs" / f"{_digest(key)[:40]}.npz"


def _arrays_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load(key: dict[str, Any]) -> Any:
    """The cached ConeProgram for ``key``, or None (absent, unreadable, damaged or not this key's)."""
    from planner.cone import ConeProgram
    from planner.errors import InputError
    from planner.safe_io import read_bytes_limited

    path = path_of(key)
    if not path.is_file():
        return None
    try:
        raw = read_bytes_limited(path, "cache", MAX_FILE)
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        header_bytes = arrays.pop("header")
        if header_bytes.dtype != np.uint8 or header_bytes.ndim != 1:
            return None
        header = json.loads(header_bytes.tobytes().decode("utf-8"))
        if not isinstance(header, dict) or header.get("key") != json.loads(json.dumps(key, sort_keys=True)):
            return None
        if header.get("arrays_sha256") != _arrays_hash(arrays):
            return None
        return ConeProgram.from_arrays(header["cone"], arrays)
    except (InputError, OSError, ValueError, KeyError, TypeError, EOFError, UnicodeDecodeError,
            json.JSONDecodeError, IndexError, AttributeError) as _:
        return None
    except Exception:  # noqa: BLE001 — zipfile.BadZipFile and anything else a damaged file raises: ignore it
        return None


def save(key: dict[str, Any], cone: Any) -> Path | None:
    """Store ``cone`` under ``key`` (atomically); None when the folder cannot be written."""
    from planner.errors import InputError
    from planner.safe_io import write_atomic

    head, arrays = cone.to_arrays()
    header = {"key": json.loads(json.dumps(key, sort_keys=True)), "cone": head,
              "arrays_sha256": _arrays_hash(arrays)}
    payload = {**arrays, "header": np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)}
    path = path_of(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)

        def writer(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **payload)

        written = write_atomic(path, "cache", writer)
    except (InputError, OSError):
        return None
    _prune(path.parent)
    return written


def _prune(folder: Path) -> None:
    """Keep at most MAX_PROGRAMS program files: the least recently written go first."""
    try:
        files = [(f.stat().st_mtime, f) for f in folder.glob("*.npz")]
        if len(files) <= MAX_PROGRAMS:
            return
        for _, f in sorted(files)[: len(files) - MAX_PROGRAMS]:
            f.unlink(missing_ok=True)
    except OSError:
        pass
