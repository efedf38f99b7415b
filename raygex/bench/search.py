"""`raygex bench search`: does the sweep share data zero-copy, and how much faster than a sequential loop?

Two measurements on one generated dataset (default 2,000 samples × 16,000 genes, 122 MiB float32), side by side:

* memory: each trial reports its worker's private (anonymous) memory when the shared arrays were handed to it
  and again after its first epoch has read all of them; the growth over an idle worker, divided by the dataset
  size, is ~0 when the arrays are read zero-copy from the object store and ≥ 0.6 (the training rows) when a
  trial holds its own copy (target < 10 %);
* throughput: the same number of trials of the same search space through `raygex search` (``concurrent`` at a
  time) and through a plain sequential Optuna loop over `run_trial` in one process, with torch's default threads
  (all cores) and with one thread. Reported end to end (Ray start, data reads included) and for the trial phase
  alone (`Tuner.fit` against `study.optimize`), since Ray's start is paid once per sweep, not per trial.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
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
        "split": {"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [0], "folds": None},
        "train": {"max_epochs": epochs, "patience": epochs, "batch_size": 64},
        "search": {"num_samples": trials, "max_concurrent": concurrent, "scheduler": {"kind": "fifo"},
                   "space": {"model": ["mlp", "lr"], "hidden": {"choice": [32, 64]},
                             "lr": {"loguniform": [1.0e-4, 1.0e-2]}}},
        "resources": {"cpu": cpus, "gpu": 0},
    }
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _idle_worker_private_mb() -> float:
    import ray

    @ray.remote(num_cpus=0)
    def idle() -> float:
        import torch  # noqa: F401  (a trial worker has torch, Tune and raygex loaded too)
        from ray import tune  # noqa: F401

        import raygex.search.trainable  # noqa: F401
        import raygex.training  # noqa: F401
        from raygex.search.memory import private_memory_mb

        return private_memory_mb()

    return float(np.median(ray.get([idle.remote() for _ in range(3)])))


def _sequential(config, trials: int, threads: int | None, tuned_malloc: bool = False) -> tuple[float, float]:
    """A plain Optuna loop over `run_trial` in this process: (end-to-end seconds, trial-phase seconds).

    ``tuned_malloc`` applies the allocator setting the sweep's trials use; it cannot be undone, so
    :func:`run_search_benchmark` runs that variant in a child process.
    """
    import optuna
    import torch

    from raygex.allocator import keep_freed_memory

    from raygex.prepare import load_dataset, trial_data
    from raygex.training import run_trial

    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    if tuned_malloc:
        keep_freed_memory()
    try:
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
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
        loop_started = time.perf_counter()
        study.optimize(objective, n_trials=trials)
        ended = time.perf_counter()
    finally:
        torch.set_num_threads(default_threads)
    return ended - started, ended - loop_started


def run_search_benchmark(workdir: Path, n_samples: int = 2000, n_genes: int = 16000, trials: int = 8,
                         concurrent: int = 4, epochs: int = 20, cpus: float = 0.5) -> dict:
    import ray
    import torch

    from raygex.config import load_config
    from raygex.layout import ExperimentLayout
    from raygex.pipeline import run_search
    from raygex.ray_session import connect

    workdir.mkdir(parents=True, exist_ok=True)
    dataset = _write_inputs(workdir, n_samples, n_genes)
    config = load_config(_config(workdir, dataset, trials, concurrent, epochs, cpus))
    dataset_mb = n_samples * n_genes * 4 / 2**20

    started = time.perf_counter()
    connect(None)
    idle = _idle_worker_private_mb()
    timings: dict = {}
    experiment = run_search(config, echo=lambda *_: None, timings=timings)
    sweep_s = time.perf_counter() - started
    ray.shutdown()
    board = ExperimentLayout.open(experiment).read_leaderboard("label")
    fresh = board[board["worker_trial"] == 1]  # later trials in a reused worker start with its retained heap
    growth = (fresh["private_mb"] - idle) / dataset_mb

    default_threads = torch.get_num_threads()
    sequential_s, sequential_loop_s = _sequential(config, trials, None)
    single_s, single_loop_s = _sequential(config, trials, 1)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        _, tuned_loop_s = child.submit(_sequential, config, trials, None, True).result()
    return {"dataset_mb": round(dataset_mb, 1), "trials": trials, "concurrent": concurrent, "cpus_per_trial": cpus,
            "epochs": epochs, "idle_worker_private_mb": round(idle, 1),
            "trials_reading_shared_arrays": f"{int(board['shares_memory'].sum())}/{len(board)}",
            "fresh_worker_private_growth_over_dataset_max": round(float(growth.max()), 3),
            "fresh_worker_growth_after_epoch1_mb_median": round(float((fresh["private_epoch1_mb"] - idle).median()), 1),
            "sweep_s": round(sweep_s, 1), "sweep_ray_start_s": round(timings["ray_s"], 1),
            "sweep_data_s": round(timings["data_s"], 1), "sweep_trials_s": round(timings["trials_s"], 1),
            "sequential_threads": default_threads, "sequential_s": round(sequential_s, 1),
            "sequential_trials_s": round(sequential_loop_s, 1),
            "sequential_1thread_s": round(single_s, 1), "sequential_1thread_trials_s": round(single_loop_s, 1),
            "sequential_tuned_malloc_trials_s": round(tuned_loop_s, 1),
            "speedup_end_to_end": round(sequential_s / sweep_s, 2),
            "speedup_trials": round(sequential_loop_s / timings["trials_s"], 2),
            "speedup_trials_vs_1thread": round(single_loop_s / timings["trials_s"], 2),
            "speedup_trials_vs_tuned_malloc": round(tuned_loop_s / timings["trials_s"], 2)}


def main_json(result: dict) -> str:
    return json.dumps(result)
