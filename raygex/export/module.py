"""The exported network: raw expression in the model's gene order in, class probabilities out.

Everything a user would otherwise have to redo by hand lives inside the module as buffers: the training
statistics that standardise each gene, the mask that zeroes a single-gene task's target, and (inside the wrapped
network) the graph. The module is plain torch, so ``torch.jit.script`` turns it into a file that needs neither
raygex nor torch_geometric to run.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class ExpressionClassifier(nn.Module):
    """``forward(x: float32 [batch, n_genes]) -> probabilities [batch, n_classes]`` for a trained network.

    Args:
        network: the trained model (GCN, MLP, logistic regression) taking standardised inputs.
        mean, std: per-gene training statistics (``TrialData.standardisation``).
        masked: per-gene booleans; True genes are zeroed before standardising (a single-gene task's target),
            exactly as the training inputs were.
    """

    def __init__(self, network: nn.Module, mean: np.ndarray, std: np.ndarray, masked: np.ndarray):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)))
        self.register_buffer("keep", torch.as_tensor((~np.asarray(masked, dtype=bool)).astype(np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.mean.size(0):
            raise ValueError("expected float32 input of shape [batch, n_genes] in the model's gene order")
        x = (x.to(self.mean.dtype) * self.keep - self.mean) / self.std
        return torch.softmax(self.network(x), dim=1)


class FoldEnsemble(nn.Module):
    """A cross-validated configuration's fold networks as one network: ``forward(z) -> log of the mean class
    probability over folds`` (so :class:`ExpressionClassifier`'s softmax returns that mean).

    ``z`` is standardised by the study's labelled samples (the wrapping classifier's ``mean``/``std``); each fold's
    network was trained on inputs standardised by its own training rows, which on that scale is the affine map
    ``(z - shift[i]) / spread[i]`` (:meth:`raygex.data.trial_data.TrialData.fold_views`). Exported instead of a refit on
    every labelled sample for the selected epochs: on the small studies measured the ensemble scored better on test
    (the issue-16 closing note has the figures).
    """

    def __init__(self, networks: list[nn.Module], shifts: np.ndarray, spreads: np.ndarray):
        super().__init__()
        if len(networks) != len(shifts) or len(networks) != len(spreads):
            raise ValueError(f"one shift and spread per network: {len(networks)} networks, {len(shifts)} shifts, "
                             f"{len(spreads)} spreads")
        self.networks = nn.ModuleList(networks)
        self.register_buffer("shifts", torch.as_tensor(np.asarray(shifts, dtype=np.float32)))
        self.register_buffer("spreads", torch.as_tensor(np.asarray(spreads, dtype=np.float32)))

    def forward(self, z: Tensor) -> Tensor:
        total = torch.zeros(1)
        for i, network in enumerate(self.networks):
            proba = torch.softmax(network((z - self.shifts[i]) / self.spreads[i]), dim=1)
            total = proba if i == 0 else total + proba
        return torch.log(total / float(len(self.networks)))
