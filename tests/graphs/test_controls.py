"""Control graphs: degree-preserving rewiring, the empty graph, and training-only coexpression graphs."""

from __future__ import annotations

import numpy as np
import pytest

from raygex.errors import ConfigError, InputFormatError
from raygex.graphs import Graph, build_control, coexpression_control, empty_control, random_control


def edge_set(graph: Graph) -> set[tuple[str, str]]:
    return set(zip(graph.source.tolist(), graph.target.tolist()))


def test_random_preserves_every_degree_and_rewires_most_edges(make_graph):
    graph = make_graph(2000, 12000, seed=1, weighted=True)
    graph.isolated = np.array(["ZZ_LONE"])
    control = random_control(graph, seed=7)
    assert control.name == "toy:random" and control.n_edges == graph.n_edges
    assert control.degrees().equals(graph.degrees())
    assert (control.source < control.target).all()  # canonical: no self-loops, one orientation
    assert len(edge_set(control)) == control.n_edges  # no multi-edges
    assert len(edge_set(control) & edge_set(graph)) < 0.3 * graph.n_edges
    assert sorted(control.weight.tolist()) == sorted(graph.weight.tolist())
    assert control.isolated.tolist() == ["ZZ_LONE"]
    prov = control.provenance
    assert prov["seed"] == 7 and prov["swaps_accepted"] >= 10 * graph.n_edges and prov["parent_graph"] == "toy"


def test_random_is_deterministic_per_seed(make_graph):
    graph = make_graph(500, 2000, seed=2)
    a, b, c = random_control(graph, 3), random_control(graph, 3), random_control(graph, 4)
    assert a.source.tolist() == b.source.tolist() and a.target.tolist() == b.target.tolist()
    assert edge_set(a) != edge_set(c)


def test_random_terminates_when_no_swap_is_possible():
    triangle = Graph.from_edges("tri", ["A", "B", "C"], ["B", "C", "A"])
    control = random_control(triangle, 0)
    assert edge_set(control) == edge_set(triangle) and control.provenance["swaps_accepted"] == 0
    single = random_control(Graph.from_edges("one", ["A"], ["B"]), 0)
    assert edge_set(single) == {("A", "B")}


def test_empty_keeps_nodes_drops_edges(make_graph):
    graph = make_graph(100, 300)
    control = empty_control(graph)
    assert control.name == "toy:empty" and control.n_edges == 0
    assert control.nodes.tolist() == graph.nodes.tolist()
    assert control.provenance["parent_edges"] == 300


def brute_force_topk(x: np.ndarray, genes: list[str], k: int) -> set[tuple[str, str]]:
    corr = np.abs(np.corrcoef(x, rowvar=False))
    np.fill_diagonal(corr, -1)
    edges = set()
    for i in range(len(genes)):
        for j in np.argsort(-corr[i])[:k]:
            edges.add(tuple(sorted((genes[i], genes[j]))))
    return edges


@pytest.mark.parametrize("block_rows", [3, 1024])
def test_coexpression_matches_brute_force(block_rows):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 25)).astype(np.float32)
    genes = [f"g{i}" for i in range(25)]
    graph = coexpression_control(x, genes, 3, "co", block_rows=block_rows)
    assert edge_set(graph) == brute_force_topk(x, genes, 3)
    assert graph.name == "co" and (graph.weight > 0).all() and (graph.weight <= 1.0001).all()
    assert graph.provenance["n_train_samples"] == 40 and graph.provenance["k"] == 3


def test_coexpression_uses_only_the_rows_passed():
    rng = np.random.default_rng(1)
    n, genes = 60, ["A", "B", "C", "D", "E"]
    x = rng.normal(size=(2 * n, 5))
    x[:n, 1] = x[:n, 0] + 0.01 * rng.normal(size=n)  # training rows: A ~ B
    x[n:, 2] = x[n:, 0] + 0.01 * rng.normal(size=n)  # held-out rows: A ~ C
    train_only = coexpression_control(x[:n], genes, 1)
    everything = coexpression_control(x, genes, 1)
    assert ("A", "B") in edge_set(train_only) and ("A", "C") not in edge_set(train_only)
    assert edge_set(train_only) != edge_set(everything)


def test_coexpression_constant_gene_gets_no_edges():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 6))
    x[:, 4] = 3.0
    graph = coexpression_control(x, list("ABCDEF"), 2)
    assert "E" not in set(graph.source) | set(graph.target) and "E" in graph.isolated
    assert graph.provenance["constant_genes"] == 1


def test_coexpression_bad_inputs():
    x = np.ones((10, 4)) + np.arange(40).reshape(10, 4) ** 2
    with pytest.raises(ConfigError, match="k must be"):
        coexpression_control(x, list("ABCD"), 4)
    with pytest.raises(InputFormatError, match="shape"):
        coexpression_control(x, list("ABC"), 1)
    with pytest.raises(InputFormatError, match="at least 3"):
        coexpression_control(x[:2], list("ABCD"), 1)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputFormatError, match="NaN"):
        coexpression_control(bad, list("ABCD"), 1)


def test_build_control_dispatch(make_graph):
    graph = make_graph(100, 300)
    assert build_control("random", graph, seed=1).name == "toy:random"
    assert build_control("empty", graph).n_edges == 0
    x = np.random.default_rng(0).normal(size=(20, 5))
    assert build_control("coexpression", graph, expression_train=x, genes=list("ABCDE"), k=2).name == \
        "toy:coexpression"
    with pytest.raises(ConfigError, match="control kind must be one of"):
        build_control("shuffled", graph)
    with pytest.raises(ConfigError, match="training expression"):
        build_control("coexpression", graph)
