"""Alignment by name: positions follow the dataset's gene order, edges follow the names."""

from __future__ import annotations

import numpy as np
import pytest

from raygex.errors import InputFormatError
from raygex.graphs import Graph, adjacency_csr, align_graph, empty_control


def toy_graph(weighted: bool = True) -> Graph:
    src, dst = ["A", "A", "B", "C", "X"], ["B", "C", "C", "D", "Y"]
    weight = [0.1, 0.2, 0.3, 0.4, 0.5] if weighted else None
    return Graph.from_edges("toy", src, dst, weight, nodes=["LONE"])


def test_edge_index_layout_and_coverage():
    aligned = align_graph(toy_graph(), ["D", "C", "B", "A", "Z"])
    assert aligned.n_nodes == 5 and aligned.graph_name == "toy" and aligned.genes == ["D", "C", "B", "A", "Z"]
    assert aligned.edge_index.dtype == np.int64 and aligned.edge_index.shape == (2, 8)
    rows, cols = aligned.edge_index
    assert np.all(np.diff(rows * 10 + cols) > 0)  # sorted by (row, col), no repeats
    assert set(zip(rows.tolist(), cols.tolist())) == {(a, b) for b, a in zip(rows.tolist(), cols.tolist())}
    assert aligned.edge_weight.dtype == np.float32 and len(aligned.edge_weight) == 8
    assert aligned.named_edges() == {("A", "B"), ("A", "C"), ("B", "C"), ("C", "D")}
    cov = aligned.coverage
    assert cov["dataset_genes"] == 5 and cov["dataset_genes_in_graph"] == 4
    assert cov["dataset_genes_in_graph_fraction"] == pytest.approx(0.8)
    assert cov["graph_nodes"] == 7 and cov["graph_nodes_in_dataset"] == 4
    assert cov["edges_kept"] == 4 and cov["edges_total"] == 5 and cov["dataset_genes_with_edges"] == 4


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_gene_order_gives_same_named_graph(seed, make_graph):
    graph = make_graph(300, 1500, seed=seed, weighted=True)
    rng = np.random.default_rng(seed)
    genes = [f"G{i:05d}" for i in rng.choice(400, size=250, replace=False)]  # partial overlap, extra genes
    shuffled = list(rng.permutation(genes))
    a, b = align_graph(graph, genes), align_graph(graph, shuffled)
    assert a.named_edges() == b.named_edges() and a.coverage == b.coverage

    def named_weights(al):
        g = np.asarray(al.genes)
        return {(x, y): w for x, y, w in zip(g[al.edge_index[0]], g[al.edge_index[1]], al.edge_weight)}

    assert named_weights(a) == named_weights(b)
    perm = np.array([shuffled.index(g) for g in genes])  # position in b of each gene of a
    dense_a, dense_b = adjacency_csr(a).toarray(), adjacency_csr(b).toarray()
    np.testing.assert_array_equal(dense_a, dense_b[np.ix_(perm, perm)])


def test_csr_symmetric_with_optional_self_loops():
    aligned = align_graph(toy_graph(weighted=False), ["A", "B", "C", "D"])
    adj = aligned.to_csr()
    assert adj.shape == (4, 4) and adj.nnz == 8 and (adj != adj.T).nnz == 0
    assert adj.dtype == np.float32 and adj.diagonal().sum() == 0
    assert aligned.edge_weight is None
    assert aligned.to_csr(self_loops=True).diagonal().tolist() == [1, 1, 1, 1]


def test_no_overlap_names_graph_and_dataset():
    with pytest.raises(InputFormatError, match=r"graph 'toy' shares no genes with the dataset \(3 genes\)"):
        align_graph(toy_graph(), ["P", "Q", "R"], dataset="ds.parquet")


def test_repeated_dataset_gene():
    with pytest.raises(InputFormatError, match="repeats 'A'"):
        align_graph(toy_graph(), ["A", "B", "A"])


def test_empty_control_aligns_with_meaningful_coverage():
    aligned = align_graph(empty_control(toy_graph()), ["A", "B", "Q"])
    assert aligned.edge_index.shape == (2, 0) and aligned.edge_index.dtype == np.int64
    assert aligned.coverage["dataset_genes_in_graph"] == 2 and aligned.coverage["edges_total"] == 0
    assert aligned.to_csr().nnz == 0
