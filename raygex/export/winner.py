"""Turn a sweep's winning trial (or any trial) into a model file: restore its best weights, wrap, write.

The best weights come from the trial's last checkpoint when that checkpoint already holds the best epoch. A trial
that ASHA stopped between checkpoints may have found its best epoch after the last one; it is then retrained
with the same seed for exactly the epochs it ran, which on the CPU reproduces it bit for bit (the validation
metric is compared with the leaderboard's and stored in the metadata either way).
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import torch

from raygex.analysis.choices import choice_kind, choice_of
from raygex.config import ExperimentConfig
from raygex.errors import ConfigError
from raygex.export.archive import FORMAT, write_exported_program, write_torchscript
from raygex.export.module import ExpressionClassifier
from raygex.files.fileio import sha256_file, sha256_stream
from raygex.files.storage import is_uri
from raygex.experiment.layout import ExperimentLayout
from raygex.config import metric_name
from raygex.metrics import classification_metrics
from raygex.training.loop import with_defaults
from raygex.version import __version__

def pick_trial(board, trial_id: str | None):
    """The leaderboard row to export: the winner (:func:`raygex.analysis.leaderboard.winner`: never a control), or the
    trial whose id is ``trial_id``."""
    from raygex.analysis.leaderboard import winner

    if trial_id is None:
        row = winner(board)
        if row is None:
            raise ConfigError("no finished trial of a real choice (a real graph, MLP or logistic regression) to "
                              "export: controls are never exported as winners")
        return row
    chosen = board[board["trial_id"].astype(str) == str(trial_id)]
    if chosen.empty:
        raise ConfigError(f"--trial {trial_id!r} is not in the leaderboard (trials: {list(board['trial_id'][:8])}...)")
    return chosen.iloc[0]


def fold_ensemble(networks: list, data):
    """The fold networks of a cross-validated trial as one network on the study's standardised scale
    (:class:`raygex.export.module.FoldEnsemble`); ``data`` is the study's standardised TrialData with its folds."""
    from raygex.export.module import FoldEnsemble

    shifts, spreads = zip(*data.fold_scalers())
    return FoldEnsemble([network.cpu().eval() for network in networks], np.stack(shifts), np.stack(spreads)).eval()


def retrain_device(trial_device) -> str:
    """Where a trial whose checkpoint is gone trains again: on CUDA when the trial ran on CUDA and this process has
    it (the same kind of device, so the same numerics), else on the CPU."""
    import torch

    return "cuda" if str(trial_device or "").startswith("cuda") and torch.cuda.is_available() else "cpu"


def restore_network(layout: ExperimentLayout, hparams: dict, data, folder: Path, epochs_run: int,
                    best_epoch: int | None, trial_device=None):
    """The trial's network with its best weights, and how they were obtained: "checkpoint" or "retrained" (the
    checkpoint is gone or past the best epoch: the trial trained again, on :func:`retrain_device`; "retrained on
    cpu (the trial ran on cuda:0)" when that differs). A cross-validated trial gives its fold networks as one
    ensemble ("fold-ensemble (checkpoint)" or "fold-ensemble (retrained)"). The network returned is on the CPU."""
    from raygex.training.loop import build_model, run_trial, saved_folds

    saved = layout.latest_checkpoint(folder)
    folds = saved_folds(saved) if saved is not None else []
    if folds and all(f["best_state"] is not None for f in folds) and len(folds) == len(data.folds or [None]) and (
            best_epoch is None or saved["best_epoch"] == best_epoch):
        networks, how = [], "checkpoint"
        for fold in folds:
            network = build_model(hparams, len(data.genes), len(data.classes), data.graph)
            network.load_state_dict(fold["best_state"])
            networks.append(network)
    else:
        device = retrain_device(trial_device)
        networks = [n.cpu() for n in run_trial({**hparams, "max_epochs": int(epochs_run)}, data, device=device).models]
        how = "retrained"
        if trial_device is not None and str(trial_device).split(":")[0] != device:
            how = f"retrained on {device} (the trial ran on {trial_device})"
    if data.folds:
        return fold_ensemble(networks, data), f"fold-ensemble ({how})"
    return networks[0].eval(), how


def dataset_hash(path: str | Path) -> str:
    """The dataset's hash: its content hash recorded when it was written (import, demo: read from its footer, not
    recomputed), else sha256 of the dataset file, or of its parts' hashes for a directory dataset."""
    from raygex.data.canonical import parquet_parts, read_content_hash

    try:
        recorded = read_content_hash(path)
    except Exception:  # not a canonical dataset (or unreadable): hash the bytes as before
        recorded = None
    if recorded:
        return recorded
    if is_uri(str(path)):  # on an object store: each part's bytes streamed, never stored
        parts = parquet_parts(path)
        hashes = [sha256_stream(name, parts.filesystem) for name in parts.files]
        return hashes[0] if parts.single else hashlib.sha256("".join(hashes).encode()).hexdigest()
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for part in sorted(path.glob("*.parquet")):
        digest.update(sha256_file(part).encode())
    return digest.hexdigest()


