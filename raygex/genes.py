"""Gene identifiers: HGNC previous-symbol maps, Entrez/Ensembl id tables, and name harmonisation.

Expression files and graphs name genes differently (old symbols, Entrez ids, Ensembl ids). Everything in raygex
is keyed by approved HGNC symbols, so both importers pass their gene names through :func:`harmonise`.
raygex ships one dated table (:data:`DEFAULT_TABLE`, read by :meth:`GeneTable.default`) that maps previous
symbols, Entrez ids and Ensembl ids to approved symbols offline; ``raygex.data.hgnc_table`` rebuilds it.
"""

from __future__ import annotations

import csv
import functools
import gzip
import re
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
# The shipped table: '#' lines (sources, dates), then these columns; several ids in one cell are comma-separated.
TABLE_COLUMNS = (APPROVED_COLUMN, "NCBI Gene ID", "Ensembl gene ID", PREVIOUS_COLUMN)
DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "hgnc" / "hgnc_map.tsv.gz"
ID_TYPES = ("symbol", "entrez", "ensembl")
ENSEMBL_ID = re.compile(r"ENS[A-Z]*G\d+(\.\d+)?(_PAR_Y)?")
ENTREZ_ID = re.compile(r"\d+(\.0)?")
SYMBOL_AND_ENTREZ = re.compile(r"(.+)\|(\d+)")  # Firehose/Xena 'SYMBOL|entrez' and '?|entrez'
NCBI_PLACEHOLDER = re.compile(r"LOC(\d+)")  # NCBI's symbol for a gene without one: 'LOC' + its Gene (Entrez) id


