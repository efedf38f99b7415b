"""The real labelled expression sets in ../shared/data, through the CLI, with GeneMANIA's coverage."""

from __future__ import annotations

import json

import pytest

from raygex.data.canonical import read_dataset

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def genemania(tmp_path_factory):
    from raygex.cli import main
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is absent")
    out = tmp_path_factory.mktemp("graphs") / "genemania.parquet"
    with pytest.raises(SystemExit) as exit_info:
        main(["graph", "import", str(SHARED_DATA / "graphs" / "genemania.adjlist.gz"), "-o", str(out),
              "--name", "genemania"])
    assert exit_info.value.code == 0
    return out


def test_pbmc_h5ad_import_and_genemania_coverage(shared_data, tmp_path, run_cli, genemania):
    out = tmp_path / "pbmc.parquet"
    code, stdout, err = run_cli("data", "import", shared_data / "expression" / "pbmc68k_reduced.h5ad", "--raw",
                                "--labels", "bulk_labels", "--symbol-map",
                                shared_data / "graphs" / "hgnc_symbol_map_Feb2019.txt", "-o", out)
    assert code == 0, err
    assert "samples: 700" in stdout
    dataset = read_dataset(out)
    assert dataset.n_samples == 700 and dataset.n_genes == 765
    assert dataset.obs["bulk_labels"].nunique() == 10
    assert dataset.obs["bulk_labels"].value_counts().max() == 240

    code, stdout, _ = run_cli("graph", "coverage", genemania, out, "--json")
    assert code == 0
    coverage = json.loads(stdout)
    print("GeneMANIA coverage of pbmc68k_reduced:", coverage)
    assert 0.5 < coverage["dataset_genes_in_graph_fraction"] <= 1.0
    assert coverage["edges_kept"] > 0


def test_tissue_tsv_import_and_genemania_coverage(shared_data, tmp_path, run_cli, genemania):
    out = tmp_path / "tissues.parquet"
    code, stdout, err = run_cli("data", "import", shared_data / "expression" / "tissue_gene_expression.tsv.gz",
                                "--labels", "tissue", "-o", out)
    assert code == 0, err
    dataset = read_dataset(out)
    assert dataset.n_samples == 189 and dataset.n_genes == 500
    assert dataset.obs["tissue"].nunique() == 7
    code, stdout, _ = run_cli("data", "info", out)
    assert "7 classes" in stdout
    code, stdout, _ = run_cli("graph", "coverage", genemania, out, "--json")
    coverage = json.loads(stdout)
    print("GeneMANIA coverage of tissue_gene_expression:", coverage)
    assert 0.3 < coverage["dataset_genes_in_graph_fraction"] <= 1.0
