"""Classification metrics, always from predicted probabilities (the seed computed "AUC" on hard labels)."""

from __future__ import annotations

import numpy as np

# The metrics a trial computes and which direction is better (early stopping, the search, reports): the one
# registry of metric names.
MODE = {"auc": "max", "accuracy": "max", "balanced_accuracy": "max", "loss": "min"}


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """loss (cross-entropy), accuracy, balanced accuracy and macro one-vs-rest ROC AUC.

    AUC is NaN when the labels hold a single class (it is undefined there, not 0.5).
    """
    # scikit-learn is imported here, not with the module: the CLI's config check imports this registry, and
    # sklearn.metrics costs a second at every start-up
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss, roc_auc_score

    y_true = np.asarray(y_true)
    proba = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    labels = np.arange(n_classes)
    predicted = proba.argmax(axis=1)
    present = np.unique(y_true)
    if len(present) < 2:
        auc = float("nan")
    elif n_classes == 2:
        auc = float(roc_auc_score(y_true, proba[:, 1]))
    else:
        # Macro OvR over the classes present (a class absent from a small split has no ROC curve).
        aucs = [roc_auc_score(y_true == c, proba[:, c]) for c in present]
        auc = float(np.mean(aucs))
    return {"loss": float(log_loss(y_true, proba, labels=labels)),
            "accuracy": float(accuracy_score(y_true, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, predicted)),
            "auc": auc}


def is_better(value: float, best: float | None, metric: str) -> bool:
    """Whether ``value`` improves on ``best`` for ``metric`` (NaN never improves)."""
    if value != value:  # NaN
        return False
    if best is None:
        return True
    return value > best if MODE[metric] == "max" else value < best
