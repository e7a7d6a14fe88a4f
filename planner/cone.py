"""The program's compiled cone program, applied and solved without cvxpy.

cvxpy compiles a DPP geometric program once into a parametric cone program (``get_problem_data(gp=True,
enforce_dpp=True)``): with theta the vector of log-Parameters (and a trailing 1), the solver's data are affine in
theta, ``A.data = MA @ theta``, ``b[rows] = Mb @ theta``, ``(c, d) = Mq @ theta`` for a fixed sparsity of A and
fixed cones (zero, nonnegative, second-order, exponential). ``ConeProgram`` keeps those maps as plain numpy
arrays, and where each log-variable sits in x and each named constraint's dual sits in the dual vector z; both
are read off cvxpy's own inversion chain at compile time (a coded probe solution, checked exactly), so the direct
solve returns what cvxpy would: variables exp(x[i]), duals z[j], objective exp(obj + d).

``solve`` needs only numpy and clarabel (no scipy, no cvxpy): a cold run with the program cached on disk
(planner.program_cache) never imports cvxpy. ``compile_cone`` (imports cvxpy) builds one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# Clarabel's status names -> cvxpy's status strings (cvxpy.reductions.solvers.conic_solvers.clarabel_conif).
CLARABEL_STATUS = {
    "Solved": "optimal", "PrimalInfeasible": "infeasible", "DualInfeasible": "unbounded",
    "AlmostSolved": "optimal_inaccurate", "AlmostPrimalInfeasible": "infeasible_inaccurate",
    "AlmostDualInfeasible": "unbounded_inaccurate", "MaxIterations": "user_limit", "MaxTime": "user_limit",
}
FORMAT = 1   # the layout of the arrays below; bumped when it changes (part of the disk cache key)


class _CSC:
    """A compressed-sparse-column matrix as clarabel reads it (data, indices, indptr, shape), without scipy.
    Only built from canonical data: indices sorted and unique within each column (checked at compile time)."""

    has_canonical_format = True
    has_sorted_indices = True
    format = "csc"

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]):
        self.data, self.indices, self.indptr, self.shape = data, indices, indptr, shape
        self.nnz = len(data)


@dataclass(frozen=True)
class SparseMap:
    """A CSR matrix (rows × theta) as three arrays: ``apply(theta)`` is the matrix-vector product."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    rows: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "_row_of", np.repeat(np.arange(self.rows), np.diff(self.indptr)))

    def apply(self, theta: np.ndarray) -> np.ndarray:
        return np.bincount(self._row_of, weights=self.data * theta[self.indices], minlength=self.rows)


