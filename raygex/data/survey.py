"""What `raygex config new` needs to know of its inputs, as :mod:`raygex.config.starter` takes it: a canonical
dataset's label columns, read alone (:func:`raygex.data.canonical.read_labels`, never the expression) and counted
as :func:`raygex.data.tasks.build_task` reads them (as strings, empty ones missing), and how much of each graph
falls on the dataset's genes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from raygex.config.starter import DatasetSummary, GraphSummary, LabelColumn
from raygex.data import canonical
from raygex.data.prepare import load_graph
from raygex.errors import ConfigError, RaygexError
from raygex.files.names import SAMPLE_ID
from raygex.files.remote_files import local_input
from raygex.files.storage import is_uri


def _kind(typ: pa.DataType) -> str:
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_integer(typ):
        return "integer"
    if pa.types.is_floating(typ):
        return "float"
    return "text"


def survey_column(name: str, kind: str, values: pd.Series) -> LabelColumn:
    present = values.notna() & (values.astype(str).str.strip() != "")
    kept = values[present]
    integral = bool(kind != "float" or kept.empty or (kept.astype(float) % 1 == 0).all())
    counts = kept.astype(str).value_counts()
    return LabelColumn(name, kind, int(present.sum()), {str(k): int(v) for k, v in counts.items()}, integral)


def survey_labels(path: str | Path) -> DatasetSummary:
    """Samples, genes and every label column of the dataset at ``path`` (a file, a folder of parts or a URI);
    a file that is not a raygex dataset is an :class:`~raygex.errors.InputFormatError` naming it."""
    schema = canonical.read_schema(path)
    genes = canonical.read_genes(path)
    labels = canonical.read_labels(path)
    columns = [survey_column(name, _kind(schema.field(name).type), labels[name])
               for name in canonical.label_columns(schema) if name != SAMPLE_ID]
    return DatasetSummary(str(path), len(labels), len(genes), columns)


def survey_graph(name: str, path: str, genes: list[str], option: str) -> GraphSummary:
    """The graph at ``path`` (raygex Parquet or any graph file; a URI is fetched) and its nodes and edges among
    ``genes``; a missing or unreadable file, or one sharing no gene with the dataset, is a :class:`ConfigError`
    naming ``option`` (the ``--graph`` value)."""
    if not is_uri(path) and not Path(path).exists():
        raise ConfigError(f"{option}: file not found")
    try:
        graph = load_graph(name, local_input(path, option) if is_uri(path) else path)
    except RaygexError as err:
        message = str(err)
        if err.path and message.startswith(f"{err.path}: "):
            message = message[len(err.path) + 2:]
        raise ConfigError(f"{option}: {message}") from None
    known = set(map(str, genes))  # a set: np.isin over object arrays compares every pair (minutes at 20k x 260k)
    nodes = sum(str(node) in known for node in graph.nodes)
    if not nodes:
        raise ConfigError(f"{option}: the graph shares no gene with the dataset (graph nodes e.g. "
                          f"{graph.nodes[:3].tolist()}, dataset genes e.g. {genes[:3]})")
    edges = sum(str(a) in known and str(b) in known for a, b in zip(graph.source, graph.target))
    return GraphSummary(name, path, nodes, edges)
