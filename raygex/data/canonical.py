"""The canonical expression dataset: one Parquet layout every later stage reads (with Ray Data or pyarrow).

Layout: a ``sample_id`` string column, an ``expression`` column of ``fixed_size_list<float32>[n_genes]``, any
label/covariate columns, and the gene order as JSON in the schema metadata. A dataset bigger than one part is a
directory of part files (``part-00000.parquet``...) so Ray Data reads it in parallel shards; each part holds
row groups of about 64 MiB.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from raygex.files import names
from raygex.errors import InputFormatError
from raygex.files.fileio import atomic_path
from raygex.files.counted_reads import counted, read_counter_name
from raygex.files.storage import is_uri, open_remote


@dataclass
class ExpressionDataset:
    """An expression matrix in memory: samples × genes float32, with sample ids, labels and provenance."""

    sample_ids: np.ndarray
    expression: np.ndarray
    genes: list[str]
    obs: pd.DataFrame = field(default_factory=pd.DataFrame)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.sample_ids = np.asarray(self.sample_ids, dtype=object).astype(str)
        self.expression = np.ascontiguousarray(self.expression, dtype=np.float32)
        self.genes = [str(g) for g in self.genes]
        if self.obs is None or len(self.obs.columns) == 0:
            self.obs = pd.DataFrame(index=pd.RangeIndex(len(self.sample_ids)))
        self.obs = self.obs.reset_index(drop=True)

    @property
    def n_samples(self) -> int:
        return self.expression.shape[0]

    @property
    def n_genes(self) -> int:
        return self.expression.shape[1]

    def gene_index(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.genes)}

    def validate(self, source: str | Path | None = None) -> None:
        """Raise :class:`InputFormatError` if shapes, ids, genes or values are not usable."""
        n, g = self.expression.shape
        if len(self.sample_ids) != n or len(self.obs) != n:
            raise InputFormatError(f"{len(self.sample_ids)} sample ids and {len(self.obs)} label rows for {n} "
                                   "expression rows", path=source)
        if g != len(self.genes):
            raise InputFormatError(f"{len(self.genes)} gene names for {g} expression columns", path=source)
        check_unique(self.sample_ids, "sample id", source)
        check_unique(np.asarray(self.genes), "gene", source)
        if not np.isfinite(self.expression).all():
            rows, cols = np.nonzero(~np.isfinite(self.expression))
            raise InputFormatError(
                f"{len(rows)} non-finite expression values (NaN or inf), first at sample "
                f"{self.sample_ids[rows[0]]!r}, gene {self.genes[cols[0]]!r}", path=source)

    def take(self, rows: np.ndarray) -> "ExpressionDataset":
        """A new dataset holding only ``rows`` (indices or boolean mask)."""
        rows = np.asarray(rows)
        return ExpressionDataset(self.sample_ids[rows], self.expression[rows], list(self.genes),
                                 self.obs.iloc[rows].reset_index(drop=True), dict(self.provenance))

    def select_genes(self, genes: Iterable[str]) -> "ExpressionDataset":
        """A new dataset with only ``genes``, in that order (an unknown gene is an error naming it)."""
        index = self.gene_index()
        genes = list(genes)
        missing = [g for g in genes if g not in index]
        if missing:
            raise InputFormatError(f"{len(missing)} genes not in the dataset, e.g. {missing[:5]}")
        cols = np.fromiter((index[g] for g in genes), dtype=np.int64, count=len(genes))
        return ExpressionDataset(self.sample_ids, self.expression[:, cols], genes, self.obs, dict(self.provenance))


def check_unique(values: np.ndarray, what: str, source) -> None:
    series = pd.Series(values)
    dup = series[series.duplicated()]
    if len(dup):
        raise InputFormatError(f"duplicate {what} {str(dup.iloc[0])!r} ({dup.nunique()} duplicated {what}s)",
                               path=source)


# --------------------------------------------------------------------------------------------------- writing
def rows_per_group(n_genes: int, target_bytes: int = names.TARGET_ROW_GROUP_BYTES) -> int:
    return max(1, target_bytes // (4 * max(1, n_genes)))


def expression_schema(genes: list[str], obs_schema: pa.Schema, provenance: dict) -> pa.Schema:
    fields = [pa.field(names.SAMPLE_ID, pa.string(), nullable=False),
              pa.field(names.EXPRESSION, pa.list_(pa.float32(), len(genes)), nullable=False)]
    fields += list(obs_schema)
    metadata = {names.META_GENES: json.dumps(genes).encode(),
                names.META_PROVENANCE: json.dumps(provenance, default=str).encode(),
                names.META_FORMAT: names.EXPRESSION_FORMAT.encode()}
    return pa.schema(fields, metadata=metadata)


def to_record_batch(sample_ids, block: np.ndarray, obs: pd.DataFrame | None, out_schema: pa.Schema) -> pa.RecordBatch:
    """One record batch in the canonical layout; the float block is wrapped without copying when contiguous."""
    block = np.ascontiguousarray(block, dtype=np.float32)
    n, g = block.shape
    values = pa.array(block.reshape(-1), type=pa.float32())
    arrays = [pa.array(np.asarray(sample_ids, dtype=object).astype(str), type=pa.string()),
              pa.FixedSizeListArray.from_arrays(values, g)]
    for fld in list(out_schema)[2:]:
        column = obs[fld.name] if obs is not None and fld.name in obs else pd.Series([None] * n)
        arrays.append(pa.array(column.to_numpy(dtype=object), type=fld.type, from_pandas=True))
    return pa.RecordBatch.from_arrays(arrays, schema=out_schema)


def obs_to_arrow_schema(obs: pd.DataFrame) -> pa.Schema:
    """Arrow types for label columns: numbers stay numbers, everything else becomes (nullable) strings."""
    fields = []
    for name in obs.columns:
        column = obs[name]
        if pd.api.types.is_bool_dtype(column):
            typ = pa.bool_()
        elif pd.api.types.is_integer_dtype(column):
            typ = pa.int64()
        elif pd.api.types.is_float_dtype(column):
            typ = pa.float64()
        else:
            typ = pa.string()
        fields.append(pa.field(str(name), typ))
    return pa.schema(fields)


class DatasetWriter:
    """Streams blocks of samples into a canonical dataset at ``path``, atomically.

    Use as a context manager; nothing appears at ``path`` unless the block exits without error. Output is a
    single file while it fits in one part, otherwise a directory of part files.
    """

    def __init__(self, path: str | Path, genes: list[str], obs_schema: pa.Schema | None = None,
                 provenance: dict | None = None, *, part_bytes: int = names.TARGET_PART_BYTES,
                 row_group_bytes: int = names.TARGET_ROW_GROUP_BYTES):
        self.path = Path(path)
        self.genes = list(genes)
        self.schema = expression_schema(self.genes, obs_schema or pa.schema([]), provenance or {})
        self.rows_per_group = rows_per_group(len(self.genes), row_group_bytes)
        self.rows_per_part = max(self.rows_per_group, part_bytes // (4 * max(1, len(self.genes))))
        self.n_rows = 0
        self._parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_part = 0
        self._digest = hashlib.sha256()  # the content hash (names.META_CONTENT_SHA256), computed once, here

    def __enter__(self) -> "DatasetWriter":
        self._atomic = atomic_path(self.path, directory=True)
        self._staging = self._atomic.__enter__()
        return self

    def write(self, sample_ids, block: np.ndarray, obs: pd.DataFrame | None = None) -> None:
        if block.shape[1] != len(self.genes):
            raise ValueError(f"block has {block.shape[1]} genes, expected {len(self.genes)}")
        self._digest.update("\x00".join(np.asarray(sample_ids).astype(str)).encode() + b"\x01")
        self._digest.update(np.ascontiguousarray(block, dtype=np.float32).data)
        if obs is not None and len(obs.columns):
            self._digest.update(pd.util.hash_pandas_object(obs.astype(str), index=False).to_numpy().tobytes())
        start = 0
        while start < len(block):
            if self._writer is None or self._rows_in_part >= self.rows_per_part:
                self._open_part()
            stop = min(len(block), start + self.rows_per_part - self._rows_in_part)
            part_obs = None if obs is None else obs.iloc[start:stop]
            batch = to_record_batch(np.asarray(sample_ids)[start:stop], block[start:stop], part_obs, self.schema)
            self._writer.write_batch(batch, row_group_size=self.rows_per_group)
            self._rows_in_part += stop - start
            self.n_rows += stop - start
            start = stop

    def _open_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
        part = self._staging / f"part-{len(self._parts):05d}.parquet"
        self._parts.append(part)
        self._writer = pq.ParquetWriter(
            part, self.schema, compression={names.SAMPLE_ID: "zstd", names.EXPRESSION: "none"},
            use_dictionary=[names.SAMPLE_ID], write_statistics=[names.SAMPLE_ID])
        self._rows_in_part = 0

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self._writer is None:
            self._open_part()  # an empty dataset is still a valid file with the schema
        if self._writer is not None:
            if exc_type is None:
                self._writer.add_key_value_metadata({names.META_CONTENT_SHA256: self._digest.hexdigest()})
            self._writer.close()
        if exc_type is None and len(self._parts) == 1:
            # One part: move the file up so the staged path is a plain file, not a directory.
            single = self._staging.with_name(self._staging.name + ".single")
            self._parts[0].rename(single)
            self._staging.rmdir()
            single.rename(self._staging)
        return self._atomic.__exit__(exc_type, exc, tb)


def write_dataset(dataset: ExpressionDataset, path: str | Path, **kwargs) -> Path:
    """Validate ``dataset`` and write it to ``path`` in the canonical layout (atomic)."""
    dataset.validate()
    with DatasetWriter(path, dataset.genes, obs_to_arrow_schema(dataset.obs), dataset.provenance, **kwargs) as w:
        w.write(dataset.sample_ids, dataset.expression, dataset.obs)
    return Path(path)


# --------------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class ParquetParts:
    """Where a canonical dataset's Parquet files are: ``files`` in ``filesystem`` (None: the local one). A
    dataset given as an object-store URI is read where it is, by whoever reads it (the driver's footers and label
    columns, Ray Data's read tasks on any node): never copied to a local disk first."""

    files: list[str]
    filesystem: object = None
    single: bool = False  # one file (not a folder of parts)


def parquet_parts(path: str | Path) -> ParquetParts:
    """The dataset's part files (a file, or the ``*.parquet`` files of a folder or object-store prefix)."""
    if is_uri(str(path)):
        folder = open_remote(str(path))
        try:
            kind = folder.fs.get_file_info(folder.path).type.name
        except OSError as err:  # unreachable endpoint, refused credentials: one line naming the URI
            raise folder.error("read", err) from None
        if kind == "File":
            return ParquetParts([folder.path], folder.fs, single=True)
        files = [folder.key(f) for f in folder.files() if "/" not in f and f.endswith(".parquet")]
        if not files:
            raise InputFormatError("no such object, and no .parquet files under it", path=str(path))
        return ParquetParts(files, folder.fs)
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise InputFormatError("directory holds no .parquet files", path=path)
        return ParquetParts([str(f) for f in files])
    if not path.is_file():
        raise InputFormatError("file not found", path=path)
    return ParquetParts([str(path)], single=True)


def read_with_ray(path: str | Path, **read_kwargs):
    """A lazy ``ray.data.Dataset`` over the dataset's parts, read by Ray's tasks wherever they run (an object
    store through its pyarrow file system, whose endpoint travels with the tasks; credentials come from each
    worker's environment, which the driver's connection passes on: :mod:`raygex.runtime.ray_session`)."""
    import ray.data

    parts = parquet_parts(path)
    filesystem = parts.filesystem
    if counter := read_counter_name():  # `raygex bench scale`: bytes read per node, counted by the read tasks
        from pyarrow import fs as pafs

        filesystem = counted(filesystem or pafs.LocalFileSystem(), counter)
    return ray.data.read_parquet(parts.files, filesystem=filesystem, **read_kwargs)


def dataset_exists(path: str | Path) -> bool:
    """Whether the dataset is there to read (a file, a folder of parts, or an object or prefix on a store)."""
    try:
        parquet_parts(path)
    except InputFormatError:
        return False
    return True


def read_schema(path: str | Path) -> pa.Schema:
    """The schema of a canonical dataset, checked for the required columns and gene metadata."""
    parts = parquet_parts(path)
    try:
        sch = pq.read_schema(parts.files[0], filesystem=parts.filesystem)
    except (pa.ArrowInvalid, OSError) as err:
        raise InputFormatError(f"not a readable Parquet file ({err})", path=parts.files[0]) from None
    meta = sch.metadata or {}
    if meta.get(names.META_FORMAT, b"").decode(errors="replace").startswith("graph/"):
        raise InputFormatError("a raygex gene graph, not an expression dataset", path=path)
    if names.META_GENES not in meta:
        raise InputFormatError("Parquet file has no raygex gene order in its metadata; import it with "
                               "'raygex data import' first", path=path)
    for name in (names.SAMPLE_ID, names.EXPRESSION):
        if name not in sch.names:
            raise InputFormatError(f"Parquet file has no {name!r} column", path=path)
    typ = sch.field(names.EXPRESSION).type
    n_genes = len(json.loads(meta[names.META_GENES]))
    if not (pa.types.is_fixed_size_list(typ) and typ.list_size == n_genes and pa.types.is_float32(typ.value_type)):
        raise InputFormatError(f"column 'expression' must be fixed_size_list<float32>[{n_genes}], but got {typ}",
                               path=path)
    return sch


def read_genes(path: str | Path) -> list[str]:
    return json.loads(read_schema(path).metadata[names.META_GENES])


def read_provenance(path: str | Path) -> dict:
    return json.loads(read_schema(path).metadata.get(names.META_PROVENANCE, b"{}"))


def read_content_hash(path: str | Path) -> str | None:
    """The content hash recorded when the dataset was written (None for a dataset written before it was)."""
    parts = parquet_parts(path)
    value = (pq.read_metadata(parts.files[-1], filesystem=parts.filesystem).metadata or {}).get(
        names.META_CONTENT_SHA256)
    return value.decode() if value else None


def label_columns(sch: pa.Schema) -> list[str]:
    return [n for n in sch.names if n not in (names.SAMPLE_ID, names.EXPRESSION)]


def read_labels(path: str | Path) -> pd.DataFrame:
    """The sample ids and label columns of a canonical dataset, without the expression (cheap: for checks)."""
    columns = [names.SAMPLE_ID, *label_columns(read_schema(path))]
    parts = parquet_parts(path)
    return pa.concat_tables([pq.read_table(f, columns=columns, filesystem=parts.filesystem)
                             for f in parts.files]).to_pandas()


def expression_to_numpy(column: pa.ChunkedArray | pa.Array, n_genes: int) -> np.ndarray:
    """A fixed_size_list<float32> column as a [rows, n_genes] float32 array (zero-copy for one chunk)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, n_genes) for chunk in chunks]
    if not parts:
        return np.empty((0, n_genes), dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def batch_to_arrays(batch: pa.RecordBatch | pa.Table, n_genes: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(sample ids, float32 [rows, genes], label frame) from Arrow data in the canonical layout."""
    ids = batch.column(names.SAMPLE_ID).to_numpy(zero_copy_only=False).astype(str)
    block = expression_to_numpy(batch.column(names.EXPRESSION), n_genes)
    obs = batch.drop_columns([names.SAMPLE_ID, names.EXPRESSION]).to_pandas()
    return ids, block, obs


def iter_batches(path: str | Path, batch_rows: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, pd.DataFrame]]:
    """Yield (sample_ids, expression block, label frame) from a canonical dataset, a bounded block at a time."""
    sch = read_schema(path)
    n_genes = len(json.loads(sch.metadata[names.META_GENES]))
    parts = parquet_parts(path)
    dataset = pads.dataset(parts.files, format="parquet", filesystem=parts.filesystem)
    for batch in dataset.to_batches(batch_size=batch_rows):
        yield batch_to_arrays(batch, n_genes)


def matrix_bytes(path: str | Path) -> int:
    """float32 bytes of the dataset's whole expression matrix (samples x genes), from the Parquet footers."""
    parts = parquet_parts(path)
    rows = sum(pq.read_metadata(f, filesystem=parts.filesystem).num_rows for f in parts.files)
    return rows * len(read_genes(path)) * 4


def read_dataset(path: str | Path) -> ExpressionDataset:
    """Read a canonical dataset (file or directory of parts) fully into memory."""
    sch = read_schema(path)
    meta = sch.metadata
    genes = json.loads(meta[names.META_GENES])
    parts = parquet_parts(path)
    table = pads.dataset(parts.files, format="parquet", filesystem=parts.filesystem).to_table()
    ids, expression, obs = batch_to_arrays(table, len(genes))
    provenance = json.loads(meta.get(names.META_PROVENANCE, b"{}"))
    return ExpressionDataset(ids, expression, genes, obs, provenance)
