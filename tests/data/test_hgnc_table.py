"""The shipped HGNC gene id table: compact, dated, rebuilt byte for byte from the HGNC tables in ../shared."""

from __future__ import annotations

import gzip

import pytest

from raygex.data.canonical import read_dataset
from raygex.data.hgnc_table import SOURCES, build_gene_table, main
from raygex.genes import DEFAULT_TABLE, TABLE_COLUMNS, GeneTable


def test_shipped_table_is_compact_dated_and_complete():
    assert DEFAULT_TABLE.is_file()
    assert DEFAULT_TABLE.stat().st_size < 2 * 2**20  # about 0.45 MB
    with gzip.open(DEFAULT_TABLE, "rt") as handle:
        header, columns = handle.readline(), handle.readline()
    assert header.startswith("# raygex HGNC gene id table; release=2019-03;")
    for name, _, date in SOURCES:
        assert name in header and date.split(",")[0] in header
    assert columns.rstrip("\n").split("\t") == list(TABLE_COLUMNS)
    table = GeneTable.default()
    assert len(table.approved) == 41657
    assert {kind: len(ids) for kind, ids in table.maps.items()} == {"symbol": 14049, "entrez": 41550,
                                                                    "ensembl": 37497}
    assert table.resolve("ENSG00000141510.16", "ensembl") == ("TP53", False)
    assert table.resolve("ENSG00000276085", "ensembl") == (None, True)  # CCL3L1 and CCL3L3 share it


@pytest.mark.shared
def test_builder_reproduces_the_shipped_table(shared_data, tmp_path):
    out = tmp_path / "hgnc_map.tsv.gz"
    assert main(["--sources", str(shared_data / "graphs"), "-o", str(out)]) == 0
    assert out.read_bytes() == DEFAULT_TABLE.read_bytes()


def write(path, text):
    path.write_text(text)
    return path


def test_builder_merges_the_three_kinds_and_skips_withdrawn_entries(tmp_path, run_cli):
    previous = write(tmp_path / "prev.txt", "Approved symbol\tPrevious symbols\nTP53\t\nEGFR\tERBB, OLDEGFR\n"
                                             "OLD1~withdrawn\t\nCCL3L1\tSCYA3L\nCCL3L3\t\n")
    entrez = write(tmp_path / "entrez.txt", "Approved symbol\tNCBI Gene ID(supplied by NCBI)\nTP53\t7157\n"
                                            "EGFR\t1956\nNEWGENE\t99\nOLD1~withdrawn\t\n")
    ensembl = write(tmp_path / "ensembl.tsv", "Approved symbol\tEnsembl ID(supplied by Ensembl)\n"
                                              "TP53\tENSG00000141510\nCCL3L1\tENSG00000276085\nCCL3L3\tENSG00000276085\n")
    out = tmp_path / "table.tsv.gz"
    stats = build_gene_table([(previous, "previous", "2019-02"), (entrez, "entrez", "2019-03"),
                              (ensembl, "ensembl", "2019-03")], out)
    assert stats["rows"] == 5 and stats["entrez_ids"] == 3 and stats["previous_symbols"] == 3
    lines = gzip.open(out, "rt").read().splitlines()
    assert lines[0].startswith("# raygex HGNC gene id table; release=2019-03;")
    assert "prev.txt (HGNC 2019-02" in lines[0]
    assert lines[2:] == ["CCL3L1\t\tENSG00000276085\tSCYA3L", "CCL3L3\t\tENSG00000276085\t",
                         "EGFR\t1956\t\tERBB, OLDEGFR", "NEWGENE\t99\t\t", "TP53\t7157\tENSG00000141510\t"]

    # the built table is a --map table for `raygex data import`
    expr = write(tmp_path / "expr.tsv", "sample_id\tENSG00000141510.3\tENSG00000276085\tOLDEGFR\t99\n"
                                        "S1\t1\t2\t3\t4\nS2\t5\t6\t7\t8\n")
    code, stdout, err = run_cli("data", "import", expr, "--map", out, "--drop-unknown", "-o", tmp_path / "o.parquet")
    assert code == 0, err
    assert read_dataset(tmp_path / "o.parquet").genes == ["TP53", "EGFR", "NEWGENE"]
    assert "gene ids: 3 of 4 mapped to approved symbols, 1 unmapped dropped (1 ambiguous)" in stdout


def test_builder_errors_name_the_file(tmp_path, capsys):
    assert main(["--sources", str(tmp_path), "-o", str(tmp_path / "t.tsv.gz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hgnc_symbol_map_Feb2019.txt: mapping table not found" in err
    assert not (tmp_path / "t.tsv.gz").exists()
