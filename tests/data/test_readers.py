"""Every reader through `raygex data import`, on small files written here, read back from the canonical file."""

from __future__ import annotations

import gzip

import anndata
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse

from raygex.files import names
from raygex.data.canonical import read_dataset, read_genes

GENES = ["TP53", "BRCA1", "EGFR", "MYC"]
SAMPLES = ["S1", "S2", "S3"]
VALUES = np.array([[1.0, 2.0, 3.0, 4.0], [5.5, 6.5, 7.5, 8.5], [0.0, -1.0, 2.25, 9.0]], dtype=np.float32)


def write_xena(path, genes=GENES, samples=SAMPLES, values=VALUES, gz=False):
    lines = ["sample\t" + "\t".join(samples)]
    lines += [g + "\t" + "\t".join(str(v) for v in values[:, j]) for j, g in enumerate(genes)]
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def write_clinical(path):
    path.write_text("sampleID\tgender\tage\nS1\tMALE\t40\nS2\tFEMALE\t51\nS9\tMALE\t60\n")
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_xena_matrix_with_clinical(tmp_path, run_cli, gz):
    matrix = write_xena(tmp_path / ("HiSeqV2.gz" if gz else "HiSeqV2"), gz=gz)
    clinical = write_clinical(tmp_path / "LGG_clinicalMatrix")
    out = tmp_path / "out.parquet"
    code, stdout, err = run_cli("data", "import", matrix, "--clinical", clinical, "-o", out)
    assert code == 0, err
    dataset = read_dataset(out)
    assert dataset.genes == GENES
    assert list(dataset.sample_ids) == SAMPLES
    np.testing.assert_array_equal(dataset.expression, VALUES)
    assert list(dataset.obs["gender"]) == ["MALE", "FEMALE", None]
    assert dataset.obs["age"].tolist()[:2] == [40, 51]
    assert "samples: 3" in stdout


def test_canonical_layout_is_fixed_size_list_with_gene_metadata(tmp_path, run_cli):
    out = tmp_path / "out.parquet"
    assert run_cli("data", "import", write_xena(tmp_path / "m.tsv"), "-o", out)[0] == 0
    sch = pq.read_schema(out)
    assert str(sch.field(names.EXPRESSION).type) == "fixed_size_list<element: float>[4]"
    assert sch.field(names.SAMPLE_ID).type == "string"
    assert read_genes(out) == GENES


@pytest.mark.parametrize("sep,suffix", [("\t", "tsv"), (",", "csv"), (",", "csv.gz")])
def test_samples_by_genes_table_with_labels(tmp_path, run_cli, sep, suffix):
    frame = pd.DataFrame(VALUES, columns=GENES)
    frame.insert(0, "sample_id", SAMPLES)
    frame.insert(1, "tissue", ["liver", "brain", "liver"])
    path = tmp_path / f"expr.{suffix}"
    frame.to_csv(path, sep=sep, index=False)
    out = tmp_path / "out.parquet"
    code, _, err = run_cli("data", "import", path, "--labels", "tissue", "-o", out)
    assert code == 0, err
    dataset = read_dataset(out)
    assert dataset.genes == GENES
    np.testing.assert_allclose(dataset.expression, VALUES)
    assert dataset.obs["tissue"].tolist() == ["liver", "brain", "liver"]


def _anndata(sparse=False):
    x = scipy.sparse.csr_matrix(VALUES) if sparse else VALUES.copy()
    adata = anndata.AnnData(X=x, obs=pd.DataFrame({"cell_type": pd.Categorical(["T", "B", "T"]),
                                                   "n_counts": [10.0, 20.0, 30.0]}, index=SAMPLES),
                            var=pd.DataFrame(index=GENES))
    adata.layers["counts"] = VALUES * 10
    adata.raw = anndata.AnnData(X=VALUES + 100, var=pd.DataFrame(index=GENES), obs=adata.obs)
    return adata


@pytest.mark.parametrize("option,expected", [([], VALUES), (["--layer", "counts"], VALUES * 10),
                                             (["--raw"], VALUES + 100)])
def test_h5ad_matrices_and_obs_labels(tmp_path, run_cli, option, expected):
    path = tmp_path / "cells.h5ad"
    _anndata(sparse=not option).write_h5ad(path)
    out = tmp_path / "out.parquet"
    code, _, err = run_cli("data", "import", path, "--labels", "cell_type", *option, "-o", out)
    assert code == 0, err
    dataset = read_dataset(out)
    np.testing.assert_allclose(dataset.expression, expected)
    assert dataset.obs["cell_type"].tolist() == ["T", "B", "T"]
    assert list(dataset.obs.columns) == ["cell_type"]


def test_parquet_passthrough_validates_and_keeps_everything(tmp_path, run_cli):
    first = tmp_path / "a.parquet"
    run_cli("data", "import", write_xena(tmp_path / "m.tsv"), "--clinical", write_clinical(tmp_path / "c"),
            "-o", first)
    second = tmp_path / "b.parquet"
    code, _, err = run_cli("data", "import", first, "-o", second)
    assert code == 0, err
    a, b = read_dataset(first), read_dataset(second)
    np.testing.assert_array_equal(a.expression, b.expression)
    assert a.genes == b.genes and list(a.sample_ids) == list(b.sample_ids)
    pd.testing.assert_frame_equal(a.obs, b.obs)


def test_symbol_map_renames_merges_and_reports(tmp_path, run_cli):
    symbol_map = tmp_path / "hgnc.txt"
    symbol_map.write_text("Approved symbol\tPrevious symbols\nTP53\t\nBRCA1\t\nEGFR\tERBB, OLDEGFR\nMYC\t\n")
    genes = ["TP53", "ERBB", "EGFR", "MYC"]  # ERBB is EGFR's previous symbol: mapped, then merged with EGFR
    out = tmp_path / "out.parquet"
    code, stdout, err = run_cli("data", "import", write_xena(tmp_path / "m.tsv", genes=genes), "--symbol-map",
                                symbol_map, "-o", out)
    assert code == 0, err
    dataset = read_dataset(out)
    assert dataset.genes == ["TP53", "EGFR", "MYC"]
    np.testing.assert_allclose(dataset.expression[:, 1], (VALUES[:, 1] + VALUES[:, 2]) / 2)
    assert "mapped 1" in stdout and "merged 1" in stdout


def test_large_inputs_are_written_as_parallel_parts(tmp_path):
    from raygex.data.canonical import ExpressionDataset, write_dataset

    rng = np.random.default_rng(0)
    dataset = ExpressionDataset([f"S{i}" for i in range(1000)], rng.normal(size=(1000, 50)),
                                [f"G{i}" for i in range(50)])
    out = write_dataset(dataset, tmp_path / "big.parquet", part_bytes=40_000, row_group_bytes=10_000)
    assert out.is_dir() and len(list(out.glob("part-*.parquet"))) == 5
    assert pq.ParquetFile(next(out.glob("part-*.parquet"))).metadata.num_row_groups == 4
    np.testing.assert_array_equal(read_dataset(out).expression, dataset.expression.astype(np.float32))


def test_data_info_reports_classes_and_range(tmp_path, run_cli):
    out = tmp_path / "out.parquet"
    run_cli("data", "import", write_xena(tmp_path / "m.tsv"), "--clinical", write_clinical(tmp_path / "c"),
            "-o", out)
    code, stdout, _ = run_cli("data", "info", out)
    assert code == 0
    assert "3 samples x 4 genes" in stdout
    assert "label gender: 2 classes (FEMALE: 1, MALE: 1), 1 missing" in stdout
    assert "min -1" in stdout and "max 9" in stdout
