"""Import gene graphs from networkx adjacency lists and edge-list TSV/CSV into the canonical :class:`Graph`.

Graphs come keyed by symbols, Entrez ids or Ensembl ids; everything downstream aligns graphs to datasets by
approved HGNC symbol, so ids are mapped here, once, and the report says exactly what was lost on the way.
Mapping works on the unique node names (tens of thousands), never per edge, so GeneMANIA imports in about a
second.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from raygex.errors import ConfigError, InputFormatError
from raygex.files.fileio import sha256_file
from raygex.genes import DEFAULT_TABLE, SymbolMap, harmonise, normalise_id
from raygex.graphs.store import Graph

ID_TYPES = ("symbol", "entrez", "ensembl")
FORMATS = ("auto", "adjlist", "edgelist", "tsv", "csv")
# First-row tokens that mark an edge-list header (compared lower-case).
HEADER_WORDS = {"source", "target", "from", "to", "node1", "node2", "node_1", "node_2", "gene1", "gene2",
                "gene_1", "gene_2", "gene_a", "gene_b", "genea", "geneb", "symbol1", "symbol2", "symbol_a",
                "symbol_b", "protein1", "protein2", "interactor_a", "interactor_b", "weight", "score",
                "entrez_a", "entrez_b", "ensembl_a", "ensembl_b", "id1", "id2"}


def detect_format(path: Path) -> str:
    """'adjlist' or 'edgelist' from the file name (``.gz`` allowed), else an error listing what is known."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".adjlist"):
        return "adjlist"
    if name.endswith((".tsv", ".csv", ".txt", ".edgelist", ".edges", ".tab")):
        return "edgelist"
    raise InputFormatError("unknown graph format: expected a name ending in .adjlist, .tsv, .csv, .txt, "
                           ".edgelist or .edges (optionally .gz), or pass fmt/--format", path=path)


def _read_text(path: Path) -> str:
    """The whole file as text (gunzipped if named .gz), with errors that name the file."""
    if not path.is_file():
        raise InputFormatError("graph file not found", path=path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, EOFError, zlib.error) as err:
        raise InputFormatError(f"cannot decompress graph file ({err})", path=path) from None
    except UnicodeDecodeError as err:
        raise InputFormatError(f"graph file is not UTF-8 text ({err.reason} at byte {err.start})",
                               path=path) from None


def read_adjlist(path: Path) -> tuple[np.ndarray, np.ndarray, None, np.ndarray]:
    """networkx adjacency list: first token is the node, the rest its neighbours; '#' starts a comment."""
    text = _read_text(path)
    heads, tails, counts = [], [], []
    for line in text.splitlines():
        cut = line.find("#")
        tokens = (line if cut < 0 else line[:cut]).split()
        if tokens:
            heads.append(tokens[0])
            tails.extend(tokens[1:])
            counts.append(len(tokens) - 1)
    if not heads:
        raise InputFormatError("graph file is empty (no node lines outside '#' comments)", path=path)
    heads_arr = np.asarray(heads, dtype=object)
    source = np.repeat(heads_arr, counts)
    target = np.asarray(tails, dtype=object)
    return source, target, None, pd.unique(np.concatenate([heads_arr, target]))


