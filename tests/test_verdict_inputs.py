"""What a verdict stands on: one randomised control per real graph with that graph's degrees (on a single-gene
task's inputs, the induced degrees), a test set no split seed ever trains or selects on, and a graph swap in
which only the graph differs."""

from __future__ import annotations

import numpy as np
import pytest

from raygex.config import ExperimentConfig
from raygex.data.demo import make_demo_cohort
from raygex.graphs.align import align_graph
from raygex.data.prepare import choice_graph, study_graphs, trial_data
from raygex.data.splits import stratified_split


@pytest.fixture(scope="module")
def cohort():
    dataset, true, decoy = make_demo_cohort(0, n_samples=200, n_genes=150)
    return dataset, {"true": true, "decoy": decoy}


def config(**changes) -> ExperimentConfig:
    raw = {"name": "v", "data": {"expression": "unused.parquet"}, "graphs": {"true": "t", "decoy": "d"},
           "controls": ["random", "empty", "coexpression"],
           "tasks": [{"name": "subtype", "kind": "classify", "label": "subtype"},
                     {"name": "sgi", "kind": "single_gene", "gene": "G0001",
                      "inputs": {"mode": "bfs", "size": 40, "graph": "true"}}],
           "split": {"train": 60, "valid": 40, "test": 60, "seeds": [0, 1, 2], "folds": None}}
    raw.update(changes)
    return ExperimentConfig.model_validate(raw)


def degrees(aligned) -> np.ndarray:
    return np.bincount(aligned.edge_index[0], minlength=aligned.n_nodes)


@pytest.mark.parametrize("task", ["subtype", "sgi"])
def test_each_real_graph_gets_its_own_random_control_with_its_degrees(cohort, task):
    dataset, graphs = cohort
    cfg = config()
    assert cfg.graph_choices() == ["true", "decoy", "true:random", "decoy:random", "empty", "coexpression"]
    data = trial_data(cfg, task, dataset, graphs, seed=0, graph=None)
    built = study_graphs(cfg, graphs, data, seed=0)
    for name in ("true", "decoy"):
        induced = align_graph(graphs[name], data.genes)  # the graph on this task's input genes
        control = built[f"{name}:random"]
        assert control.n_edges == induced.n_edges > 0
        assert (degrees(control) == degrees(induced)).all(), f"{name}:random lost {name}'s degrees"
        assert control.named_edges() != induced.named_edges()
    assert built["empty"].n_edges == 0 and built["coexpression"].n_edges > 0
    # the two randomisations differ (each from its own graph), and each split seed gets a new one
    again = choice_graph(cfg, "true:random", graphs, trial_data(cfg, task, dataset, graphs, seed=1, graph=None), seed=1)
    assert again.named_edges() != built["true:random"].named_edges()
    assert (degrees(again) == degrees(align_graph(graphs["true"], data.genes))).all()


def test_single_gene_random_control_is_rewired_on_the_induced_inputs():
    """40 BFS genes of a 2,000-gene graph: a whole-graph rewiring cut to the inputs keeps few of the induced graph's
    edges (the old "control" was nearly empty); the control rewired on the inputs keeps them all."""
    from raygex.graphs.controls import random_control

    dataset, true, decoy = make_demo_cohort(0, n_samples=200, n_genes=2000)
    graphs = {"true": true, "decoy": decoy}
    data = trial_data(config(), "sgi", dataset, graphs, seed=0, graph="true:random")
    induced = align_graph(graphs["true"], data.genes)
    whole_then_cut = align_graph(random_control(graphs["true"], 0), data.genes)
    print(f"\ninduced {induced.n_edges} edges, control {data.graph.n_edges}, whole-graph rewiring cut: "
          f"{whole_then_cut.n_edges}")
    assert len(data.genes) == 40
    assert data.graph.n_edges == induced.n_edges
    assert (degrees(data.graph) == degrees(induced)).all()
    assert whole_then_cut.n_edges < 0.2 * induced.n_edges


def test_the_test_set_is_fixed_and_never_trains_or_validates(cohort):
    dataset, graphs = cohort
    cfg = config()
    labels = np.repeat([0, 1, 2], [70, 70, 60])
    splits = [stratified_split(labels, train=60, valid=40, test=60, seed=s) for s in range(10)]
    for split in splits:
        assert (split.test == splits[0].test).all()
        assert not set(split.test) & (set(split.train) | set(split.valid))
    assert any((a.train != b.train).any() for a, b in zip(splits, splits[1:])), "seeds resample training"
    for task in ("subtype", "sgi"):
        seen = [trial_data(cfg, task, dataset, graphs, seed=s, graph=None) for s in cfg.split.seeds]
        assert all(d.test_ids == seen[0].test_ids for d in seen)
        assert len(seen[0].test_ids) == 60


def test_the_swap_changes_only_the_graph(cohort, monkeypatch, tmp_path):
    """Every swapped run of one seed has the same hyperparameters, split and initialisation seed."""
    import pandas as pd

    import raygex.analysis.swap as swap
    from raygex.experiment.layout import ExperimentLayout

    dataset, graphs = cohort
    cfg = config(controls=["random", "empty"])
    calls = []

    class StoreFolder:
        def __init__(self, fn):
            self.fn = fn

        def remote(self, hparams, data, graph=None):
            calls.append((dict(hparams), data, graph))
            return len(calls) - 1

    import ray

    monkeypatch.setattr(ray, "remote", lambda **_: StoreFolder)
    monkeypatch.setattr(ray, "put", lambda data: data)
    monkeypatch.setattr(ray, "get", lambda job: {"valid": {"auc": 0.5}, "test": {"auc": 0.5}, "epochs": 1,
                                                 "proba": np.full((60, 3), 1 / 3)})
    monkeypatch.setattr(ray, "wait", lambda jobs, num_returns: (jobs[:num_returns], jobs[num_returns:]))

    class Layout(ExperimentLayout):
        def trial_params(self, study, row):
            return {"model": "gcn", "graph": "decoy", "depth": 2, "channels": 4, "embedding": 1, "lr": 0.01}

        def write_swap(self, study, table, predictions):
            self.written = (table, predictions)

    layout = Layout(tmp_path / "experiment", cfg)
    board = pd.DataFrame({"status": ["TERMINATED"], "config/model": ["gcn"], "trial_id": ["a"], "path": ["x"]})
    table = swap.swap_graphs(layout, "subtype", board, dataset, graphs)
    assert len(calls) == len(cfg.split.seeds) * len(cfg.graph_choices()) == len(table)
    for seed in cfg.split.seeds:
        runs = [(h, d, g) for h, d, g in calls if h["seed"] == seed]
        assert sorted(h["graph"] for h, _, _ in runs) == sorted(cfg.graph_choices())
        assert [g.graph_name for h, _, g in runs] == [h["graph"] for h, _, _ in runs]
        assert len({tuple(sorted((k, str(v)) for k, v in h.items() if k != "graph")) for h, _, _ in runs}) == 1
        assert len({tuple(d.test_ids) for _, d, _ in runs}) == 1
        assert all(np.array_equal(d.x_train, runs[0][1].x_train) for _, d, _ in runs)
    assert set(table["edges"][table["graph"] == "true"]) == set(table["edges"][table["graph"] == "true:random"])
