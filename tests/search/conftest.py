"""A tiny demo cohort on disk and a config over it, for end-to-end sweeps."""

from __future__ import annotations

import pytest
import yaml

from raygex.data.canonical import write_dataset
from raygex.data.demo import make_demo_cohort
from raygex.graphs.store import write_graph


def write_demo(folder, seed: int = 0):
    """A 160 × 150 demo cohort with its true and decoy graphs, written into ``folder``."""
    dataset, true, decoy = make_demo_cohort(seed, n_samples=160, n_genes=150)
    write_dataset(dataset, folder / "expression.parquet")
    write_graph(true, folder / "graph_true.parquet")
    write_graph(decoy, folder / "graph_decoy.parquet")
    return folder


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo"))


# For a test about the sweep (not the later stages): one split seed, so each trial that ran to its end is that
# seed's run and the evaluation trains little or nothing again; and so no controls (a verdict needs two seeds).
SWEEP_ONLY = {"split": {"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0]}, "controls": []}


def write_config(path, demo, **changes):
    config = {
        "name": "tiny",
        "data": {"expression": str(demo / "expression.parquet")},
        "graphs": {"true": str(demo / "graph_true.parquet"), "decoy": str(demo / "graph_decoy.parquet")},
        "controls": ["random", "empty"],
        "tasks": [{"name": "subtype", "kind": "classify", "label": "subtype"},
                  {"name": "sgi", "kind": "single_gene", "gene": "G0001",
                   "inputs": {"mode": "bfs", "size": 40, "graph": "true"}}],
        "split": {"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0, 1]},
        "train": {"max_epochs": 3, "patience": 3, "batch_size": 32},
        "search": {"num_samples": 7, "max_concurrent": 2, "scheduler": {"kind": "asha", "grace_period": 1},
                   "space": {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": {"int": [1, 2]},
                             "channels": {"choice": [4, 8]}, "embedding": {"choice": [1, 4]},
                             "hidden": {"choice": [16, 32]}, "dropout": {"float": [0.0, 0.3]},
                             "lr": {"loguniform": ["1e-3", "1e-2"]}}},
        "resources": {"cpu": 1, "gpu": 0},
        "storage": str(path.parent / "results"),
    }
    for key, value in changes.items():
        config[key] = value
    # One train/valid split unless a test asks for folds: the suite's small demos would otherwise cross-validate
    # (split.folds: auto), five times the training; tests/test_folds*.py exercise folds.
    config["split"] = {"folds": None, **config["split"]}
    path.write_text(yaml.safe_dump(config))
    return path
