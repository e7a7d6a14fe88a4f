"""The serving configuration of a launchable shape: the chooser's choice (the same model and rule as the
program's), its point and its dollars, memoized per (request, accelerator, price, shape)."""

from __future__ import annotations

import threading

from cost_models.architecture import ModelShape
from planner.request import PlanRequest
from planner.solve import Candidate, Solved

_CHOICES: dict[tuple, object] = {}
_CHOICES_LOCK = threading.Lock()


def _serving_choice(request: PlanRequest, cand: Candidate, shape: ModelShape):
    """The chooser's serving configuration on the launchable shape (the same model and rule as the program's);
    memoized per (request, accelerator, price, shape)."""
    from planner.serving import choose_serving, demand_from_request
    from planner.solve import serving_accelerator

    key = (request.model_dump_json(), cand.acc.id, cand.price, shape)
    with _CHOICES_LOCK:
        if key in _CHOICES:
            return _CHOICES[key]
    acc, price = serving_accelerator(request, cand)
    choice = choose_serving(shape, acc, demand_from_request(request), precision=request.serve_precision, price=price)
    with _CHOICES_LOCK:
        if len(_CHOICES) > 4096:
            _CHOICES.clear()
        _CHOICES[key] = choice
    return choice


def _serving_point(request: PlanRequest, solved: Solved, shape: ModelShape):
    """The serving configuration evaluated on the launchable shape (None: no demand)."""
    if solved.serving is None:
        return None
    return _serving_choice(request, solved.cand, shape).point


def _serve_cost(request: PlanRequest, solved: Solved, shape: ModelShape) -> float:
    point = _serving_point(request, solved, shape)
    if point is None:
        return 0.0
    from planner.serving import demand_from_request, serving_dollars

    return serving_dollars(point, demand_from_request(request))
