"""Cross-validated selection: folds are disjoint, stratified, the same for every trial of a study and never
touch the fixed test set; a trial on folds reports the mean validation metric over folds and its standard error,
computed independently here from per-fold runs."""

from __future__ import annotations

import numpy as np
import pytest

from raygex.config import ExperimentConfig
from raygex.data.demo import make_demo_cohort
from raygex.errors import ConfigError
from raygex.data.prepare import fold_count, trial_data
from raygex.data.splits import stratified_folds
from raygex.training.loop import run_trial


def config(**split) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "name": "f", "data": {"expression": "unused"}, "graphs": {"true": "t"}, "controls": ["random"],
        "tasks": [{"name": "subtype", "kind": "classify", "label": "subtype"}],
        "split": {"train": 60, "valid": 20, "test": 40, "seeds": [0, 1], **split}})


@pytest.fixture(scope="module")
def cohort():
    return make_demo_cohort(0, n_samples=160, n_genes=120)


def test_folds_are_disjoint_stratified_and_cover_every_row():
    labels = np.repeat(["a", "b", "c"], [50, 30, 13])
    folds = stratified_folds(labels, 5, seed=3)
    valid = np.concatenate([v for _, v in folds])
    assert sorted(valid) == list(range(len(labels)))  # every row validated exactly once
    for train, v in folds:
        assert not set(train) & set(v) and len(train) + len(v) == len(labels)
        for cls, total in (("a", 50), ("b", 30), ("c", 13)):
            assert abs((labels[v] == cls).sum() - total / 5) < 1  # each class in proportion
    assert max(len(v) for _, v in folds) - min(len(v) for _, v in folds) <= 1
    again = stratified_folds(labels, 5, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))  # deterministic per seed
    assert any((a[1] != b[1]).any() for a, b in zip(folds, stratified_folds(labels, 5, seed=4)))


def test_more_folds_than_the_rarest_class_or_fewer_than_two_are_refused():
    with pytest.raises(ConfigError, match="split.folds is 5, but class 'b' has only 4 labelled"):
        stratified_folds(np.array(["a"] * 20 + ["b"] * 4), 5)
    with pytest.raises(ConfigError, match="split.folds must be at least 2"):
        stratified_folds(np.array(["a", "b"] * 5), 1)


def test_auto_turns_folds_on_for_small_studies_and_for_valid_zero():
    assert config().split.fold_count(80) == 5
    assert config().split.fold_count(5000) is None
    assert config(folds=None).split.fold_count(80) is None
    assert config(folds=3).split.fold_count(5000) == 3
    assert config(valid=0).split.fold_count(5000) == 5


def test_trial_data_cuts_folds_from_the_labelled_samples_and_keeps_the_test_set(cohort):
    dataset, true, decoy = cohort
    cfg = config(folds=4)
    graphs = {"true": true}
    one_split = trial_data(config(folds=None), "subtype", dataset, graphs, seed=0, graph=None)
    first = trial_data(cfg, "subtype", dataset, graphs, seed=0, graph=None)
    assert fold_count(cfg, "subtype", dataset.n_samples) == 4
    assert len(first.y_train) == 80 and len(first.y_valid) == 0 and len(first.folds) == 4  # train + valid
    assert first.test_ids == one_split.test_ids  # the fixed test set does not move with folds
    # identical for every trial of the study (same seed), and never a test sample
    second = trial_data(cfg, "subtype", dataset, graphs, seed=0, graph="true")
    assert all((a[1] == b[1]).all() for a, b in zip(first.folds, second.folds))
    test_rows = set(first.test_ids)
    index = {tuple(row): i for i, row in enumerate(np.asarray(dataset.expression))}
    labelled_ids = {dataset.sample_ids[index[tuple(row)]] for row in first.x_train}
    assert not labelled_ids & test_rows


