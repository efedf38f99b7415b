"""Networks (pure torch) and the registry that maps a search's ``model`` value to one.

A trial builds its network with ``BUILDERS[name](hparams, n_genes, n_classes, aligned_graph)``; ``MODELS[name]``
is the class and ``FAMILIES[name].hyperparameters`` its hyperparameters with their defaults
(:mod:`raygex.models.registry`). Adding a model family is one new file whose class is decorated with
:func:`register_model`, plus one import line below.
"""

from __future__ import annotations

from raygex.models.registry import BUILDERS, FAMILIES, MODELS, register_model
from raygex.models import gcn, mlp, logreg  # noqa: E402,F401  (each registers itself, in this order)

__all__ = ["BUILDERS", "FAMILIES", "MODELS", "register_model"]
