"""From a config to what a trial needs: the dataset, the graphs (with controls), and split task arrays.

Shared by `raygex train` (one trial, in process) and the search (which puts these arrays in Ray's object store).
"""

from __future__ import annotations

from pathlib import Path

from raygex.config import ExperimentConfig
from raygex.data.canonical import ExpressionDataset, read_dataset
from raygex.errors import ConfigError
from raygex.graphs.align import align_graph
from raygex.graphs.controls import build_control
from raygex.graphs.io import import_graph
from raygex.graphs.store import Graph, read_graph
from raygex.tasks import build_task
from raygex.trial import TrialData


def _require(path: str | Path, key: str, hint: str = "") -> Path:
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


def load_graph(name: str, path: str | Path) -> Graph:
    """A configured graph: raygex Parquet as is, any other graph file imported on the fly (symbols)."""
    path = _require(path, f"graphs.{name}")
    if path.suffix == ".parquet":
        return read_graph(path)
    graph, _ = import_graph(path, name)
    return graph


def load_graphs(config: ExperimentConfig, seed: int = 0) -> dict[str, Graph]:
    """Every graph choice by name: configured graphs, then controls built from the first graph."""
    graphs = {name: load_graph(name, path) for name, path in config.graphs.items()}
    if config.controls:
        first = graphs[next(iter(config.graphs))]
        for kind in config.controls:
            graphs[kind] = build_control(kind, first, seed=seed)
    return graphs


def load_dataset(config: ExperimentConfig) -> ExpressionDataset:
    return read_dataset(_require(config.data.expression, "data.expression", DEMO_HINT))


def trial_data(config: ExperimentConfig, task_name: str, dataset: ExpressionDataset, graphs: dict[str, Graph],
               *, seed: int, graph: str | None) -> TrialData:
    """Task arrays for one split seed, with ``graph`` (a name from ``graphs``) aligned to the input genes."""
    spec = config.task(task_name)
    task = build_task(spec, dataset, graphs)
    split, labels = task.split(train=config.split.train, valid=config.split.valid, test=config.split.test,
                               seed=seed)
    aligned = None
    if graph is not None:
        if graph not in graphs:
            raise ConfigError(f"graph {graph!r} is not a graph choice (choices: {sorted(graphs)})")
        aligned = align_graph(graphs[graph], task.genes)
    return TrialData.from_task(task, split, labels, aligned)
