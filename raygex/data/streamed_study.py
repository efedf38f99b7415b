"""A large study's sets (over ``data.in_memory_budget_mb``): materialised Ray Datasets in the object stores.

Its rows are selected by Ray tasks (:func:`raygex.data.study_rows.selected_rows`) and kept as three Ray Datasets
(train, valid, test) whose blocks live in the cluster's object stores (spilling to disk when full); the per-gene
training statistics come from a Ray Data aggregation over the training rows (:func:`moments`), and each trial
streams batches from the sets every epoch (:class:`raygex.data.batches.StreamData`, :mod:`raygex.training.loop`).
"""

from __future__ import annotations

import numpy as np

from raygex.data.batches import StreamData
from raygex.data.study_rows import SPLITS, StudyPlan, _study_graphs, selected_rows
from raygex.data.trial_data import TrialData
from raygex.errors import ConfigError

# Maps over blocks already in the object stores run where their block is (Ray's locality-aware default), not
# spread over the nodes as Ray Data spreads its tasks: a spread map fetches each block to another node first,
# leaving a cached copy of the whole set behind (measured in `raygex bench scale`).
WHERE_THE_BLOCK_IS = {"scheduling_strategy": "DEFAULT"}


def _moments(batch: dict) -> dict:
    x = batch["x"].astype(np.float64)
    n = len(x)
    mean = x.mean(axis=0) if n else np.zeros(x.shape[1])
    m2 = ((x - mean) ** 2).sum(axis=0) if n else np.zeros(x.shape[1])
    return {"n": np.array([n], np.int64), "mean": mean[None, :], "m2": m2[None, :]}


def moments(train) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene (mean, std) of a training Dataset: each block's count, mean and sum of squared deviations in Ray
    tasks, merged here (Chan et al.'s pairwise update; 2 floats per gene per block reach the driver). Constant
    genes get scale 1, as :meth:`raygex.data.trial_data.TrialData.standardisation` gives them."""
    parts = train.map_batches(_moments, batch_format="numpy", batch_size=None, **WHERE_THE_BLOCK_IS).take_all()
    n, mean, m2 = 0, None, None
    for part in parts:
        count = int(part["n"])
        if count == 0:
            continue
        if mean is None:
            n, mean, m2 = count, np.asarray(part["mean"], np.float64), np.asarray(part["m2"], np.float64)
            continue
        delta = part["mean"] - mean
        total = n + count
        mean = mean + delta * count / total
        m2 = m2 + part["m2"] + delta ** 2 * n * count / total
        n = total
    std = np.sqrt(m2 / n)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _split_of(batch: dict, k: int) -> dict:
    keep = batch["split"] == k
    return {"pos": batch["pos"][keep], "y": batch["y"][keep], "x": batch["x"][keep]}


def stream_data(plan: StudyPlan) -> StreamData:
    """Materialise the study's three sets in the object stores (one read of the dataset), and their training
    statistics; nothing but labels and statistics reach this process."""
    if plan.folds:
        raise ConfigError(f"study {plan.study!r}: cross-validation (split.folds) needs the study's sets within "
                          "data.in_memory_budget_mb; raise it or set split.folds: null")
    selected = selected_rows(plan).materialize()
    sets = {s: selected.map_batches(_split_of, fn_kwargs={"k": k}, batch_format="numpy", batch_size=None,
                                    **WHERE_THE_BLOCK_IS)
            .materialize() for k, s in enumerate(SPLITS)}
    del selected  # its blocks are freed once the three sets hold their own
    mean, std = moments(sets["train"])
    return StreamData(sets["train"], sets["valid"], sets["test"], plan.labels["train"], plan.labels["valid"],
                      plan.labels["test"], list(plan.genes), list(plan.classes), mean, std, test_ids=plan.test_ids)


def _stream_graphs(config, graphs: dict, data: StreamData, plan: StudyPlan) -> dict:
    """The aligned graph choices of a large study (in a Ray task: the co-expression control reads the training
    rows there, never in the driver)."""
    x_train = None
    if any(choice == "coexpression" for choice in config.graph_choices()):
        x_train = np.empty((len(plan.ids["train"]), len(plan.genes)), np.float32)
        for batch in data.train.iter_batches(batch_format="numpy", batch_size=None):
            x_train[batch["pos"]] = batch["x"]
    shell = TrialData(x_train if x_train is not None else np.empty((0, len(plan.genes)), np.float32),
                      plan.labels["train"], np.empty((0, 0)), plan.labels["valid"], np.empty((0, 0)),
                      plan.labels["test"], list(plan.genes), list(plan.classes))
    return _study_graphs(config, graphs, shell, plan.seed)


def prepare_large(config, graphs: dict, plan: StudyPlan):
    import ray

    data = stream_data(plan)
    data.batch_rows = int(config.train.batch_size)
    aligned = ray.get(ray.remote(num_cpus=1)(_stream_graphs).remote(config, graphs, data, plan))
    return data, aligned
