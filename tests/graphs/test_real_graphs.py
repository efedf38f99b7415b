"""The real graphs in ../shared/data: node/edge counts from its README, speed, and controls at full size."""

from __future__ import annotations

import time

import numpy as np
import pytest

from raygex.graphs import align_graph, import_graph, random_control

pytestmark = pytest.mark.shared

COUNTS = {"genemania": (16_300, 264_657), "regnet": (7_220, 247_848), "hetio_interaction": (15_165, 147_164)}


def _import(graphs_dir, name):
    return import_graph(graphs_dir / f"{name}.adjlist.gz", name)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_real_graph_counts(graphs_dir, name):
    start = time.perf_counter()
    graph, report = _import(graphs_dir, name)
    elapsed = time.perf_counter() - start
    assert (graph.n_nodes, graph.n_edges) == COUNTS[name]
    assert report["edges_kept"] == COUNTS[name][1] and report["nodes_unmapped"] == 0
    assert elapsed < 5, f"importing {name} took {elapsed:.1f} s"


def test_genemania_random_control_and_alignment(graphs_dir):
    graph, _ = _import(graphs_dir, "genemania")
    start = time.perf_counter()
    control = random_control(graph, seed=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"random control took {elapsed:.1f} s"
    assert control.degrees().equals(graph.degrees())
    original = set(zip(graph.source.tolist(), graph.target.tolist()))
    rewired = set(zip(control.source.tolist(), control.target.tolist()))
    assert len(rewired) == graph.n_edges and len(original & rewired) < 0.2 * graph.n_edges

    genes = list(np.random.default_rng(0).permutation(graph.nodes)[:5000]) + ["NOT_A_GENE"]
    aligned = align_graph(graph, genes)
    assert aligned.coverage["dataset_genes_in_graph"] == 5000
    assert aligned.edge_index.shape[1] == 2 * aligned.coverage["edges_kept"]


def test_genemania_symbol_harmonisation(graphs_dir):
    graph, report = import_graph(graphs_dir / "genemania.adjlist.gz", "genemania",
                                 symbol_map=graphs_dir / "hgnc_symbol_map_Feb2019.txt")
    assert report["renamed"] > 0 and report["edges_kept"] <= COUNTS["genemania"][1]
    assert graph.provenance["symbol_map_file"].endswith("hgnc_symbol_map_Feb2019.txt")


def test_entrez_roundtrip_through_real_table(graphs_dir, tmp_path):
    """GeneMANIA rewritten with Entrez ids and imported back keeps every edge whose genes the table knows."""
    import pandas as pd

    table_path = graphs_dir / "enterez_NCBI_to_hugo_gene_symbol_march_2019.txt"
    table = pd.read_csv(table_path, sep="\t", dtype=str).dropna()
    table = table[~table.iloc[:, 0].duplicated(keep=False) & ~table.iloc[:, 1].duplicated(keep=False)]
    to_entrez = dict(zip(table.iloc[:, 0], table.iloc[:, 1]))
    graph, _ = _import(graphs_dir, "genemania")
    known = np.array([s in to_entrez and t in to_entrez for s, t in zip(graph.source, graph.target)])
    frame = pd.DataFrame({"a": [to_entrez[s] for s in graph.source[known]],
                          "b": [to_entrez[t] for t in graph.target[known]]})
    frame.to_csv(tmp_path / "gm_entrez.tsv.gz", sep="\t", index=False, header=False)
    back, report = import_graph(tmp_path / "gm_entrez.tsv.gz", "gm", id_type="entrez", id_map=table_path)
    assert report["nodes_unmapped"] == 0 and back.n_edges == int(known.sum()) > 200_000
    assert set(zip(back.source, back.target)) == set(zip(graph.source[known], graph.target[known]))