@dataclass(frozen=True)
class ConeProgram:
    """One compiled program: affine maps from log-Parameters to the conic data, cones, and where answers sit.

    ``params``: every Parameter name of the program (all are checked positive, as cvxpy does);
    ``theta_col[i]``: the column of log(params[i]) in theta, -1 when the Parameter does not reach the data.
    ``variables`` / ``var_col``: each named variable's log sits at x[var_col[i]].
    ``constraints`` / ``dual_row`` / ``dual_sign``: each named constraint's dual is dual_sign·z[dual_row].
    """

    params: tuple[str, ...]
    theta_col: np.ndarray
    n_theta: int
    const_col: int
    a_map: SparseMap          # values of -A's nonzeros (the solver's sign)
    a_indices: np.ndarray
    a_indptr: np.ndarray
    b_map: SparseMap
    b_rows: np.ndarray
    q_map: SparseMap          # c (n entries) then the objective offset d
    m: int
    n: int
    zero: int
    nonneg: int
    soc: tuple[int, ...]
    exp: int
    variables: tuple[str, ...]
    var_col: np.ndarray
    constraints: tuple[str, ...]
    dual_row: np.ndarray
    dual_sign: np.ndarray

    def __post_init__(self) -> None:
        # What every ``data`` call reuses, computed once (the program is frozen): the Parameters that reach the
        # data, and the three maps as one (A's values, then b by its rows, then c and d), applied by one bincount
        # that sums each row's entries in the same order as the maps apart, so the same numbers bit for bit.
        # b's map rows land on their rows of b (b_rows, distinct; otherwise b is scattered as before).
        used = np.flatnonzero(self.theta_col >= 0)
        a_rows, b_map = self.a_map.rows, self.b_map
        b_direct = len(np.unique(self.b_rows)) == len(self.b_rows)
        b_len = self.m if b_direct else b_map.rows
        b_row_of = self.b_rows[b_map._row_of] if b_direct else b_map._row_of
        fused = {
            "_used": used, "_used_cols": self.theta_col[used], "_b_direct": b_direct,
            "_fused_data": np.concatenate([self.a_map.data, b_map.data, self.q_map.data]),
            "_fused_indices": np.concatenate([self.a_map.indices, b_map.indices, self.q_map.indices]),
            "_fused_row_of": np.concatenate([self.a_map._row_of, b_row_of + a_rows,
                                             self.q_map._row_of + a_rows + b_len]),
            "_fused_rows": a_rows + b_len + self.q_map.rows, "_q_start": a_rows + b_len,
            "_clarabel_parts": None,
        }
        for k, v in fused.items():
            object.__setattr__(self, k, v)

    # ---- the data for one set of Parameter values

    def theta(self, values: dict[str, float]) -> np.ndarray:
        """theta = (log of each Parameter in cvxpy's column order, 1). ValueError for a non-positive value, as
        cvxpy's ``Parameter(pos=True)`` raises; KeyError for a missing one."""
        vals = np.fromiter([values[name] for name in self.params], dtype=float, count=len(self.params))
        if not vals.min(initial=math.inf) > 0.0:   # NaN too
            name = self.params[int(np.argmin(vals > 0.0))]
            raise ValueError(f"Parameter value must be positive ({name} = {values[name]!r}).")
        th = np.zeros(self.n_theta)
        th[self.const_col] = 1.0
        th[self._used_cols] = np.log(vals[self._used])  # numpy's log, as cvxpy takes it (bit for bit)
        return th

    def data(self, values: dict[str, float]) -> tuple[np.ndarray, _CSC, np.ndarray, float]:
        """(c, A, b, d) of ``minimize c·x + d  s.t.  A x + s = b, s in K`` (clarabel's form)."""
        th = self.theta(values)
        out = np.bincount(self._fused_row_of, weights=self._fused_data * th[self._fused_indices],
                          minlength=self._fused_rows)
        bs, qs = self.a_map.rows, self._q_start
        a = _CSC(out[:bs], self.a_indices, self.a_indptr, (self.m, self.n))
        if self._b_direct:
            b = out[bs:qs]
        else:
            b = np.zeros(self.m)
            b[self.b_rows] = out[bs:qs]
        return out[qs:qs + self.n], a, b, float(out[qs + self.n])

    # ---- solving

    def cones(self) -> list[Any]:
        import clarabel

        out: list[Any] = []
        if self.zero:
            out.append(clarabel.ZeroConeT(self.zero))
        if self.nonneg:
            out.append(clarabel.NonnegativeConeT(self.nonneg))
        out += [clarabel.SecondOrderConeT(k) for k in self.soc]
        out += [clarabel.ExponentialConeT() for _ in range(self.exp)]
        return out

    def _clarabel(self) -> tuple[_CSC, list[Any], Any, list[int], list[int], dict]:
        """(the empty P, the cones, quiet default settings, A's row indices and column pointers as lists, and
        the settings built so far per changed options), built on first use and shared by every solve: clarabel
        copies each into the solver it builds (settings and cones are extracted by value, matrices and vectors
        read into its own vectors, from lists faster than from numpy arrays) and nothing here changes them, so
        threads may share them."""
        parts = self._clarabel_parts
        if parts is None:
            p = _CSC([], [], [0] * (self.n + 1), (self.n, self.n))
            parts = (p, self.cones(), _quiet_settings({}), self.a_indices.tolist(), self.a_indptr.tolist(), {})
            object.__setattr__(self, "_clarabel_parts", parts)   # two threads may both build it: the same parts
        return parts

    def solve_clarabel(self, values: dict[str, float]) -> ConeAnswer:
        """Solve with Clarabel's default settings (as cvxpy calls it). Raises whatever clarabel raises."""
        return self.solve_data(*self.data(values))

    def solve_data(self, c: np.ndarray, a: _CSC, b: np.ndarray, d: float, options: dict | None = None) -> ConeAnswer:
        """Solve ``data``'s output with Clarabel (default settings, quiet; ``options``: settings to change)."""
        import clarabel

        p, cones, settings, a_indices, a_indptr, changed = self._clarabel()
        if options:
            key = tuple(sorted(options.items()))
            if key not in changed:   # built once per program and options (threads may both build it: the same)
                changed[key] = _quiet_settings(options)
            settings = changed[key]
        if a.indices is not self.a_indices or a.indptr is not self.a_indptr:   # not this program's sparsity
            a_indices, a_indptr = np.asarray(a.indices).tolist(), np.asarray(a.indptr).tolist()
        start = time.perf_counter()
        # the numbers handed over as lists (what clarabel reads them into), inside the solver's time
        a_list = _CSC(np.asarray(a.data, dtype=float).tolist(), a_indices, a_indptr, a.shape)
        solver = clarabel.DefaultSolver(p, np.asarray(c, dtype=float).tolist(), a_list,
                                        np.asarray(b, dtype=float).tolist(), cones, settings)
        result = solver.solve()
        seconds = time.perf_counter() - start   # the solver's own time: its setup and iterations
        status = CLARABEL_STATUS.get(str(result.status), "solver_error")
        return self.answer(status, np.asarray(result.x, dtype=float), np.asarray(result.z, dtype=float),
                           float(result.obj_val) + d, seconds)

    def answer(self, status: str, x: np.ndarray, z: np.ndarray, objective: float, seconds: float) -> ConeAnswer:
        """The named variables, duals and the DGP objective from the solver's vectors."""
        if status not in ("optimal", "optimal_inaccurate", "user_limit"):  # cvxpy's SOLUTION_PRESENT
            value = {"infeasible": math.inf, "infeasible_inaccurate": math.inf,
                     "unbounded": 0.0, "unbounded_inaccurate": 0.0}.get(status, math.nan)
            return ConeAnswer(status, {}, {}, value, seconds)
        with np.errstate(over="ignore", under="ignore"):   # an extreme answer is inf or 0, as in cvxpy
            exps = np.exp(x[self.var_col])
            objective_value = float(np.exp(objective))
        variables = dict(zip(self.variables, exps.tolist(), strict=True))
        duals = dict(zip(self.constraints, (self.dual_sign * z[self.dual_row]).tolist(), strict=True))
        return ConeAnswer(status, variables, duals, objective_value, seconds)

    # ---- arrays for the disk cache (planner.program_cache)

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able header fields, numeric arrays) that ``from_arrays`` reads back."""
        header = {"params": list(self.params), "n_theta": self.n_theta, "const_col": self.const_col, "m": self.m,
                  "n": self.n, "zero": self.zero, "nonneg": self.nonneg, "soc": list(self.soc), "exp": self.exp,
                  "variables": list(self.variables), "constraints": list(self.constraints),
                  "rows": {"a": self.a_map.rows, "b": self.b_map.rows, "q": self.q_map.rows}}
        arrays = {"theta_col": self.theta_col, "a_indices": self.a_indices, "a_indptr": self.a_indptr,
                  "b_rows": self.b_rows, "var_col": self.var_col, "dual_row": self.dual_row,
                  "dual_sign": self.dual_sign}
        for name, sm in (("a", self.a_map), ("b", self.b_map), ("q", self.q_map)):
            arrays.update({f"{name}_map_data": sm.data, f"{name}_map_indices": sm.indices,
                           f"{name}_map_indptr": sm.indptr})
        return header, arrays

    @classmethod
    def from_arrays(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> ConeProgram:
        """The program from ``to_arrays`` output; ValueError unless every array is consistent (indices within
        bounds, CSC columns sorted and unique, finite values): a damaged cache file is never solved."""
        ints = {k: np.asarray(arrays[k]) for k in ("theta_col", "a_indices", "a_indptr", "b_rows", "var_col",
                                                     "dual_row", "a_map_indices", "b_map_indices", "q_map_indices",
                                                     "a_map_indptr", "b_map_indptr", "q_map_indptr")}
        for k, v in ints.items():
            if v.ndim != 1 or v.dtype.kind != "i":
                raise ValueError(f"{k}: not a 1-d integer array")
        ints = {k: v.astype(np.int64) for k, v in ints.items()}
        floats = {k: np.asarray(arrays[k]) for k in ("a_map_data", "b_map_data", "q_map_data", "dual_sign")}
        for k, v in floats.items():
            if v.ndim != 1 or v.dtype.kind != "f" or not np.all(np.isfinite(v)):
                raise ValueError(f"{k}: not a 1-d finite float array")
        floats = {k: v.astype(np.float64) for k, v in floats.items()}
        m, n, n_theta = int(header["m"]), int(header["n"]), int(header["n_theta"])
        rows = header["rows"]
        maps = {}
        for name in ("a", "b", "q"):
            sm = SparseMap(floats[f"{name}_map_data"], ints[f"{name}_map_indices"], ints[f"{name}_map_indptr"],
                           int(rows[name]))
            _check_compressed(sm.indptr, sm.indices, sm.rows, n_theta, len(sm.data), name)
            maps[name] = sm
        _check_compressed(ints["a_indptr"], ints["a_indices"], n, m, maps["a"].rows, "A")
        for col in range(n):
            seg = ints["a_indices"][ints["a_indptr"][col]:ints["a_indptr"][col + 1]]
            if np.any(np.diff(seg) <= 0):
                raise ValueError("A: row indices not sorted and unique within a column")
        params, variables, constraints = (tuple(str(x) for x in header[k]) for k in ("params", "variables",
                                                                                     "constraints"))
        checks = [
            (len(ints["theta_col"]) == len(params), "theta_col length"),
            (np.all((ints["theta_col"] >= -1) & (ints["theta_col"] < n_theta)), "theta_col range"),
            (0 <= int(header["const_col"]) < n_theta, "const_col"),
            (maps["b"].rows == len(ints["b_rows"]) and np.all((ints["b_rows"] >= 0) & (ints["b_rows"] < m)),
             "b rows"),
            (maps["q"].rows == n + 1, "q rows"),
            (len(ints["var_col"]) == len(variables) and np.all((ints["var_col"] >= 0) & (ints["var_col"] < n)),
             "var_col"),
            (len(ints["dual_row"]) == len(constraints) == len(floats["dual_sign"])
             and np.all((ints["dual_row"] >= 0) & (ints["dual_row"] < m)), "dual_row"),
            (int(header["zero"]) + int(header["nonneg"]) + sum(int(k) for k in header["soc"])
             + 3 * int(header["exp"]) == m, "cone dimensions"),
        ]
        for ok, what in checks:
            if not ok:
                raise ValueError(f"inconsistent {what}")
        return cls(params, ints["theta_col"], n_theta, int(header["const_col"]), maps["a"], ints["a_indices"],
                   ints["a_indptr"], maps["b"], ints["b_rows"], maps["q"], m, n, int(header["zero"]),
                   int(header["nonneg"]), tuple(int(k) for k in header["soc"]), int(header["exp"]), variables,
                   ints["var_col"], constraints, ints["dual_row"], floats["dual_sign"])


def _check_compressed(indptr: np.ndarray, indices: np.ndarray, majors: int, minors: int, nnz: int, name: str
                      ) -> None:
    if (len(indptr) != majors + 1 or indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0)
            or len(indices) != nnz or (nnz and (indices.min() < 0 or indices.max() >= minors))):
        raise ValueError(f"{name}: inconsistent compressed sparse structure")


@dataclass
class ConeAnswer:
    """A solve's status (cvxpy's names), named variables, named duals, the DGP objective, solver seconds."""

    status: str
    variables: dict[str, float]
    duals: dict[str, float]
    value: float
    solver_seconds: float


def _quiet_settings(options: dict) -> Any:
    """Clarabel's default settings, quiet, with ``options`` (setting name -> value) changed."""
    import clarabel

    settings = clarabel.DefaultSettings()
    settings.verbose = False
    for k, v in options.items():
        setattr(settings, k, v)
    return settings


