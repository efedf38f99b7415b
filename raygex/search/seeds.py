"""Is a graph's gain real? The best configuration of every choice, retrained on every split seed.

A sweep selects on one split, so its leaderboard flatters whichever choice got lucky there. After each task's
sweep, the best trial of each choice (every graph and control for GCNs, and each baseline family) is trained
again on every seed in ``split.seeds``: new split, same hyperparameters. The report plots the mean and spread of
these runs and the gain of each real graph over its randomised control, paired by seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from raygex.fileio import atomic_path

SEEDS_FILE = "seeds.parquet"
CONTROL_KINDS = ("random", "empty")


def choice_of(row) -> str:
    """A leaderboard row's choice: ``gcn/<graph>`` for GCNs, else the model family."""
    model = str(row.get("config/model"))
    return f"gcn/{row.get('config/graph')}" if model == "gcn" else model


def best_per_choice(board: pd.DataFrame) -> pd.DataFrame:
    """The best finished trial of each choice (the leaderboard is sorted winner first)."""
    finished = board[board["status"] != "ERROR"].copy()
    finished["choice"] = [choice_of(row) for _, row in finished.iterrows()]
    return finished.drop_duplicates("choice", keep="first")


def _trial_params(exp_dir: Path, task: str, row) -> dict:
    from raygex.export.winner import trial_folder

    return json.loads((trial_folder(exp_dir, task, row) / "params.json").read_text())


def evaluate_seeds(config, exp_dir: Path, task: str, board: pd.DataFrame, dataset, graphs) -> pd.DataFrame:
    """Train each choice's best configuration on every split seed (as Ray tasks); write ``seeds.parquet``."""
    import ray

    from raygex.experiment import trial_data

    metric = config.search.metric.removeprefix("valid_")
    best = best_per_choice(board)

    @ray.remote(num_cpus=config.resources.cpu, num_gpus=config.resources.gpu)
    def train_on_seed(hparams: dict, data) -> dict:
        import torch

        from raygex.trial import run_trial

        torch.set_num_threads(max(1, int(config.resources.cpu)))
        result = run_trial(hparams, data)
        return {"valid": result.best_valid, "test": result.test, "epochs": result.epochs_run}

    shared: dict = {}
    jobs, keys = [], []
    for _, row in best.iterrows():
        params = _trial_params(exp_dir, task, row)
        graph = params.get("graph") if params.get("model") == "gcn" else None
        for seed in config.split.seeds:
            if (seed, graph) not in shared:
                data = trial_data(config, task, dataset, graphs, seed=seed, graph=graph).standardised()
                shared[(seed, graph)] = ray.put(data)
            hparams = {**config.train.model_dump(), **params, "seed": seed}
            jobs.append(train_on_seed.remote(hparams, shared[(seed, graph)]))
            keys.append((row["choice"], str(row["trial_id"]), seed))
    rows = []
    for (choice, trial_id, seed), result in zip(keys, ray.get(jobs)):
        rows.append({"choice": choice, "trial_id": trial_id, "seed": seed, "epochs": result["epochs"],
                     f"valid_{metric}": result["valid"].get(metric), f"test_{metric}": result["test"].get(metric)})
    table = pd.DataFrame(rows)
    with atomic_path(Path(exp_dir) / task / SEEDS_FILE) as tmp:
        table.to_parquet(tmp, index=False)
    return table


def read_seeds(exp_dir: Path, task: str) -> pd.DataFrame | None:
    path = Path(exp_dir) / task / SEEDS_FILE
    return pd.read_parquet(path) if path.exists() else None
