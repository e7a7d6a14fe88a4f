"""Cluster lines as columns: ``whole.cluster_line`` for many (shape, layout, devices) at once (numpy).

A cluster line is one shape on one layout and device count, with its step time as a line in the batch
(``whole.ClusterLine``). The search looks at thousands per plan, so they are kept as arrays (``Lines``) and made
``ClusterLine`` objects only when one is asked for. Each group of candidates is a (shape, law params, layout,
device counts) tuple: the shape's and the layout's numbers are read once per group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cost_models.architecture import ModelShape
from cost_models.cluster import Hardware, Layout, ModelTerms, terms_of_shape
from cost_models.layout_search import NUMBER_FIELDS, numbers_row, steps_and_memory
from planner.request import PlanRequest
from planner.solve import Solved
from planner.whole import ClusterLine

Group = tuple[ModelShape, float, Layout, list[int]]   # (shape, law params, layout, device counts)
_TERM_FIELDS = ("params", "dense_params", "expert_params", "layers_width", "attn_width", "moe_layers_width",
                "width")


@dataclass
class Lines:
    """Line i is ``shapes[shape_i[i]]`` (a (shape, law params) pair) on ``layouts[layout_i[i]]`` with
    ``devices[i]`` devices: step(B) = per_token[i]·B + per_step[i] seconds, batch in units of unit[i] tokens."""

    shapes: list[tuple[ModelShape, float]]
    layouts: list[Layout]
    shape_i: np.ndarray
    layout_i: np.ndarray
    devices: np.ndarray      # int64
    unit: np.ndarray         # tokens: dp × micro_batch × seq_len
    per_token: np.ndarray    # seconds per token of batch per step
    per_step: np.ndarray     # seconds per step independent of the batch
    n_law: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.n_law = np.array([n for _, n in self.shapes], dtype=float)[self.shape_i] if self.shapes else \
            np.zeros(0)

    def __len__(self) -> int:
        return len(self.devices)

    def line(self, i: int) -> ClusterLine:
        shape, n_law = self.shapes[int(self.shape_i[i])]
        return ClusterLine(shape, n_law, self.layouts[int(self.layout_i[i])], int(self.devices[i]),
                           float(self.unit[i]), float(self.per_token[i]), float(self.per_step[i]))

    def take(self, keep: np.ndarray) -> Lines:
        """The lines where ``keep`` (a mask or indices), in order."""
        return Lines(self.shapes, self.layouts, self.shape_i[keep], self.layout_i[keep], self.devices[keep],
                     self.unit[keep], self.per_token[keep], self.per_step[keep])

    @classmethod
    def of(cls, lines: list[ClusterLine]) -> Lines:
        """A list of ``ClusterLine`` as columns."""
        shapes: dict[int, int] = {}
        layouts: dict[int, int] = {}
        shape_list: list[tuple[ModelShape, float]] = []
        layout_list: list[Layout] = []
        si, li = [], []
        for c in lines:
            key = (id(c.shape), c.n_law)
            if key not in shapes:
                shapes[key] = len(shape_list)
                shape_list.append((c.shape, c.n_law))
            if id(c.layout) not in layouts:
                layouts[id(c.layout)] = len(layout_list)
                layout_list.append(c.layout)
            si.append(shapes[key])
            li.append(layouts[id(c.layout)])
        return cls(shape_list, layout_list, np.array(si, dtype=np.int64), np.array(li, dtype=np.int64),
                   np.array([c.devices for c in lines], dtype=np.int64),
                   np.array([c.unit for c in lines], dtype=float), np.array([c.per_token for c in lines], dtype=float),
                   np.array([c.per_step for c in lines], dtype=float))


def as_lines(lines: Lines | list[ClusterLine]) -> Lines:
    return lines if isinstance(lines, Lines) else Lines.of(lines)


def line_table(request: PlanRequest, solved: Solved, groups: list[Group], hw: Hardware) -> tuple[Lines, np.ndarray]:
    """The lines of every group's device counts that can run and fit, in order, and the position of each among
    all the candidates (groups flattened): the layout's problems, memory and the step at one and two units of
    batch as ``evaluate_layout`` reads them (its sums are plain left-to-right float sums, as numpy's here)."""
    shapes: dict[int, int] = {}
    shape_list: list[tuple[ModelShape, float]] = []
    layout_list: list[Layout] = []
    gs, sizes, devices = [], [], []
    for shape, n_law, lay, counts in groups:
        at = shapes.get(id(shape))
        if at is None:
            at = shapes[id(shape)] = len(shape_list)
            shape_list.append((shape, n_law))
        gs.append(at)
        layout_list.append(lay)   # one layout entry per group
        sizes.append(len(counts))
        devices.extend(counts)
    if not devices:
        empty = np.zeros(0, dtype=np.int64)
        return Lines([], [], empty, empty, empty, np.zeros(0), np.zeros(0), np.zeros(0)), empty
    si = np.repeat(np.array(gs, dtype=np.int64), sizes)
    li = np.repeat(np.arange(len(groups), dtype=np.int64), sizes)
    shape_cols = np.array([(s.seq_len, s.tp_heads, s.layers, s.experts, s.is_moe) for s, _ in shape_list],
                          dtype=np.int64)[si]
    seq, heads, layers, experts, moe = shape_cols.T
    lay_cols = np.array([(lay.tp, lay.pp, lay.micro_batch, lay.ep) for lay in layout_list], dtype=np.int64)[li]
    tp, pp, mb, ep = lay_cols.T
    dev = np.array(devices, dtype=np.int64)
    mp = tp * pp
    unit = (dev // mp * mb * seq).astype(float)
    dp = np.maximum(dev // mp, 1)
    bad = (tp > hw.devices_per_node) | (dev % mp != 0) | (pp > layers)
    bad |= (heads % tp != 0) | (unit / seq + 1e-9 < dp * mb)
    bad |= (moe != 0) & ((experts % ep != 0) | (dp % ep != 0))
    table = np.array([numbers_row(lay, hw, s.seq_len, s.vocab, s.top_k + s.shared_experts, s.is_moe, request.mfu)
                      for (s, _, lay, _) in groups])[li]
    n = {k: table[:, i] for i, k in enumerate(NUMBER_FIELDS)}
    terms = np.array([[0.0 if getattr(t, f) is None else getattr(t, f) for f in _TERM_FIELDS]
                      for t in (terms_of_shape(s) for s, _ in shape_list)])[si]
    m = ModelTerms(*terms.T)
    with np.errstate(all="ignore"):
        (s1, s2), memory = steps_and_memory(n, m, [unit, 2 * unit], dev)
        if request.check_memory:
            bad |= ~(memory <= hw.memory)
        slope = (s2 - s1) / unit
        per_step = np.maximum(0.0, s1 - slope * unit)
    good = np.flatnonzero(~bad)
    return Lines(shape_list, layout_list, si[good], li[good], dev[good], unit[good], slope[good],
                 per_step[good]), good


def cluster_lines(request: PlanRequest, solved: Solved, items: list[tuple[ModelShape, float, Layout, int]],
                  hw: Hardware) -> list[ClusterLine | None]:
    """``whole.cluster_line`` for every (shape, law params, layout, devices) of ``items`` (None: the layout
    cannot run there or does not fit)."""
    lines, good = line_table(request, solved, [(s, n, lay, [g]) for s, n, lay, g in items], hw)
    out: list[ClusterLine | None] = [None] * len(items)
    for j, i in enumerate(good.tolist()):
        out[i] = lines.line(j)
    return out
