"""The on-disk graph: an undirected, deduplicated edge list in Parquet with its provenance.

Each edge is stored once with ``source < target`` (by symbol), no self-loops; an optional ``weight`` column.
Node names are approved HGNC symbols. Nodes without edges are kept by name in ``isolated`` (stored in the
schema metadata), because a graph's node list matters for alignment coverage: networkx adjacency lists name
nodes with no neighbours, and the empty control graph is nothing but its node list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from raygex.files import names
from raygex.errors import InputFormatError
from raygex.files.fileio import atomic_path

# JSON list of node names without edges. Kept here rather than in schema.py only because this module owns it.


def _as_str(values) -> np.ndarray:
    return np.asarray(values, dtype=object).astype(str)


@dataclass
class Graph:
    """A named gene graph: parallel arrays of source and target symbols, optional weights, provenance.

    ``isolated`` names nodes that have no edges (never nodes that also appear in an edge).
    """

    name: str
    source: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)
    isolated: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=str))

    def __post_init__(self):
        self.source = _as_str(self.source)
        self.target = _as_str(self.target)
        self.isolated = _as_str(self.isolated)
        if self.weight is not None:
            self.weight = np.asarray(self.weight, dtype=np.float32)

    @property
    def n_edges(self) -> int:
        return len(self.source)

    @property
    def nodes(self) -> np.ndarray:
        """All node names, sorted: edge endpoints and isolated nodes."""
        return np.unique(np.concatenate([self.source, self.target, self.isolated]))

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    def degrees(self) -> pd.Series:
        """Degree of every node (isolated nodes have 0), indexed by name in sorted order."""
        counts = pd.Series(np.concatenate([self.source, self.target])).value_counts()
        return counts.reindex(self.nodes, fill_value=0).astype(np.int64)

    @classmethod
    def from_edges(cls, name: str, source, target, weight=None, provenance: dict | None = None, *,
                   nodes=None) -> "Graph":
        """Build a canonical graph: undirected, self-loops removed, duplicates merged (max weight kept).

        ``nodes`` optionally lists extra node names; those without an edge are kept as isolated nodes.
        Works on integer codes so that a few hundred thousand edges take well under a second.
        """
        source, target = _as_str(source), _as_str(target)
        if len(source) != len(target):
            raise ValueError(f"{len(source)} sources for {len(target)} targets")
        w = None if weight is None else np.asarray(weight, dtype=np.float32)
        n = len(source)
        codes, names = pd.factorize(np.concatenate([source, target]), sort=True)
        names = np.asarray(names, dtype=object).astype(str)
        s_code, t_code = codes[:n].astype(np.int64), codes[n:].astype(np.int64)
        keep = s_code != t_code
        lo, hi = np.minimum(s_code, t_code)[keep], np.maximum(s_code, t_code)[keep]
        if w is not None:
            w = w[keep]
        key = lo * max(len(names), 1) + hi
        if w is None:
            _, first = np.unique(key, return_index=True)
        else:
            order = np.lexsort((-w, key))
            key_sorted = key[order]
            first = order[np.r_[True, key_sorted[1:] != key_sorted[:-1]]] if len(key) else order
        first = np.sort(first)
        lo, hi = lo[first], hi[first]
        w = None if w is None else w[first]
        used = np.zeros(len(names), dtype=bool)
        used[lo] = used[hi] = True
        isolated = np.empty(0, dtype=str)
        if nodes is not None:
            extra = np.unique(_as_str(nodes))
            isolated = extra[~np.isin(extra, names[used])]
        return cls(name, names[lo], names[hi], w, dict(provenance or {}), isolated)


def write_graph(graph: Graph, path: str | Path) -> Path:
    """Write ``graph`` as Parquet (atomic), its name, provenance and isolated nodes in the schema metadata."""
    columns = {names.GRAPH_SOURCE: pa.array(graph.source, pa.string()),
               names.GRAPH_TARGET: pa.array(graph.target, pa.string())}
    if graph.weight is not None:
        columns[names.GRAPH_WEIGHT] = pa.array(graph.weight, pa.float32())
    provenance = dict(graph.provenance, n_edges=graph.n_edges, n_nodes=graph.n_nodes)
    table = pa.table(columns).replace_schema_metadata({
        names.META_GRAPH_NAME: graph.name.encode(),
        names.META_PROVENANCE: json.dumps(provenance, default=str).encode(),
        names.META_GRAPH_ISOLATED: json.dumps(graph.isolated.tolist()).encode(),
        names.META_FORMAT: names.GRAPH_FORMAT.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def read_graph(path: str | Path) -> Graph:
    """Read a graph written by :func:`write_graph`."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError("graph file not found", path=path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise InputFormatError(f"not a readable Parquet graph ({err})", path=path) from None
    meta = table.schema.metadata or {}
    kind = meta.get(names.META_FORMAT, b"").decode(errors="replace")
    if kind.startswith("expression/"):
        raise InputFormatError("a raygex expression dataset, not a gene graph", path=path)
    if kind != names.GRAPH_FORMAT:
        raise InputFormatError("not a raygex graph; import it with 'raygex graph import' first", path=path)
    weight = table.column(names.GRAPH_WEIGHT).to_numpy() if names.GRAPH_WEIGHT in table.column_names else None
    return Graph(meta[names.META_GRAPH_NAME].decode(),
                 table.column(names.GRAPH_SOURCE).to_numpy(zero_copy_only=False),
                 table.column(names.GRAPH_TARGET).to_numpy(zero_copy_only=False), weight,
                 json.loads(meta.get(names.META_PROVENANCE, b"{}")),
                 json.loads(meta.get(names.META_GRAPH_ISOLATED, b"[]")))