def _open_text(path: Path):
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def read_table(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a TSV/CSV mapping table (gzip if named .gz); leading '#' lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError("mapping table not found", path=path)
    try:
        with _open_text(path) as handle:
            sample = handle.readline()
            while sample.startswith("#"):
                sample = handle.readline()
            if not sample.strip():
                raise InputFormatError("mapping table is empty (no header line)", path=path)
            delimiter = "\t" if "\t" in sample else ","
            header = next(csv.reader([sample], delimiter=delimiter))
            rows = list(csv.reader(handle, delimiter=delimiter))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as err:
        raise InputFormatError(f"cannot read mapping table ({err.__class__.__name__}: {err})", path=path) from None
    return [h.strip() for h in header], rows


def find_column(header: list[str], candidates: tuple[str, ...], path, what: str) -> int:
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
        header, rows = read_table(path)
        approved_col = find_column(header, (APPROVED_COLUMN,), path, "approved symbol")
        previous_col = find_column(header, (PREVIOUS_COLUMN,), path, "previous symbols")
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
        header, rows = read_table(path)
        symbol_col = find_column(header, SYMBOL_COLUMNS, path, "gene symbol")
        id_col = find_column(header, ID_COLUMNS[id_type], path, f"{id_type} id")
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

    def resolve(self, name: str, kind: str) -> tuple[str | None, bool]:
        """(approved symbol or None, whether ``name`` is ambiguous); a single table ignores ``kind``."""
        return self.lookup(name), name in self.ambiguous


def id_kind(name: str) -> str:
    """What a gene id looks like: 'ensembl' (ENSG00000141510, with or without '.16'), 'entrez' (7157), or 'symbol'."""
    if ENSEMBL_ID.fullmatch(name):
        return "ensembl"
    return "entrez" if ENTREZ_ID.fullmatch(name) else "symbol"


@dataclass
class GeneTable:
    """Approved HGNC symbols and the previous symbols, Entrez ids and Ensembl ids that map to them.

    ``maps[kind]`` maps an identifier of that kind ('symbol' for previous symbols, 'entrez', 'ensembl') to its
    approved symbol; only the kinds whose column the table has are present. Identifiers that several approved
    symbols claim are in ``ambiguous[kind]`` and never mapped.
    """

    approved: set[str]
    maps: dict[str, dict[str, str]]
    ambiguous: dict[str, set[str]]
    source: str = ""
    description: str = ""

    @classmethod
    def read(cls, path: str | Path) -> "GeneTable":
        """Read any HGNC-style table: an approved-symbol column and any of previous symbols / Entrez / Ensembl."""
        path = Path(path)
        header, rows = read_table(path)
        symbol_col = find_column(header, SYMBOL_COLUMNS, path, "approved symbol")
        columns = {}
        for kind, candidates in (("symbol", (PREVIOUS_COLUMN,)), *ID_COLUMNS.items()):
            try:
                columns[kind] = find_column(header, candidates, path, kind)
            except InputFormatError:
                pass
        approved = {r[symbol_col].strip() for r in rows if len(r) > symbol_col and r[symbol_col].strip()}
        approved = {s for s in approved if not s.endswith("~withdrawn")}
        if not approved:
            raise InputFormatError("mapping table has no approved symbols", path=path)
        claims: dict[str, dict[str, set[str]]] = {kind: {} for kind in columns}
        for row in rows:
            symbol = row[symbol_col].strip() if len(row) > symbol_col else ""
            if symbol not in approved:
                continue
            for kind, col in columns.items():
                cell = row[col].strip() if len(row) > col else ""
                for value in cell.split(",") if cell else ():
                    value = value.strip() if kind == "symbol" else normalise_id(value, kind)
                    if value and value not in approved:
                        claims[kind].setdefault(value, set()).add(symbol)
        maps = {k: {i: next(iter(s)) for i, s in c.items() if len(s) == 1} for k, c in claims.items()}
        ambiguous = {k: {i for i, s in c.items() if len(s) > 1} for k, c in claims.items()}
        with _open_text(path) as handle:
            first = handle.readline()
        description = first[1:].strip() if first.startswith("#") else ""
        return cls(approved, maps, ambiguous, source=str(path), description=description)

    @classmethod
    def default(cls) -> "GeneTable":
        """The table shipped with raygex (:data:`DEFAULT_TABLE`), read once per process."""
        return _default_table()

    @property
    def release(self) -> str:
        match = re.search(r"release=([^;]+)", self.description)
        return match.group(1).strip() if match else ""

    def label(self) -> str:
        """How reports name the table: the shipped one by release, any other by its path."""
        if Path(self.source) == DEFAULT_TABLE:
            return f"raygex's HGNC table ({self.release or 'undated'})"
        return self.source

    def has(self, kind: str) -> bool:
        return kind == "symbol" or kind in self.maps

    def resolve(self, name: str, kind: str) -> tuple[str | None, bool]:
        """(approved symbol of ``name`` read as ``kind``, or None; whether ``name`` is ambiguous there)."""
        if kind == "symbol":
            if name in self.approved:
                return name, False
            symbol = self.maps.get("symbol", {}).get(name)
            if symbol is None and (pair := SYMBOL_AND_ENTREZ.fullmatch(name)):
                symbol, ambiguous = self.resolve(pair.group(1), "symbol")
                if symbol is None and self.has("entrez"):
                    return self.resolve(pair.group(2), "entrez")
                return symbol, ambiguous
            if symbol is None and self.has("entrez") and (placeholder := NCBI_PLACEHOLDER.fullmatch(name)):
                return self.resolve(placeholder.group(1), "entrez")
            return symbol, name in self.ambiguous.get("symbol", ())
        key = normalise_id(name, kind)
        return self.maps.get(kind, {}).get(key), key in self.ambiguous.get(kind, ())


@functools.lru_cache(maxsize=1)
def _default_table() -> GeneTable:
    if not DEFAULT_TABLE.is_file():
        raise InputFormatError("raygex's gene id table is missing from the installation (reinstall raygex, or "
                               "rebuild it with python -m raygex.data.hgnc_table)", path=DEFAULT_TABLE)
    return GeneTable.read(DEFAULT_TABLE)


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
    """Result of :func:`harmonise`: the output genes and, for each, the input positions averaged into it.

    ``mapped`` counts names renamed to another (approved) symbol; ``known`` the names the map resolved (renamed
    or already approved); ``unmapped`` the non-empty names it did not (kept, or dropped with ``drop_unknown``);
    ``kinds`` how many names were read as each id type.
    """

    genes: list[str]
    groups: list[np.ndarray]
    mapped: int = 0
    merged: int = 0
    dropped: int = 0
    ambiguous: int = 0
    known: int = 0
    unmapped: int = 0
    empty: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    inputs: int | None = None  # how many names went in (None: as many as groups)

    @property
    def is_identity(self) -> bool:
        if self.inputs is not None and self.inputs != len(self.groups):
            return False  # trailing names were dropped: the block must lose those columns
        return all(len(g) == 1 and g[0] == i for i, g in enumerate(self.groups))

    def report(self) -> dict:
        return {"genes_out": len(self.genes), "mapped": self.mapped, "merged": self.merged,
                "dropped": self.dropped, "ambiguous": self.ambiguous, "known": self.known,
                "unmapped": self.unmapped, "id_kinds": dict(self.kinds)}

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


def _check_kinds(table: GeneTable, first: dict[str, str], id_type: str) -> None:
    """A table without the column some ids need would silently map none of them: say so instead."""
    for kind, example in first.items():
        if not table.has(kind):
            column = {"entrez": "NCBI Gene (Entrez) id", "ensembl": "Ensembl gene id"}[kind]
            hint = "" if id_type == kind else ", or --id-type symbol to read every id as a symbol"
            raise InputFormatError(f"mapping table has no {column} column, but some gene ids are {kind} ids (e.g. "
                                   f"{example!r}); use a table with one (leave --map out for raygex's own){hint}",
                                   path=table.source)


def harmonise(names: list[str], symbol_map: SymbolMap | GeneTable | None = None, *, drop_unknown: bool = False,
              id_type: str = "auto") -> Harmonised:
    """Map gene names to approved symbols and merge duplicates (by mean, in order of first appearance).

    ``id_type`` says what the names are (symbol, entrez, ensembl); 'auto' reads each name by its look
    (:func:`id_kind`). Names the map does not know are kept as they are unless ``drop_unknown``; empty names are
    always dropped.
    """
    if id_type not in ("auto", *ID_TYPES):
        raise InputFormatError(f"id type must be one of auto, {', '.join(ID_TYPES)}, but got {id_type!r}")
    positions: dict[str, list[int]] = {}
    mapped = dropped = ambiguous = known = unmapped = empty = 0
    kinds: dict[str, int] = {}
    first: dict[str, str] = {}
    for i, raw in enumerate(names):
        name = "" if raw is None else str(raw).strip()
        if not name:
            dropped += 1
            empty += 1
            continue
        kind = id_kind(name) if id_type == "auto" else id_type
        kinds[kind] = kinds.get(kind, 0) + 1
        first.setdefault(kind, name)
        if symbol_map is not None:
            symbol, is_ambiguous = symbol_map.resolve(name, kind)
            if symbol is None:
                unmapped += 1
                ambiguous += is_ambiguous
                if drop_unknown:
                    dropped += 1
                    continue
                symbol = name
            else:
                known += 1
                mapped += symbol != name
            name = symbol
        positions.setdefault(name, []).append(i)
    if isinstance(symbol_map, GeneTable):
        _check_kinds(symbol_map, first, id_type)
    genes = list(positions)
    groups = [np.asarray(p, dtype=np.int64) for p in positions.values()]
    merged = sum(len(g) - 1 for g in groups)
    return Harmonised(genes, groups, mapped=mapped, merged=merged, dropped=dropped, ambiguous=ambiguous,
                      known=known, unmapped=unmapped, empty=empty, kinds=kinds, inputs=len(names))
