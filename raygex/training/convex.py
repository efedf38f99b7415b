"""Logistic regression fitted the way the field fits it: full-batch L-BFGS to the optimum of a convex objective.

The objective is scikit-learn's for ``LogisticRegression(C=C)`` (multinomial, L2, bias unpenalised), divided by
the number of training rows::

    mean_i CE(W x_i + b, y_i) + ||W||^2 / (2 C n)

It is strictly convex in ``W``, so the fit is a function of ``C`` and the training rows alone: no learning rate,
no batches, no epochs, no early stopping, and the family's only searched parameter is ``C``. The minimiser is
SciPy's L-BFGS-B (scikit-learn's ``lbfgs`` solver), on gradients computed by torch in float64.

As ``LogisticRegressionCV`` refits on every row once ``C`` is chosen, a trial on one split scores its fit on the
training rows on the validation rows (what selection sees), then refits on the training and validation rows
together at the same ``C``, warm-started; the refit is the trial's model, scored on the test set
(:class:`raygex.training.loop.FoldRun`). With folds, each fold keeps its own fit (together they use every row).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MAX_ITER = 1000
TOLERANCE = 1e-6  # projected-gradient tolerance (pgtol): tighter than scikit-learn's default tol=1e-4


def l2_weight(C: float, n_rows: int) -> float:
    """The penalty's weight on ``||W||^2 / 2`` in the mean-loss objective: ``1 / (C n)``."""
    return 1.0 / (float(C) * max(1, int(n_rows)))


def fit_logistic(linear: nn.Linear, x: torch.Tensor, y: torch.Tensor, C: float, *,
                 max_iter: int = MAX_ITER) -> dict:
    """Fit ``linear`` (weights ``(classes, genes)``, bias) to standardised ``x`` and labels ``y`` in place,
    starting from its current weights; returns the solver's summary (iterations, converged, objective)."""
    from scipy.optimize import minimize

    device = linear.weight.device
    x64, y64 = x.to(torch.float64), y.to(device)
    n_classes, n_genes = linear.weight.shape
    penalty = l2_weight(C, len(x64))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = torch.from_numpy(theta).to(device).requires_grad_(True)
        weight = params[: n_classes * n_genes].view(n_classes, n_genes)
        bias = params[n_classes * n_genes:]
        loss = nn.functional.cross_entropy(x64 @ weight.T + bias, y64) + 0.5 * penalty * (weight * weight).sum()
        (grad,) = torch.autograd.grad(loss, params)
        return float(loss.detach()), grad.cpu().numpy()

    start = torch.cat([linear.weight.detach().reshape(-1), linear.bias.detach()]).to(torch.float64).cpu().numpy()
    result = minimize(objective, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": int(max_iter), "gtol": TOLERANCE, "ftol": 1e-12})
    theta = torch.from_numpy(result.x).to(device=device, dtype=linear.weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(theta[: n_classes * n_genes].view(n_classes, n_genes))
        linear.bias.copy_(theta[n_classes * n_genes:])
    # L-BFGS-B's status 1: it reached max_iter (or its evaluation cap) before a convergence test held
    return {"iterations": int(result.nit), "converged": bool(result.success), "objective": float(result.fun),
            "capped": int(result.status) == 1 or int(result.nit) >= int(max_iter), "message": str(result.message)}
