"""The training loop: seeded, reshuffled, early stopping that restores the best epoch, metrics on probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raygex.metrics import classification_metrics
from raygex.training.loop import TrialData, run_trial


def make_data(seed=0, n=240, genes=30, noisy_valid=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, genes)).astype(np.float32) * 2 + 5
    y = (x[:, 0] + x[:, 1] > 10).astype(np.int64)
    y_valid = rng.integers(0, 2, size=60) if noisy_valid else y[120:180]
    return TrialData(x[:120], y[:120], x[120:180], y_valid, x[180:], y[180:],
                     [f"G{i}" for i in range(genes)], ["low", "high"])


@pytest.mark.parametrize("model,lr", [("lr", 3e-2), ("mlp", 1e-2)])
def test_baselines_learn_a_linear_rule(model, lr):
    result = run_trial({"model": model, "lr": lr, "max_epochs": 40, "patience": 20, "hidden": 32}, make_data())
    assert result.test["auc"] > 0.9
    assert result.best_valid["auc"] > 0.9
    assert set(result.history[0]) >= {"train_loss", "valid_auc", "valid_balanced_accuracy", "train_accuracy"}


def test_same_seed_same_result_other_seed_differs():
    a = run_trial({"model": "mlp", "max_epochs": 3, "hidden": 16, "seed": 1}, make_data())
    b = run_trial({"model": "mlp", "max_epochs": 3, "hidden": 16, "seed": 1}, make_data())
    c = run_trial({"model": "mlp", "max_epochs": 3, "hidden": 16, "seed": 2}, make_data())
    assert a.history == b.history
    assert a.history != c.history


def test_early_stopping_restores_the_best_epoch_weights():
    snapshots = {}

    def report(row, state):
        snapshots[row["epoch"]] = {k: v.detach().clone() for k, v in state.folds.models()[0].state_dict().items()}

    data = make_data(noisy_valid=True)  # validation labels are noise: its AUC peaks at some early epoch
    result = run_trial({"model": "mlp", "hidden": 16, "max_epochs": 40, "patience": 8, "lr": 1e-2}, data, report)
    aucs = [row["valid_auc"] for row in result.history]
    assert result.best_epoch == int(np.nanargmax(aucs)) + 1
    assert result.best_epoch < result.epochs_run, "the test needs a peak before the last epoch"
    assert result.stopped_early
    final = result.model.state_dict()
    for name, tensor in snapshots[result.best_epoch].items():
        torch.testing.assert_close(final[name], tensor)
    last = snapshots[result.epochs_run]
    assert any(not torch.equal(final[k], last[k]) for k in final), "final weights must not be the last epoch's"
    # The reported test metric is the restored model's.
    mean, std = result.mean, result.std
    with torch.no_grad():
        proba = torch.softmax(result.model.eval()(torch.from_numpy((data.x_test - mean) / std)), 1).numpy()
    assert classification_metrics(data.y_test, proba, 2)["auc"] == pytest.approx(result.test["auc"])


def test_the_last_checkpoint_keeps_the_best_epochs_test_probabilities():
    """What the graph swap reads of a sweep trial that ran to its end instead of training it again."""
    saved = {}
    data = make_data(noisy_valid=True)
    result = run_trial({"model": "mlp", "hidden": 16, "max_epochs": 40, "patience": 8, "lr": 1e-2}, data,
                       lambda row, state: saved.update(state.checkpoint()))
    assert saved["best_epoch"] == result.best_epoch < result.epochs_run
    np.testing.assert_allclose(saved["best_test_proba"].numpy(), result.test_proba, rtol=1e-6)
    resaved = {}  # resumed after its end, the trial reports (and checkpoints) its end again, probabilities kept
    run_trial({"model": "mlp", "hidden": 16, "max_epochs": 40, "patience": 8, "lr": 1e-2}, data,
              lambda row, state: resaved.update(state.checkpoint()), resume_from=saved)
    np.testing.assert_allclose(resaved["best_test_proba"].numpy(), result.test_proba, rtol=1e-6)


def test_standardisation_uses_training_rows_only():
    data = make_data()
    data.x_test = data.x_test + 1000.0
    mean, _ = data.standardisation()
    np.testing.assert_allclose(mean, data.x_train.mean(axis=0), rtol=1e-5)


def test_auc_is_computed_on_probabilities():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.45, 0.55], [0.4, 0.6]])  # same hard labels, graded confidence
    assert classification_metrics(y, proba, 2)["auc"] == 1.0
    # Hard labels [0, 0, 0, 1] would give an "AUC" of 0.75; the probabilities rank every pair correctly.
    proba_hedged = np.array([[0.9, 0.1], [0.55, 0.45], [0.52, 0.48], [0.4, 0.6]])
    m = classification_metrics(y, proba_hedged, 2)
    assert m["auc"] == 1.0 and m["accuracy"] == 0.75
    three = classification_metrics(np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 2, 1]] * 0.8 + 0.2 / 3, 3)
    assert 0.5 < three["auc"] < 1.0


def test_resuming_from_a_checkpoint_continues_exactly():
    config = {"model": "mlp", "hidden": 16, "max_epochs": 8, "patience": 100, "dropout": 0.3, "seed": 5}
    full = run_trial(config, make_data())
    saved = {}

    def keep_epoch_3(row, state):
        if row["epoch"] == 3:
            saved["ckpt"] = state.checkpoint()

    run_trial({**config, "max_epochs": 3}, make_data(), keep_epoch_3)
    resumed = run_trial(config, make_data(), resume_from=saved["ckpt"])
    assert resumed.history == full.history
    assert resumed.test == full.test


def test_an_epoch_forwards_the_training_rows_once_and_scores_them_as_they_trained(monkeypatch):
    """The training metrics come from the epoch's own batches: the network sees each training row once per epoch
    (no second pass to score them), then the validation rows, and the test rows only when validation improved."""
    from raygex.training.loop import FoldRun

    data, seen, improved = make_data(), [], []
    built = FoldRun.__init__

    def count_rows(self, *args, **kwargs):
        built(self, *args, **kwargs)
        self.model.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))

    def report(row, state):
        improved.append(row["best_epoch"] == row["epoch"])
        rows.append(sum(seen))
        seen.clear()

    rows: list[int] = []
    monkeypatch.setattr(FoldRun, "__init__", count_rows)  # a forward hook that counts rows, nothing else
    result = run_trial({"model": "mlp", "lr": 1e-2, "max_epochs": 4, "patience": 4, "hidden": 16, "batch_size": 32},
                       data, report=report)
    assert rows == [120 + 60 + (60 if better else 0) for better in improved]
    # the running figures are the epoch's batches' own: close to, not equal to, a pass over the trained network
    assert 0.0 < result.history[-1]["train_loss"] < 1.0


def test_a_run_nobody_stops_early_scores_the_test_set_once_at_its_end_with_the_same_figures(monkeypatch):
    """A later-stage training (``test_each_best=False``: nobody stops it early) scores the test rows once, from its
    best weights; a sweep trial (a scheduler may stop it at any epoch) at each new best. Same weights, same
    figures."""
    from raygex.training import loop

    calls = []
    real = loop._mean_test_proba
    monkeypatch.setattr(loop, "_mean_test_proba", lambda folds: calls.append(1) or real(folds))
    data = make_data(noisy_valid=True)
    hparams = {"model": "mlp", "hidden": 16, "max_epochs": 30, "patience": 30, "lr": 1e-2}
    each = run_trial(hparams, data)
    improvements, calls[:] = sum(row["best_epoch"] == row["epoch"] for row in each.history), calls[:0]
    once = run_trial(hparams, data, test_each_best=False)
    assert improvements > 1 and len(calls) == 1, "one test pass, at the end"
    assert once.test == each.test and once.best_epoch == each.best_epoch
    np.testing.assert_array_equal(once.test_proba, each.test_proba)
