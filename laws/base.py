"""The law object: named coefficients, units and a citation, evaluated as numpy or as a cvxpy expression.

A law predicts one or more named outputs (``outputs``); the first is the primary ``output`` ("loss" for loss
laws), and ``inputs`` are the primary output's inputs. Each output is an :class:`Output` spec naming its inputs,
the coefficients it uses and whether it is a geometric-program (DGP) expression. Its formula is the method
``formula`` (primary) or ``formula_<name>``, written with ``+ * / **`` only where the output is DGP, so that
``predict`` (numpy) and ``expr`` (cvxpy) share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from numbers import Real
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from planner_errors import FieldError


class LawError(FieldError):
    """Unknown law id, malformed law file or bad law input; ``field`` names the offending option."""

    def __init__(self, message: str, field: str = "law"):
        super().__init__(message, field)


@dataclass(frozen=True)
class LawInfo:
    """Who published the law, where, and what its symbols count.

    ``units`` maps coefficient, input and output names to their units; ``sources`` maps coefficient names to
    the table/equation they come from and how the value was verified (in words).
    """

    id: str
    form: str
    title: str
    citation: str
    status: str
    params_counts: str = ""
    tokens_counts: str = ""
    loss_units: str = ""
    validity: str = ""
    source: str = "built-in"
    units: dict[str, str] = field(default_factory=dict, hash=False)
    sources: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Output:
    """One quantity a law predicts.

    ``coefficients``: the coefficients its formula takes (None: all of ``coefficient_names``); an output whose
    optional coefficients a law entry does not give is unavailable for that entry. ``dgp``: whether ``expr``
    gives a log-log convex cvxpy expression; ``constant_inputs`` must then be plain numbers, not cvxpy
    expressions. ``method``: the formula method ("" means ``formula`` for the primary output and
    ``formula_<name>`` otherwise).
    """

    name: str
    inputs: tuple[str, ...]
    coefficients: tuple[str, ...] | None = None
    dgp: bool = True
    constant_inputs: tuple[str, ...] = ()
    method: str = ""
    units: str = ""
    description: str = ""
    dgp_note: str = ""


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


_INF = float("inf")


def _checked_fast(v: Any, lo: float | None) -> np.ndarray | None:
    """``v`` as a float array when it is a plain float or int (not bool) or a float ndarray, finite and above the
    minimum (``lo``, inclusive; default: positive); None for anything else, which the full checks then judge
    (and reject with their own message). Same array as ``np.asarray(v, dtype=float)``."""
    t = type(v)
    if t is float or t is int or t is np.float64:
        ok = (lo <= v < _INF) if lo is not None else (0 < v < _INF)   # NaN fails both
        return np.asarray(v, dtype=float) if ok else None
    if t is np.ndarray and v.dtype == np.float64:
        ok = (v >= lo) & (v < _INF) if lo is not None else (v > 0) & (v < _INF)
        return v if ok.all() else None
    return None


@dataclass(frozen=True)
class Law:
    """Base class: a frozen law with named coefficients.

    Single-output subclasses set ``coefficient_names``, ``inputs`` (and ``output``, default "loss") and
    implement ``formula``. Multi-output subclasses set ``output_specs`` (primary first) and implement
    ``formula`` plus ``formula_<name>`` for the others; ``optional_coefficient_names`` may hold coefficients
    that only some outputs need. ``bootstrap`` holds optional equal-length arrays of coefficient samples.
    """

    info: LawInfo
    coefficients: Mapping[str, float]
    bootstrap: Mapping[str, np.ndarray] | None = field(default=None, compare=False)

    form: ClassVar[str] = ""
    coefficient_names: ClassVar[tuple[str, ...]] = ()
    optional_coefficient_names: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[tuple[str, ...]] = ()
    output: ClassVar[str] = "loss"
    dgp: ClassVar[bool] = True
    output_specs: ClassVar[tuple[Output, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    # Smallest allowed value of an input (default: any positive number).
    input_minimum: ClassVar[Mapping[str, float]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if own.get("output_specs"):
            specs = tuple(own["output_specs"])
            cls.output, cls.inputs, cls.dgp = specs[0].name, tuple(specs[0].inputs), specs[0].dgp
        elif any(k in own for k in ("output", "inputs", "dgp")) or not cls.output_specs:
            specs = (Output(cls.output, tuple(cls.inputs), None, cls.dgp),)
        else:
            specs = cls.output_specs
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise TypeError(f"{cls.__name__}: duplicate output names {names}")
        cls.output_specs = specs
        cls.outputs = tuple(names)

    def __post_init__(self) -> None:
        allowed = self.coefficient_names + self.optional_coefficient_names
        missing = [k for k in self.coefficient_names if k not in self.coefficients]
        extra = [k for k in self.coefficients if k not in allowed]
        if missing or extra:
            raise LawError(
                f"law {self.info.id}: form {self.form!r} needs coefficients {', '.join(self.coefficient_names)}"
                + (f" (optional: {', '.join(self.optional_coefficient_names)})" if self.optional_coefficient_names
                   else "")
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(extra)}" if extra else "")
            )
        for k, v in self.coefficients.items():
            if isinstance(v, bool) or not (isinstance(v, Real) and np.isfinite(v)):
                raise LawError(f"law {self.info.id}: coefficient {k} must be a finite number, got {v!r}")
        for spec in self.output_specs:  # optional coefficients come in complete groups per output
            need = spec.coefficients or ()
            have = [k for k in need if k in self.coefficients]
            if have and len(have) != len(need):
                absent = [k for k in need if k not in self.coefficients]
                raise LawError(f"law {self.info.id}: output {spec.name} needs coefficients {', '.join(need)}; "
                               f"missing {', '.join(absent)}")
        object.__setattr__(self, "coefficients", MappingProxyType({k: float(v) for k, v in self.coefficients.items()}))
        if self.bootstrap is not None:
            if not isinstance(self.bootstrap, Mapping):
                raise LawError(f"law {self.info.id}: bootstrap must be a table of arrays")
            try:
                arrays = {k: np.asarray(v, dtype=float) for k, v in self.bootstrap.items()}
            except (TypeError, ValueError):
                raise LawError(f"law {self.info.id}: bootstrap samples must be numbers") from None
            lengths = {a.shape for a in arrays.values()}
            if set(arrays) != set(self.coefficients) or len(lengths) != 1 or len(next(iter(lengths))) != 1:
                raise LawError(
                    f"law {self.info.id}: bootstrap must hold equal-length 1-D arrays for "
                    f"{', '.join(self.coefficients)}"
                )
            if not all(np.all(np.isfinite(a)) for a in arrays.values()):
                raise LawError(f"law {self.info.id}: bootstrap samples must be finite")
            object.__setattr__(self, "bootstrap", MappingProxyType(arrays))
        # per available output: (spec, its input names, formula method name, its coefficients) -- what predict
        # looks up on every call, computed once (the law is frozen)
        ready = {}
        for spec in self.output_specs:
            if spec.name in self.available_outputs:
                ready[spec.name] = (spec, frozenset(spec.inputs), self._formula_name(spec),
                                    MappingProxyType(self._coefficients_of(spec, self.coefficients)))
        object.__setattr__(self, "_ready", MappingProxyType(ready))

    @property
    def id(self) -> str:
        return self.info.id

    @cached_property
    def key(self) -> tuple:
        """(form, id, coefficients sorted by name): what fixes the law's formula (a compiled program's key)."""
        return (self.form, self.info.id, tuple(sorted(self.coefficients.items())))

    # ------------------------------------------------------------------ outputs
    @property
    def available_outputs(self) -> tuple[str, ...]:
        """The outputs this entry can compute (those whose coefficients it gives), primary first."""
        return tuple(s.name for s in self.output_specs
                     if s.coefficients is None or all(k in self.coefficients for k in s.coefficients))

    def spec(self, output: str | None = None) -> Output:
        """The :class:`Output` spec of ``output`` (default: the primary output)."""
        name = self.output if output is None else output
        for s in self.output_specs:
            if s.name == name:
                if name not in self.available_outputs:
                    raise LawError(f"law {self.id}: output {name} needs coefficients "
                                   f"{', '.join(s.coefficients or ())}, which this entry does not give; "
                                   f"available outputs: {', '.join(self.available_outputs)}", field="output")
                return s
        raise LawError(f"law {self.id}: unknown output {name!r}; outputs: {', '.join(self.available_outputs)}",
                       field="output")

    def inputs_for(self, output: str | None = None) -> tuple[str, ...]:
        """The inputs ``output`` (default: primary) is a function of."""
        return tuple(self.spec(output).inputs)

    def _formula_name(self, spec: Output) -> str:
        return spec.method or ("formula" if spec.name == self.output else f"formula_{spec.name}")

    def _formula_of(self, spec: Output):
        return getattr(self, self._formula_name(spec))

    def _coefficients_of(self, spec: Output, source: Mapping[str, Any]) -> dict[str, Any]:
        names = spec.coefficients if spec.coefficients is not None else self.coefficient_names
        return {k: source[k] for k in names}

    def formula(self, **kw: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_inputs(self, kw: Mapping[str, Any], spec: Output | None = None) -> None:
        spec = spec or self.spec()
        missing = [k for k in spec.inputs if k not in kw]
        extra = [k for k in kw if k not in spec.inputs]
        if missing or extra:
            what = f"law {self.id}" if spec.name == self.output else f"law {self.id} output {spec.name}"
            raise LawError(
                f"{what} takes inputs {', '.join(spec.inputs)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(extra)}" if extra else ""),
                field=(missing or extra)[0],
            )

    def _numeric_inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        arrays = {}
        minimum = self.input_minimum
        for k, v in inputs.items():
            if type(v) is float and 0.0 < v < _INF and not minimum:   # the common case, as _checked_fast takes it
                arrays[k] = np.asarray(v, dtype=float)
                continue
            a = _checked_fast(v, minimum.get(k))
            if a is not None:   # a plain finite number or float array in range: what the checks below accept
                arrays[k] = a
                continue
            try:
                a = np.asarray(v, dtype=float)
            except (TypeError, ValueError):
                raise LawError(f"law {self.id}: {k} must be a number, got {_one_line(repr(v))[:60]}",
                               field=k) from None
            lo = self.input_minimum.get(k)
            if lo is not None:
                if not np.all(np.isfinite(a)) or np.any(a < lo):
                    raise LawError(f"law {self.id}: {k} must be finite and at least {lo:g}", field=k)
            elif not np.all(np.isfinite(a)) or np.any(a <= 0):
                raise LawError(f"law {self.id}: {k} must be positive and finite", field=k)
            arrays[k] = a
        return arrays

    def predict(self, output: str | None = None, **inputs: Any) -> np.ndarray:
        """Evaluate ``output`` (default: primary) with numpy, vectorized over array inputs."""
        ready = self._ready.get(self.output if output is None else output)
        if ready is None:
            self.spec(output)   # raises: unknown or unavailable output
        spec, names, method, coefficients = ready
        if inputs.keys() != names:
            self._check_inputs(inputs, spec)
        arrays = self._numeric_inputs(inputs)
        return np.asarray(getattr(self, method)(**arrays, **coefficients))

    def evaluate(self, output: str | None = None, **inputs: Any) -> np.ndarray:
        """Same as :meth:`predict`: ``law.evaluate("learning_rate", params=N, tokens=D)``."""
        return self.predict(output, **inputs)

    def predict_bootstrap(self, output: str | None = None, **inputs: Any) -> np.ndarray | None:
        """``output`` evaluated at every bootstrap sample of the coefficients (None without samples)."""
        if self.bootstrap is None:
            return None
        spec = self.spec(output)
        self._check_inputs(inputs, spec)
        values = {k: float(v) for k, v in self._numeric_inputs(inputs).items()}
        return np.asarray(self._formula_of(spec)(**values, **self._coefficients_of(spec, self.bootstrap)))

    def expr(self, output: str | None = None, **variables: Any) -> Any:
        """The same formula as a cvxpy expression of positive variables (log-log convex)."""
        ready = self._ready.get(self.output if output is None else output)
        if ready is None:
            self.spec(output)   # raises: unknown or unavailable output
        spec, names, method, coefficients = ready
        if not spec.dgp:
            what = f"law {self.id}" if spec.name == self.output else f"law {self.id} output {spec.name}"
            note = f" ({spec.dgp_note})" if spec.dgp_note else ""
            raise LawError(f"{what} is not representable in a geometric program{note}")
        if variables.keys() != names:
            self._check_inputs(variables, spec)
        if not spec.constant_inputs:
            return getattr(self, method)(**variables, **coefficients)
        values = dict(variables)
        for k in spec.constant_inputs:
            v = values[k]
            scalar = isinstance(v, Real | np.number) or (isinstance(v, np.ndarray) and v.ndim == 0)
            if not scalar or isinstance(v, bool):
                raise LawError(f"law {self.id}: output {spec.name} is a geometric program only for a fixed {k}; "
                               f"pass {k} as a number, not a cvxpy expression", field=k)
            values[k] = float(self._numeric_inputs({k: v})[k])
        return getattr(self, method)(**values, **coefficients)

    def with_coefficients(self, **coefficients: float) -> Law:
        """A copy with some coefficients replaced (no bootstrap samples)."""
        return replace(self, coefficients={**self.coefficients, **coefficients}, bootstrap=None)