def h5ad_matrix(expression: str | Path) -> dict | None:
    """Which matrix of an ``.h5ad`` the dataset was imported from (`raygex data import --layer/--raw`), as the
    importer's provenance records it: ``{"layer": name or None, "raw": bool}``; None for any other source (or a
    dataset without provenance). `raygex predict` reads the same matrix from an AnnData input."""
    from raygex.data.canonical import read_provenance

    try:
        provenance = read_provenance(expression)
    except Exception:  # not a canonical dataset (or unreadable): nothing recorded
        return None
    if provenance.get("format") != "h5ad":
        return None
    matrix = str(provenance.get("matrix", "X"))  # "X", "raw.X" or "layers['name']" (readers.open_h5ad)
    layer = re.fullmatch(r"layers\[(.+)\]", matrix)
    return {"layer": ast.literal_eval(layer.group(1)) if layer else None, "raw": matrix == "raw.X"}


def graph_summary(aligned, config: ExperimentConfig) -> dict | None:
    if aligned is None:
        return None
    digest = hashlib.sha256(np.ascontiguousarray(aligned.edge_index).tobytes())
    if aligned.edge_weight is not None:
        digest.update(np.ascontiguousarray(aligned.edge_weight).tobytes())
    from raygex.graphs.controls import parse_control

    source = config.graphs.get(aligned.graph_name)
    control = parse_control(aligned.graph_name)
    return {"name": aligned.graph_name, "n_nodes": aligned.n_nodes, "n_edges": aligned.n_edges,
            "edges_sha256": digest.hexdigest(), "coverage": aligned.coverage,
            "file": source, "file_sha256": sha256_file(source) if source and Path(source).is_file() else None,
            "control": None if control is None else control[0], "control_of": None if control is None else control[1]}