# ---------------------------------------------------------------- compiling (cvxpy)


def compile_cone(problem: Any, variables: dict[str, Any], constraints: dict[str, Any], params: dict[str, Any]
                 ) -> ConeProgram:
    """Compile a DPP geometric program for Clarabel and read off its parametric cone program.

    Checked before it is returned (ValueError otherwise): the maps reproduce cvxpy's own data at a probe point,
    and every named variable and dual maps to a single solver entry through cvxpy's inversion chain."""
    import cvxpy as cp
    import scipy.sparse as sp
    from cvxpy.reductions.dgp2dcp.dgp2dcp import Dgp2Dcp

    rng = np.random.default_rng(20260)
    saved = {k: p.value for k, p in params.items()}
    try:
        for p in params.values():  # a generic probe point (compilation needs values)
            p.value = float(np.exp(rng.uniform(-2.0, 2.0)))
        data, chain, inverse = problem.get_problem_data(cp.CLARABEL, gp=True, enforce_dpp=True,
                                                            solver_opts={})
        pp = data["param_prob"]
        dims = data["dims"]
        if dims.psd or dims.p3d or getattr(dims, "pnd", None) or pp.P is not None:
            raise ValueError("the program has cones the direct path does not handle")
        n = int(pp.x.size)
        pp.reduced_A.cache(False)
        reduced = sp.csr_array(pp.reduced_A.reduced_mat)
        indices, indptr, shape = pp.reduced_A.problem_data_index
        m = int(shape[0])
        if tuple(shape) != (m, n + 1):
            raise ValueError("unexpected problem data shape")
        indices, indptr = np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)
        split = int(indptr[n])
        a_map = _sparse_map(-reduced[:split])
        b_map = _sparse_map(reduced[split:])
        q_map = _sparse_map(sp.csr_array(pp.q))
        n_theta = int(pp.total_param_size) + 1
        const_col = int(pp.param_id_to_col[-1]) if -1 in pp.param_id_to_col else n_theta - 1
        dgp = chain.get(Dgp2Dcp)
        new_id = {orig: ids[0] for orig, ids in dgp.param_id_map.items()}
        names = tuple(params)
        theta_col = np.array([int(pp.param_id_to_col.get(new_id.get(params[k].id), -1)) for k in names],
                             dtype=np.int64)
        for k, col in zip(names, theta_col, strict=True):
            if col >= 0 and pp.param_id_to_size[new_id[params[k].id]] != 1:
                raise ValueError(f"Parameter {k} is not a scalar")
        cone = ConeProgram(names, theta_col, n_theta, const_col, a_map, indices[:split], indptr[: n + 1], b_map,
                           indices[split:], q_map, m, n, int(dims.zero), int(dims.nonneg),
                           tuple(int(k) for k in dims.soc), int(dims.exp), (), np.zeros(0, dtype=np.int64), (),
                           np.zeros(0, dtype=np.int64), np.zeros(0))
        _check_data(cone, {k: float(p.value) for k, p in params.items()}, data)
        var_col = _probe_variables(chain, inverse, variables, n, m)
        dual_row, dual_sign = _probe_duals(chain, inverse, constraints, n, m)
    finally:
        for k, p in params.items():
            p.value = saved[k]
    return replace(cone, variables=tuple(variables), var_col=var_col, constraints=tuple(constraints),
                   dual_row=dual_row, dual_sign=dual_sign)


