"""`raygex bench search`: does the sweep share data zero-copy, and how much faster than a sequential loop?

Two measurements on one generated dataset (default 2,000 samples × 16,000 genes, 128 MB float32), side by side:

* memory: each trial reports its worker's unique memory (USS) after the shared arrays were handed to it; the
  growth over an idle worker's USS, divided by the dataset size, is ~0 when arrays are read zero-copy from the
  object store and ≥ 1 when each trial holds its own copy (target < 10 %);
* throughput: the same number of trials of the same search space through `raygex search` (``concurrent`` at a
  time) and through a plain sequential Optuna loop over `run_trial` in one process (target ≥ 1.7× on 2 cores).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def _write_inputs(workdir: Path, n_samples: int, n_genes: int, seed: int = 0) -> Path:
    from raygex.data.canonical import ExpressionDataset, write_dataset

    path = workdir / f"bench_{n_samples}x{n_genes}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, n_genes)).astype(np.float32)
    label = np.where(x[:, :20].sum(axis=1) > 0, "high", "low")
    write_dataset(ExpressionDataset([f"S{i:05d}" for i in range(n_samples)], x, [f"G{i:05d}" for i in range(n_genes)],
                                    pd.DataFrame({"label": label})), path)
    return path


def _config(workdir: Path, dataset: Path, trials: int, concurrent: int, epochs: int, cpus: float) -> Path:
    config = {
        "name": "bench", "data": {"expression": str(dataset)}, "storage": str(workdir / "results"),
        "tasks": [{"name": "label", "kind": "classify", "label": "label"}],
        "split": {"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [0]},
        "train": {"max_epochs": epochs, "patience": epochs, "batch_size": 64},
        "search": {"num_samples": trials, "max_concurrent": concurrent, "scheduler": {"kind": "fifo"},
                   "space": {"model": ["mlp", "lr"], "hidden": {"choice": [32, 64]},
                             "lr": {"loguniform": [1.0e-4, 1.0e-2]}}},
        "resources": {"cpu": cpus, "gpu": 0},
    }
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _idle_worker_uss_mb() -> float:
    import ray

    @ray.remote(num_cpus=0)
    def idle() -> float:
        import psutil
        import torch  # noqa: F401  (a trial worker has torch, Tune and raygex loaded too)
        from ray import tune  # noqa: F401

        import raygex.search.trainable  # noqa: F401
        import raygex.trial  # noqa: F401

        return psutil.Process().memory_full_info().uss / 2**20

    return float(np.median(ray.get([idle.remote() for _ in range(3)])))


def run_search_benchmark(workdir: Path, n_samples: int = 2000, n_genes: int = 16000, trials: int = 8,
                         concurrent: int = 4, epochs: int = 20, cpus: float = 0.5) -> dict:
    import optuna
    import ray

    from raygex.config import load_config
    from raygex.experiment import load_dataset, trial_data
    from raygex.search import leaderboard
    from raygex.search.run import connect, run_search
    from raygex.trial import run_trial

    workdir.mkdir(parents=True, exist_ok=True)
    dataset = _write_inputs(workdir, n_samples, n_genes)
    config = load_config(_config(workdir, dataset, trials, concurrent, epochs, cpus))
    dataset_mb = n_samples * n_genes * 4 / 2**20

    started = time.perf_counter()
    connect(None)
    idle_uss = _idle_worker_uss_mb()
    experiment = run_search(config, echo=lambda *_: None)
    sweep_s = time.perf_counter() - started
    ray.shutdown()
    board = leaderboard.read(experiment / "label")
    growth = (board["uss_mb"] - idle_uss) / dataset_mb

    started = time.perf_counter()
    data = trial_data(config, "label", load_dataset(config), {}, seed=0, graph=None)
    fixed = {**config.train.model_dump(), "seed": 0}

    def objective(trial):
        model = trial.suggest_categorical("model", ["mlp", "lr"])
        params = {"model": model, "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True)}
        if model == "mlp":
            params["hidden"] = trial.suggest_categorical("hidden", [32, 64])
        return run_trial({**fixed, **params}, data).best_valid.get("auc", 0.0)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0)).optimize(
        objective, n_trials=trials)
    sequential_s = time.perf_counter() - started
    return {"dataset_mb": round(dataset_mb, 1), "trials": trials, "concurrent": concurrent, "cpus_per_trial": cpus,
            "idle_worker_uss_mb": round(idle_uss, 1),
            "trial_uss_growth_mb_median": round(float((board["uss_mb"] - idle_uss).median()), 1),
            "trial_uss_growth_over_dataset_max": round(float(growth.max()), 3),
            "trial_uss_growth_over_dataset_median": round(float(growth.median()), 3),
            "trial_uss_growth_after_epoch1_mb_median": round(float((board["uss_epoch1_mb"] - idle_uss).median()), 1),
            "sweep_s": round(sweep_s, 1), "sequential_s": round(sequential_s, 1),
            "speedup": round(sequential_s / sweep_s, 2)}


def main_json(result: dict) -> str:
    return json.dumps(result)
