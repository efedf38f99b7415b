"""The model-family registry: each search ``model`` value, its class, its builder and its hyperparameters.

This is the one place that says which hyperparameters a family takes and what they default to. The search space
(which parameters exist for which family), the training loop (defaults of a trial), ``raygex train -p`` and export
all read it. A family is registered by decorating its class::

    @register_model("gcn", hyperparameters={"depth": 2, "channels": 32, ...})
    class GCN(nn.Module): ...

The optimiser's hyperparameters (``lr``, ``weight_decay``, ``batch_size``) are shared by every family trained by
minibatch Adam (``solver="adam"``); a family fitted by a convex solver (``solver="lbfgs"``: logistic regression,
:mod:`raygex.training.convex`) has only its own (``C``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

# Every family's optimiser settings (batch size, epochs, patience, metric: the config's ``train`` section).
OPTIMISER_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "weight_decay": 1e-4}
SHARED_PARAMS = ("lr", "weight_decay", "batch_size")


@dataclass(frozen=True)
class ModelFamily:
    """One search ``model`` value: the network class, how to build it, and its hyperparameters with defaults."""

    name: str
    cls: type
    build: Callable[..., nn.Module]
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    solver: str = "adam"  # "adam": minibatches and early stopping; "lbfgs": full batch, to the optimum


FAMILIES: dict[str, ModelFamily] = {}
MODELS: dict[str, type] = {}  # name -> class (a view of FAMILIES)
BUILDERS: dict[str, Callable[..., nn.Module]] = {}  # name -> builder(hparams, n_genes, n_classes, aligned_graph)


SOLVERS = ("adam", "lbfgs")


def register_model(name: str, builder: Callable[..., nn.Module] | None = None, *,
                   hyperparameters: dict[str, Any] | None = None, solver: str = "adam"):
    """Class decorator: register a model class under ``name`` (e.g. ``@register_model("gcn", hyperparameters=...)``).

    ``builder(hparams, n_genes, n_classes, aligned_graph)`` makes an instance from a trial's hyperparameters (the
    family's defaults already merged in); without it, the class's ``from_hparams`` classmethod is used.
    Registering the same class twice is harmless; another class under a taken name is an error.
    """

    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, but got {solver!r}")

    def decorate(cls: type) -> type:
        make = builder if builder is not None else getattr(cls, "from_hparams", None)
        if make is None:
            raise TypeError(f"model {name!r} needs a builder: pass builder= or define {cls.__name__}.from_hparams")
        if name in FAMILIES:
            if FAMILIES[name].cls is not cls:
                raise ValueError(f"model name {name!r} is already registered to {FAMILIES[name].cls.__name__}")
            return cls
        FAMILIES[name] = ModelFamily(name, cls, make, dict(hyperparameters or {}), solver)
        MODELS[name], BUILDERS[name] = cls, make
        return cls

    return decorate


def family_names() -> tuple[str, ...]:
    """Every registered family, in registration order (gcn, mlp, lr)."""
    return tuple(FAMILIES)


def families_using(param: str) -> tuple[str, ...]:
    """The families a hyperparameter applies to (the optimiser's: every family Adam trains)."""
    if param == "model":
        return family_names()
    if param in SHARED_PARAMS:
        return tuple(name for name, family in FAMILIES.items() if family.solver == "adam")
    return tuple(name for name, family in FAMILIES.items() if param in family.hyperparameters)


def known_hyperparameters() -> set[str]:
    """Every name a trial's configuration may hold: ``model``, the optimiser's, and each family's."""
    names = {"model", *SHARED_PARAMS, *OPTIMISER_DEFAULTS}
    for family in FAMILIES.values():
        names.update(family.hyperparameters)
    return names


def solver_of(name: str) -> str:
    """How family ``name`` is fitted: "adam" (minibatches, epochs) or "lbfgs" (full batch, convex)."""
    return FAMILIES[name].solver if name in FAMILIES else "adam"


def model_defaults(name: str) -> dict[str, Any]:
    """The optimiser's and the family's default hyperparameters (ValueError for an unknown family)."""
    if name not in FAMILIES:
        raise ValueError(f"model must be one of {sorted(FAMILIES)}, but got {name!r}")
    return {**OPTIMISER_DEFAULTS, **FAMILIES[name].hyperparameters}
