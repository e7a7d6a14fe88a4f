"""Rank the training layouts at a solved plan's size, batch and devices (the layouts ``planner.optimize`` solves
next), every layout at once.

The cluster model's step time and memory (``cost_models.cluster.step_seconds`` / ``memory_bytes``) are sums and
products of the layout's numbers, so they are evaluated on numpy arrays over all layouts. A term a layout does
not have (None in its LayoutNumbers: tp = 1, pp = 1, ZeRO-3's replicated states ...) is 0.0 in the arrays: it
adds exactly 0.0 to a sum of non-negative finite terms (x + 0.0 == x), so every element equals the number a
layout-by-layout call gives, bit for bit, and the ranking is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from cost_models.architecture import ModelShape
from cost_models.cluster import (
    Hardware,
    Layout,
    LayoutNumbers,
    candidate_layouts,
    layout_numbers,
    memory_bytes,
    step_seconds,
    terms_of_shape,
)
from cost_models.layout_search import numbers_columns
from planner.request import PlanRequest
from planner.solve import Candidate


@dataclass(frozen=True)
class LayoutTable:
    """Every layout of the search with its label; ``numbers``: their LayoutNumbers as arrays over the layouts
    (``layout_search.numbers_columns``: absent terms 0.0); ``tp`` and ``mp`` (tp·pp) as arrays."""

    layouts: tuple[Layout, ...]
    labels: tuple[str, ...]
    tp: np.ndarray
    mp: np.ndarray
    numbers: LayoutNumbers


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=256)
def layout_table(devices_per_node: int, experts: int, max_pp: int, tp: int | None, hw: Hardware, seq_len: int,
                 vocab: int, top_k: int, moe: bool, mfu: float | None) -> LayoutTable:
    """The table for ``candidate_layouts`` on ``hw`` (memoized; its arrays are read-only)."""
    layouts = tuple(candidate_layouts(devices_per_node, moe_experts=experts, max_pp=max_pp, tp=tp))
    columns = numbers_columns([layout_numbers(lay, hw, seq_len, vocab, top_k, moe, mfu) for lay in layouts])
    return LayoutTable(layouts, tuple(lay.label() for lay in layouts),
                       _frozen(np.array([lay.tp for lay in layouts])),
                       _frozen(np.array([lay.tp * lay.pp for lay in layouts])), LayoutNumbers(**columns))


def ranked_layouts(request: PlanRequest, cand: Candidate, shape: ModelShape, batch: float, devices: float,
                   keep: int = 3) -> list[Layout]:
    """The layouts of the search whose memory fits, best first: by step time per token of batch at (batch,
    devices) -- device efficiency -- and, when wall-clock matters (objective time or a deadline), also by the
    step time per token on as many devices as the batch can feed with the layout (dp_min: G <= B·tp·pp /
    (micro_batch·seq)) -- speed. The primary ranking gives ``keep`` layouts, the other two more.
    (Continuous devices: divisibility is settled when the cluster is made whole.)"""
    t = terms_of_shape(shape)
    devices = max(devices, 1.0)
    timed = request.objective == "time" or request.deadline_days is not None
    table = layout_table(cand.acc.devices_per_node, shape.experts, shape.layers, request.tensor_parallel, cand.hw,
                         request.seq_len, shape.vocab, shape.top_k + shape.shared_experts, shape.is_moe, request.mfu)
    allowed = ~(table.mp > devices * 1.5)
    if request.objective != "time":
        allowed &= shape.tp_heads % table.tp == 0
    if request.max_gpus:
        allowed &= ~(table.mp > request.max_gpus)
    usable = cand.hw.memory
    efficiency: list[tuple] = []
    speed: list[tuple] = []
    n = table.numbers
    for out in (efficiency, speed) if timed else (efficiency,):
        g = np.full(len(table.layouts), devices) if out is efficiency else np.maximum(1.0, batch * n.mp / n.mb_seq)
        if request.max_gpus:
            g = np.minimum(g, float(request.max_gpus))
        b = np.maximum(batch, g * n.mb_seq / n.mp)
        per_token = step_seconds(t, n, b, g) / b
        mem = memory_bytes(t, n, g)
        for i in np.flatnonzero(allowed):
            out.append((bool(mem[i] > usable), float(per_token[i]), table.labels[i], i))
    first, second = (speed, efficiency) if request.objective == "time" else (efficiency, speed)
    first.sort(key=lambda x: x[:3])
    second.sort(key=lambda x: x[:3])
    chosen = [table.layouts[x[3]] for x in first[:keep]]
    chosen += [table.layouts[x[3]] for x in second[:keep] if table.layouts[x[3]] not in chosen][:2]
    return chosen
