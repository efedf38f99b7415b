"""Logistic regression fitted as the field fits it (raygex.training.convex): the trial's network is scikit-learn's
``LogisticRegression`` on the same standardised rows, in one step, whatever the epochs and batches say."""

from __future__ import annotations

import numpy as np
import pytest

from raygex.data.demo import make_demo_cohort
from raygex.data.prepare import trial_data
from raygex.data.trial_data import TrialData
from raygex.metrics import classification_metrics
from raygex.training.loop import run_trial
from tests.test_folds import config


def _data(n_classes: int, seed: int = 0) -> TrialData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 40)).astype(np.float32) * rng.uniform(0.5, 3, 40).astype(np.float32) + 2
    score = x @ rng.normal(size=40) + rng.normal(size=300)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    genes, classes = [f"g{i}" for i in range(40)], [str(c) for c in range(n_classes)]
    return TrialData(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:], genes, classes)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_lr_family_is_scikit_learns_logistic_regression(n_classes):
    from sklearn.linear_model import LogisticRegression

    data, C = _data(n_classes), 0.05
    result = run_trial({"model": "lr", "C": C, "max_epochs": 40, "patience": 5, "batch_size": 16, "lr": 0.3}, data)
    assert result.epochs_run == 1 and result.best_epoch == 1 and not result.stopped_early
    def scaled(x):
        return (x - result.mean) / result.std

    # scikit-learn fits two classes as one binary model: the same optimum as the two-class softmax at twice C
    def reference(x, y):
        return LogisticRegression(C=C * (2 if n_classes == 2 else 1), tol=1e-10, max_iter=10_000).fit(scaled(x), y)

    # selection sees the fit on the training rows; the trial's model is then refitted on training + validation
    # rows at the same C, as LogisticRegressionCV refits once C is chosen
    on_train = reference(data.x_train, data.y_train)
    valid = classification_metrics(data.y_valid, on_train.predict_proba(scaled(data.x_valid)), n_classes)
    assert result.best_valid["auc"] == pytest.approx(valid["auc"], abs=2e-3)
    refit = reference(np.concatenate([data.x_train, data.x_valid]), np.concatenate([data.y_train, data.y_valid]))
    np.testing.assert_allclose(result.test_proba, refit.predict_proba(scaled(data.x_test)), atol=5e-4)  # float32
    assert not np.allclose(result.test_proba, on_train.predict_proba(scaled(data.x_test)), atol=5e-3)
    if n_classes > 2:  # the exported network is the refit (multinomial: the same weights as scikit-learn's)
        np.testing.assert_allclose(result.models[0].linear.weight.detach().numpy(), refit.coef_, atol=2e-3)


def test_a_finished_fit_resumed_from_its_checkpoint_is_not_fitted_again():
    data, saved = _data(3), {}
    first = run_trial({"model": "lr", "C": 1.0}, data, report=lambda row, state: saved.update(state.checkpoint()))
    again = run_trial({"model": "lr", "C": 1.0}, data, resume_from=saved)
    assert again.epochs_run == first.epochs_run == 1 and len(again.history) == 1
    np.testing.assert_allclose(again.test_proba, first.test_proba)


def test_each_fold_is_fitted_on_its_own_rows_and_batched_folds_do_not_apply():
    dataset, _, _ = make_demo_cohort(1, n_samples=163, n_genes=100)
    data = trial_data(config(folds=3, train=90, valid=30, test=40), "subtype", dataset, {}, seed=0, graph=None)
    result = run_trial({"model": "lr", "C": 0.1}, data, batched_folds=True)
    assert not result.extra["batched_folds"] and result.epochs_run == 1 and len(result.models) == 3
    weights = [m.linear.weight.detach().numpy() for m in result.models]
    assert not np.allclose(weights[0], weights[1]), "each fold has its own training rows"
    assert np.isfinite(result.best_valid["auc_se"])


def test_a_streamed_study_trains_it_by_adam_on_the_same_penalty():
    """Rows that stream in batches never sit in one process: minibatch Adam, weight decay 1 / (C n)."""
    from types import SimpleNamespace

    import torch

    from raygex.training.loop import FoldRun, with_defaults

    streamed = SimpleNamespace(streaming=True, mean=np.zeros(40, np.float32), std=np.ones(40, np.float32),
                               y_train=np.zeros(250, int), genes=[f"g{i}" for i in range(40)], graph=None)
    run = FoldRun(with_defaults({"model": "lr", "C": 0.5}), streamed, 3, torch.device("cpu"), shuffle_seed=0)
    assert not run.convex and run.optimiser.weight_decay == pytest.approx(1 / (0.5 * 250))


def test_a_fit_that_runs_out_of_iterations_says_so(monkeypatch, caplog):
    """L-BFGS stopped by its iteration cap before converging: the trial's row and a warning say it."""
    from raygex.training import convex

    data = _data(3)
    assert run_trial({"model": "lr", "C": 100.0}, data).history[-1]["fit_iteration_capped"] is False
    monkeypatch.setattr(convex, "MAX_ITER", 2)  # the cap a trial's fit runs under; the check reads SciPy's answer
    with caplog.at_level("WARNING", logger="raygex.training.loop"):
        result = run_trial({"model": "lr", "C": 100.0}, data)
    assert result.history[-1]["fit_iteration_capped"] is True and result.epochs_run == 1
    assert any("stopped at its cap of 2 L-BFGS iterations" in r.getMessage() for r in caplog.records)


def test_raygex_train_exports_the_refit_and_keeps_the_validation_score_taken_before_it(tmp_path, run_cli):
    """Through `raygex train --export`: the exported logistic regression is scikit-learn's fitted on the training
    and validation rows at the trial's C; its metadata keeps the validation metric of the fit on the training
    rows (what selection saw), not the refit's score on rows it trained on."""
    import json

    import raygex
    from raygex.config import load_config
    from raygex.data.prepare import load_dataset, load_graphs
    from sklearn.linear_model import LogisticRegression
    from tests.search.conftest import write_config, write_demo

    config = write_config(tmp_path / "c.yaml", write_demo(tmp_path / "demo"))
    code, out, err = run_cli("train", config, "--task", "subtype", "-p", "model=lr", "-p", "C=0.05", "--json",
                             "--export", tmp_path / "lr.pt")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    model = raygex.load_model(tmp_path / "lr.pt")
    meta = model.metadata
    assert meta["metrics"]["valid"]["auc"] == pytest.approx(summary["valid"]["auc"])
    assert summary["valid"]["auc"] < 0.999 and {"auc", "accuracy", "loss"} <= set(meta["metrics"]["valid"])
    loaded = load_config(config)
    data = trial_data(loaded, "subtype", load_dataset(loaded), load_graphs(loaded), seed=0, graph=None)
    assert meta["dataset"]["refitted_on_valid"] and \
        meta["dataset"]["n_samples_train"] == len(data.y_train) + len(data.y_valid)
    mean, std = data.x_train.mean(0), data.x_train.std(0)
    std = np.where(std > 0, std, 1.0)
    rows = np.concatenate([data.x_train, data.x_valid])
    reference = LogisticRegression(C=0.05, tol=1e-10, max_iter=10_000).fit(
        (rows - mean) / std, np.concatenate([data.y_train, data.y_valid]))
    ours = model.predict_proba(data.x_test)
    np.testing.assert_allclose(np.asarray(ours), reference.predict_proba((data.x_test - mean) / std), atol=2e-3)