def _looks_numeric(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _sniff_header(tokens: list[str], id_type: str, weight_column) -> bool:
    """Whether the first row of an edge list is a header: known column words, or ids that cannot be ids."""
    if any(t.strip().lower() in HEADER_WORDS for t in tokens[:2]):
        return True
    if isinstance(weight_column, str) and weight_column in tokens:
        return True
    if isinstance(weight_column, int) and weight_column < len(tokens) and not _looks_numeric(tokens[weight_column]):
        return True
    ids = [normalise_id(t, id_type) for t in tokens[:2]]
    if id_type == "entrez":
        return not all(i.isdigit() for i in ids)
    if id_type == "ensembl":
        return not all(i.upper().startswith("ENS") for i in ids)
    return False


def read_edgelist(path: Path, *, sep: str | None = None, id_type: str = "symbol", weight_column=None,
                  header: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Edge list: the first two columns are node ids; ``weight_column`` (name or 0-based index) the weight."""
    text = _read_text(path)
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputFormatError("graph file is empty (no rows outside '#' comments)", path=path)
    if sep is None:
        sep = "\t" if "\t" in lines[0] else "," if "," in lines[0] else r"\s+"
    first = lines[0].split() if sep == r"\s+" else lines[0].split(sep)
    if header is None:
        header = _sniff_header(first, id_type, weight_column)
    try:
        frame = pd.read_csv(io.StringIO("\n".join(lines)), sep=sep, header=0 if header else None, dtype=str,
                            keep_default_na=False, engine="c")
    except (pd.errors.ParserError, ValueError) as err:
        raise InputFormatError(f"cannot parse edge list ({str(err).splitlines()[0]})", path=path) from None
    if frame.shape[1] < 2:
        raise InputFormatError(f"edge list needs two id columns, but got {frame.shape[1]} column "
                               f"(separator {sep!r})", path=path)
    weight = None
    if weight_column is not None:
        if isinstance(weight_column, str):
            if not header or weight_column not in frame.columns:
                raise InputFormatError(f"no weight column {weight_column!r}; columns are "
                                       f"{[str(c) for c in frame.columns] if header else 'unnamed (no header)'}",
                                       path=path)
            col = frame[weight_column]
        else:
            if not 0 <= weight_column < frame.shape[1] or weight_column < 2:
                raise InputFormatError(f"weight column index must be 2..{frame.shape[1] - 1}, but got "
                                       f"{weight_column}", path=path)
            col = frame.iloc[:, weight_column]
        values = pd.to_numeric(col, errors="coerce")
        if values.isna().any():
            bad = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise InputFormatError(f"weight column {weight_column!r} is not numeric, but got {col.iloc[bad]!r} "
                                   f"in data row {bad + 1}", path=path)
        weight = values.to_numpy(dtype=np.float32)
    source = frame.iloc[:, 0].fillna("").str.strip().to_numpy(dtype=object)
    target = frame.iloc[:, 1].fillna("").str.strip().to_numpy(dtype=object)
    blank = (source == "") | (target == "")
    if blank.any():
        bad = int(np.flatnonzero(blank)[0])
        raise InputFormatError(f"data row {bad + 1} has fewer than two node ids", path=path)
    return source, target, weight, pd.unique(np.concatenate([source, target]))


def _map_names(names: np.ndarray, id_type: str, id_map: SymbolMap | None,
               symbol_map: SymbolMap | None) -> tuple[np.ndarray, dict]:
    """Symbol for each unique input name ('' when unmapped), and counts of what happened."""
    symbols = np.asarray([str(n) for n in names], dtype=object)  # object: renaming must never truncate
    stats = {"renamed": 0, "ambiguous": 0}
    if id_type != "symbol":
        stats["ambiguous"] += sum(n in id_map.ambiguous for n in symbols)
        symbols = np.asarray([id_map.mapping.get(n, "") for n in symbols], dtype=object)
    if symbol_map is not None:
        known = symbols != ""
        h = harmonise(list(symbols[known]), symbol_map)
        renamed = np.empty(int(known.sum()), dtype=object)
        for gene, group in zip(h.genes, h.groups):
            renamed[group] = gene
        symbols[known] = renamed
        stats["renamed"], stats["ambiguous"] = h.mapped, stats["ambiguous"] + h.ambiguous
    return symbols.astype(str), stats


def import_graph(path, name: str, *, id_type: str = "symbol", id_map=None, symbol_map=None,
                 weight_column: str | int | None = None, fmt: str = "auto",
                 header: bool | None = None) -> tuple[Graph, dict]:
    """Read a graph file, map its node ids to approved symbols, and return the canonical graph and a report.

    ``id_map`` is a mapping table (symbol + Entrez/Ensembl id columns) used when ``id_type`` is not 'symbol'
    (default: raygex's shipped HGNC table, :data:`raygex.genes.DEFAULT_TABLE`); ``symbol_map`` an HGNC
    previous-symbol table that renames outdated symbols. Nodes that do not map drop their edges. ``weight_column`` (edge lists only) is a header name or a 0-based column index;
    ``header`` forces (True/False) or auto-detects (None) an edge-list header row.
    """
    path = Path(path)
    if id_type not in ID_TYPES:
        raise ConfigError(f"id type must be one of {list(ID_TYPES)}, but got {id_type!r}")
    if fmt not in FORMATS:
        raise ConfigError(f"graph format must be one of {list(FORMATS)}, but got {fmt!r}")
    if id_type != "symbol" and id_map is None:
        id_map = DEFAULT_TABLE
    if not path.is_file():
        raise InputFormatError("graph file not found", path=path)
    kind = detect_format(path) if fmt == "auto" else "adjlist" if fmt == "adjlist" else "edgelist"
    if kind == "adjlist":
        if weight_column is not None:
            raise ConfigError("adjacency lists carry no edge weights; drop the weight column option")
        source, target, weight, names = read_adjlist(path)
    else:
        sep = {"tsv": "\t", "csv": ","}.get(fmt)
        source, target, weight, names = read_edgelist(path, sep=sep, id_type=id_type, weight_column=weight_column,
                                                      header=header)

    if id_type != "symbol":  # '1956' and '1956.0', or two versions of one Ensembl id, are one node
        normalised = np.asarray([normalise_id(n, id_type) for n in names], dtype=object)
        lookup = pd.Index(np.asarray(names, dtype=object).astype(str))
        source = normalised[lookup.get_indexer(np.asarray(source, dtype=object).astype(str))]
        target = normalised[lookup.get_indexer(np.asarray(target, dtype=object).astype(str))]
        names = pd.unique(normalised)
    id_table = SymbolMap.from_id_table(id_map, id_type) if id_type != "symbol" else None
    prev_table = SymbolMap.from_hgnc_previous(symbol_map) if symbol_map is not None else None
    symbols, stats = _map_names(names, id_type, id_table, prev_table)
    lookup = pd.Index(np.asarray(names, dtype=object).astype(str))
    s_sym = symbols[lookup.get_indexer(np.asarray(source, dtype=object).astype(str))]
    t_sym = symbols[lookup.get_indexer(np.asarray(target, dtype=object).astype(str))]
    mapped = (s_sym != "") & (t_sym != "")
    s_sym, t_sym = s_sym[mapped], t_sym[mapped]
    w = None if weight is None else weight[mapped]
    self_loops = int((s_sym == t_sym).sum())
    n_unmapped = int((symbols == "").sum())
    if not mapped.any() or self_loops == len(s_sym):
        why = ("the file lists nodes but no edges" if len(source) == 0
               else f"{n_unmapped} of {len(names)} node ids did not map through {id_map}" if not mapped.any()
               else "every edge left is a self-loop")
        raise InputFormatError(f"no edges left after import: {why}", path=path)

    report = {"format": kind, "id_type": id_type, "nodes_read": int(len(names)), "edges_read": int(len(source)),
              "nodes_mapped": int(len(names) - n_unmapped), "nodes_unmapped": n_unmapped,
              "edges_unmapped": int((~mapped).sum()), "self_loops": self_loops, **stats}
    provenance = {"source_file": str(path.resolve()), "sha256": sha256_file(path), "format": kind,
                  "id_type": id_type, "weight_column": weight_column}
    if id_map is not None:
        provenance.update(mapping_file=str(Path(id_map).resolve()), mapping_sha256=sha256_file(id_map))
    if symbol_map is not None:
        provenance.update(symbol_map_file=str(Path(symbol_map).resolve()),
                          symbol_map_sha256=sha256_file(symbol_map))
    graph = Graph.from_edges(name, s_sym, t_sym, w, provenance, nodes=symbols[symbols != ""])
    report.update(duplicates=int(len(s_sym) - self_loops - graph.n_edges), edges_kept=graph.n_edges,
                  nodes=graph.n_nodes, isolated_nodes=int(len(graph.isolated)))
    graph.provenance["counts"] = dict(report)
    return graph, report
