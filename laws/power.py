"""Power laws y = k·x1^a_x1·x2^a_x2··· written by ``planner fit --form power`` (laws/fit.py).

The inputs are the run columns the fit used (e.g. params, tokens) and the output the fitted column (e.g. lr,
batch_tokens); both come from the law file (``a_<x>`` coefficients, ``output = "<y>"``), so each combination
gets its own Law subclass. A monomial, so the law is also a geometric-program expression.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, ClassVar

from laws.base import Law, LawError, Output

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class PowerLaw(Law):
    """Base of the fitted power laws (see :func:`power_law_class`)."""

    form: ClassVar[str] = "power"


@lru_cache(maxsize=64)
def power_law_class(inputs: tuple[str, ...], output: str) -> type[Law]:
    """The Law subclass for y = k·∏ x^a_x over ``inputs`` predicting ``output``."""
    for name in (*inputs, output):
        if not _NAME.match(name) or name == "k":
            raise LawError(f"power law: {name!r} is not a valid input/output name (lowercase letters, digits, _)")
    if not inputs:
        raise LawError("power law: needs at least one exponent a_<input>")
    names = ("k", *(f"a_{x}" for x in inputs))

    def formula(self, **kw: Any) -> Any:
        out = kw["k"]
        for x in inputs:
            out = out * kw[x] ** kw[f"a_{x}"]
        return out

    spec = Output(output, inputs, names, units="as in the fitted runs",
                  description=f"{output} = k·" + "·".join(f"{x}^a_{x}" for x in inputs))
    return type(f"PowerLaw_{output}", (PowerLaw,), {
        "__module__": __name__, "coefficient_names": names, "output_specs": (spec,), "formula": formula,
    })


def power_law_from_coefficients(coefficients: dict[str, Any], output: str) -> type[Law]:
    """The class for a law file's coefficients (``k`` and ``a_<x>`` per input)."""
    inputs = tuple(k[2:] for k in coefficients if k.startswith("a_"))
    return power_law_class(inputs, output)
