"""The on-disk graph: an undirected, deduplicated edge list in Parquet with its provenance.

Each edge is stored once with ``source < target`` (by symbol), no self-loops; an optional ``weight`` column.
Node names are approved HGNC symbols; isolated nodes are not stored (a graph is its edges).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raygex import schema
from raygex.errors import InputFormatError
from raygex.fileio import atomic_path


@dataclass
class Graph:
    """A named gene graph: parallel arrays of source and target symbols, optional weights, provenance."""

    name: str
    source: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.source = np.asarray(self.source, dtype=object).astype(str)
        self.target = np.asarray(self.target, dtype=object).astype(str)
        if self.weight is not None:
            self.weight = np.asarray(self.weight, dtype=np.float32)

    @property
    def n_edges(self) -> int:
        return len(self.source)

    @property
    def nodes(self) -> np.ndarray:
        return np.unique(np.concatenate([self.source, self.target]))

    @classmethod
    def from_edges(cls, name: str, source, target, weight=None, provenance: dict | None = None) -> "Graph":
        """Build a canonical graph: undirected, self-loops removed, duplicates merged (max weight kept)."""
        source = np.asarray(source, dtype=object).astype(str)
        target = np.asarray(target, dtype=object).astype(str)
        keep = source != target
        source, target = source[keep], target[keep]
        lo, hi = np.minimum(source, target), np.maximum(source, target)
        w = None if weight is None else np.asarray(weight, dtype=np.float32)[keep]
        if len(lo):
            pairs = np.char.add(np.char.add(lo.astype(str), "\t"), hi.astype(str))
            if w is None:
                _, first = np.unique(pairs, return_index=True)
                first.sort()
                lo, hi = lo[first], hi[first]
            else:
                order = np.lexsort((-w, pairs))
                pairs_sorted = pairs[order]
                first = order[np.r_[True, pairs_sorted[1:] != pairs_sorted[:-1]]]
                first.sort()
                lo, hi, w = lo[first], hi[first], w[first]
        return cls(name, lo, hi, w, dict(provenance or {}))


def write_graph(graph: Graph, path: str | Path) -> Path:
    """Write ``graph`` as Parquet (atomic), its name and provenance in the schema metadata."""
    columns = {schema.GRAPH_SOURCE: pa.array(graph.source, pa.string()),
               schema.GRAPH_TARGET: pa.array(graph.target, pa.string())}
    if graph.weight is not None:
        columns[schema.GRAPH_WEIGHT] = pa.array(graph.weight, pa.float32())
    provenance = dict(graph.provenance, n_edges=graph.n_edges, n_nodes=int(len(graph.nodes)) if graph.n_edges else 0)
    table = pa.table(columns).replace_schema_metadata({
        schema.META_GRAPH_NAME: graph.name.encode(),
        schema.META_PROVENANCE: json.dumps(provenance, default=str).encode(),
        schema.META_FORMAT: schema.GRAPH_FORMAT.encode()})
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
    if meta.get(schema.META_FORMAT, b"").decode() != schema.GRAPH_FORMAT:
        raise InputFormatError("not a raygex graph; import it with 'raygex graph import' first", path=path)
    weight = table.column(schema.GRAPH_WEIGHT).to_numpy() if schema.GRAPH_WEIGHT in table.column_names else None
    return Graph(meta[schema.META_GRAPH_NAME].decode(),
                 table.column(schema.GRAPH_SOURCE).to_numpy(zero_copy_only=False),
                 table.column(schema.GRAPH_TARGET).to_numpy(zero_copy_only=False), weight,
                 json.loads(meta.get(schema.META_PROVENANCE, b"{}")))
