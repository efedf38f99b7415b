"""Build raygex's shipped gene id table (``raygex/data/hgnc/hgnc_map.tsv.gz``) from HGNC download tables.

The table maps previous symbols, NCBI Gene (Entrez) ids and Ensembl gene ids to approved HGNC symbols, one row
per approved symbol, so ``raygex data import`` and ``raygex graph import`` work offline. It is rebuilt from three
HGNC tables (genenames.org; HGNC's data are free to use and redistribute)::

    python -m raygex.data.hgnc_table --sources ../shared/data/graphs -o raygex/data/hgnc/hgnc_map.tsv.gz

The output is deterministic (rows sorted by symbol, gzip without a timestamp): rebuilding from the same tables
gives the same bytes. Withdrawn entries (``SYMBOL~withdrawn``) are left out; an approved symbol is any symbol
approved in at least one of the tables (their releases differ by a few weeks, so a handful of genes renamed in
between appear under both names).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

from raygex.errors import InputFormatError
from raygex.genes import (APPROVED_COLUMN, DEFAULT_TABLE, ID_COLUMNS, PREVIOUS_COLUMN, TABLE_COLUMNS, find_column,
                          normalise_id, read_table)

# The HGNC tables in ../shared/data/graphs and what each contributes: (file name, kind, release).
SOURCES = (
    ("hgnc_symbol_map_Feb2019.txt", "previous", "2019-02"),
    ("enterez_NCBI_to_hugo_gene_symbol_march_2019.txt", "entrez", "2019-03"),
    ("ensembl_to_hugo.tsv", "ensembl", "undated, between the 2019-02 and 2019-03 tables"),
)
RELEASE = "2019-03"
WITHDRAWN = "~withdrawn"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_source(path: Path, kind: str) -> dict[str, set[str]]:
    """Approved symbol -> the values of its ``kind`` column (previous symbols, Entrez or Ensembl ids)."""
    header, rows = read_table(path)
    symbol_col = find_column(header, (APPROVED_COLUMN,), path, "approved symbol")
    candidates = (PREVIOUS_COLUMN,) if kind == "previous" else ID_COLUMNS[kind]
    value_col = find_column(header, candidates, path, "previous symbols" if kind == "previous" else f"{kind} id")
    values: dict[str, set[str]] = {}
    for row in rows:
        if len(row) <= symbol_col:
            continue
        symbol = row[symbol_col].strip()
        if not symbol or symbol.endswith(WITHDRAWN):
            continue
        cell = row[value_col] if len(row) > value_col else ""
        items = {v.strip() if kind == "previous" else normalise_id(v, kind) for v in cell.split(",")}
        values.setdefault(symbol, set()).update(v for v in items if v)
    if not values:
        raise InputFormatError("no approved symbols found", path=path)
    return values


def build_gene_table(sources: list[tuple[str | Path, str, str]], output: str | Path,
                     release: str = RELEASE) -> dict:
    """Write the gene id table from ``sources`` = [(path, kind, release date)], kind previous|entrez|ensembl.

    Returns counts: rows (approved symbols) and how many previous symbols, Entrez ids and Ensembl ids it holds.
    """
    columns = {"previous": {}, "entrez": {}, "ensembl": {}}
    described = []
    for path, kind, date in sources:
        path = Path(path)
        if kind not in columns:
            raise InputFormatError(f"source kind must be previous, entrez or ensembl, but got {kind!r}", path=path)
        for symbol, values in _read_source(path, kind).items():
            columns[kind].setdefault(symbol, set()).update(values)
        what = {"previous": "approved and previous symbols", "entrez": "NCBI Gene ids", "ensembl": "Ensembl ids"}
        described.append(f"{path.name} (HGNC {date}; {what[kind]}; sha256 {_sha256(path)[:12]})")
    symbols = sorted(set().union(*columns.values()))
    header = (f"# raygex HGNC gene id table; release={release}; approved symbol -> NCBI Gene (Entrez) id, Ensembl "
              f"gene id, previous symbols; sources: {', '.join(described)}; HGNC data are free to use and "
              "redistribute (genenames.org); rebuild: python -m raygex.data.hgnc_table")
    lines = [header, "\t".join(TABLE_COLUMNS)]
    for symbol in symbols:
        cells = [", ".join(sorted(columns[k].get(symbol, ()), key=lambda v: (len(v), v)))
                 for k in ("entrez", "ensembl")]
        previous = ", ".join(sorted(columns["previous"].get(symbol, set()) - {symbol}))
        lines.append("\t".join([symbol, *cells, previous]))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                 compresslevel=9) as handle:
        handle.write(("\n".join(lines) + "\n").encode())
    tmp.replace(output)

    def count(kind: str) -> int:
        return sum(len(v) for v in columns[kind].values())

    return {"rows": len(symbols), "previous_symbols": count("previous"), "entrez_ids": count("entrez"),
            "ensembl_ids": count("ensembl"), "bytes": output.stat().st_size, "output": str(output)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m raygex.data.hgnc_table", description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="../shared/data/graphs",
                        help=f"folder holding {', '.join(name for name, _, _ in SOURCES)}")
    parser.add_argument("-o", "--output", default=str(DEFAULT_TABLE), help="output .tsv.gz")
    args = parser.parse_args(argv)
    folder = Path(args.sources)
    try:
        stats = build_gene_table([(folder / name, kind, date) for name, kind, date in SOURCES], args.output)
    except InputFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(", ".join(f"{k}: {v}" for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