def _sparse_map(mat: Any) -> SparseMap:
    import scipy.sparse as sp

    csr = sp.csr_array(mat)
    csr.sum_duplicates()
    return SparseMap(np.asarray(csr.data, dtype=np.float64), np.asarray(csr.indices, dtype=np.int64),
                     np.asarray(csr.indptr, dtype=np.int64), int(csr.shape[0]))


def _check_data(cone: ConeProgram, values: dict[str, float], data: dict[str, Any]) -> None:
    """The maps give cvxpy's own (c, A, b) at the probe values: the same sparsity and values to rounding."""
    import scipy.sparse as sp

    c, a, b, _ = cone.data(values)
    ref_a = sp.csc_array(data["A"])
    ref_a.sort_indices()
    mine = sp.csc_array((a.data, a.indices, a.indptr), shape=a.shape)
    for col in range(cone.n):
        seg = a.indices[a.indptr[col]:a.indptr[col + 1]]
        if np.any(np.diff(seg) <= 0):
            raise ValueError("A's row indices are not sorted and unique within a column")
    scale = 1.0 + float(np.max(np.abs(ref_a.data), initial=0.0))
    ok = (ref_a.shape == mine.shape
          and abs(ref_a - mine).max() <= 1e-12 * scale
          and np.allclose(b, data["b"], rtol=1e-12, atol=1e-12 * (1 + np.max(np.abs(b), initial=0.0)))
          and np.allclose(c, data["c"], rtol=1e-12, atol=1e-12))
    if not ok:
        raise ValueError("the compiled maps do not reproduce cvxpy's problem data")


