"""`raygex data import` maps gene ids (Ensembl, Entrez, previous symbols) to approved HGNC symbols through the
shipped table or a --map table, reports how many mapped, and reads .h5ad gene ids from a chosen .var column."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pandas as pd
import pytest

from raygex.data.canonical import read_dataset
from tests.data.test_import_errors import _expect_error as expect_import_error

VALUES = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0], [0.5, 1.5, 2.5, 3.5, 4.5]])


def write_table(path, genes, values=VALUES, labels=("liver", "brain", "liver")):
    """Samples x genes TSV with a label column, the layout users write by hand."""
    rows = ["sample_id\ttissue\t" + "\t".join(genes)]
    rows += [f"S{i}\t{labels[i]}\t" + "\t".join(f"{v:g}" for v in values[i, :len(genes)]) for i in range(len(labels))]
    path.write_text("\n".join(rows) + "\n")
    return path


def gene_id_line(stdout: str) -> str:
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip().startswith("gene ids:")]
    assert len(lines) == 1, stdout
    return lines[0]


def _import(run_cli, tmp_path, path, *args, out_name="out.parquet"):
    out = tmp_path / out_name
    code, stdout, err = run_cli("data", "import", path, "--labels", "tissue", *args, "-o", out)
    assert code == 0, err
    return read_dataset(out), stdout


def _expect_error(run_cli, tmp_path, args, *fragments):
    """One line, exit 2, and no output written (tests/data/test_import_errors.py's check)."""
    line = expect_import_error(run_cli, tmp_path, args, *fragments)
    assert not (tmp_path / "out.parquet").exists()
    return line


# --------------------------------------------------------------------------------- the shipped table, by id kind

def test_versioned_ensembl_ids_map_to_symbols(tmp_path, run_cli):
    genes = ["ENSG00000141510.16", "ENSG00000146648.18", "ENSG00000136997", "ENSG00000012048.22_PAR_Y",
             "ENSG00000999999.1"]
    dataset, stdout = _import(run_cli, tmp_path, write_table(tmp_path / "expr.tsv", genes))
    assert dataset.genes == ["TP53", "EGFR", "MYC", "BRCA1", "ENSG00000999999.1"]
    np.testing.assert_allclose(dataset.expression, VALUES)
    line = gene_id_line(stdout)
    assert line.startswith("gene ids: 4 of 5 mapped to approved symbols, 1 unmapped kept;"), line
    assert "read as 5 ensembl ids (auto-detected)" in line and "raygex's HGNC table (2019-03)" in line

    dataset, stdout = _import(run_cli, tmp_path, tmp_path / "expr.tsv", "--drop-unknown", out_name="dropped.parquet")
    assert dataset.genes == ["TP53", "EGFR", "MYC", "BRCA1"]
    assert "4 of 5 mapped to approved symbols, 1 unmapped dropped" in gene_id_line(stdout)


def test_entrez_ids_map_and_duplicates_merge(tmp_path, run_cli):
    genes = ["7157", "1956", "4609.0", "672", "7157.0"]  # 7157 twice: TP53's two columns are averaged
    dataset, stdout = _import(run_cli, tmp_path, write_table(tmp_path / "expr.tsv", genes))
    assert dataset.genes == ["TP53", "EGFR", "MYC", "BRCA1"]
    np.testing.assert_allclose(dataset.expression[:, 0], (VALUES[:, 0] + VALUES[:, 4]) / 2)
    line = gene_id_line(stdout)
    assert line.startswith("gene ids: 5 of 5 mapped to approved symbols, 0 unmapped kept;") and "5 entrez ids" in line
    assert "merged 1 duplicates" in stdout


def test_previous_symbols_xena_pairs_and_ncbi_placeholders_map_by_default(tmp_path, run_cli):
    # C10orf2 -> TWNK and ERBB -> EGFR (previous symbols), '?|7157' (Xena) and LOC4609 (NCBI's 'LOC' + Gene id).
    genes = ["C10orf2", "ERBB", "?|7157", "LOC4609", "NOT_A_GENE"]
    dataset, stdout = _import(run_cli, tmp_path, write_table(tmp_path / "expr.tsv", genes))
    assert dataset.genes == ["TWNK", "EGFR", "TP53", "MYC", "NOT_A_GENE"]
    line = gene_id_line(stdout)
    assert line.startswith("gene ids: 4 of 5 mapped to approved symbols, 1 unmapped kept;") and "5 symbol ids" in line
    assert "mapped 4 to approved symbols" in stdout


def test_id_type_option_overrides_detection(tmp_path, run_cli):
    path = write_table(tmp_path / "expr.tsv", ["7157", "TP53"])
    dataset, stdout = _import(run_cli, tmp_path, path, "--id-type", "symbol")
    assert dataset.genes == ["7157", "TP53"]  # read as symbols, a number is no gene
    assert "1 of 2 mapped" in gene_id_line(stdout) and "--id-type" in gene_id_line(stdout)
    dataset, stdout = _import(run_cli, tmp_path, path, out_name="auto.parquet")
    assert dataset.genes == ["TP53"]  # auto: 7157 is TP53's Entrez id, merged with the TP53 column
    assert "1 entrez, 1 symbol" in gene_id_line(stdout) or "1 symbol, 1 entrez" in gene_id_line(stdout)


def test_no_map_keeps_ids_as_written(tmp_path, run_cli):
    path = write_table(tmp_path / "expr.tsv", ["ENSG00000141510.16", "ERBB"])
    dataset, stdout = _import(run_cli, tmp_path, path, "--no-map")
    assert dataset.genes == ["ENSG00000141510.16", "ERBB"]
    assert "gene ids: 2 kept as written (--no-map)" in gene_id_line(stdout)


# ------------------------------------------------------------------------------------------------- --map FILE

def test_map_file_overrides_the_shipped_table(tmp_path, run_cli):
    table = tmp_path / "mine.tsv"
    table.write_text("# my lab's table\nApproved symbol\tEnsembl gene ID\tPrevious symbols\n"
                     "MYTP53\tENSG00000141510\tOLDTP53\nEGFR\tENSG00000146648\t\n")
    path = write_table(tmp_path / "expr.tsv", ["ENSG00000141510.16", "ENSG00000146648", "ENSG00000136997"])
    dataset, stdout = _import(run_cli, tmp_path, path, "--map", table)
    assert dataset.genes == ["MYTP53", "EGFR", "ENSG00000136997"]  # MYC's id is not in this table
    line = gene_id_line(stdout)
    assert "2 of 3 mapped" in line and line.endswith(f"table: {table}")
    # --symbol-map is the same option under its old name
    dataset, _ = _import(run_cli, tmp_path, write_table(tmp_path / "old.tsv", ["OLDTP53", "EGFR"]),
                         "--symbol-map", table, out_name="alias.parquet")
    assert dataset.genes == ["MYTP53", "EGFR"]
    assert read_dataset(tmp_path / "alias.parquet").provenance["symbol_map"] == str(table)


def test_map_table_without_the_needed_column_is_an_error(tmp_path, run_cli):
    table = tmp_path / "previous_only.tsv"
    table.write_text("Approved symbol\tPrevious symbols\nTP53\t\n")
    path = write_table(tmp_path / "expr.tsv", ["ENSG00000141510.16", "ENSG00000146648"])
    _expect_error(run_cli, tmp_path, [path, "--labels", "tissue", "--map", table], "previous_only.tsv",
                  "no Ensembl gene id column", "'ENSG00000141510.16'")


@pytest.mark.parametrize("args,fragments", [
    (["--map", "{tmp}/missing.tsv"], ["missing.tsv", "mapping table not found"]),
    (["--map", "{tmp}/empty.tsv"], ["empty.tsv", "mapping table is empty"]),
    (["--map", "{tmp}/nosymbol.tsv"], ["nosymbol.tsv", "no approved symbol column", "['gene', 'ensembl']"]),
    (["--no-map", "--drop-unknown"], ["--drop-unknown needs a mapping table"]),
    (["--no-map", "--map", "{tmp}/empty.tsv"], ["--no-map and --map exclude each other"]),
    (["--drop-unknown", "--id-type", "entrez"], ["expr.tsv", "no genes left after symbol mapping"]),
    (["--var-column", "gene_symbols"], ["expr.tsv", "--var-column only applies to .h5ad input"]),
])
def test_bad_mapping_options(tmp_path, run_cli, args, fragments):
    (tmp_path / "empty.tsv").write_text("")
    (tmp_path / "nosymbol.tsv").write_text("gene\tensembl\nTP53\tENSG00000141510\n")
    path = write_table(tmp_path / "expr.tsv", ["NOT_A_GENE", "ALSO_NOT"])
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    _expect_error(run_cli, tmp_path, [path, "--labels", "tissue", *args], *fragments)


# -------------------------------------------------------------------------------------------- .h5ad var columns

def write_h5ad(path, *, raw_var_column=True):
    import anndata

    var = pd.DataFrame({"gene_symbols": pd.Categorical(["TP53", "ERBB", None, "MYC"]),
                        "means": [0.5, 1.5, 2.5, 3.5], "entrez": [7157, 1956, 4609, 672]},
                       index=["ENSG00000141510.16", "ENSG00000146648.18", "ENSG00000136997.9", "ENSG00000012048"])
    obs = pd.DataFrame({"cell_type": ["T", "B", "T"]}, index=["c1", "c2", "c3"])
    adata = anndata.AnnData(X=VALUES[:, :4].astype(np.float32), obs=obs, var=var)
    adata.raw = adata if raw_var_column else anndata.AnnData(X=adata.X, var=pd.DataFrame(index=var.index))
    adata.write_h5ad(path)
    return path


def test_h5ad_var_column_supplies_the_gene_ids(tmp_path, run_cli):
    path = write_h5ad(tmp_path / "cells.h5ad")
    out = tmp_path / "sym.parquet"
    code, stdout, err = run_cli("data", "import", path, "--labels", "cell_type", "--var-column", "gene_symbols",
                                "-o", out)
    assert code == 0, err
    dataset = read_dataset(out)
    assert dataset.genes == ["TP53", "EGFR", "MYC"]  # ERBB renamed; the gene without a symbol dropped
    np.testing.assert_allclose(dataset.expression, VALUES[:, [0, 1, 3]])
    assert "gene ids: 3 of 4 mapped to approved symbols, 0 unmapped kept (1 empty dropped)" in gene_id_line(stdout)
    assert dataset.provenance["var_column"] == "gene_symbols"

    # integer Entrez ids in a .var column, and the var_names (versioned Ensembl ids) without --var-column
    for args, name in ((["--var-column", "entrez"], "entrez.parquet"), ([], "ensembl.parquet")):
        code, stdout, err = run_cli("data", "import", path, *args, "-o", tmp_path / name)
        assert code == 0, err
        assert read_dataset(tmp_path / name).genes == ["TP53", "EGFR", "MYC", "BRCA1"]
        assert "4 of 4 mapped" in gene_id_line(stdout)


def test_h5ad_var_column_with_raw_falls_back_to_var(tmp_path, run_cli):
    path = write_h5ad(tmp_path / "cells.h5ad", raw_var_column=False)  # .raw.var has no columns, as in scanpy files
    out = tmp_path / "raw.parquet"
    code, _, err = run_cli("data", "import", path, "--raw", "--var-column", "gene_symbols", "-o", out)
    assert code == 0, err
    assert read_dataset(out).genes == ["TP53", "EGFR", "MYC"]


@pytest.mark.parametrize("column,fragments", [
    ("symbols", ["cells.h5ad", "--var-column 'symbols' not found in .var", "['gene_symbols', 'means', 'entrez']"]),
    ("means", ["cells.h5ad", "--var-column 'means' holds float64 values, not gene ids"]),
])
def test_h5ad_bad_var_column(tmp_path, run_cli, column, fragments):
    path = write_h5ad(tmp_path / "cells.h5ad")
    _expect_error(run_cli, tmp_path, [path, "--var-column", column], *fragments)


# ------------------------------------------------------------------------------------------- real data (shared)

@pytest.mark.shared
def test_xena_tcga_gene_ids(shared_data, tmp_path, run_cli):
    """The 20,530 gene ids of Xena's HiSeqV2 (symbols of 2015, '?|entrez', LOC placeholders) on the shipped table."""
    tcga = shared_data / "tcga"
    out = tmp_path / "tcga.parquet"
    code, stdout, err = run_cli("data", "import", tcga / "HiSeqV2_6cohorts.gz", "--clinical",
                                tcga / "6cohorts_clinicalMatrix", "-o", out)
    assert code == 0, err
    line = gene_id_line(stdout)
    print(line)
    assert line.startswith("gene ids: 20119 of 20530 mapped to approved symbols, 411 unmapped kept (8 ambiguous);")
    genes = read_dataset(out).genes
    assert len(genes) == 20500 and "RPL4" in genes and "TWNK" in genes and "C10orf2" not in genes


@pytest.mark.shared
def test_brca_pam50_as_entrez_and_ensembl_ids(shared_data, tmp_path, run_cli):
    """A real matrix re-keyed by Entrez ids and by versioned Ensembl ids (with HGNC's own tables) maps back."""
    frame = pd.read_csv(shared_data / "expression" / "brca_pam50.tsv.gz", sep="\t", index_col=0)
    graphs = shared_data / "graphs"
    labels = ["pam50", "er_status"]
    genes = [c for c in frame.columns if c not in labels]
    for kind, file in (("entrez", "enterez_NCBI_to_hugo_gene_symbol_march_2019.txt"),
                       ("ensembl", "ensembl_to_hugo.tsv")):
        with open(graphs / file, newline="") as handle:
            ids = {row[0]: row[1] for row in list(csv.reader(handle, delimiter="\t"))[1:] if row[1]}
        keyed = [g for g in genes if g in ids]
        renamed = frame[labels + keyed].rename(columns={g: ids[g] + (".7" if kind == "ensembl" else "")
                                                        for g in keyed})
        path = tmp_path / f"brca_{kind}.tsv.gz"
        with gzip.open(path, "wt") as handle:
            renamed.to_csv(handle, sep="\t")
        out = tmp_path / f"brca_{kind}.parquet"
        code, stdout, err = run_cli("data", "import", path, "--labels", ",".join(labels), "-o", out)
        assert code == 0, err
        line = gene_id_line(stdout)
        print(kind, len(genes), "genes,", len(keyed), "with an id:", line)
        assert line.startswith(f"gene ids: {len(keyed)} of {len(keyed)} mapped") and f"{kind} ids" in line
        dataset = read_dataset(out)
        assert dataset.genes == keyed
        np.testing.assert_allclose(dataset.expression, frame[keyed].to_numpy(dtype=np.float32), rtol=1e-6)


@pytest.mark.shared
def test_pbmc_default_mapping(shared_data, tmp_path, run_cli):
    out = tmp_path / "pbmc.parquet"
    code, stdout, err = run_cli("data", "import", shared_data / "expression" / "pbmc68k_reduced.h5ad", "--raw",
                                "--labels", "bulk_labels", "-o", out)
    assert code == 0, err
    assert gene_id_line(stdout).startswith("gene ids: 751 of 765 mapped to approved symbols, 14 unmapped kept;")
