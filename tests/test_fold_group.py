"""Batched folds (raygex.training.fold_group): the k fold networks trained as one batched model give the
sequential run's metrics within float tolerance (no dropout: nothing random but the seeded initial weights and
shuffles), for every model family; checkpoints move between the two; the batched Adam is Adam per fold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raygex.data.demo import make_demo_cohort
from raygex.data.prepare import trial_data
from raygex.training.fold_group import StackedAdam
from raygex.training.loop import run_trial
from raygex.training.optimiser import Adam
from tests.test_folds import config

CONFIGS = {  # the Adam-trained families (logistic regression is a convex fit per fold: tests/test_convex.py)
    "mlp": {"model": "mlp", "hidden": 16, "dropout": 0.0, "lr": 0.005},
    "gcn": {"model": "gcn", "graph": "true", "depth": 2, "channels": 4, "embedding": 2, "dropout": 0.0, "lr": 0.005},
}


@pytest.fixture(scope="module")
def cohort():
    return make_demo_cohort(1, n_samples=163, n_genes=100)  # folds of unequal sizes: a fold sits out a step


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_batched_folds_give_the_sequential_metrics(cohort, family):
    dataset, true, _ = cohort
    data = trial_data(config(folds=5, train=91, valid=30, test=40), "subtype", dataset, {"true": true}, seed=0,
                      graph="true" if family == "gcn" else None)
    assert len({len(rows) for rows, _ in data.folds}) > 1, "the folds differ in size"
    hparams = {**CONFIGS[family], "max_epochs": 6, "patience": 6, "batch_size": 16, "seed": 3,
               "weight_decay": 1e-4}
    one_by_one = run_trial(hparams, data, batched_folds=False)
    batched = run_trial(hparams, data, batched_folds=True)
    assert batched.extra["batched_folds"] and not one_by_one.extra["batched_folds"]
    assert batched.epochs_run == one_by_one.epochs_run and batched.best_epoch == one_by_one.best_epoch
    for a, b in zip(one_by_one.history, batched.history):
        for key in ("train_loss", "valid_loss", "valid_auc", "valid_auc_se", "best_test_auc"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (key, a["epoch"])
    np.testing.assert_allclose(batched.test_proba, one_by_one.test_proba, rtol=1e-4, atol=1e-5)
    for seq, bat in zip(one_by_one.models, batched.models):  # the fold ensemble that is exported
        for (name, p), (_, q) in zip(seq.state_dict().items(), bat.state_dict().items()):
            torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-4, msg=name)


def test_a_checkpoint_of_one_resumes_in_the_other(cohort):
    """Stop after 3 epochs one way, go on the other way: the same run as 6 epochs without stopping."""
    dataset, true, _ = cohort
    data = trial_data(config(folds=3, train=90, valid=30, test=40), "subtype", dataset, {"true": true}, seed=0,
                      graph=None)
    hparams = {**CONFIGS["mlp"], "max_epochs": 6, "patience": 6, "batch_size": 16, "seed": 1}
    whole = run_trial(hparams, data, batched_folds=False)
    for first, then in ((True, False), (False, True)):
        saved = {}
        run_trial({**hparams, "max_epochs": 3}, data, batched_folds=first,
                  report=lambda row, state: saved.update(state.checkpoint()))
        resumed = run_trial(hparams, data, batched_folds=then, resume_from=saved)
        assert [r["epoch"] for r in resumed.history] == list(range(1, 7))
        for a, b in zip(whole.history, resumed.history):
            assert b["valid_loss"] == pytest.approx(a["valid_loss"], rel=1e-4), (first, a["epoch"])


def test_stacked_adam_is_adam_per_fold_and_leaves_a_sitting_out_fold_alone():
    torch.manual_seed(0)
    weights = [torch.randn(3, 4, 2), torch.randn(3, 5)]
    singles = [[w[f].clone().requires_grad_(True) for w in weights] for f in range(3)]
    adams = [Adam(ps, lr=0.01, weight_decay=0.1) for ps in singles]
    stacked = [w.clone().requires_grad_(True) for w in weights]
    batched = StackedAdam(stacked, 3, lr=0.01, weight_decay=0.1)
    for step in range(4):
        active = torch.tensor([True, step != 2, True])  # fold 1 sits out the third step
        grads = [torch.randn_like(w) for w in weights]
        for f in range(3):
            if active[f]:
                for p, g in zip(singles[f], grads):
                    p.grad = g[f].clone()
                adams[f].step()
        for p, g in zip(stacked, grads):
            p.grad = g.clone()
        batched.step(active)
    for f in range(3):
        for p, q in zip(singles[f], stacked):
            torch.testing.assert_close(q[f], p, rtol=1e-6, atol=1e-7)
        saved = batched.fold_state(f)
        assert float(saved["state"][0]["step"]) == (3 if f == 1 else 4)
        torch.testing.assert_close(saved["state"][1]["exp_avg_sq"], adams[f].state_dict()["state"][1]["exp_avg_sq"])
