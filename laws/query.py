"""What the CLI shows and evaluates for a law: ``describe(law)`` and ``evaluate(law, output=None, **inputs)``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from laws.base import Law, LawError

# Units of inputs that the law entry's own fields describe, when its [law.units] table does not.
_DEFAULT_UNIT_FIELD = {"params": "params_counts", "tokens": "tokens_counts", "loss": "loss_units"}


def _units(law: Law) -> dict[str, str]:
    names = list(law.coefficients)
    for o in law.available_outputs:
        names += [o, *law.inputs_for(o)]
    out: dict[str, str] = {}
    for name in dict.fromkeys(names):
        unit = law.info.units.get(name) or getattr(law.info, _DEFAULT_UNIT_FIELD.get(name, ""), "")
        if not unit:
            spec = next((s for s in law.output_specs if s.name == name), None)
            unit = spec.units if spec else ""
        if unit:
            out[name] = unit
    return out


def describe(law: Law) -> dict[str, Any]:
    """A JSON-serializable description: id, form, title, citation, status, what N/D/L count, validity, units
    (coefficients, inputs, outputs), coefficients with their sources, outputs -> inputs, per-output details
    and whether the primary output is DGP."""
    info = law.info
    details = {}
    for o in law.available_outputs:
        s = law.spec(o)
        details[o] = {"inputs": list(s.inputs), "units": _units(law).get(o, s.units), "description": s.description,
                      "dgp": s.dgp, "dgp_constant_inputs": list(s.constant_inputs), "dgp_note": s.dgp_note}
    return {
        "id": law.id, "form": law.form, "title": info.title, "citation": info.citation, "status": info.status,
        "params_counts": info.params_counts, "tokens_counts": info.tokens_counts, "loss_units": info.loss_units,
        "validity": info.validity, "source": info.source, "units": _units(law),
        "coefficients": dict(law.coefficients), "coefficient_sources": dict(info.sources),
        "output": law.output, "inputs": list(law.inputs),
        "outputs": {o: list(law.inputs_for(o)) for o in law.available_outputs},
        "output_details": details, "dgp": law.dgp,
        "bootstrap_samples": 0 if law.bootstrap is None else len(next(iter(law.bootstrap.values()))),
    }


def _plain(v: np.ndarray) -> float | list:
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()


def evaluate(law: Law, output: str | None = None, **inputs: Any) -> dict[str, float]:
    """Every output of ``law`` computable from ``inputs`` (or only ``output``), as name -> value.

    Raises LawError with ``field`` naming the offending input when an input is unknown to the law, not
    positive and finite, not used by any output computable from the given inputs, or when an output needs an
    input that was not given. Array inputs give lists.
    """
    outputs = law.available_outputs
    allowed = list(dict.fromkeys(k for o in outputs for k in law.inputs_for(o)))
    if output is not None:
        if output not in outputs:
            raise LawError(f"law {law.id}: unknown output {output!r}; outputs: {', '.join(outputs)}", field="output")
        targets = [output]
    else:
        targets = list(outputs)
    for k in inputs:
        if k not in allowed:
            raise LawError(f"law {law.id}: unknown input {k!r}; inputs: {', '.join(allowed)}", field=k)
    law._numeric_inputs(inputs)  # positive, finite, numeric: one-line LawError naming the input
    if output is not None:
        need = law.inputs_for(output)
        missing = [k for k in need if k not in inputs]
        unused = [k for k in inputs if k not in need]
        if missing or unused:
            raise LawError(f"law {law.id}: output {output} takes inputs {', '.join(need)}"
                           + (f"; missing {', '.join(missing)}" if missing else "")
                           + (f"; unexpected {', '.join(unused)}" if unused else ""),
                           field=(missing or unused)[0])
        return {output: _plain(law.predict(output, **inputs))}
    computable = [o for o in targets if all(k in inputs for k in law.inputs_for(o))]
    if not computable:
        needs = "; ".join(f"{o} needs {', '.join(law.inputs_for(o))}" for o in outputs)
        # the output sharing most inputs with those given (the primary on ties) names the first missing input
        best = max(outputs, key=lambda o: (len(set(inputs) & set(law.inputs_for(o))), o == law.output))
        first = next(k for k in law.inputs_for(best) if k not in inputs)
        given = ", ".join(inputs) if inputs else "nothing"
        raise LawError(f"law {law.id}: no output computable from {given}; {needs}", field=first)
    used = {k for o in computable for k in law.inputs_for(o)}
    for k in inputs:
        if k not in used:
            wants = "; ".join(f"{o} also needs {', '.join(x for x in law.inputs_for(o) if x not in inputs)}"
                              for o in outputs if k in law.inputs_for(o))
            raise LawError(f"law {law.id}: input {k} is unused ({wants})", field=k)
    out = {}
    for o in computable:
        v = _plain(law.predict(o, **{k: inputs[k] for k in law.inputs_for(o)}))
        if isinstance(v, float) and not math.isfinite(v):
            raise LawError(f"law {law.id}: {o} is not finite at these inputs", field=law.inputs_for(o)[0])
        out[o] = v
    return out
