"""Scaling laws as first-class objects: published catalog, numpy and cvxpy evaluation, fitting."""

from laws.allocation import AllocationLaw, TokensAllocationLaw
from laws.base import Law, LawError, LawInfo, Output
from laws.batch import McCandlishLaw
from laws.catalog import DEFAULT_LAW, FORMS, catalog, get_law, load_law_file, register_form
from laws.chinchilla import ChinchillaLaw, chinchilla_loss
from laws.hyperparams import DeepSeekLaw, StepLaw, deepseek_flops_per_token
from laws.kaplan import KaplanLaw, kaplan_critical_batch, kaplan_learning_curve, kaplan_loss
from laws.moe import JointMoELaw, clark_effective_experts
from laws.muennighoff import MuennighoffLaw, muennighoff_loss
from laws.query import describe, evaluate

__all__ = [
    "DEFAULT_LAW",
    "FORMS",
    "AllocationLaw",
    "ChinchillaLaw",
    "DeepSeekLaw",
    "JointMoELaw",
    "KaplanLaw",
    "Law",
    "LawError",
    "LawInfo",
    "McCandlishLaw",
    "MuennighoffLaw",
    "Output",
    "StepLaw",
    "TokensAllocationLaw",
    "catalog",
    "chinchilla_loss",
    "clark_effective_experts",
    "deepseek_flops_per_token",
    "describe",
    "evaluate",
    "get_law",
    "kaplan_critical_batch",
    "kaplan_learning_curve",
    "kaplan_loss",
    "load_law_file",
    "muennighoff_loss",
    "register_form",
]
