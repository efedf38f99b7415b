"""raygex's numpy metrics against independent computations: scikit-learn's metric functions and scipy's ranks."""

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss, roc_auc_score

from raygex.metrics import average_ranks, classification_metrics, resampled_metric


def sklearn_metrics(y, proba, n_classes):
    """What raygex computed with scikit-learn before it had its own (the same clipping and renormalising)."""
    proba = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    present = np.unique(y)
    if len(present) < 2:
        auc = float("nan")
    elif n_classes == 2:
        auc = roc_auc_score(y, proba[:, 1])
    else:
        auc = np.mean([roc_auc_score(y == c, proba[:, c]) for c in present])
    predicted = proba.argmax(axis=1)
    return {"loss": log_loss(y, proba, labels=np.arange(n_classes)), "accuracy": accuracy_score(y, predicted),
            "balanced_accuracy": balanced_accuracy_score(y, predicted), "auc": auc}


def cases():
    rng = np.random.default_rng(7)
    for case in range(60):
        n_classes = int(rng.choice([2, 2, 3, 5]))
        n = int(rng.integers(2, 400))
        y = rng.integers(0, n_classes, n)
        if case % 5 == 0:
            y[: n // 2] = 0  # unbalanced
        if case % 7 == 0 and n_classes > 2:
            y[y == n_classes - 1] = 0  # a class absent from the labels
        logits = rng.normal(size=(n, n_classes)) + 2.0 * np.eye(n_classes)[y] * rng.random()
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        if case % 3 == 0:
            proba = np.round(proba, 1) + 1e-3  # many ties
        if case % 11 == 0:
            proba[:, 0] = 0.0  # clipped at 1e-12
        yield pytest.param(y, proba.astype(np.float32 if case % 2 else np.float64), n_classes, id=f"case{case}")


@pytest.mark.parametrize("y, proba, n_classes", list(cases()))
def test_metrics_equal_scikit_learns(y, proba, n_classes):
    ours = classification_metrics(y, proba, n_classes)
    theirs = sklearn_metrics(y, proba, n_classes)
    assert ours.keys() == theirs.keys()
    for name in ours:
        if np.isnan(theirs[name]):
            assert np.isnan(ours[name]), name
        else:
            assert ours[name] == pytest.approx(theirs[name], rel=1e-12, abs=1e-12), name


def test_single_class_auc_is_nan_and_the_others_are_defined():
    y = np.zeros(6, dtype=int)
    proba = np.tile([0.7, 0.3], (6, 1))
    m = classification_metrics(y, proba, 2)
    assert np.isnan(m["auc"])
    assert m["accuracy"] == 1.0 and m["balanced_accuracy"] == 1.0
    assert m["loss"] == pytest.approx(-np.log(0.7))


def test_non_finite_probabilities_are_refused():
    with pytest.raises(ValueError, match="NaN or infinity"):
        classification_metrics(np.array([0, 1]), np.array([[np.nan, 1.0], [0.5, 0.5]]), 2)


def test_average_ranks_equal_scipys():
    rng = np.random.default_rng(3)
    for _ in range(50):
        scores = rng.integers(0, int(rng.integers(1, 20)), size=(int(rng.integers(1, 6)), int(rng.integers(1, 60))))
        scores = scores.astype(float) / 3
        if rng.random() < 0.3:
            scores[0, 0] = np.nan  # a row holding NaN has no ranks (scipy's "propagate")
        np.testing.assert_array_equal(average_ranks(scores), rankdata(scores, axis=1))


def test_resampled_auc_equals_scikit_learn_on_each_resample():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, 80)
    proba = rng.dirichlet(np.ones(3), size=80)
    idx = rng.integers(0, 80, size=(25, 80))
    got = resampled_metric("auc", y, proba, idx)
    for row, value in zip(idx, got):
        ys, ps = y[row], proba[row]
        expected = np.mean([roc_auc_score(ys == c, ps[:, c]) for c in np.unique(y) if 0 < (ys == c).sum() < len(ys)])
        assert value == pytest.approx(expected, abs=1e-12)
