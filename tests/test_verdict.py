"""The verdict statistics (raygex.analysis.verdict) against independent computations: scikit-learn's metrics, SciPy's
bootstrap, and Holm's procedure worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from raygex.analysis.verdict import holm, paired_bootstrap, resampled_metric, verdict_table


def predictions(n: int, n_classes: int, signal: float, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += signal
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.parametrize("n_classes", [2, 4])
def test_resampled_metrics_equal_scikit_learn(n_classes):
    y, proba = predictions(120, n_classes, 1.0, 0)
    proba[:10] = proba[0]  # ties
    idx = np.random.default_rng(1).integers(0, len(y), size=(5, len(y)))
    ours = {m: resampled_metric(m, y, proba, idx) for m in ("auc", "accuracy", "loss")}
    for b, rows in enumerate(idx):
        yb, pb = y[rows], proba[rows]
        present = np.unique(yb)
        auc = (roc_auc_score(yb, pb[:, 1]) if n_classes == 2 else
               np.mean([roc_auc_score(yb == c, pb[:, c]) for c in present]))
        assert ours["auc"][b] == pytest.approx(auc, abs=1e-12)
        assert ours["accuracy"][b] == pytest.approx(accuracy_score(yb, pb.argmax(axis=1)))
        assert ours["loss"][b] == pytest.approx(log_loss(yb, pb, labels=np.arange(n_classes)), rel=1e-9)


def test_holm_matches_a_hand_worked_example():
    # sorted p: 0.01·3 = 0.03; 0.03·2 = 0.06; 0.04·1 = 0.04 → max(0.06, 0.04) = 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_one_seed_bootstrap_interval_matches_scipy():
    """With one split seed the hierarchical bootstrap is the plain paired bootstrap over test samples."""
    y, good = predictions(200, 2, 1.5, 2)
    _, weak = predictions(200, 2, 0.3, 3)
    ours = paired_bootstrap("auc", [y], [good], [weak], n_boot=4000, seed=0)
    low, high = np.quantile(ours["replicates"], [0.025, 0.975])

    def gain(rows):
        rows = rows.astype(int)
        return roc_auc_score(y[rows], good[rows, 1]) - roc_auc_score(y[rows], weak[rows, 1])

    reference = stats.bootstrap((np.arange(len(y)),), gain, vectorized=False, n_resamples=4000,
                                method="percentile", random_state=1).confidence_interval
    assert ours["gain"] == pytest.approx(roc_auc_score(y, good[:, 1]) - roc_auc_score(y, weak[:, 1]))
    assert low == pytest.approx(reference.low, abs=0.015) and high == pytest.approx(reference.high, abs=0.015)


def scores_for(y: np.ndarray, signal: float, seed: int) -> np.ndarray:
    """Binary class probabilities for labels ``y`` with a given strength of signal."""
    logit = signal * (2 * y - 1) + np.random.default_rng(seed).normal(size=len(y))
    p1 = 1 / (1 + np.exp(-logit))
    return np.stack([1 - p1, p1], axis=1)


def test_seed_to_seed_spread_widens_the_interval():
    """Same test samples, but models that disagree between seeds: the interval must be wider."""
    y = np.random.default_rng(4).integers(0, 2, 150)
    control = [scores_for(y, 0.0, 99)] * 4
    steady = paired_bootstrap("auc", [y] * 4, [scores_for(y, 1.0, 7)] * 4, control, seed=0)
    spread = paired_bootstrap("auc", [y] * 4, [scores_for(y, s, 7) for s in (0.1, 2.0, 0.1, 2.0)], control, seed=0)
    width = lambda r: np.subtract(*np.quantile(r["replicates"], [0.975, 0.025]))  # noqa: E731
    assert width(spread) > 1.2 * width(steady)


def test_verdict_words_follow_the_adjusted_interval():
    y, good = predictions(300, 2, 2.0, 5)
    _, noise = predictions(300, 2, 0.0, 6)
    clear = paired_bootstrap("auc", [y, y], [good, good], [noise, noise], seed=0)
    none = paired_bootstrap("auc", [y, y], [noise, noise], [noise, noise[::-1]], seed=0)
    table = verdict_table([{"graph": "g", "control": "g:random", "metric": "auc", "seeds": 2, "edges_graph": 10,
                            "edges_control": 10, **clear},
                           {"graph": "g", "control": "empty", "metric": "auc", "seeds": 2, "edges_graph": 10,
                            "edges_control": 0, **none},
                           {"graph": "h", "control": "h:random", "metric": "auc", "seeds": 2, "edges_graph": 1,
                            "edges_control": 1, "reason": "1 edge: too few to rewire"}])
    words = dict(zip(table["control"], table["verdict"]))
    assert words == {"g:random": "helps", "empty": "inconclusive", "h:random": "inconclusive"}
    row = table.iloc[0]
    assert row["low"] > 0 and row["p_adjusted"] < 0.05 and row["level"] == pytest.approx(1 - 0.05 / 2)
