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
