"""`raygex graph ...` end to end through raygex.cli.main: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from raygex.data.canonical import ExpressionDataset, write_dataset
from raygex.graphs import read_graph

ADJLIST = "# comment\nA B C\nB C\nC D\nD E\nE A\nLONE\n"


@pytest.fixture
def dataset(tmp_path):
    genes = ["C", "A", "B", "Q"]
    data = ExpressionDataset(np.array(["s1", "s2", "s3"]), np.arange(12, dtype=np.float32).reshape(3, 4), genes)
    return write_dataset(data, tmp_path / "ds.parquet")


def test_import_info_control_coverage(cli, write_text, tmp_path, dataset):
    out_path = tmp_path / "g.parquet"
    code, out, err = cli("graph", "import", write_text("toy.adjlist", ADJLIST), "-o", out_path, "--name", "toy")
    assert code == 0, err
    assert "edges_kept" in out and "nodes_unmapped" in out
    assert read_graph(out_path).n_edges == 6

    code, out, _ = cli("graph", "info", out_path)
    assert code == 0
    assert "name" in out and "toy" in out and "degree_median" in out and "provenance.sha256" in out

    code, out, _ = cli("graph", "info", out_path, "--json")
    info = json.loads(out)
    assert info["nodes"] == 6 and info["edges"] == 6 and info["degree_min"] == 0 and info["degree_max"] == 3

    rnd = tmp_path / "r.parquet"
    code, out, err = cli("graph", "control", out_path, "--kind", "random", "--seed", "3", "-o", rnd)
    assert code == 0, err
    assert read_graph(rnd).name == "toy:random"
    code, _, _ = cli("graph", "control", out_path, "--kind", "empty", "-o", tmp_path / "e.parquet")
    assert code == 0 and read_graph(tmp_path / "e.parquet").n_nodes == 6

    code, out, err = cli("graph", "coverage", out_path, dataset, "--json")
    assert code == 0, err
    cov = json.loads(out)
    assert cov["dataset_genes_in_graph"] == 3 and cov["edges_kept"] == 3 and cov["graph"] == "toy"


def test_import_entrez_with_weights(cli, write_text, tmp_path):
    table = write_text("ids.tsv", "Approved symbol\tNCBI Gene ID\nTP53\t7157\nBRCA1\t672\nEGFR\t1956\n")
    edges = write_text("e.tsv", "a\tb\tscore\n7157\t672\t0.7\n672\t1956\t0.2\n1956\t5\t0.1\n")
    out_path = tmp_path / "g.parquet"
    code, out, err = cli("graph", "import", edges, "-o", out_path, "--name", "e", "--id-type", "entrez",
                         "--map", table, "--weight-column", "3", "--header", "--json")
    assert code == 0, err
    assert json.loads(out)["nodes_unmapped"] == 1
    assert sorted(read_graph(out_path).weight.tolist()) == pytest.approx([0.2, 0.7])


def assert_one_line_error(code, out, err, name):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raygex: error:") and name in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("name,text", [("empty.adjlist", ""), ("graph.json", "A B\n"), ("only.tsv", "# x\n")])
def test_bad_inputs_exit_2_without_output(cli, write_text, tmp_path, name, text):
    out_path = tmp_path / "out.parquet"
    code, out, err = cli("graph", "import", write_text(name, text), "-o", out_path, "--name", "x")
    assert_one_line_error(code, out, err, name)
    assert not out_path.exists() and not list(tmp_path.glob(".out.parquet*"))


def test_mapping_table_missing_columns_exit_2(cli, write_text, tmp_path):
    table = write_text("ids.tsv", "symbol\tuniprot\nTP53\tP04637\n")
    out_path = tmp_path / "out.parquet"
    code, out, err = cli("graph", "import", write_text("e.tsv", "7157\t672\n"), "-o", out_path, "--name", "x",
                         "--id-type", "entrez", "--map", table)
    assert_one_line_error(code, out, err, "ids.tsv")
    assert "entrez id column" in err and not out_path.exists()


def test_no_overlap_exit_2(cli, write_text, tmp_path, dataset):
    graph_path = tmp_path / "g.parquet"
    assert cli("graph", "import", write_text("g.adjlist", "X Y\nY Z\n"), "-o", graph_path, "--name", "xyz")[0] == 0
    code, out, err = cli("graph", "coverage", graph_path, dataset)
    assert_one_line_error(code, out, err, "ds.parquet")
    assert "graph 'xyz' shares no genes with the dataset (4 genes)" in err


def test_missing_and_non_graph_files_exit_2(cli, tmp_path, dataset):
    assert_one_line_error(*cli("graph", "info", tmp_path / "missing.parquet"), "missing.parquet")
    assert_one_line_error(*cli("graph", "info", dataset), "ds.parquet")
    assert_one_line_error(*cli("graph", "control", tmp_path / "missing.parquet", "--kind", "random", "-o",
                               tmp_path / "o.parquet"), "missing.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_every_command_documents_an_example():
    from raygex.cli.graph import graph

    for name in ("import", "info", "control", "coverage"):
        assert "raygex graph " + name in graph.commands[name].help