def _metrics(module, x, y, n_classes) -> dict:
    if len(y) == 0:
        return {}
    with torch.no_grad():
        proba = module(torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    return classification_metrics(y, proba, n_classes)


def export_trial(layout: ExperimentLayout, study: str, board, *, trial_id: str | None = None,
                 out_dir: Path | None = None, dataset=None, graphs=None, dataset_sha256: str | None = None) -> dict:
    """Write ``<out_dir>/<study>.pt`` (and ``.pt2`` where torch.export allows) for one trial (default: the
    winner) into ``out_dir`` (default: the experiment's models folder); returns a summary."""
    from raygex.data.prepare import load_dataset, load_graphs, trial_data

    config = layout.config
    row = pick_trial(board, trial_id)
    folder = layout.trial_dir(study, row)
    trial_config = layout.trial_params(study, row)
    seed = config.split.seeds[0]
    hparams = with_defaults({**config.train.model_dump(), "seed": seed, **trial_config})
    graphs = graphs if graphs is not None else load_graphs(config)
    graph = trial_config.get("graph") if trial_config.get("model") == "gcn" else None
    from raygex.data.study_source import StudySource

    if isinstance(dataset, StudySource):  # a run's stages: the study's rows only
        if not dataset.in_worker and not dataset.holds_matrix:
            # the export runs in a Ray task, which holds the study's sets (this driver never holds the matrix), on
            # this node (it writes the model into the experiment folder); a driver that holds a small dataset
            # exports here
            import ray

            if dataset.connect is not None:
                dataset.connect()
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            # num_cpus=0: it is the driver's own work, on the driver's node, whose CPUs the cluster files keep
            # off the books (a head with `CPU: 0` would never schedule it otherwise)
            task = ray.remote(num_cpus=0, scheduling_strategy=here)(export_trial)
            return ray.get(task.remote(layout, study, board, trial_id=trial_id, out_dir=out_dir, dataset=dataset,
                                       graphs=graphs, dataset_sha256=dataset_sha256 or dataset_hash(
                                           config.data.expression)))
        data = dataset.trial_data(study, seed, graph)
    else:
        dataset = dataset if dataset is not None else load_dataset(config)
        data = trial_data(config, study, dataset, graphs, seed=seed, graph=graph)
    best_epoch = row.get("best_epoch")
    best_epoch = None if best_epoch is None or best_epoch != best_epoch else int(best_epoch)
    torch.manual_seed(seed)
    network, how = restore_network(layout, hparams, data.standardised(), folder, int(row["epoch"]), best_epoch,
                                   trial_device=_text(row.get("device")))

    leaderboard = {k: (None if v != v else float(v)) for k, v in row.items()
                   if str(k).startswith(("best_valid_", "best_test_")) and v is not None}
    out = Path(out_dir) / f"{study}.pt" if out_dir is not None else layout.model_path(study)
    metric = metric_name(config)
    cv_se = row.get(f"best_valid_{metric}_se")
    selection = {"rule": config.search.select if trial_id is None else "chosen by --trial",
                 "folds": len(data.folds) if data.folds else None, "metric": f"valid_{metric}",
                 "validation_mean": _number(row.get(f"best_valid_{metric}")), "validation_se": _number(cv_se),
                 "epochs": best_epoch,
                 "control": choice_kind(choice_of(row)) == "control"}
    recorded = None
    # the trial says so (absent from sweeps before refits existed; a leaderboard keeps a mixed column as text)
    if str(row.get("refitted_on_valid")) == "True":
        last = layout.trial_history(study, row).iloc[-1]  # a convex fit's one epoch: its validation metrics
        recorded = {k[len("valid_"):]: float(v) for k, v in last.items() if k.startswith("valid_") and v == v}
    return write_model(config, study, network, data, hparams, out, split_seed=seed, trial_id=str(row["trial_id"]),
                       weights=how, leaderboard=leaderboard, dataset_sha256=dataset_sha256, selection=selection,
                       valid_metrics=recorded)


def _number(value) -> float | None:
    return None if value is None or value != value else float(value)


def _text(value) -> str | None:
    return None if value is None or value != value else str(value)


def write_model(config: ExperimentConfig, task_name: str, network, data, hparams: dict, path: str | Path, *,
                split_seed: int | None = None, trial_id: str | None = None, weights: str = "trained",
                leaderboard: dict | None = None, dataset_sha256: str | None = None,
                selection: dict | None = None, valid_metrics: dict | None = None) -> dict:
    """Wrap a trained ``network`` with ``data``'s training statistics and write ``path`` (+ ``.pt2``).

    ``data`` is the trial's raw (unstandardised) :class:`~raygex.data.trial_data.TrialData`; the validation and test
    metrics stored in the metadata are recomputed through the exported module itself, except for a network
    refitted on the validation rows (a logistic regression on one split): ``valid_metrics`` are then the
    trial's, taken before the refit (None: the network never trained on the validation rows).
    """
    spec = config.task(task_name)
    standard = data.standardised()
    masked = np.array([spec.kind == "single_gene" and gene == spec.gene for gene in data.genes])
    module = ExpressionClassifier(network.eval(), standard.mean, standard.std, masked).eval()
    n_classes = len(data.classes)
    refitted = valid_metrics is not None  # the validation rows trained it: rescoring them says nothing
    valid = dict(valid_metrics) if refitted else _metrics(module, data.x_valid, data.y_valid, n_classes)
    test = _metrics(module, data.x_test, data.y_test, n_classes)
    seed = config.split.seeds[0] if split_seed is None else int(split_seed)
    metadata = {
        "format": FORMAT, "genes": list(data.genes), "classes": [str(c) for c in data.classes],
        "masked_genes": [g for g, m in zip(data.genes, masked) if m],
        "task": json.loads(spec.model_dump_json()), "experiment": config.name, "trial_id": trial_id,
        "hyperparameters": {k: hparams[k] for k in sorted(hparams)}, "graph": graph_summary(standard.graph, config),
        "metrics": {"valid": valid, "test": test, "leaderboard": leaderboard or {}},
        "weights": weights, "split": {**json.loads(config.split.model_dump_json()), "seed": seed},
        "selection": selection or {},
        "dataset": {"path": str(config.data.expression), "sha256": dataset_sha256 or dataset_hash(config.data.expression),
                    "n_samples_train": int(len(data.y_train) + (len(data.y_valid) if refitted else 0)),
                    "refitted_on_valid": refitted},
        "h5ad": h5ad_matrix(config.data.expression),  # the AnnData matrix trained on: predict reads the same one
        "versions": {"raygex": __version__, "torch": torch.__version__},
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "input": "float32 [batch, n_genes], raw expression in the order of 'genes'; output: class probabilities",
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_torchscript(module, metadata, path)
    rows = data.x_valid if len(data.x_valid) >= 2 else data.x_train
    example = torch.as_tensor(np.ascontiguousarray(rows[:2], dtype=np.float32))
    pt2 = path.with_suffix(".pt2")
    pt2_error = write_exported_program(module, metadata, pt2, example)
    return {"task": task_name, "trial_id": trial_id, "model": str(path), "pt2": None if pt2_error else str(pt2),
            "pt2_error": pt2_error, "weights": weights, "valid": valid, "test": test, "leaderboard": leaderboard}
