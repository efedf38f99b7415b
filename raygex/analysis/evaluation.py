"""Is a choice's score real? The best configuration of every choice, retrained on every split seed.

A sweep selects on one split, so its leaderboard flatters whichever choice got lucky there. After a study's
sweep, the best trial of each choice (every graph and control for GCNs, and each baseline family) is trained
again on every seed in ``split.seeds``: new split, same hyperparameters. The report plots the mean and spread of
these runs and the gain of each real graph over its randomised control, paired by seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from raygex.analysis.choices import best_per_choice, choice_of
from raygex.config import metric_name
from raygex.experiment.layout import ExperimentLayout
from raygex.runtime.gpu_share import limit_gpu_memory


def remote_trainer(config):
    """A Ray task that trains ``hparams`` on a split (standardised, shared once per seed through the object store)
    with ``graph`` attached, on the trial's resources (CUDA when the task gets a GPU); it returns the best
    validation metrics, the test metrics of that epoch, the epochs run and the test-set probabilities (with folds:
    the mean over the folds' networks, whose metrics the test metrics are)."""
    import ray

    @ray.remote(num_cpus=config.resources.cpu, num_gpus=config.resources.gpu)
    def train(hparams: dict, data, graph=None) -> dict:
        import torch

        from raygex.training.loop import run_trial

        torch.set_num_threads(max(1, int(config.resources.cpu)))
        limit_gpu_memory()
        data = dataclasses.replace(data, graph=graph)
        result = run_trial(hparams, data)  # on the seed's folds when the study cross-validates
        return {"valid": result.best_valid, "test": result.test, "epochs": result.epochs_run,
                "proba": np.asarray(result.test_proba)}

    return train


@dataclass
class SeedSplit:
    """What the driver keeps of a split seed: the test labels and ids, and every graph choice aligned to it."""

    y_test: np.ndarray
    test_ids: list[str]
    graphs: dict


def split_per_seed(config, study: str, dataset, graphs) -> dict:
    """Seed → (:class:`SeedSplit`, what its trainings share). From a :class:`raygex.data.study_source.StudySource`
    (a run's stages) the split's rows are made in Ray tasks and reused from the sweep for its seed; the driver
    keeps labels and graphs only. From an in-memory dataset, the standardised arrays are put in the object store."""
    import ray

    from raygex.data.prepare import study_graphs, trial_data
    from raygex.data.study_source import StudySource

    splits = {}
    for seed in config.split.seeds:
        if isinstance(dataset, StudySource):
            shared, aligned, plan = dataset.study_data(study, seed)
            splits[seed] = (SeedSplit(plan.labels["test"], plan.test_ids, aligned), shared)
            continue
        raw = trial_data(config, study, dataset, graphs, seed=seed, graph=None)
        splits[seed] = (SeedSplit(raw.y_test, raw.test_ids, study_graphs(config, graphs, raw, seed=seed)),
                        ray.put(raw.standardised()))
    return splits


def evaluate_seeds(layout: ExperimentLayout, study: str, board: pd.DataFrame, dataset, graphs) -> pd.DataFrame:
    """Train each choice's best configuration, and the winner (which the one-SE rule may take from below its
    choice's best), on every split seed (as Ray tasks); write the seed-run table."""
    import ray

    from raygex.analysis.leaderboard import winner

    config = layout.config
    metric = metric_name(config)
    best = best_per_choice(board).assign(role="best")
    chosen = winner(board)
    if chosen is not None and str(chosen["trial_id"]) not in set(best["trial_id"].astype(str)):
        # the one-SE rule took the winner from below its choice's best: re-evaluated too, kept apart (role) so
        # that per-choice figures still mean "the choice's best configuration"
        best = pd.concat([best, chosen.to_frame().T.assign(choice=choice_of(chosen), role="winner")])
    train = remote_trainer(config)
    splits = split_per_seed(config, study, dataset, graphs)
    jobs, keys = [], []
    for _, row in best.iterrows():
        params = layout.trial_params(study, row)
        graph = params.get("graph") if params.get("model") == "gcn" else None
        for seed, (split, shared) in splits.items():
            aligned = None if graph is None else split.graphs[graph]
            hparams = {**config.train.model_dump(), **params, "seed": seed}
            jobs.append(train.remote(hparams, shared, aligned))
            keys.append((row["choice"], str(row["trial_id"]), row["role"], seed))
    rows = []
    for (choice, trial_id, role, seed), result in zip(keys, ray.get(jobs)):
        rows.append({"choice": choice, "trial_id": trial_id, "role": role, "seed": seed, "epochs": result["epochs"],
                     f"valid_{metric}": result["valid"].get(metric), f"test_{metric}": result["test"].get(metric)})
    table = pd.DataFrame(rows)
    layout.write_seeds(study, table)
    return table
