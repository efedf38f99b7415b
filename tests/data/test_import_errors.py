"""Bad input to `raygex data import`: one line naming the file and the problem, exit code 2, no output."""

from __future__ import annotations

import numpy as np
import pytest

from raygex.data.canonical import read_dataset

TABLE_HEADER = "sample_id\ttissue\tTP53\tEGFR\n"


def _expect_error(run_cli, tmp_path, args, *fragments):
    out = tmp_path / "out.parquet"
    code, stdout, err = run_cli("data", "import", *args, "-o", out)
    assert code == 2, (stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raygex: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in err
    return lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.parquet")], "temporary output left behind"
    return lines[0]


def test_empty_file(tmp_path, run_cli):
    path = tmp_path / "empty.tsv"
    path.write_text("")
    _expect_error(run_cli, tmp_path, [path], "empty.tsv", "empty")


def test_unknown_format(tmp_path, run_cli):
    path = tmp_path / "expr.xlsx"
    path.write_bytes(b"PK\x03\x04junk")
    _expect_error(run_cli, tmp_path, [path], "expr.xlsx", "unknown format '.xlsx'")


def test_missing_file(tmp_path, run_cli):
    _expect_error(run_cli, tmp_path, [tmp_path / "nope.tsv"], "nope.tsv", "not found")


def test_non_numeric_expression_names_the_gene(tmp_path, run_cli):
    path = tmp_path / "expr.tsv"
    path.write_text(TABLE_HEADER + "S1\tliver\t1.0\t2.0\nS2\tbrain\t1.5\tabc\n")
    _expect_error(run_cli, tmp_path, [path, "--labels", "tissue"], "expr.tsv", "'abc'", "'EGFR'")


def test_non_numeric_in_xena_matrix_names_the_sample(tmp_path, run_cli):
    path = tmp_path / "HiSeqV2"
    path.write_text("sample\tS1\tS2\nTP53\t1.0\toops\n")
    _expect_error(run_cli, tmp_path, [path], "HiSeqV2", "'oops'", "'S2'")


@pytest.mark.parametrize("bad", ["NA", "nan", "inf", "-inf", ""])
def test_missing_and_infinite_values_are_errors_by_default(tmp_path, run_cli, bad):
    path = tmp_path / "expr.tsv"
    path.write_text(TABLE_HEADER + f"S1\tliver\t1.0\t2.0\nS2\tbrain\t{bad}\t4.0\n")
    _expect_error(run_cli, tmp_path, [path, "--labels", "tissue"], "expr.tsv", "'S2'", "'TP53'", "--fill")


@pytest.mark.parametrize("policy,expected", [("zero", 0.0), ("gene-mean", 2.0)])
def test_fill_policies(tmp_path, run_cli, policy, expected):
    path = tmp_path / "expr.tsv"
    path.write_text(TABLE_HEADER + "S1\tliver\t1.0\t2.0\nS2\tbrain\tNA\t4.0\nS3\tliver\t3.0\tinf\n")
    out = tmp_path / "out.parquet"
    code, stdout, err = run_cli("data", "import", path, "--labels", "tissue", "--fill", policy, "-o", out)
    assert code == 0, err
    assert "filled: 2" in stdout and policy in stdout
    x = read_dataset(out).expression
    assert x[1, 0] == expected
    assert x[2, 1] == (0.0 if policy == "zero" else 3.0)
    assert np.isfinite(x).all()


def test_duplicate_sample_ids(tmp_path, run_cli):
    path = tmp_path / "expr.tsv"
    path.write_text(TABLE_HEADER + "S1\tliver\t1.0\t2.0\nS1\tbrain\t1.5\t2.5\n")
    _expect_error(run_cli, tmp_path, [path, "--labels", "tissue"], "expr.tsv", "duplicate sample id 'S1'")


def test_duplicate_sample_ids_in_xena_header(tmp_path, run_cli):
    path = tmp_path / "HiSeqV2"
    path.write_text("sample\tS1\tS1\nTP53\t1.0\t2.0\n")
    _expect_error(run_cli, tmp_path, [path], "HiSeqV2", "duplicate sample id")


def test_label_column_that_does_not_exist(tmp_path, run_cli):
    path = tmp_path / "expr.tsv"
    path.write_text(TABLE_HEADER + "S1\tliver\t1.0\t2.0\n")
    _expect_error(run_cli, tmp_path, [path, "--labels", "subtype"], "expr.tsv", "label column 'subtype' not found")


def test_clinical_label_column_that_does_not_exist(tmp_path, run_cli):
    matrix = tmp_path / "HiSeqV2"
    matrix.write_text("sample\tS1\tS2\nTP53\t1.0\t2.0\n")
    clinical = tmp_path / "clin"
    clinical.write_text("sampleID\tgender\nS1\tMALE\n")
    _expect_error(run_cli, tmp_path, [matrix, "--clinical", clinical, "--labels", "stage"], "clin",
                  "label column 'stage' not found")


def test_h5ad_obs_label_that_does_not_exist(tmp_path, run_cli):
    import anndata
    import pandas as pd

    path = tmp_path / "cells.h5ad"
    anndata.AnnData(X=np.ones((2, 2), np.float32), obs=pd.DataFrame({"cell_type": ["T", "B"]}, index=["a", "b"]),
                    var=pd.DataFrame(index=["TP53", "EGFR"])).write_h5ad(path)
    _expect_error(run_cli, tmp_path, [path, "--labels", "bulk_labels"], "cells.h5ad", "'bulk_labels' not found")


def test_header_without_rows(tmp_path, run_cli):
    path = tmp_path / "expr.tsv"
    path.write_text(TABLE_HEADER)
    _expect_error(run_cli, tmp_path, [path, "--labels", "tissue"], "expr.tsv", "no samples")


def test_corrupt_h5ad(tmp_path, run_cli):
    path = tmp_path / "cells.h5ad"
    path.write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    _expect_error(run_cli, tmp_path, [path], "cells.h5ad", "not a readable .h5ad")


def test_foreign_parquet_is_refused(tmp_path, run_cli):
    import pandas as pd

    path = tmp_path / "wide.parquet"
    pd.DataFrame({"TP53": [1.0], "EGFR": [2.0]}).to_parquet(path)
    _expect_error(run_cli, tmp_path, [path], "wide.parquet", "raygex data import")


def test_debug_flag_shows_the_traceback(tmp_path, run_cli):
    path = tmp_path / "empty.tsv"
    path.write_text("")
    from raygex.errors import RaygexError

    with pytest.raises(RaygexError):
        from raygex.cli import main

        main(["--debug", "data", "import", str(path), "-o", str(tmp_path / "o.parquet")])
