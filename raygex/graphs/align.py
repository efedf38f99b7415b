"""Align a named gene graph to a dataset's gene order, by symbol.

A GCN sees nodes as positions in the expression vector, so the graph's symbols are turned into those
positions here, and only here. Alignment is by name, never by position: permuting the dataset's genes permutes
the aligned graph and changes nothing else. The coverage numbers say how much of the graph the model really
sees, which is what makes a result on a poorly covered graph interpretable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from raygex.errors import InputFormatError
from raygex.graphs.store import Graph


@dataclass
class AlignedGraph:
    """A graph in a dataset's node numbering: ``edge_index`` [2, 2E] int64 holds both directions, sorted.

    ``edge_weight`` (float32, one per column of ``edge_index``) is None for an unweighted graph.
    """

    n_nodes: int
    edge_index: np.ndarray
    edge_weight: np.ndarray | None
    genes: list[str]
    graph_name: str
    coverage: dict = field(default_factory=dict)

    @property
    def n_edges(self) -> int:
        """Undirected edges (each stored twice in ``edge_index``)."""
        return self.edge_index.shape[1] // 2

    def named_edges(self) -> set[tuple[str, str]]:
        """The undirected edges as (symbol, symbol) pairs, smaller symbol first; for checks and tests."""
        genes = np.asarray(self.genes, dtype=object)
        a, b = genes[self.edge_index[0]], genes[self.edge_index[1]]
        return {(x, y) for x, y in zip(a, b) if x < y}

    def to_csr(self, *, self_loops: bool = False) -> sp.csr_matrix:
        """Symmetric adjacency as scipy CSR (float32); ``self_loops`` adds the identity, as GCNs often do."""
        return adjacency_csr(self, self_loops=self_loops)


def adjacency_csr(aligned: AlignedGraph, *, self_loops: bool = False) -> sp.csr_matrix:
    """Symmetric [n_nodes, n_nodes] float32 CSR adjacency (weights, or 1 for unweighted edges)."""
    n = aligned.n_nodes
    data = (np.ones(aligned.edge_index.shape[1], dtype=np.float32) if aligned.edge_weight is None
            else aligned.edge_weight.astype(np.float32))
    matrix = sp.csr_matrix((data, (aligned.edge_index[0], aligned.edge_index[1])), shape=(n, n), dtype=np.float32)
    if self_loops:
        matrix = (matrix + sp.identity(n, dtype=np.float32, format="csr")).tocsr()
    matrix.sort_indices()
    return matrix


def align_graph(graph: Graph, genes, *, dataset: str | Path | None = None) -> AlignedGraph:
    """Number ``graph``'s nodes by their position in ``genes`` (the dataset's gene order); drop the rest.

    ``dataset`` (a path or name) only labels errors. A graph with no edges (the empty control) aligns to an
    edgeless graph whose coverage still counts its node list. Raises if the dataset repeats a gene or if the
    graph shares no gene with the dataset.
    """
    genes = [str(g) for g in genes]
    index = pd.Index(genes)
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        raise InputFormatError(f"dataset gene list repeats {dup!r}; genes must be unique to align a graph",
                               path=dataset)
    nodes = graph.nodes
    node_in_dataset = index.get_indexer(nodes) >= 0
    shared = int(node_in_dataset.sum())
    if shared == 0:
        raise InputFormatError(f"graph '{graph.name}' shares no genes with the dataset ({len(genes)} genes)",
                               path=dataset)
    src, dst = index.get_indexer(graph.source), index.get_indexer(graph.target)
    keep = (src >= 0) & (dst >= 0)
    src, dst = src[keep].astype(np.int64), dst[keep].astype(np.int64)
    rows, cols = np.concatenate([src, dst]), np.concatenate([dst, src])
    order = np.lexsort((cols, rows))
    edge_index = np.ascontiguousarray(np.stack([rows[order], cols[order]]).astype(np.int64, copy=False))
    edge_weight = None
    if graph.weight is not None:
        w = graph.weight[keep]
        edge_weight = np.concatenate([w, w])[order].astype(np.float32)
    with_edges = np.zeros(len(genes), dtype=bool)
    with_edges[edge_index[0]] = True
    coverage = {
        "dataset_genes": len(genes),
        "dataset_genes_in_graph": shared,
        "dataset_genes_in_graph_fraction": shared / len(genes),
        "dataset_genes_with_edges": int(with_edges.sum()),
        "graph_nodes": int(len(nodes)),
        "graph_nodes_in_dataset": shared,
        "graph_nodes_in_dataset_fraction": shared / len(nodes),
        "edges_kept": int(keep.sum()),
        "edges_total": int(graph.n_edges),
        "edges_kept_fraction": float(keep.sum() / graph.n_edges) if graph.n_edges else 0.0,
    }
    return AlignedGraph(len(genes), edge_index, edge_weight, genes, graph.name, coverage)
