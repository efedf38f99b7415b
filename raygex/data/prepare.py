"""From a config to what a trial needs: the dataset, the graphs (with controls), and split task arrays.

Shared by `raygex train` (one trial, in process) and the search (which puts these arrays in Ray's object store).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raygex.config import ExperimentConfig
from raygex.data.canonical import ExpressionDataset, dataset_exists, read_dataset
from raygex.data.splits import resolve_size, stratified_folds
from raygex.data.tasks import build_task
from raygex.data.trial_data import TrialData
from raygex.errors import ConfigError
from raygex.files.storage import is_uri
from raygex.files.names import SAMPLE_ID
from raygex.graphs.align import align_graph
from raygex.graphs.controls import aligned_control, parse_control
from raygex.graphs.io import import_graph
from raygex.graphs.store import Graph, read_graph


def _require(path: str | Path, key: str, hint: str = "") -> str | Path:
    """``path`` when there is something at it (a file, a folder, or an object or prefix on a store)."""
    if is_uri(str(path)):
        if not dataset_exists(path):
            raise ConfigError(f"{key}: no such object or folder", path=str(path))
        return str(path)
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{key}: file not found{hint}", path=path)
    return path


DEMO_HINT = " (run 'raygex data demo data/demo' for the demo)"


def check_input_files(config: ExperimentConfig) -> None:
    """Fail on a missing dataset or graph file before any expensive work starts."""
    _require(config.data.expression, "data.expression", DEMO_HINT)
    for name, path in config.graphs.items():
        _require(path, f"graphs.{name}")


def check_tasks(config: ExperimentConfig) -> None:
    """Fail on a task the dataset cannot serve, from its schema alone (cheap: call it before Ray starts).

    Checks what :func:`raygex.data.tasks.build_task` would refuse without reading expression values: label and
    ``where`` columns, a single-gene target missing from the dataset, an input graph that is not configured, a
    missing landmark file. The messages are build_task's. Class counts and splits need the data and stay there.
    """
    from raygex.config.tasks import ClassifyTask
    from raygex.data.canonical import label_columns, read_genes, read_schema
    from raygex.data.tasks import read_gene_list

    path = _require(config.data.expression, "data.expression", DEMO_HINT)
    columns = label_columns(read_schema(path))
    genes: set[str] | None = None
    for spec in config.tasks:
        if isinstance(spec, ClassifyTask):
            for column in spec.where:
                if column not in columns:
                    raise ConfigError(f"task {spec.name!r}: where column {column!r} is not a label column of the "
                                      f"dataset (columns: {columns})")
            if spec.label not in columns:
                raise ConfigError(f"task {spec.name!r}: label column {spec.label!r} not found in the dataset "
                                  f"(columns: {columns})")
            continue
        genes = set(read_genes(path)) if genes is None else genes
        if spec.gene not in genes:
            raise ConfigError(f"task {spec.name!r}: gene {spec.gene!r} is not in the dataset")
        inputs = spec.inputs
        if inputs.mode in ("neighbors", "bfs") and inputs.graph not in config.graphs:
            raise ConfigError(f"task {spec.name!r}: inputs.graph {inputs.graph!r} is not a configured graph "
                              f"(graphs: {sorted(config.graphs)})")
        if inputs.mode == "landmark":
            read_gene_list(inputs.landmark_file)


def check_folds(config: ExperimentConfig) -> None:
    """Every classification study's labelled samples can fill its cross-validation folds (at least one sample of
    each class per fold), from the label columns alone: cheap, so before Ray starts. Single-gene labels (above
    or below a mean) need the expression and are checked when the folds are cut."""
    from raygex.config.tasks import ClassifyTask
    from raygex.data.canonical import read_labels

    studies = [s for s in config.studies() if isinstance(s.task, ClassifyTask)]
    if config.split.folds is None or not studies:
        return
    labels = read_labels(config.data.expression)
    obs = labels.drop(columns=[SAMPLE_ID])
    shell = ExpressionDataset(labels[SAMPLE_ID].astype(str).to_numpy(), np.empty((len(labels), 0), np.float32), [],
                              obs, {})
    for study in studies:
        task = build_task(study.task, shell)
        labelled = labelled_count(config, study.name, len(task.y))
        folds = config.split.fold_count(labelled)
        if folds is None:
            continue
        split, y = task.split(train=labelled, valid=0, test=config.split.test, seed=config.split.seeds[0],
                              test_seed=config.split.test_seed)
        try:
            cut_folds(config, np.asarray(task.classes, dtype=object)[y[split.train]], folds, 0)
        except ConfigError as err:
            raise ConfigError(f"task {study.name!r}: {err}") from None


def check_graphs(config: ExperimentConfig) -> None:
    """Fail on a configured graph that shares no gene with the dataset (a GCN on it would see no edges).

    Reads the graphs and the dataset's gene list, never its values: cheap enough to call before Ray starts.
    """
    from raygex.data.canonical import read_genes

    genes = read_genes(_require(config.data.expression, "data.expression", DEMO_HINT))
    for name, path in config.graphs.items():
        graph = load_graph(name, path)
        if not np.isin(graph.nodes, genes).any():
            raise ConfigError(f"graphs.{name}: graph shares no genes with the dataset {config.data.expression} "
                              f"({len(genes)} genes, e.g. {genes[:3]}; graph nodes e.g. {graph.nodes[:3].tolist()})",
                              path=path)


def load_graph(name: str, path: str | Path) -> Graph:
    """A configured graph: raygex Parquet as is, any other graph file imported on the fly (symbols)."""
    path = _require(path, f"graphs.{name}")
    if path.suffix == ".parquet":
        return read_graph(path)
    graph, _ = import_graph(path, name)
    return graph


def load_graphs(config: ExperimentConfig) -> dict[str, Graph]:
    """Every configured graph by name (controls are built per study and split seed: :func:`choice_graph`)."""
    return {name: load_graph(name, path) for name, path in config.graphs.items()}


def load_dataset(config: ExperimentConfig) -> ExpressionDataset:
    return read_dataset(_require(config.data.expression, "data.expression", DEMO_HINT))


def labelled_count(config: ExperimentConfig, task_name: str, n_samples: int) -> int:
    """The study's labelled (train + valid, never test) sample count out of the task's ``n_samples``."""
    return ((resolve_size(config.train_size(task_name), n_samples, "train") or 0)
            + (resolve_size(config.split.valid, n_samples, "valid") or 0))


def fold_count(config: ExperimentConfig, task_name: str, n_samples: int) -> int | None:
    """The study's cross-validation folds (None: one train/valid split), from ``split.folds`` and its labelled
    sample count (:func:`labelled_count`)."""
    return config.split.fold_count(labelled_count(config, task_name, n_samples))


def cut_folds(config: ExperimentConfig, labels, folds: int, seed: int) -> list:
    """The study's folds over its labelled ``labels``: with ``split.folds: auto`` a class rarer than the folds is
    validated in as many folds as it has samples; an explicit count is refused when a class cannot fill it."""
    return stratified_folds(labels, folds, seed, strict=config.split.folds != "auto")


def trial_data(config: ExperimentConfig, task_name: str, dataset: ExpressionDataset, graphs: dict[str, Graph],
               *, seed: int, graph: str | None) -> TrialData:
    """Task arrays for one split seed, with the graph choice ``graph`` (a configured graph or a control) aligned
    to the input genes. With cross-validation (:func:`fold_count`) the training arrays are every labelled sample,
    the validation arrays are empty and ``folds`` holds the (train, valid) rows of each fold, cut from the seed."""
    spec = config.task(task_name)
    task = build_task(spec, dataset, graphs)
    train, valid = config.train_size(task_name), config.split.valid
    labelled = labelled_count(config, task_name, len(task.y))
    folds = config.split.fold_count(labelled)
    if folds is not None:  # the labelled samples (train + valid) are cut into folds; the test set is unchanged
        train, valid = labelled, 0
    split, labels = task.split(train=train, valid=valid, test=config.split.test, seed=seed,
                               test_seed=config.split.test_seed)
    data = TrialData.from_task(task, split, labels)
    if folds is not None:
        data.folds = cut_folds(config, data.y_train, folds, seed)
    if graph is not None:
        data.graph = choice_graph(config, graph, graphs, data, seed=seed)
    return data


def choice_graph(config: ExperimentConfig, choice: str, graphs: dict[str, Graph], data: TrialData, *, seed: int):
    """The graph choice ``choice`` over ``data``'s input genes: a configured graph aligned, or a control built
    from the aligned graphs, the split seed and (co-expression) the training rows."""
    if choice not in config.graph_choices():
        raise ConfigError(f"graph {choice!r} is not a graph choice (choices: {config.graph_choices()})")
    kind = parse_control(choice)
    if kind is None:
        return align_graph(graphs[choice], data.genes, dataset=config.data.expression)
    parent = kind[1]
    aligned = {parent: align_graph(graphs[parent], data.genes, dataset=config.data.expression)} if parent else {}
    return aligned_control(choice, aligned, data.genes, seed=seed, x_train=data.x_train, k=config.coexpression_k)


def study_graphs(config: ExperimentConfig, graphs: dict[str, Graph], data: TrialData, *, seed: int) -> dict:
    """Every graph choice of a study over ``data``'s input genes (what a sweep's trials share), real graphs
    aligned once and each control built from them."""
    aligned = {name: align_graph(graph, data.genes, dataset=config.data.expression) for name, graph in graphs.items()}
    out = dict(aligned)
    for choice in config.graph_choices():
        if choice not in out:
            out[choice] = aligned_control(choice, aligned, data.genes, seed=seed, x_train=data.x_train,
                                          k=config.coexpression_k)
    return out
