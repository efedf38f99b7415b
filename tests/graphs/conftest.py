"""Fixtures for the graph tests: the real graphs in ../shared/data, small graph files, and the CLI in-process."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest



@pytest.fixture
def graphs_dir(shared_data) -> Path:
    """../shared/data/graphs; tests using it skip when ../shared is absent (a user's clone has none)."""
    return shared_data / "graphs"


@pytest.fixture
def write_text(tmp_path):
    """Write ``text`` to ``tmp_path / name`` (gzip when the name ends in .gz) and return the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
        return path

    return write


@pytest.fixture
def cli(run_cli):
    """The top-level ``run_cli`` fixture under the name these tests use."""
    return run_cli


@pytest.fixture
def make_graph():
    """Factory: ``make_graph(n_nodes, n_edges, seed, weighted)`` -> a toy Graph."""
    return _random_graph


def _random_graph(n_nodes: int, n_edges: int, seed: int = 0, weighted: bool = False):
    """A Graph with a skewed degree distribution (preferential-ish endpoints), symbols G0000..."""
    from raygex.graphs.store import Graph

    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_nodes + 1) ** 0.7
    p /= p.sum()
    a = rng.choice(n_nodes, size=3 * n_edges, p=p)
    b = rng.integers(0, n_nodes, size=3 * n_edges)
    names = np.array([f"G{i:05d}" for i in range(n_nodes)])
    weight = rng.random(3 * n_edges).astype(np.float32) if weighted else None
    g = Graph.from_edges("toy", names[a], names[b], weight, {"source_file": "toy"})
    keep = slice(0, n_edges)
    return Graph("toy", g.source[keep], g.target[keep], None if g.weight is None else g.weight[keep], g.provenance)
