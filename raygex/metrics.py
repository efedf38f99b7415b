"""Classification metrics, always from predicted probabilities (the seed computed "AUC" on hard labels).

One implementation serves every caller: a trial's per-epoch metrics (:func:`classification_metrics`) and the
verdict's bootstrap, which scores many resamples of the test rows at once (:func:`resampled_metric`). It is plain
numpy: a trial computes its metrics two or three times an epoch, and scikit-learn's metric functions cost ~3 ms a
call in input checks on a few hundred rows plus a second of import in every fresh trial worker. The results are
those of scikit-learn's ``log_loss``, ``accuracy_score``, ``balanced_accuracy_score`` and ``roc_auc_score``
(tests/test_metrics.py checks them against scikit-learn and scipy).
"""

from __future__ import annotations

import numpy as np

# The metrics a trial computes and which direction is better (early stopping, the search, reports): the one
# registry of metric names.
MODE = {"auc": "max", "accuracy": "max", "balanced_accuracy": "max", "loss": "min"}


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """loss (cross-entropy), accuracy, balanced accuracy and macro one-vs-rest ROC AUC of ``proba`` [n, n_classes].

    Probabilities are clipped at 1e-12 and rows renormalised first. AUC is NaN when the labels hold a single class
    (it is undefined there, not 0.5); a multi-class AUC averages the classes present in ``y_true``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape != (len(y), n_classes):
        raise ValueError(f"expected probabilities of shape ({len(y)}, {n_classes}), but got {proba.shape}")
    if not np.isfinite(proba).all():
        raise ValueError("the predicted probabilities hold NaN or infinity")
    proba = clipped(proba)
    every_row = np.arange(len(y))[None, :]
    return {name: float(resampled_metric(name, y, proba, every_row)[0])
            for name in ("loss", "accuracy", "balanced_accuracy", "auc")}


def clipped(proba: np.ndarray) -> np.ndarray:
    """Probabilities as every metric here reads them: float64, clipped at 1e-12 (a finite loss), rows summing
    to one."""
    proba = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    return proba / proba.sum(axis=1, keepdims=True)


def resampled_metric(metric: str, y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``metric`` of predictions ``proba`` [n, C] (passed through :func:`clipped`) against labels ``y`` [n] on
    each row of indices ``idx`` [B, n].

    AUC is binary ROC AUC (Mann–Whitney, ties averaged) or the macro one-vs-rest mean over the classes present;
    NaN where a resample holds one class only. Balanced accuracy averages the recall of the classes present.
    """
    y = np.asarray(y)
    ys = y[idx]
    if metric == "accuracy":
        return (proba.argmax(axis=1)[idx] == ys).mean(axis=1)
    if metric == "loss":
        return -np.log(proba[np.arange(len(y)), y])[idx].mean(axis=1)
    if metric == "balanced_accuracy":
        hit = (proba.argmax(axis=1)[idx] == ys)
        recalls = []
        for c in np.unique(y):
            members = ys == c
            with np.errstate(invalid="ignore", divide="ignore"):
                recalls.append(np.where(members.any(axis=1), (hit & members).sum(axis=1) / members.sum(axis=1),
                                        np.nan))
        return _nanmean_rows(np.stack(recalls))
    if metric != "auc":
        raise ValueError(f"metric must be one of {', '.join(MODE)}, but got {metric!r}")
    if proba.shape[1] == 2:
        return _auc(proba[:, 1][idx], ys == 1)
    return _nanmean_rows(np.stack([_auc(proba[:, c][idx], ys == c) for c in np.unique(y)]))


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Column-wise mean over ``values`` [K, B] ignoring NaN; NaN (without numpy's warning) where all are NaN."""
    finite = ~np.isnan(values)
    count = finite.sum(axis=0)
    total = np.where(finite, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Row-wise ROC AUC of ``scores`` [B, n] for boolean ``positive`` [B, n] (Mann–Whitney U / (n+ · n−))."""
    ranks = average_ranks(scores)
    n_pos = positive.sum(axis=1)
    n_neg = positive.shape[1] - n_pos
    u = (ranks * positive).sum(axis=1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks 1..n along each row of ``scores`` [B, n], ties given the mean of their ranks, NaN for a row holding
    NaN (scipy's ``rankdata(..., method="average", axis=1)``)."""
    scores = np.asarray(scores)
    n = scores.shape[1]
    order = np.argsort(scores, axis=1, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=1)
    position = np.broadcast_to(np.arange(n), ordered.shape)
    starts_tie = np.ones(ordered.shape, dtype=bool)
    starts_tie[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends_tie = np.ones(ordered.shape, dtype=bool)
    ends_tie[:, :-1] = starts_tie[:, 1:]
    first = np.maximum.accumulate(np.where(starts_tie, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends_tie, position, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(ordered.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=1)
    ranks[np.isnan(scores).any(axis=1)] = np.nan  # as scipy: a row holding NaN has no ranks (its AUC is NaN)
    return ranks


def is_better(value: float, best: float | None, metric: str) -> bool:
    """Whether ``value`` improves on ``best`` for ``metric`` (NaN never improves)."""
    if value != value:  # NaN
        return False
    if best is None:
        return True
    return value > best if MODE[metric] == "max" else value < best
