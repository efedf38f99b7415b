"""Names of the on-disk layout, in one place.

Every stage that reads or writes a canonical expression dataset or an edge list takes its column names and
metadata keys from here, never from bare strings.
"""

from __future__ import annotations

FORMAT_VERSION = "1"

# Canonical expression dataset (Parquet).
SAMPLE_ID = "sample_id"
EXPRESSION = "expression"
META_GENES = b"raygex.genes"  # JSON list of HGNC symbols: the order of the expression vector
META_PROVENANCE = b"raygex.provenance"  # JSON dict: source file, hash, import options, counts
META_FORMAT = b"raygex.format"  # "expression/<version>" or "graph/<version>"
# Hex SHA-256 of the dataset's content (ids, expression bytes, labels, in row order), computed while the dataset
# is written and stored in the last part's footer: the dataset's hash in every exported model's provenance.
META_CONTENT_SHA256 = b"raygex.content_sha256"
EXPRESSION_FORMAT = f"expression/{FORMAT_VERSION}"

# Rows per Parquet row group / per part file: about 64 MiB of float32 at 16k genes. Ray Data reads files in
# parallel, so datasets bigger than one part are written as a directory of part files.
TARGET_ROW_GROUP_BYTES = 64 * 2**20
TARGET_PART_BYTES = 256 * 2**20

# Gene interaction graph (Parquet edge list, undirected, each edge once with source < target).
GRAPH_SOURCE = "source"
GRAPH_TARGET = "target"
GRAPH_WEIGHT = "weight"
META_GRAPH_NAME = b"raygex.graph_name"
META_GRAPH_ISOLATED = b"raygex.graph_isolated"  # JSON list of nodes without edges (kept so node counts are true)
GRAPH_FORMAT = f"graph/{FORMAT_VERSION}"
