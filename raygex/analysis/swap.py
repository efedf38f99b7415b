"""The graph swap: the equal-budget comparison behind every verdict.

A sweep gives each graph a different number of trials (TPE piles them onto whatever looks best), so comparing
each graph's best trial flatters the graph that got the most. Here the study's best GCN configuration (chosen on
validation, on the search split) is retrained with exactly the same hyperparameters with every graph and every
control swapped in, on every split seed; for one seed, the split and the initialisation seed are the same for
every graph, so only the graph differs. Every run is scored on the study's fixed test set, and its test-set
probabilities are kept, so :mod:`raygex.analysis.verdict` can resample test samples as well as seeds.

Outputs (through the layout): the swap table (seed, graph, validation and test metric, epochs, aligned edge count)
and the test predictions (seed, graph, test row, label, class probabilities).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raygex.experiment.layout import ExperimentLayout
from raygex.config import metric_name


def best_gcn_params(layout: ExperimentLayout, study: str, board: pd.DataFrame) -> dict | None:
    """The hyperparameters of the best finished GCN trial (leaderboard order: validation), or None."""
    gcn = board[(board["status"] != "ERROR") & (board["config/model"].astype(str) == "gcn")]
    return None if gcn.empty else layout.trial_params(study, gcn.iloc[0])


def swap_graphs(layout: ExperimentLayout, study: str, board: pd.DataFrame, dataset, graphs) -> pd.DataFrame:
    """Retrain the best GCN configuration with every graph choice on every split seed (as Ray tasks); write the
    swap table and its test predictions (both empty when the study has no finished GCN trial)."""
    config = layout.config
    metric = metric_name(config)
    params = best_gcn_params(layout, study, board)
    if params is None:
        empty = pd.DataFrame(columns=["seed", "graph", "epochs", "edges", f"valid_{metric}", f"test_{metric}"])
        layout.write_swap(study, empty, pd.DataFrame(columns=["seed", "graph", "row", "sample", "y"]))
        return empty
    import ray

    from raygex.analysis.evaluation import remote_trainer, split_per_seed

    train = remote_trainer(config)
    jobs, keys = [], []
    for seed, (raw, shared) in split_per_seed(config, study, dataset, graphs).items():
        by_choice = raw.graphs  # each real graph aligned once per seed, controls from it
        for choice in config.graph_choices():
            aligned = by_choice[choice]
            hparams = {**config.train.model_dump(), **params, "graph": choice, "seed": seed}
            jobs.append(train.remote(hparams, shared, aligned))
            keys.append((seed, choice, aligned.n_edges, raw))
    rows, predictions = [], []
    for (seed, choice, edges, raw), result in zip(keys, ray.get(jobs)):
        rows.append({"seed": seed, "graph": choice, "epochs": result["epochs"], "edges": edges,
                     f"valid_{metric}": result["valid"].get(metric), f"test_{metric}": result["test"].get(metric)})
        proba = result["proba"]
        predictions.append(pd.DataFrame({"seed": seed, "graph": choice, "row": np.arange(len(raw.y_test)),
                                         "sample": raw.test_ids, "y": np.asarray(raw.y_test, dtype=np.int64),
                                         **{f"p{c}": proba[:, c] for c in range(proba.shape[1])}}))
    table = pd.DataFrame(rows)
    layout.write_swap(study, table, pd.concat(predictions, ignore_index=True))
    return table
