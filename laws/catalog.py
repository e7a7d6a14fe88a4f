"""The published law catalog (``catalog.toml``, package data) and law files written by ``planner fit``.

A law file has the catalog's schema: ``[[law]]`` tables with id, form, title, citation, status, what N and D
count, validity, ``[law.coefficients]`` and optionally ``[law.units]`` (units of coefficients, inputs and
outputs), ``[law.sources]`` (table/equation and verification tag per coefficient) and ``[law.bootstrap]``
arrays. Files are parsed as data only (tomllib).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from laws.allocation import AllocationLaw, TokensAllocationLaw
from laws.base import Law, LawError, LawInfo
from laws.batch import McCandlishLaw
from laws.chinchilla import ChinchillaLaw
from laws.hyperparams import DeepSeekLaw, StepLaw
from laws.kaplan import KaplanLaw
from laws.moe import JointMoELaw
from laws.muennighoff import MuennighoffLaw
from laws.power import power_law_from_coefficients

DEFAULT_LAW = "chinchilla-epoch-2024"

FORMS: dict[str, type[Law]] = {
    cls.form: cls
    for cls in (ChinchillaLaw, KaplanLaw, MuennighoffLaw, JointMoELaw, DeepSeekLaw, StepLaw, AllocationLaw,
                TokensAllocationLaw, McCandlishLaw)
}

_INFO_FIELDS = ("title", "citation", "status", "params_counts", "tokens_counts", "loss_units", "validity")


# Allowed coefficient ranges per form, [lo, hi] (a coefficient outside is a malformed law file, not a law to
# plan with: A = 0 or E < 0 breaks the geometric program, alpha = 1e20 or A = 2**70 gives no usable loss). They
# bracket the published values (catalog.toml) by orders of magnitude; exponents are O(1) in every paper cited there.
_POS = (1e-6, 1e12)  # a positive scale coefficient
_EXP = (1e-3, 3.0)  # a positive exponent
_SIGNED_EXP = (-3.0, 3.0)  # an exponent of either sign (LR and batch laws, Joint MoE)
_SCALE = (1e-30, 1e30)  # a positive constant with units (e.g. Kaplan's Nc in parameters)
COEFFICIENT_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "chinchilla": {"E": (1e-6, 20.0), "A": _POS, "B": _POS, "alpha": _EXP, "beta": _EXP},
    "muennighoff": {"E": (1e-6, 20.0), "A": _POS, "B": _POS, "alpha": _EXP, "beta": _EXP, "R_D_star": _POS,
                    "R_N_star": _POS},
    "kaplan": {"Nc": _SCALE, "Dc": _SCALE, "alpha_N": _EXP, "alpha_D": _EXP, "Nc_S": _SCALE, "Sc": _SCALE,
               "alpha_N_S": _EXP, "alpha_S": _EXP, "B_star": _SCALE, "alpha_B": _EXP},
    "joint-moe": {"a": _POS, "b": _POS, "c": (1e-6, 20.0), "E_start": _POS, "E_max": _POS,
                  **{k: _SIGNED_EXP for k in ("alpha", "beta", "gamma", "delta", "omega", "zeta", "lr_a_params",
                                              "lr_a_experts")}, "lr_log_k": (-100.0, 100.0)},
}
_DEFAULT_RANGE = {"k": _SCALE, "a": (-10.0, 10.0)}  # other forms: k_* scales, a_* exponents (by name prefix)
_ANY = (-1e30, 1e30)


def coefficient_range(form: str, name: str) -> tuple[float, float]:
    """The allowed [lo, hi] of coefficient ``name`` in a law of ``form``."""
    table = COEFFICIENT_RANGES.get(form, {})
    if name in table:
        return table[name]
    return _DEFAULT_RANGE.get(name.split("_")[0], _ANY)


def _checked_coefficients(coefs: dict[str, Any], form: str, law_id: str, source: str) -> dict[str, Any]:
    """Coefficients as floats within their allowed ranges; LawError naming the coefficient and range otherwise."""
    out = {}
    for k, v in coefs.items():
        lo, hi = coefficient_range(form, str(k))
        try:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise TypeError
            x = float(v)
        except (TypeError, OverflowError):
            raise LawError(f"law {law_id} ({source}): coefficient {k} must be a number in [{lo:g}, {hi:g}], "
                           f"got {str(v)[:40]!r}") from None
        if x != x or x in (float("inf"), float("-inf")):
            raise LawError(f"law {law_id} ({source}): coefficient {k} must be a finite number in [{lo:g}, {hi:g}], "
                           f"got {x}")
        if not lo <= x <= hi:
            raise LawError(f"law {law_id} ({source}): coefficient {k} = {x:g} is outside its allowed range "
                           f"[{lo:g}, {hi:g}]")
        out[k] = x
    return out


def register_form(cls: type[Law]) -> type[Law]:
    """Make a Law subclass loadable from catalog entries with ``form = cls.form``."""
    FORMS[cls.form] = cls
    return cls


def law_from_dict(entry: dict[str, Any], source: str = "built-in") -> Law:
    """Build a Law from one ``[[law]]`` table."""
    if not isinstance(entry, dict):
        raise LawError(f"law file {source}: each [[law]] must be a table")
    law_id = entry.get("id")
    if not isinstance(law_id, str) or not law_id:
        raise LawError(f"law file {source}: an entry has no 'id'")
    form = entry.get("form")
    if form not in FORMS and form != "power":
        allowed = ", ".join(sorted([*FORMS, "power"]))
        raise LawError(f"law {law_id} ({source}): unknown form {form!r}; allowed: {allowed}")
    for key in ("title", "citation"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise LawError(f"law {law_id} ({source}): '{key}' is required")
    coefs = entry.get("coefficients")
    if not isinstance(coefs, dict):
        raise LawError(f"law {law_id} ({source}): [law.coefficients] table is required")
    coefs = _checked_coefficients(coefs, form, law_id, source)
    tables = {}
    for key in ("units", "sources"):
        table = entry.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise LawError(f"law {law_id} ({source}): [law.{key}] must map names to strings")
        tables[key] = dict(table)
    info = LawInfo(
        id=law_id, form=form, source=source, **{k: str(entry.get(k, "")) for k in _INFO_FIELDS}, **tables
    )
    if form == "power":  # fitted power law: its inputs and output come from the file
        output = entry.get("output", "y")
        if not isinstance(output, str):
            raise LawError(f"law {law_id} ({source}): 'output' must be a column name")
        cls = power_law_from_coefficients(coefs, output)
    else:
        cls = FORMS[form]
    return cls(info=info, coefficients=coefs, bootstrap=entry.get("bootstrap"))


def _parse(text: str, source: str) -> list[Law]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LawError(f"law file {source}: not valid TOML ({e})") from None
    except RecursionError:
        raise LawError(f"law file {source}: not valid TOML (arrays or tables nested too deeply)") from None
    rows = data.get("law")
    if not isinstance(rows, list) or not rows:
        raise LawError(f"law file {source}: no [[law]] entries")
    return [law_from_dict(row, source) for row in rows]


@lru_cache(maxsize=1)
def _builtin() -> dict[str, Law]:
    text = resources.files("laws").joinpath("catalog.toml").read_text(encoding="utf-8")
    laws = _parse(text, "built-in catalog.toml")
    return {law.id: law for law in laws}


def catalog() -> dict[str, Law]:
    """All built-in laws by id."""
    return dict(_builtin())


def load_law_file(path: str | Path, law_id: str | None = None) -> Law:
    """The law in a TOML law file (the entry named ``law_id``, or the only/first entry)."""
    from planner.errors import InputError  # not at import time: planner imports laws
    from planner.safe_io import MAX_LAW_FILE, read_text_limited, shown

    try:  # size-limited, regular files only, strict UTF-8
        text = read_text_limited(path, "law", MAX_LAW_FILE)
    except InputError as e:
        raise LawError(f"law file {e.detail}") from None
    laws = _parse(text, shown(path))
    if law_id is None:
        return laws[0]
    for law in laws:
        if law.id == law_id:
            return law
    raise LawError(f"law file {path}: no entry {law_id!r}; has {', '.join(x.id for x in laws)}")


def get_law(key: str | None = None) -> Law:
    """A law by catalog id, or from a law file path (``path.toml`` or ``path.toml#id``)."""
    key = (key or DEFAULT_LAW).strip()
    laws = _builtin()
    if key in laws:
        return laws[key]
    path, _, sub = key.partition("#")
    if path.endswith(".toml") or Path(path).is_file():
        return load_law_file(path, sub or None)
    raise LawError(f"unknown law {key!r}; allowed: {', '.join(sorted(laws))}, or a law .toml file")
