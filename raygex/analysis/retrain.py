"""The later stages' trainings, planned once per study and each run once: the evaluation over split seeds and the
graph swap share them.

What the report and the verdict need, per split seed:

* the best configuration of each baseline family (``mlp``, ``lr``): role ``best``;
* the study's best GCN configuration with every graph choice swapped in (each real graph, each control): the
  equal-budget swap behind the verdict, and the per-graph figures (role ``best`` for every ``gcn/<graph>``
  choice: one configuration, only the graph differs);
* the winner, when the selection rule took it from below those (role ``winner``).

A training is identified by its hyperparameters, graph and seed (:func:`training_key`), so the swap's run of the
best GCN on its own graph is the evaluation's, not a second one. Each training is recorded as it ends
(:class:`raygex.experiment.retrainings.RetrainingRecords`), so a run killed during these stages loses only the
trainings then running, and ``resume`` runs only the missing ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from raygex.analysis.choices import best_per_choice, choice_of
from raygex.config import metric_name
from raygex.experiment.layout import ExperimentLayout
from raygex.experiment.retrainings import RetrainingRecords
from raygex.runtime.gpu_share import limit_gpu_memory
from raygex.runtime.ray_session import largest_node_memory_mb
from raygex.search.memory_estimate import reservation_mb, study_shape

logger = logging.getLogger(__name__)


def training_key(hparams: dict) -> str:
    """A training's identity: its hyperparameters (graph and seed included), as a short hash."""
    text = json.dumps({k: hparams[k] for k in sorted(hparams)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class PlannedRun:
    """One row of the evaluation table: which choice, from which trial, in which role, on which seed."""

    choice: str
    trial_id: str
    role: str
    seed: int
    graph: str | None
    key: str


def best_gcn_row(board: pd.DataFrame):
    """The best finished GCN trial (leaderboard order: validation), or None."""
    gcn = board[(board["status"] != "ERROR") & (board["config/model"].astype(str) == "gcn")]
    return None if gcn.empty else gcn.iloc[0]


def plan(layout: ExperimentLayout, study: str, board: pd.DataFrame) -> tuple[list[PlannedRun], dict[str, dict]]:
    """The study's evaluation rows and the distinct trainings behind them (key -> hyperparameters)."""
    from raygex.analysis.leaderboard import winner

    config = layout.config
    seeds = list(config.split.seeds)
    rows: list[PlannedRun] = []
    trainings: dict[str, dict] = {}

    def add(row, choice: str, role: str, graph: str | None, params: dict) -> None:
        for seed in seeds:
            hparams = {**config.train.model_dump(), **params, "graph": graph, "seed": seed}
            key = training_key(hparams)
            trainings.setdefault(key, hparams)
            rows.append(PlannedRun(choice, str(row["trial_id"]), role, seed, graph, key))

    best = best_per_choice(board)
    covered = set()
    for _, row in best[best["config/model"].astype(str) != "gcn"].iterrows():
        add(row, choice_of(row), "best", None, layout.trial_params(study, row))
        covered.add(str(row["trial_id"]))
    gcn = best_gcn_row(board)
    if gcn is not None:
        params = layout.trial_params(study, gcn)
        for graph in config.graph_choices():
            add(gcn, f"gcn/{graph}", "best", graph, params)
        covered.add(str(gcn["trial_id"]))
    chosen = winner(board)
    if chosen is not None and str(chosen["trial_id"]) not in covered:
        params = layout.trial_params(study, chosen)
        graph = params.get("graph") if params.get("model") == "gcn" else None
        add(chosen, choice_of(chosen), "winner", graph, params)
    return rows, trainings


def remote_trainer(config):
    """A Ray task that trains ``hparams`` on a split (standardised, shared once per seed through the object store)
    with ``graph`` attached, on the trial's resources (CUDA when the task gets a GPU); it returns the best
    validation metrics, the test metrics of that epoch, the epochs run and the test-set probabilities (with folds:
    the mean over the folds' networks, whose metrics the test metrics are)."""
    import ray

    @ray.remote(num_cpus=config.resources.cpu, num_gpus=config.resources.gpu,
                memory=config.resources.ray_resources().get("memory"))
    def train(hparams: dict, data, graph=None) -> dict:
        import torch

        from raygex.training.loop import run_trial

        torch.set_num_threads(max(1, int(config.resources.cpu)))
        limit_gpu_memory()
        data = dataclasses.replace(data, graph=graph)
        # on the seed's folds when the study cross-validates; nothing stops it early: the test set is scored once
        result = run_trial(hparams, data, test_each_best=False)
        return {"valid": result.best_valid, "test": result.test, "epochs": result.epochs_run,
                "proba": np.asarray(result.test_proba)}

    return train


def memory_aware_submit(config):
    """``submit(train, hparams, split, shared, aligned)``: the training as a Ray task, with its memory estimate as
    the task's memory request when ``resources.memory_mb`` is ``auto`` (the fixed figure is the task's default)."""
    if config.resources.memory_mb != "auto":
        return lambda train, hparams, split, shared, aligned: train.remote(hparams, shared, aligned)

    largest = largest_node_memory_mb()

    def submit(train, hparams, split, shared, aligned):
        memory = reservation_mb(hparams, split.shape, aligned, largest)
        return train.options(memory=int(memory * 2**20)).remote(hparams, shared, aligned)

    return submit


@dataclass
class SeedSplit:
    """What the driver keeps of a split seed: the test labels and ids, and every graph choice aligned to it."""

    y_test: np.ndarray
    test_ids: list[str]
    graphs: dict
    shape: object = None  # :class:`raygex.search.memory_estimate.StudyShape` (resources.memory_mb: auto)


def split_per_seed(config, study: str, dataset, graphs, seeds=None) -> dict:
    """Seed → (:class:`SeedSplit`, what its trainings share), for ``seeds`` (default: every split seed). From a
    :class:`raygex.data.study_source.StudySource`
    (a run's stages) the split's rows are made in Ray tasks and reused from the sweep for its seed; the driver
    keeps labels and graphs only. From an in-memory dataset, the standardised arrays are put in the object store."""
    import ray

    from raygex.data.prepare import study_graphs, trial_data
    from raygex.data.study_source import StudySource

    splits = {}
    for seed in config.split.seeds if seeds is None else [s for s in config.split.seeds if s in seeds]:
        if isinstance(dataset, StudySource):
            shared, aligned, plan = dataset.study_data(study, seed)
            shape = study_shape(plan, batched_folds=config.train.batched_folds,
                                streaming=bool(getattr(shared, "streaming", False)))
            splits[seed] = (SeedSplit(plan.labels["test"], plan.test_ids, aligned, shape), shared)
            continue
        raw = trial_data(config, study, dataset, graphs, seed=seed, graph=None)
        splits[seed] = (SeedSplit(raw.y_test, raw.test_ids, study_graphs(config, graphs, raw, seed=seed),
                                  study_shape(raw, batched_folds=config.train.batched_folds)),
                        ray.put(raw.standardised()))
    return splits


def run_missing(layout: ExperimentLayout, study: str, rows: list[PlannedRun], trainings: dict[str, dict], dataset,
                graphs) -> dict[str, dict]:
    """Every training of ``trainings`` that has no record yet, as Ray tasks; each recorded as it ends. Returns
    every training's result (recorded earlier or now)."""
    return run_studies_missing(layout, {study: (rows, trainings)}, dataset, graphs)[0][study]


def from_sweep(layout: ExperimentLayout, study: str, rows: list[PlannedRun], trainings: dict[str, dict],
               board: pd.DataFrame) -> dict[str, dict]:
    """Records for the trainings a sweep trial already is: a trial on the search split (the first split seed)
    that ran to its own end (``max_epochs`` or ``patience`` epochs without improving, or a convex fit at its
    optimum; not stopped by the scheduler) is that seed's run of its configuration. That includes the graph
    swap's run of the best GCN on its own graph, whose test-set probabilities come from the trial's last
    checkpoint (kept at its best epoch); such a record (``needs_split``) still lacks the split's test labels and
    the graph's edge count, which :func:`run_studies_missing` adds. A checkpoint written before those
    probabilities were kept leaves that run to be trained again."""
    first = layout.config.split.seeds[0]
    swap = {run.key for run in rows if run.graph is not None and run.role == "best"}
    if board is None or board.empty or all(run.seed != first for run in rows):
        return {}
    by_id = {str(t): row for t, row in zip(board["trial_id"].astype(str), board.to_dict("records"))}
    out = {}
    for run in rows:
        if run.seed != first or run.key in out or run.trial_id not in by_id:
            continue
        trial, hparams = by_id[run.trial_id], trainings[run.key]
        if run.key in swap and hparams.get("graph") != layout.trial_params(study, trial).get("graph"):
            continue  # another graph swapped in: a training of its own
        history = layout.trial_history(study, trial)
        if history.empty or "best_epoch" not in history:
            continue
        last = history.iloc[-1]
        epoch, best = int(last["epoch"]), int(last["best_epoch"])
        converged = pd.notna(last.get("converged")) and bool(last.get("converged"))  # a convex fit's own end
        if epoch < int(hparams["max_epochs"]) and epoch - best < int(hparams["patience"]) and not converged:
            continue  # stopped by the scheduler: its own end is unknown
        valid = {k[len("best_valid_"):]: float(v) for k, v in last.items()
                 if k.startswith("best_valid_") and not k.endswith("_se") and pd.notna(v)}
        test = {k[len("best_test_"):]: float(v) for k, v in last.items() if k.startswith("best_test_") and pd.notna(v)}
        record = {"valid": valid, "test": test, "epochs": epoch, "from_trial": run.trial_id}
        if run.key in swap:
            saved = layout.latest_checkpoint(layout.trial_dir(study, trial))
            proba = None if saved is None or saved.get("best_epoch") != best else saved.get("best_test_proba")
            if proba is None:
                continue
            record.update(proba=np.asarray(proba, dtype=np.float64), needs_split=True)
        out[run.key] = record
    return out


def run_studies_missing(layout: ExperimentLayout, wanted: dict[str, tuple[list[PlannedRun], dict[str, dict]]],
                        dataset, graphs, in_flight: int | None = None, connect=None) -> tuple[dict, int]:
    """Several studies' trainings (study -> (plan rows, key -> hyperparameters)) drawn from one budget: those a
    sweep trial already is are recorded from it (:func:`from_sweep`), the others run as Ray tasks, at most
    ``in_flight`` (default: the experiment's ``search.max_concurrent``, the sweeps' budget of trial slots) at once,
    the next one submitted as one ends, whichever study it belongs to; each recorded as it ends. ``connect`` is
    called before Ray is first used. Returns every training's result per study (recorded earlier or now) and how
    many were recorded now."""
    queue, results, records, recorded, completing = [], {}, {}, 0, []
    for study, (rows, trainings) in wanted.items():
        records[study] = RetrainingRecords(layout, study)
        done = records[study].read_all()
        if any(key not in done for key in trainings):
            taken = {key: record for key, record in
                     from_sweep(layout, study, rows, trainings, layout.read_leaderboard(study)).items()
                     if key not in done}
            for key, record in taken.items():
                if record.pop("needs_split", False):  # recorded once the split says what its test rows are
                    completing.append((study, key, trainings[key], record))
                else:
                    done[key] = records[study].write(key, trainings[key], record)
            recorded += len(taken)
            if taken:
                logger.info(f"{study}: {len(taken)} run(s) on the first split seed taken from sweep trials that ran "
                            f"to their end (not trained again)")
        results[study] = {key: done[key] for key in trainings if key in done}
        from_checkpoint = {key for s, key, _, _ in completing if s == study}
        missing = [(study, key, hparams) for key, hparams in trainings.items()
                   if key not in done and key not in from_checkpoint]
        if done and missing:
            logger.info(f"{study}: {len(trainings) - len(missing)} of {len(trainings)} trainings already recorded; "
                        f"running the {len(missing)} missing")
        queue.extend(missing)
    if not queue and not completing:
        return results, recorded
    if connect is not None:
        connect()
    import ray

    config = layout.config
    needed: dict[str, set] = {}  # study -> the split seeds its trainings and completed records use
    for study, _, hparams, *_ in (*queue, *completing):
        needed.setdefault(study, set()).add(hparams["seed"])
    splits = {study: split_per_seed(config, study, dataset, graphs, seeds) for study, seeds in needed.items()}

    def prepared(study: str, hparams: dict):
        split, shared = splits[study][hparams["seed"]]
        graph = hparams.get("graph")
        aligned = split.graphs[graph] if hparams.get("model") == "gcn" and graph is not None else None
        return split, shared, aligned, {"edges": None if aligned is None else int(aligned.n_edges),
                                        "test_ids": list(split.test_ids),
                                        "y_test": np.asarray(split.y_test, dtype=np.int64).tolist()}

    for study, key, hparams, record in completing:
        results[study][key] = records[study].write(key, hparams, {**record, **prepared(study, hparams)[3]})
    if not queue:
        return results, recorded
    logger.info(f"retraining on split seeds {list(config.split.seeds)}: {len(queue)} trainings over "
                f"{len({study for study, _, _ in queue})} task(s) (each baseline's best, the best GCN configuration "
                f"with every graph, the winner)")
    train = remote_trainer(config)
    submit = memory_aware_submit(config)
    limit = max(1, in_flight or config.search.max_concurrent)
    pending: dict = {}
    queue.reverse()  # submitted in plan order
    while queue or pending:
        while queue and len(pending) < limit:
            study, key, hparams = queue.pop()
            split, shared, aligned, facts = prepared(study, hparams)
            pending[submit(train, hparams, split, shared, aligned)] = (study, key, hparams, facts)
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            study, key, hparams, facts = pending.pop(ref)
            results[study][key] = records[study].write(key, hparams, {**ray.get(ref), **facts})
            recorded += 1
    return results, recorded


def seeds_table(layout: ExperimentLayout, rows: list[PlannedRun], results: dict[str, dict]) -> pd.DataFrame:
    """The evaluation table: one row per (choice, role, seed) with its validation and test metric and epochs."""
    metric = metric_name(layout.config)
    out = []
    for run in rows:
        result = results[run.key]
        out.append({"choice": run.choice, "trial_id": run.trial_id, "role": run.role, "seed": run.seed,
                    "epochs": result["epochs"], f"valid_{metric}": result["valid"].get(metric),
                    f"test_{metric}": result["test"].get(metric)})
    return pd.DataFrame(out)


def swap_tables(layout: ExperimentLayout, rows: list[PlannedRun],
                results: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The graph swap's table and test predictions, from the best GCN's runs with every graph (role ``best``)."""
    metric = metric_name(layout.config)
    table, predictions = [], []
    for run in rows:
        if run.role != "best" or run.graph is None:
            continue
        result = results[run.key]
        y_test, test_ids = result["y_test"], result["test_ids"]
        proba = np.asarray(result["proba"], dtype=np.float64)
        table.append({"seed": run.seed, "graph": run.graph, "epochs": result["epochs"], "edges": result["edges"],
                      f"valid_{metric}": result["valid"].get(metric), f"test_{metric}": result["test"].get(metric)})
        predictions.append(pd.DataFrame({"seed": run.seed, "graph": run.graph, "row": np.arange(len(y_test)),
                                         "sample": test_ids, "y": np.asarray(y_test, dtype=np.int64),
                                         **{f"p{c}": proba[:, c] for c in range(proba.shape[1])}}))
    columns = ["seed", "graph", "epochs", "edges", f"valid_{metric}", f"test_{metric}"]
    return (pd.DataFrame(table, columns=columns),
            pd.concat(predictions, ignore_index=True) if predictions else
            pd.DataFrame(columns=["seed", "graph", "row", "sample", "y"]))
