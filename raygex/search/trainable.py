"""The function Ray Tune runs for each trial: shared arrays in, per-epoch reports and checkpoints out."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from raygex.files.names import CHECKPOINT_FILE
from raygex.runtime.allocator import keep_freed_memory, release_freed_memory
from raygex.runtime.gpu_share import limit_gpu_memory
from raygex.search.epoch_reports import ReportSchedule
from raygex.search.memory import private_memory_mb
from raygex.search.payload import TrialPayload
from raygex.search.tune_compat.tune_files import RESTORED

_trials_in_this_worker = 0  # Tune reuses worker processes (reuse_actors): the first trial of each is "fresh"


def _threads(cpus: float) -> None:
    # Each trial gets its CPU share; torch otherwise starts one thread per core and trials fight.
    torch.set_num_threads(max(1, int(cpus)))


def shares_memory(data) -> bool:
    """True when every split array is a read-only view of a buffer this process does not own (Ray's object
    store), i.e. the trial reads the task's data without a copy of its own."""
    if getattr(data, "streaming", False):
        return False  # a large study's sets stream from Ray Datasets: the trial holds batches, not arrays
    arrays = (data.x_train, data.x_valid, data.x_test)
    return all(isinstance(a, np.ndarray) and not a.flags.writeable and not a.flags.owndata for a in arrays)


def train_fn(config: dict, payload: TrialPayload) -> None:
    """Train one sampled configuration (``config``: Tune's sampled hyperparameters) on the study's shared data;
    report its epochs to Tune. ``payload`` comes from ``tune.with_parameters`` (stored once in the object store).
    """
    global _trials_in_this_worker
    wall_start = time.time()  # when this worker began the trial: `bench search` times the trial phase with it
    import ray
    from ray import tune

    from raygex.training.loop import run_trial

    settings = payload.settings
    _threads(settings.cpus_per_trial)
    gpu_share = limit_gpu_memory()  # a fractional GPU: this trial's share of the device's memory
    if _trials_in_this_worker:
        release_freed_memory()  # the worker's previous trial's memory goes back: workers do not keep every peak
    keep_freed_memory()
    hparams = {**settings.train, **config}
    graph = payload.graphs[config["graph"]] if config.get("model") == "gcn" else None
    data = payload.data
    if isinstance(data, ray.ObjectRef):
        data = ray.get(data)  # zero-copy: the arrays stay in the object store
    data = dataclasses.replace(data, graph=graph)
    every = int(settings.checkpoint_every)

    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            # data only (no code runs); on the CPU first, so a checkpoint from a GPU node resumes on any node
            resume = torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True, map_location="cpu")

    _trials_in_this_worker += 1
    # Private memory once the shared arrays are in hand (~ an idle worker's when they are zero-copy), and again
    # after one epoch (adds the model, optimiser and batch workspace, which do not grow with the sample count).
    memory = {"private_mb": private_memory_mb(), "shares_memory": shares_memory(data),
              "worker_trial": _trials_in_this_worker, "gpu_memory_share": gpu_share or 0.0}
    context = ray.get_runtime_context()
    node = context.get_node_id()
    # the memory Ray reserved for the trial (resources.memory_mb; 0 when none is declared)
    memory["reserved_memory_mb"] = round(context.get_assigned_resources().get("memory", 0) / 2**20, 1)
    n_params: dict = {}

    # Epochs reach Tune in batches, always at checkpoints and at the scheduler's decisions (epoch_reports)
    schedule = ReportSchedule(every, float(settings.checkpoint_min_s), settings.decision_epochs)

    def report(row: dict, state) -> None:
        if not n_params:
            n_params["n"] = state.n_params
            memory["private_epoch1_mb"] = private_memory_mb()
        metrics = {**row, "n_params": n_params["n"], "node_id": node, "device": str(state.device),
                   "wall_start": wall_start, "wall_time": time.time(),
                   "gpu_ids": [str(g) for g in ray.get_gpu_ids()], **memory}  # the GPUs Ray assigned it
        last = (row["epoch"] >= int(hparams["max_epochs"]) or state.stale >= int(hparams["patience"])
                or bool(row.get("converged")))  # a convex fit ends at its optimum
        metrics, with_checkpoint = schedule.report(row["epoch"], metrics, last)
        if metrics is None:
            return
        if with_checkpoint:
            with tempfile.TemporaryDirectory() as folder:
                torch.save(state.checkpoint(), os.path.join(folder, CHECKPOINT_FILE))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)

    if resume is not None:  # its epochs go out again with the next report, in case the store never got them
        schedule.held = [{**row, RESTORED: True} for row in resume.get("history", [])]
    try:
        run_trial(hparams, data, report, resume_from=resume)
    except Exception:
        held = schedule.flush()  # the epochs trained before the error still reach the trial's history
        if held is not None:
            tune.report(held)
        raise
