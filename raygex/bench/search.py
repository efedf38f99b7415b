"""`raygex bench search`: does the sweep share data zero-copy, and how much faster than a sequential loop?

Two measurements on one generated dataset (default 2,000 samples × 16,000 genes, 122 MiB float32), side by side:

* memory: each trial reports its worker's private (anonymous) memory when the shared arrays were handed to it
  and again after its first epoch has read all of them; the growth over an idle worker, divided by the dataset
  size, is ~0 when the arrays are read zero-copy from the object store and ≥ 0.6 (the training rows) when a
  trial holds its own copy (target < 10 %);
* throughput: one list of configurations run twice, through `raygex search` (``concurrent`` at a time) and as a
  plain loop over `run_trial` in one process (torch's default threads; one thread; default threads with the
  trials' allocator setting; the best of the three is the baseline). The space is finite, ``trials`` MLP
  configurations (one per learning rate; MLPs, so no trial is a cheap logistic regression), FIFO and
  patience = epochs, so the sweep runs each exactly once and every trial does the same work; the loop replays
  the list the sweep ran (read from its trial folders). Compared: the trial phases, from the first trial's start
  to the last trial's end by the trials' own wall clocks (``sweep_trials_s``), against the loop over the list.
  Listed apart with their seconds: Ray's start, the data reads, Tune's start inside ``Tuner.fit`` before the
  first trial (its worker processes importing torch: ``sweep_tune_start_s``; ``Tuner.fit`` whole is
  ``sweep_fit_s``, and ``speedup_fit_vs_best_sequential`` the ratio with it) and each post-sweep stage (export,
  evaluation, report, ...); W&B is off, since the loop logs nothing. Each run works in a fresh temporary folder.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from raygex.runtime.allocator import keep_freed_memory
from raygex.runtime.console import quiet
from raygex.runtime.ray_session import connect
from raygex.search.memory import private_memory_mb


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
    """A finite space of exactly ``trials`` MLP configurations (one per learning rate), so the sweep runs each
    once and the loop can replay the same list; FIFO (no early stop) and patience = epochs: equal work per trial."""
    rates = [float(f"{r:.3g}") for r in np.logspace(-4, -2, trials)]
    config = {
        "name": "bench", "data": {"expression": str(dataset)}, "storage": str(workdir / "results"),
        "tasks": [{"name": "label", "kind": "classify", "label": "label"}],
        "split": {"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [0], "folds": None},
        "train": {"max_epochs": epochs, "patience": epochs, "batch_size": 64},
        "search": {"num_samples": trials, "max_concurrent": concurrent, "scheduler": {"kind": "fifo"},
                   "space": {"model": ["mlp"], "hidden": 64, "lr": {"choice": rates}}},
        "resources": {"cpu": cpus, "gpu": 0},
        "wandb": {"mode": "disabled"},
    }
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def swept_configurations(layout, study: str = "label") -> list[dict]:
    """The sampled parameters of every trial the sweep ran (``model``, ``hidden``, ``lr``), in trial order."""
    board = layout.read_leaderboard(study).sort_values("trial_id")
    return [{k: layout.trial_params(study, row)[k] for k in ("model", "hidden", "lr")} for _, row in board.iterrows()]


def _idle_worker_private_mb() -> float:
    import ray

    @ray.remote(num_cpus=0)
    def idle() -> float:
        import torch  # noqa: F401  (a trial worker has torch, Tune and raygex loaded too)
        from ray import tune  # noqa: F401

        import raygex.search.trainable  # noqa: F401
        import raygex.training.loop  # noqa: F401

        return private_memory_mb()

    return float(np.median(ray.get([idle.remote() for _ in range(3)])))


def _sequential(config, configurations: list[dict], threads: int | None,
                tuned_malloc: bool = False) -> tuple[float, float]:
    """The same configurations, one after another through `run_trial` in this process: (data seconds, trial-phase
    seconds). No searcher: the list is replayed, so the loop pays nothing the sweep's trials do not.

    ``tuned_malloc`` applies the allocator setting the sweep's trials use; it cannot be undone, so
    :func:`run_search_benchmark` runs that variant in a child process.
    """
    import torch

    from raygex.data.prepare import load_dataset, trial_data
    from raygex.training.loop import run_trial

    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    if tuned_malloc:
        keep_freed_memory()
    try:
        started = time.perf_counter()
        data = trial_data(config, "label", load_dataset(config), {}, seed=0, graph=None).standardised()
        fixed = {**config.train.model_dump(), "seed": 0}
        loop_started = time.perf_counter()
        for params in configurations:
            run_trial({**fixed, **params}, data)
        ended = time.perf_counter()
    finally:
        torch.set_num_threads(default_threads)
    return loop_started - started, ended - loop_started


def run_search_benchmark(workdir: Path | None = None, n_samples: int = 2000, n_genes: int = 16000, trials: int = 8,
                         concurrent: int = 2, epochs: int = 20, cpus: float = 1.0) -> dict:
    """Both measurements in a fresh temporary folder (under ``workdir`` when given); W&B off for the sweep, since
    the loop logs nothing either."""

    import ray
    import torch

    from raygex.config import load_config
    from raygex.experiment.layout import ExperimentLayout
    from raygex.pipeline import run_search

    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="raygex-bench-search-", dir=workdir))
    dataset = _write_inputs(folder, n_samples, n_genes)
    config = load_config(_config(folder, dataset, trials, concurrent, epochs, cpus))
    dataset_mb = n_samples * n_genes * 4 / 2**20

    saved_mode = os.environ.get("WANDB_MODE")
    os.environ["WANDB_MODE"] = "disabled"
    try:
        started = time.perf_counter()
        connect(None)
        idle = _idle_worker_private_mb()
        timings: dict = {}
        with quiet():
            experiment = run_search(config, timings=timings)
        sweep_s = time.perf_counter() - started
    finally:
        ray.shutdown()
        if saved_mode is None:
            os.environ.pop("WANDB_MODE", None)
        else:
            os.environ["WANDB_MODE"] = saved_mode
    layout = ExperimentLayout.open(experiment)
    board = layout.read_leaderboard("label")
    fresh = board[board["worker_trial"] == 1]  # later trials in a reused worker start with its retained heap
    growth = (fresh["private_mb"] - idle) / dataset_mb
    swept = swept_configurations(layout)
    stages = {entry["stage"]: entry["seconds"] for entry in layout.journal()}
    walls = [layout.trial_history("label", row)[["wall_start", "wall_time"]] for _, row in board.iterrows()]
    first_start = min(float(w["wall_start"].min()) for w in walls)
    trial_phase_s = max(float(w["wall_time"].max()) for w in walls) - first_start
    tune_start_s = first_start - timings["fit_started_at"]

    default_threads = torch.get_num_threads()
    data_s, loop_s = _sequential(config, swept, None)
    _, single_loop_s = _sequential(config, swept, 1)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        _, tuned_loop_s = child.submit(_sequential, config, swept, None, True).result()
    loops = {f"{default_threads} threads": loop_s, "1 thread": single_loop_s,
             f"{default_threads} threads, tuned malloc": tuned_loop_s}
    best_name = min(loops, key=loops.get)
    return {"folder": str(folder), "dataset_mb": round(dataset_mb, 1), "trials": trials, "concurrent": concurrent,
            "cpus_per_trial": cpus, "epochs": epochs,
            "configurations": len(swept), "distinct_configurations": len({tuple(sorted(c.items())) for c in swept}),
            "idle_worker_private_mb": round(idle, 1),
            "trials_reading_shared_arrays": f"{int(board['shares_memory'].sum())}/{len(board)}",
            "fresh_worker_private_growth_over_dataset_max": round(float(growth.max()), 3),
            "fresh_worker_growth_after_epoch1_mb_median": round(float((fresh["private_epoch1_mb"] - idle).median()), 1),
            "sweep_s": round(sweep_s, 1), "sweep_ray_start_s": round(timings["ray_s"], 1),
            "sweep_data_s": round(timings["data_s"], 1), "sweep_fit_s": round(timings["trials_s"], 1),
            "sweep_tune_start_s": round(tune_start_s, 1), "sweep_trials_s": round(trial_phase_s, 3),
            "sweep_stages_s": {name: round(seconds, 1) for name, seconds in stages.items()},
            "sequential_threads": default_threads, "sequential_data_s": round(data_s, 1),
            "sequential_trials_s": round(loop_s, 3), "sequential_1thread_trials_s": round(single_loop_s, 3),
            "sequential_tuned_malloc_trials_s": round(tuned_loop_s, 3),
            "best_sequential": best_name, "best_sequential_trials_s": round(loops[best_name], 3),
            "speedup_trials_vs_best_sequential": round(loops[best_name] / trial_phase_s, 2),
            "speedup_fit_vs_best_sequential": round(loops[best_name] / timings["trials_s"], 2),
            "speedup_trials": round(loop_s / trial_phase_s, 2),
            "speedup_trials_vs_1thread": round(single_loop_s / trial_phase_s, 2),
            "speedup_trials_vs_tuned_malloc": round(tuned_loop_s / trial_phase_s, 2)}


def main_json(result: dict) -> str:
    return json.dumps(result)