def test_a_trial_on_folds_reports_the_mean_and_standard_error_of_its_folds(cohort):
    """The reported CV metric, recomputed independently: each fold's best network scored on that fold's
    validation rows (standardised here with numpy by the fold's training rows, AUC by scikit-learn, one-vs-rest
    macro), then mean and standard error with numpy."""
    import torch
    from sklearn.metrics import roc_auc_score

    dataset, true, _ = cohort
    data = trial_data(config(folds=3), "subtype", dataset, {"true": true}, seed=0, graph=None)
    result = run_trial({"model": "lr", "max_epochs": 6, "patience": 6, "lr": 0.01, "seed": 0}, data)
    aucs = []
    for network, (train_rows, valid_rows) in zip(result.models, data.folds):
        x = np.asarray(data.x_train, dtype=np.float64)
        mean, std = x[train_rows].mean(axis=0), x[train_rows].std(axis=0)
        std[std < 1e-8] = 1.0
        z = ((x[valid_rows] - mean) / std).astype(np.float32)
        with torch.no_grad():
            proba = torch.softmax(network.eval()(torch.from_numpy(z)), dim=1).numpy()
        y = data.y_train[valid_rows]
        aucs.append(np.mean([roc_auc_score(y == c, proba[:, c]) for c in range(proba.shape[1])]))
    assert len(aucs) == 3
    assert result.best_valid["auc"] == pytest.approx(np.mean(aucs), abs=1e-6)
    assert result.best_valid["auc_se"] == pytest.approx(np.std(aucs, ddof=1) / np.sqrt(3), abs=1e-6)
    assert result.history[result.best_epoch - 1]["best_valid_auc_se"] == result.best_valid["auc_se"]
    assert result.test_proba.shape == (len(data.y_test), len(data.classes))


def test_auto_keeps_its_folds_for_a_rare_class_but_an_explicit_count_is_refused(cohort):
    dataset, true, _ = cohort
    # 12 labelled samples of 3 subtypes: about 4 of each, fewer than 5 folds
    auto = trial_data(config(train=8, valid=4, folds="auto"), "subtype", dataset, {"true": true}, seed=0, graph=None)
    assert int(np.bincount(auto.y_train).min()) < 5 and len(auto.folds) == 5
    assert sorted(np.concatenate([v for _, v in auto.folds])) == list(range(12))
    with pytest.raises(ConfigError, match="split.folds is 5, but class"):
        trial_data(config(train=8, valid=4, folds=5), "subtype", dataset, {"true": true}, seed=0, graph=None)


def test_auto_folds_accept_a_class_too_rare_to_fill_every_fold():
    labels = np.array(["a"] * 10 + ["b"] * 8 + ["c"])  # one labelled sample of c
    folds = stratified_folds(labels, 2, seed=0, strict=False)
    assert sorted(np.concatenate([v for _, v in folds])) == list(range(len(labels)))
    assert sum("c" in labels[v] for _, v in folds) == 1  # c is validated in one fold only
    with pytest.raises(ConfigError, match="class 'c' has only 1"):
        stratified_folds(labels, 2, seed=0)


def test_each_fold_is_standardised_by_its_own_training_rows_even_for_a_gene_constant_there():
    from raygex.data.trial_data import TrialData

    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4)).astype(np.float32) * 3 + 5
    y = np.arange(30) % 2
    folds = stratified_folds(y, 3, seed=0)
    train0, _ = folds[0]
    x[train0, 2] = 7.0  # constant on fold 0's training rows only (as a sparse gene can be)
    data = TrialData(x, y, x[:0], y[:0], x[:6], y[:6], list("abcd"), ["0", "1"], folds=folds)
    for view, (train_rows, valid_rows) in zip(data.fold_views(), folds):
        raw = x.astype(np.float64)
        mean, std = raw[train_rows].mean(axis=0), raw[train_rows].std(axis=0)
        std[std < 1e-8] = 1.0
        np.testing.assert_allclose(view.x_valid, (raw[valid_rows] - mean) / std, atol=1e-4)
        np.testing.assert_allclose(view.x_test, (raw[:6] - mean) / std, atol=1e-4)
        np.testing.assert_allclose(view.mean, mean, atol=1e-4)
