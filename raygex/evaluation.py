"""Is a choice's score real? The best configuration of every choice, retrained on every split seed.

A sweep selects on one split, so its leaderboard flatters whichever choice got lucky there. After a study's
sweep, the best trial of each choice (every graph and control for GCNs, and each baseline family) is trained
again on every seed in ``split.seeds``: new split, same hyperparameters. The report plots the mean and spread of
these runs and the gain of each real graph over its randomised control, paired by seed.
"""

from __future__ import annotations

import pandas as pd

from raygex.choices import best_per_choice
from raygex.layout import ExperimentLayout, metric_name


def evaluate_seeds(layout: ExperimentLayout, study: str, board: pd.DataFrame, dataset, graphs) -> pd.DataFrame:
    """Train each choice's best configuration on every split seed (as Ray tasks); write the seed-run table."""
    import ray

    from raygex.prepare import trial_data

    config = layout.config
    metric = metric_name(config)
    best = best_per_choice(board)

    @ray.remote(num_cpus=config.resources.cpu, num_gpus=config.resources.gpu)
    def train_on_seed(hparams: dict, data) -> dict:
        import torch

        from raygex.training import run_trial

        torch.set_num_threads(max(1, int(config.resources.cpu)))
        result = run_trial(hparams, data)
        return {"valid": result.best_valid, "test": result.test, "epochs": result.epochs_run}

    shared: dict = {}
    jobs, keys = [], []
    for _, row in best.iterrows():
        params = layout.trial_params(study, row)
        graph = params.get("graph") if params.get("model") == "gcn" else None
        for seed in config.split.seeds:
            if (seed, graph) not in shared:
                data = trial_data(config, study, dataset, graphs, seed=seed, graph=graph).standardised()
                shared[(seed, graph)] = ray.put(data)
            hparams = {**config.train.model_dump(), **params, "seed": seed}
            jobs.append(train_on_seed.remote(hparams, shared[(seed, graph)]))
            keys.append((row["choice"], str(row["trial_id"]), seed))
    rows = []
    for (choice, trial_id, seed), result in zip(keys, ray.get(jobs)):
        rows.append({"choice": choice, "trial_id": trial_id, "seed": seed, "epochs": result["epochs"],
                     f"valid_{metric}": result["valid"].get(metric), f"test_{metric}": result["test"].get(metric)})
    table = pd.DataFrame(rows)
    layout.write_seeds(study, table)
    return table
