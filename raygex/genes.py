"""Gene identifiers: HGNC previous-symbol maps, Entrez/Ensembl id tables, and name harmonisation.

Expression files and graphs name genes differently (old symbols, Entrez ids, Ensembl ids). Everything in raygex
is keyed by approved HGNC symbols, so both importers pass their gene names through :func:`harmonise`.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raygex.errors import InputFormatError

# Column names of the HGNC download tables shipped in ../shared/data/graphs (and by genenames.org).
APPROVED_COLUMN = "Approved symbol"
PREVIOUS_COLUMN = "Previous symbols"
ID_COLUMNS = {
    "entrez": ("NCBI Gene ID(supplied by NCBI)", "NCBI Gene ID", "Entrez Gene ID", "entrez", "entrez_id"),
    "ensembl": ("Ensembl ID(supplied by Ensembl)", "Ensembl gene ID", "Ensembl ID", "ensembl", "ensembl_id"),
}
SYMBOL_COLUMNS = (APPROVED_COLUMN, "symbol", "Symbol", "gene_symbol", "hgnc_symbol")


def _open_text(path: Path):
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def _read_table(path: str | Path) -> tuple[list[str], list[list[str]]]:
    path = Path(path)
    if not path.is_file():
        raise InputFormatError("mapping table not found", path=path)
    with _open_text(path) as handle:
        sample = handle.readline()
        if not sample.strip():
            raise InputFormatError("mapping table is empty", path=path)
        delimiter = "\t" if "\t" in sample else ","
        header = next(csv.reader([sample], delimiter=delimiter))
        rows = list(csv.reader(handle, delimiter=delimiter))
    return [h.strip() for h in header], rows


def _find_column(header: list[str], candidates: tuple[str, ...], path, what: str) -> int:
    lowered = [h.lower() for h in header]
    for name in candidates:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    raise InputFormatError(
        f"mapping table has no {what} column (expected one of {', '.join(repr(c) for c in candidates)}), "
        f"but got columns {header}",
        path=path,
    )


@dataclass
class SymbolMap:
    """Maps any identifier (previous symbol, Entrez id, Ensembl id) to an approved HGNC symbol.

    ``approved`` is the set of approved symbols when the table lists them (HGNC previous-symbol tables do);
    ``ambiguous`` holds identifiers that several approved symbols claim, which are never mapped.
    """

    mapping: dict[str, str]
    approved: set[str] = field(default_factory=set)
    ambiguous: set[str] = field(default_factory=set)
    source: str = ""

    @classmethod
    def from_hgnc_previous(cls, path: str | Path) -> "SymbolMap":
        """Read an HGNC table of approved symbols and their comma-separated previous symbols."""
        header, rows = _read_table(path)
        approved_col = _find_column(header, (APPROVED_COLUMN,), path, "approved symbol")
        previous_col = _find_column(header, (PREVIOUS_COLUMN,), path, "previous symbols")
        approved = {row[approved_col].strip() for row in rows if len(row) > approved_col and row[approved_col].strip()}
        claims: dict[str, set[str]] = {}
        for row in rows:
            if len(row) <= max(approved_col, previous_col):
                continue
            symbol = row[approved_col].strip()
            for previous in row[previous_col].split(","):
                previous = previous.strip()
                if previous and previous not in approved and symbol:
                    claims.setdefault(previous, set()).add(symbol)
        mapping = {prev: next(iter(s)) for prev, s in claims.items() if len(s) == 1}
        ambiguous = {prev for prev, s in claims.items() if len(s) > 1}
        return cls(mapping=mapping, approved=approved, ambiguous=ambiguous, source=str(path))

    @classmethod
    def from_id_table(cls, path: str | Path, id_type: str) -> "SymbolMap":
        """Read a table of approved symbols and Entrez or Ensembl ids (``id_type`` = 'entrez' | 'ensembl')."""
        if id_type not in ID_COLUMNS:
            raise InputFormatError(f"id type must be one of {sorted(ID_COLUMNS)}, but got {id_type!r}")
        header, rows = _read_table(path)
        symbol_col = _find_column(header, SYMBOL_COLUMNS, path, "gene symbol")
        id_col = _find_column(header, ID_COLUMNS[id_type], path, f"{id_type} id")
        claims: dict[str, set[str]] = {}
        approved = set()
        for row in rows:
            if len(row) <= max(symbol_col, id_col):
                continue
            symbol, ident = row[symbol_col].strip(), normalise_id(row[id_col], id_type)
            if symbol:
                approved.add(symbol)
            if symbol and ident:
                claims.setdefault(ident, set()).add(symbol)
        if not claims:
            raise InputFormatError(f"mapping table has no rows with both a symbol and an {id_type} id", path=path)
        mapping = {i: next(iter(s)) for i, s in claims.items() if len(s) == 1}
        ambiguous = {i for i, s in claims.items() if len(s) > 1}
        return cls(mapping=mapping, approved=approved, ambiguous=ambiguous, source=str(path))

    def lookup(self, name: str) -> str | None:
        """The approved symbol for ``name``, ``name`` itself if already approved, else None."""
        if name in self.approved and name not in self.mapping:
            return name
        return self.mapping.get(name)


def normalise_id(ident: str, id_type: str) -> str:
    """Canonical text of an identifier: Entrez ids without '.0', Ensembl ids without their version suffix."""
    ident = str(ident).strip()
    if id_type == "entrez" and ident.endswith(".0"):
        ident = ident[:-2]
    if id_type == "ensembl" and "." in ident:
        ident = ident.split(".", 1)[0]
    return ident


@dataclass
class Harmonised:
    """Result of :func:`harmonise`: the output genes and, for each, the input positions averaged into it."""

    genes: list[str]
    groups: list[np.ndarray]
    mapped: int = 0
    merged: int = 0
    dropped: int = 0
    ambiguous: int = 0

    @property
    def is_identity(self) -> bool:
        return all(len(g) == 1 and g[0] == i for i, g in enumerate(self.groups))

    def report(self) -> dict:
        return {"genes_out": len(self.genes), "mapped": self.mapped, "merged": self.merged,
                "dropped": self.dropped, "ambiguous": self.ambiguous}

    def apply(self, block: np.ndarray) -> np.ndarray:
        """Columns of ``block`` ([samples, input genes]) mapped to output genes; duplicates averaged."""
        if self.is_identity:
            return block
        if all(len(g) == 1 for g in self.groups):
            return np.ascontiguousarray(block[:, np.concatenate(self.groups)])
        order = np.concatenate(self.groups)
        sizes = np.array([len(g) for g in self.groups])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        summed = np.add.reduceat(block[:, order], starts, axis=1)
        return (summed / sizes.astype(np.float32)).astype(np.float32, copy=False)


def harmonise(names: list[str], symbol_map: SymbolMap | None = None, *, drop_unknown: bool = False) -> Harmonised:
    """Map gene names to approved symbols and merge duplicates (by mean, in order of first appearance).

    Names the map does not know are kept as they are unless ``drop_unknown``; empty names are always dropped.
    """
    positions: dict[str, list[int]] = {}
    mapped = dropped = ambiguous = 0
    for i, raw in enumerate(names):
        name = str(raw).strip()
        if not name:
            dropped += 1
            continue
        if symbol_map is not None:
            symbol = symbol_map.lookup(name)
            if symbol is None:
                ambiguous += name in symbol_map.ambiguous
                if drop_unknown:
                    dropped += 1
                    continue
                symbol = name
            elif symbol != name:
                mapped += 1
            name = symbol
        positions.setdefault(name, []).append(i)
    genes = list(positions)
    groups = [np.asarray(p, dtype=np.int64) for p in positions.values()]
    merged = sum(len(g) - 1 for g in groups)
    return Harmonised(genes, groups, mapped=mapped, merged=merged, dropped=dropped, ambiguous=ambiguous)
