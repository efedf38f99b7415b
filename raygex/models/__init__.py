"""Networks (pure torch) and the registry that maps a search's ``model`` value to one.

A trial builds its network with ``BUILDERS[name](hparams, n_genes, n_classes, aligned_graph)``; ``MODELS[name]``
is the class. Adding a model family is one new file whose class is decorated with :func:`register_model`,
plus one import line at the end of this file.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

MODELS: dict[str, type] = {}
BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, builder: Callable[..., nn.Module] | None = None):
    """Class decorator: register a model class under ``name`` (e.g. ``@register_model("gcn")``).

    ``builder(hparams, n_genes, n_classes, aligned_graph)`` makes an instance from search hyperparameters;
    without it, the class's ``from_hparams`` classmethod is used. Registering the same class twice is harmless;
    another class under a taken name is an error.
    """

    def decorate(cls: type) -> type:
        make = builder if builder is not None else getattr(cls, "from_hparams", None)
        if make is None:
            raise TypeError(f"model {name!r} needs a builder: pass builder= or define {cls.__name__}.from_hparams")
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {MODELS[name].__name__}")
        MODELS[name] = cls
        BUILDERS[name] = make
        return cls

    return decorate


from raygex.models import gcn, logreg, mlp  # noqa: E402  (gcn registers itself with the decorator above)

register_model("mlp", builder=mlp.build_mlp)(mlp.MLP)
register_model("lr", builder=logreg.build_logreg)(logreg.LogisticRegression)
