"""The later stages' plan of trainings (raygex.analysis.retrain): one training per (configuration, graph, seed),
and which sweep trials already are the first seed's run."""

from __future__ import annotations

import pandas as pd

from raygex.analysis.retrain import from_sweep, plan, training_key
from raygex.config import ExperimentConfig

CONFIG = {"name": "t", "data": {"expression": "x.parquet"}, "graphs": {"true": "g.parquet"},
          "controls": ["random", "empty"], "tasks": [{"name": "subtype", "kind": "classify", "label": "subtype"}],
          "split": {"seeds": [0, 1, 2]}, "train": {"max_epochs": 10, "patience": 3},
          "search": {"num_samples": 8}}
BOARD = pd.DataFrame({"trial_id": ["g1", "m1", "l1", "g2"], "status": ["TERMINATED"] * 4,
                      "config/model": ["gcn", "mlp", "lr", "gcn"], "config/graph": ["true", None, None, "empty"],
                      "winner": [False, True, False, False]})
PARAMS = {"g1": {"model": "gcn", "graph": "true", "depth": 2, "lr": 0.01}, "m1": {"model": "mlp", "hidden": 16},
          "l1": {"model": "lr", "lr": 0.001}, "g2": {"model": "gcn", "graph": "empty", "depth": 1}}


class Layout:
    """What the plan reads of an experiment: its config, each trial's parameters, history and last checkpoint."""

    def __init__(self, histories: dict, checkpoints: dict | None = None):
        self.config = ExperimentConfig.model_validate(CONFIG)
        self.histories = histories
        self.checkpoints = checkpoints or {}

    def trial_dir(self, study, row):
        return str(row["trial_id"])

    def latest_checkpoint(self, folder):
        return self.checkpoints.get(folder)

    def trial_params(self, study, row):
        return dict(PARAMS[str(row["trial_id"])])

    def trial_history(self, study, row):
        return pd.DataFrame(self.histories.get(str(row["trial_id"]), []))


def history(last_epoch: int, best_epoch: int) -> list[dict]:
    return [{"epoch": e, "best_epoch": min(e, best_epoch), "best_valid_auc": 0.7, "best_valid_auc_se": 0.01,
             "best_test_auc": 0.65} for e in range(1, last_epoch + 1)]


def test_one_training_per_configuration_graph_and_seed():
    rows, trainings = plan(Layout({}), "subtype", BOARD)
    choices = {run.choice for run in rows}
    assert choices == {"mlp", "lr", "gcn/true", "gcn/true:random", "gcn/empty"}  # g2 is not the best GCN
    assert len(rows) == len(choices) * 3 and len(trainings) == len(rows)  # the winner (m1) is mlp's best
    gcn = [run for run in rows if run.graph is not None]
    assert {run.trial_id for run in gcn} == {"g1"}, "every graph is trained with the best GCN configuration"
    one = trainings[gcn[0].key]
    assert one == {**Layout({}).config.train.model_dump(), **PARAMS["g1"], "graph": gcn[0].graph, "seed": gcn[0].seed}
    assert training_key(dict(reversed(list(one.items())))) == gcn[0].key  # the order of keys does not matter


def test_the_winner_below_its_choices_best_is_trained_on_its_own():
    board = BOARD.assign(winner=[False, False, False, True])  # the one-SE rule took g2
    rows, trainings = plan(Layout({}), "subtype", board)
    won = [run for run in rows if run.role == "winner"]
    assert {run.trial_id for run in won} == {"g2"} and len(won) == 3
    assert len(trainings) == len(rows)


def test_only_a_first_seed_trial_that_ran_to_its_end_is_taken_from_the_sweep():
    # m1 stopped improving at epoch 4 and ran 3 more (patience): its own end. l1 was stopped by the scheduler at
    # epoch 5 (best at 5): not its end. g1 ran to max_epochs, but its checkpoint (written before test
    # probabilities were kept) lacks what the swap needs.
    layout = Layout({"m1": history(7, 4), "l1": history(5, 5), "g1": history(10, 10)},
                    {"g1": {"best_epoch": 10, "history": []}})
    rows, trainings = plan(layout, "subtype", BOARD)
    taken = from_sweep(layout, "subtype", rows, trainings, BOARD)
    (key,) = taken
    run = next(r for r in rows if r.key == key)
    assert (run.trial_id, run.seed) == ("m1", 0)
    assert taken[key] == {"valid": {"auc": 0.7}, "test": {"auc": 0.65}, "epochs": 7, "from_trial": "m1"}


def test_the_best_gcns_own_graph_run_on_the_first_seed_is_its_sweep_trial_with_its_test_probabilities():
    import numpy as np
    import torch

    proba = torch.tensor([[0.2, 0.8], [0.9, 0.1]])
    layout = Layout({"g1": history(10, 7)}, {"g1": {"best_epoch": 7, "best_test_proba": proba}})
    rows, trainings = plan(layout, "subtype", BOARD)
    taken = from_sweep(layout, "subtype", rows, trainings, BOARD)
    (key,) = taken
    run = next(r for r in rows if r.key == key)
    assert (run.choice, run.seed) == ("gcn/true", 0), "only its own graph: a control swapped in trains anew"
    assert taken[key]["needs_split"] and taken[key]["from_trial"] == "g1"
    np.testing.assert_allclose(taken[key]["proba"], proba.numpy())
    # a checkpoint that is not of the best epoch the history reports is not that epoch's prediction
    stale = Layout({"g1": history(10, 7)}, {"g1": {"best_epoch": 6, "best_test_proba": proba}})
    assert from_sweep(stale, "subtype", rows, trainings, BOARD) == {}
