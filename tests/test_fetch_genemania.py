"""`raygex graph fetch genemania` ends with a graph of approved symbols a config can use, through raygex's shipped
HGNC table (no mapping file to find), against a local HTTP server (no internet)."""

from __future__ import annotations

import shlex

import numpy as np
import pytest

from raygex.data.canonical import read_dataset
from raygex.graphs.store import read_graph
from tests import test_fetch

pytestmark = pytest.mark.timeout(60)
server = test_fetch.server  # the local HTTP server fixture of the other fetch tests

# GeneMANIA's network layout: Ensembl gene ids, a Weight column, edges listed in both directions.
NETWORK = ("Gene_A\tGene_B\tWeight\n"
           "ENSG00000141510\tENSG00000135679\t0.50\n"   # TP53 - MDM2
           "ENSG00000135679\tENSG00000141510\t0.50\n"
           "ENSG00000141510\tENSG00000012048\t0.25\n"   # TP53 - BRCA1
           "ENSG00000146648\tENSG00000136997\t0.125\n"  # EGFR - MYC
           "ENSG00000146648\tENSG00000999999\t0.75\n")  # EGFR - an id no table knows: the edge is dropped
NAME = "COMBINED.DEFAULT_NETWORKS.BP_COMBINING.txt"


def _serve(server):
    server.put(f"genemania/{NAME}", NETWORK.encode())
    return server.url(f"genemania/{NAME}")


def _check_graph(path):
    graph = read_graph(path)
    assert set(graph.nodes) == {"TP53", "MDM2", "BRCA1", "EGFR", "MYC"}
    assert graph.n_edges == 3
    weights = {frozenset(e): w for *e, w in zip(graph.source, graph.target, graph.weight)}
    assert weights[frozenset({"TP53", "MDM2"})] == pytest.approx(0.5)
    assert weights[frozenset({"EGFR", "MYC"})] == pytest.approx(0.125)
    return graph


def test_fetch_and_import_maps_ensembl_ids_with_the_shipped_table(server, tmp_path, run_cli):
    url, out = _serve(server), tmp_path / "genemania.parquet"
    code, stdout, err = run_cli("graph", "fetch", "genemania", "--url", url, "--cache", tmp_path / "cache",
                                "--retries", "0", "--import", out)
    assert code == 0, err
    assert (f"imported: {out} (5 nodes, 3 edges; 5 of 6 ensembl ids mapped to approved symbols through raygex's "
            "shipped HGNC table)") in stdout
    assert f"graphs: {{genemania: {out}}}" in stdout and "next:" not in stdout
    graph = _check_graph(out)
    assert graph.name == "genemania" and graph.provenance["mapping_file"].endswith("hgnc_map.tsv.gz")

    # The graph serves an expression file keyed by versioned Ensembl ids: both sides meet on approved symbols.
    expr = tmp_path / "expr.tsv"
    expr.write_text("sample_id\tENSG00000141510.16\tENSG00000135679.22\tENSG00000146648.18\nS1\t1\t2\t3\n"
                    "S2\t4\t5\t6\n")
    code, _, err = run_cli("data", "import", expr, "-o", tmp_path / "expr.parquet")
    assert code == 0, err
    assert read_dataset(tmp_path / "expr.parquet").genes == ["TP53", "MDM2", "EGFR"]
    code, stdout, err = run_cli("graph", "coverage", out, tmp_path / "expr.parquet", "--json")
    assert code == 0, err
    assert '"dataset_genes_in_graph": 3' in stdout and '"edges_kept": 1' in stdout


def test_the_next_command_runs_as_printed(server, tmp_path, run_cli, monkeypatch):
    url = _serve(server)
    code, stdout, err = run_cli("graph", "fetch", "genemania", "--url", url, "--cache", tmp_path / "cache",
                                "--retries", "0")
    assert code == 0, err
    command = next(line for line in stdout.splitlines() if line.startswith("next: "))[len("next: "):]
    assert "--map" not in command and "--id-type ensembl" in command and "--weight-column Weight" in command
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(*shlex.split(command)[1:])
    assert code == 0, err
    _check_graph(tmp_path / "genemania.parquet")


def test_fetch_import_errors_leave_no_graph(server, tmp_path, run_cli):
    url = _serve(server)
    (tmp_path / "results").mkdir()
    code, stdout, err = run_cli("graph", "fetch", "genemania", "--url", url, "--cache", tmp_path / "cache",
                                "--retries", "0", "--import", tmp_path / "results")
    assert code == 2 and stdout == "" and err.count("\n") == 1
    assert "--import names an existing folder" in err
    assert server.requests == []  # refused before any download

    server.put("genemania/unknown.txt", b"Gene_A\tGene_B\tWeight\nENSG00000999998\tENSG00000999999\t1\n")
    out = tmp_path / "g.parquet"
    code, _, err = run_cli("graph", "fetch", "genemania", "--url", server.url("genemania/unknown.txt"),
                           "--cache", tmp_path / "cache", "--retries", "0", "--import", out)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "unknown.txt: no edges left after import: 2 of 2 node ids did not map" in err
    assert not out.exists() and not list(tmp_path.glob(".g.parquet*"))


def test_symbol_graphs_import_without_a_table(server, tmp_path, run_cli):
    import gzip

    server.put("g/genemania.adjlist.gz", gzip.compress(b"# symbols\nTP53 MDM2 BRCA1\nEGFR MYC\n"))
    out = tmp_path / "g.parquet"
    code, stdout, err = run_cli("graph", "fetch", "genemania", "--url", server.url("g/genemania.adjlist.gz"),
                                "--cache", tmp_path / "cache", "--retries", "0", "--import", out)
    assert code == 0, err
    assert f"imported: {out} (5 nodes, 3 edges)" in stdout
    graph = read_graph(out)
    assert graph.weight is None and np.array_equal(np.sort(graph.nodes), ["BRCA1", "EGFR", "MDM2", "MYC", "TP53"])