def _fake_result(x: np.ndarray, z: np.ndarray) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(status="Solved", x=list(x), z=list(z), s=list(np.zeros_like(z)), obj_val=0.0,
                           obj_val_dual=0.0, solve_time=0.0, iterations=0)


def _probe_variables(chain: Any, inverse: list, variables: dict[str, Any], n: int, m: int) -> np.ndarray:
    """x[i] = 1e-3·(i+1) through cvxpy's inversion: each DGP variable must come back as exp of one code."""
    codes = 1e-3 * (np.arange(n) + 1.0)
    sol = chain.invert(_fake_result(codes, np.zeros(m)), inverse)
    cols = []
    for k, v in variables.items():
        val = float(np.asarray(sol.primal_vars[v.id]).reshape(-1)[0])
        i = int(round(math.log(val) / 1e-3)) - 1
        if not (0 <= i < n and abs(val / math.exp(codes[i]) - 1.0) < 1e-12):
            raise ValueError(f"variable {k} is not one solver entry")
        cols.append(i)
    return np.array(cols, dtype=np.int64)


def _probe_duals(chain: Any, inverse: list, constraints: dict[str, Any], n: int, m: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """z[j] = j+1 through cvxpy's inversion: each named constraint's dual must be ±one entry of z (checked a second
    time with z[j] = 3(j+1))."""
    rows, signs = [], []
    first = chain.invert(_fake_result(np.zeros(n), np.arange(m) + 1.0), inverse).dual_vars
    second = chain.invert(_fake_result(np.zeros(n), 3.0 * (np.arange(m) + 1.0)), inverse).dual_vars
    for k, con in constraints.items():
        d1 = float(np.asarray(first[con.id]).reshape(-1)[0])
        d2 = float(np.asarray(second[con.id]).reshape(-1)[0])
        j = int(round(abs(d1))) - 1
        if not (0 <= j < m and abs(abs(d1) - (j + 1)) < 1e-9 and abs(d2 - 3.0 * d1) < 1e-9 * abs(d2)):
            raise ValueError(f"the dual of {k} is not one solver entry")
        rows.append(j)
        signs.append(1.0 if d1 > 0 else -1.0)
    return np.array(rows, dtype=np.int64), np.array(signs)
