"""The function Ray Tune runs for each trial: shared arrays in, per-epoch reports and checkpoints out."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch

CHECKPOINT_FILE = "trial_state.pt"


def _threads(cpus: float) -> None:
    # Each trial gets its CPU share; torch otherwise starts one thread per core and trials fight.
    torch.set_num_threads(max(1, int(cpus)))


def train_fn(config: dict, payload: dict) -> None:
    """Train one sampled configuration on the task's shared arrays; report every epoch to Tune.

    ``payload`` (from ``tune.with_parameters``, stored once in the object store) holds ``data`` (a standardised
    TrialData without graph), ``graphs`` (AlignedGraph per graph choice) and ``fixed`` (training settings).
    """
    from ray import tune

    from raygex.trial import run_trial

    fixed = payload["fixed"]
    _threads(fixed.get("cpus_per_trial", 1))
    hparams = {**fixed["train"], **config}
    graph = payload["graphs"][config["graph"]] if config.get("model") == "gcn" else None
    data = dataclasses.replace(payload["data"], graph=graph)
    every = int(fixed.get("checkpoint_every", 5))

    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=False)

    n_params: dict = {}
    import ray

    node = ray.get_runtime_context().get_node_id()
    import psutil

    # Unique memory of this worker once the shared arrays are in hand: ~0 growth means they are zero-copy.
    memory = {"uss_mb": psutil.Process().memory_full_info().uss / 2**20}

    def report(row: dict, state) -> None:
        if not n_params:
            n_params["n"] = sum(p.numel() for p in state.model.parameters())
            memory["uss_epoch1_mb"] = psutil.Process().memory_full_info().uss / 2**20
        metrics = {**row, "n_params": n_params["n"], "node_id": node, "device": str(state.device),
                   **memory}
        last = row["epoch"] >= int(hparams["max_epochs"]) or state.stale >= int(hparams["patience"])
        if row["epoch"] % every == 0 or last:
            with tempfile.TemporaryDirectory() as folder:
                torch.save(state.checkpoint(), os.path.join(folder, CHECKPOINT_FILE))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)

    run_trial(hparams, data, report, resume_from=resume)
