"""Graph import: adjacency lists and edge lists, id mapping, counts in the report, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from raygex.errors import ConfigError, InputFormatError
from raygex.graphs import Graph, import_graph, read_graph, write_graph

ADJLIST = """# written by networkx
# GMT Mon Jul 22 03:27:53 2019
A B C
B C A
D A   E # trailing comment
E
F F
LONELY
"""

ID_TABLE = "Approved symbol\tNCBI Gene ID(supplied by NCBI)\tEnsembl ID(supplied by Ensembl)\n" \
           "TP53\t7157\tENSG00000141510\nBRCA1\t672\tENSG00000012048\nEGFR\t1956\tENSG00000146648\n" \
           "MYC\t4609\tENSG00000136997\nNOID\t\t\n"


def edges_of(graph: Graph) -> set[tuple[str, str]]:
    return set(zip(graph.source.tolist(), graph.target.tolist()))


@pytest.mark.parametrize("name", ["toy.adjlist", "toy.adjlist.gz"])
def test_adjlist_counts_dedup_and_isolated(write_text, name):
    graph, report = import_graph(write_text(name, ADJLIST), "toy")
    assert edges_of(graph) == {("A", "B"), ("A", "C"), ("B", "C"), ("A", "D"), ("D", "E")}
    assert (graph.source < graph.target).all()
    assert set(graph.isolated) == {"F", "LONELY"}
    assert report["nodes_read"] == 7 and report["nodes"] == 7
    assert report["edges_read"] == 7 and report["self_loops"] == 1 and report["duplicates"] == 1
    assert report["edges_kept"] == 5 and report["nodes_unmapped"] == 0
    assert graph.provenance["sha256"] and graph.provenance["counts"]["edges_kept"] == 5


def test_edgelist_tsv_header_weights_keep_max(write_text):
    text = "source\ttarget\tscore\nA\tB\t0.5\nB\tA\t0.9\nA\tC\t0.1\nC\tC\t1.0\n"
    graph, report = import_graph(write_text("e.tsv", text), "w", weight_column="score")
    weights = dict(zip(zip(graph.source, graph.target), graph.weight.tolist()))
    assert weights == {("A", "B"): pytest.approx(0.9), ("A", "C"): pytest.approx(0.1)}
    assert graph.weight.dtype == np.float32
    assert report["duplicates"] == 1 and report["self_loops"] == 1


@pytest.mark.parametrize("name,text", [
    ("e.csv", "A,B\nB,C\n"),
    ("e.csv.gz", "gene1,gene2\nA,B\nB,C\n"),
    ("e.txt", "# comment\nA B\nB   C\n"),
    ("e.edgelist", "A\tB\t3\nB\tC\t4\n"),
])
def test_edgelist_variants(write_text, name, text):
    graph, report = import_graph(write_text(name, text), "v")
    assert edges_of(graph) == {("A", "B"), ("B", "C")}
    assert graph.weight is None and report["edges_kept"] == 2


def test_edgelist_weight_by_index_without_header(write_text):
    graph, _ = import_graph(write_text("e.tsv", "A\tB\tx\t2.5\nB\tC\ty\t1\n"), "w", weight_column=3)
    assert sorted(graph.weight.tolist()) == [1.0, 2.5]


def test_entrez_mapping_drops_unmapped_edges(write_text):
    table = write_text("ids.tsv", ID_TABLE)
    text = "7157\t672\n672\t1956.0\n1956\t999999\n4609\t7157\n"
    graph, report = import_graph(write_text("e.tsv", text), "ent", id_type="entrez", id_map=table)
    assert edges_of(graph) == {("BRCA1", "TP53"), ("BRCA1", "EGFR"), ("MYC", "TP53")}
    assert report["nodes_read"] == 5 and report["nodes_mapped"] == 4 and report["nodes_unmapped"] == 1
    assert report["edges_unmapped"] == 1 and report["edges_kept"] == 3
    assert graph.provenance["id_type"] == "entrez"
    assert graph.provenance["mapping_file"].endswith("ids.tsv") and len(graph.provenance["mapping_sha256"]) == 64


def test_ensembl_mapping_strips_versions_and_detects_header(write_text):
    table = write_text("ids.tsv", ID_TABLE)
    text = "gene_a,gene_b\nENSG00000141510.4,ENSG00000012048\nENSG00000146648.1,ENSG00000141510\n"
    graph, _ = import_graph(write_text("e.csv", text), "ens", id_type="ensembl", id_map=table)
    assert edges_of(graph) == {("BRCA1", "TP53"), ("EGFR", "TP53")}


def test_previous_symbols_renamed_and_merged(write_text):
    hgnc = write_text("hgnc.tsv", "Approved symbol\tPrevious symbols\nTP53\tP53, TRP53\nBRCA1\tBRCAI\n"
                                  "VERYLONGSYMBOL\tX1\n")
    text = "P53 BRCAI OTHER\nTP53 BRCA1\nX1 P53\n"
    graph, report = import_graph(write_text("g.adjlist", text), "h", symbol_map=hgnc)
    assert edges_of(graph) == {("BRCA1", "TP53"), ("OTHER", "TP53"), ("TP53", "VERYLONGSYMBOL")}
    assert report["renamed"] == 3 and report["duplicates"] == 1
    assert graph.provenance["symbol_map_file"].endswith("hgnc.tsv")


@pytest.mark.shared
def test_entrez_against_real_table(write_text, graphs_dir):
    table = graphs_dir / "enterez_NCBI_to_hugo_gene_symbol_march_2019.txt"
    text = "entrez_a\tentrez_b\n7157\t672\n672\t1956\n1\t7157\n123456789\t7157\n"
    graph, report = import_graph(write_text("e.tsv", text), "real", id_type="entrez", id_map=table)
    assert edges_of(graph) == {("BRCA1", "TP53"), ("BRCA1", "EGFR"), ("A1BG", "TP53")}
    assert report["nodes_unmapped"] == 1 and report["edges_unmapped"] == 1


def test_store_roundtrip_keeps_weights_isolated_and_provenance(write_text, tmp_path):
    text = "source\ttarget\tw\nA\tB\t0.5\nC\tD\t2\n"
    graph, _ = import_graph(write_text("e.tsv", text), "rt", weight_column="w")
    graph.isolated = np.array(["Z"])
    back = read_graph(write_graph(graph, tmp_path / "g.parquet"))
    assert back.name == "rt" and edges_of(back) == edges_of(graph)
    assert back.weight.tolist() == graph.weight.tolist() and back.isolated.tolist() == ["Z"]
    assert back.provenance["sha256"] == graph.provenance["sha256"] and back.provenance["n_nodes"] == 5


@pytest.mark.parametrize("name,text,match", [
    ("empty.adjlist", "", "empty"),
    ("comments.adjlist.gz", "# only\n# comments\n", "empty"),
    ("empty.tsv", "\n\n", "empty"),
    ("graph.json", '{"a": 1}', "unknown graph format"),
    ("nodes.adjlist", "A\nB\n", "no edges left"),
    ("loops.tsv", "A\tA\n", "self-loop"),
    ("one.tsv", "A\nB\n", "two id columns"),
])
def test_bad_graph_files(write_text, name, text, match):
    path = write_text(name, text)
    with pytest.raises(InputFormatError, match=match) as err:
        import_graph(path, "bad")
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputFormatError, match="not found"):
        import_graph(tmp_path / "nope.adjlist", "x")


def test_bad_gzip(tmp_path):
    path = tmp_path / "broken.adjlist.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(InputFormatError, match="decompress"):
        import_graph(path, "x")


def test_mapping_table_without_id_column_surfaces(write_text):
    table = write_text("ids.tsv", "Approved symbol\tsomething else\nTP53\t7157\n")
    with pytest.raises(InputFormatError, match="entrez id column") as err:
        import_graph(write_text("e.tsv", "7157\t672\n"), "x", id_type="entrez", id_map=table)
    assert str(err.value).startswith(str(table))


def test_nothing_maps(write_text):
    table = write_text("ids.tsv", ID_TABLE)
    with pytest.raises(InputFormatError, match="no edges left.*did not map"):
        import_graph(write_text("e.tsv", "1\t2\n3\t4\n"), "x", id_type="entrez", id_map=table)


def test_option_errors(write_text):
    path = write_text("e.tsv", "A\tB\n")
    graph, _ = import_graph(write_text("ids.tsv", "7157\t4193\n"), "x", id_type="entrez")  # raygex's own table
    assert list(graph.nodes) == ["MDM2", "TP53"]
    with pytest.raises(ConfigError, match="id type"):
        import_graph(path, "x", id_type="uniprot")
    with pytest.raises(ConfigError, match="no edge weights"):
        import_graph(write_text("g.adjlist", "A B\n"), "x", weight_column="w")
    with pytest.raises(InputFormatError, match="no weight column 'w'"):
        import_graph(path, "x", weight_column="w")
    with pytest.raises(InputFormatError, match="not numeric"):
        import_graph(write_text("s.tsv", "source\ttarget\tw\nA\tB\thigh\n"), "x", weight_column="w")
