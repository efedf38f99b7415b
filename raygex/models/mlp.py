"""The seed paper's no-graph baseline: a multilayer perceptron over all input genes."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from raygex.models.registry import register_model

# The MLP family's search hyperparameters and defaults: ``hidden`` units in each of ``mlp_layers`` layers.
MLP_DEFAULTS = {"hidden": 512, "mlp_layers": 2, "dropout": 0.1}


class MLP(nn.Module):
    r"""Fully connected network: :math:`\mathrm{logits} = W_{k}\,\sigma(\dots\sigma(W_1 x))`.

    The seed used two hidden layers of 512 units, optionally with dropout 0.5 after each.

    Args:
        n_genes: input width (genes).
        n_classes: output width.
        hidden: hidden layer widths (default ``(512, 512)``).
        dropout: dropout after each hidden layer (0 disables it).

    Shapes:
        input ``(batch, n_genes)`` float32; output logits ``(batch, n_classes)``.
    """

    def __init__(self, n_genes: int, n_classes: int, hidden: tuple[int, ...] = (512, 512), dropout: float = 0.0):
        super().__init__()
        if n_genes < 1 or n_classes < 2:
            raise ValueError(f"MLP needs n_genes >= 1 and n_classes >= 2, but got {n_genes} and {n_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), but got {dropout}")
        self.n_genes, self.n_classes, self.hidden, self.dropout = n_genes, n_classes, tuple(hidden), dropout
        layers: list[nn.Module] = []
        width = n_genes
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.net:
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def __repr__(self) -> str:
        return f"MLP({self.n_genes}, {self.n_classes}, hidden={self.hidden}, dropout={self.dropout})"


def build_mlp(hparams: dict, n_genes: int, n_classes: int, graph=None) -> MLP:
    """An MLP from search hyperparameters (``hidden``: width or list of widths, ``dropout``)."""
    p = {**MLP_DEFAULTS, **hparams}
    hidden = p["hidden"]
    hidden = (int(hidden),) * int(p["mlp_layers"]) if isinstance(hidden, (int, float)) else tuple(hidden)
    return MLP(n_genes, n_classes, hidden=hidden, dropout=float(p["dropout"]))


register_model("mlp", build_mlp, hyperparameters=MLP_DEFAULTS)(MLP)
