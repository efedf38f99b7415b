"""Readers for the expression files users have, each yielding blocks of samples.

Every reader opens a file, checks its header, and exposes the same small interface (:class:`Source`): the gene
names as written in the file, the Arrow schema of its label columns, and an iterator over
``(sample_ids, float32 block [samples, genes], labels frame)``. The importer (``importer.py``) does the rest
(symbol harmonisation, missing values, writing), so a new format is one new reader here.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

from raygex.data import canonical
from raygex.errors import InputFormatError

Block = tuple[np.ndarray, np.ndarray, pd.DataFrame]
FORMATS = ("xena", "table", "h5ad", "parquet")
XENA_FIRST_COLUMNS = {"sample", "gene", "genes", "gene_id", "gene_symbol", "hugo_symbol", "symbol"}
TEXT_SUFFIXES = {".tsv", ".csv", ".txt", ".tab", ""}
PARSE_BLOCK_BYTES = 16 * 2**20  # pyarrow CSV block size: measured fastest on 10k x 20k Xena matrices here
SAMPLE_BLOCK_ROWS = 2048


@dataclass
class Source:
    """An opened expression file: gene names as written, label schema, and a block iterator factory."""

    path: Path
    format: str
    genes: list[str]
    obs_schema: pa.Schema
    blocks: Callable[[], Iterator[Block]]
    details: dict


def _stripped_suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


def _read_header(path: Path) -> tuple[list[str], str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="") as handle:
            line = handle.readline()
            while line.startswith("#"):
                line = handle.readline()
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise InputFormatError(f"cannot read as text ({err.__class__.__name__}: {err})", path=path) from None
    if not line.strip():
        raise InputFormatError("file is empty (no header line)", path=path)
    delimiter = "\t" if "\t" in line else ","
    header = [h.strip().strip('"') for h in line.rstrip("\r\n").split(delimiter)]
    if len(header) < 2:
        raise InputFormatError("header has a single column: expected a sample/gene id column and values", path=path)
    return header, delimiter


def detect_format(path: str | Path, layout: str = "auto", *, labels: list[str] | None = None,
                  clinical: str | Path | None = None) -> str:
    """Which reader to use: from the suffix, and for text files from the header (Xena vs samples × genes)."""
    path = Path(path)
    if not path.exists():
        raise InputFormatError("file not found", path=path)
    if path.is_file() and path.stat().st_size == 0:
        raise InputFormatError("file is empty", path=path)
    if layout not in ("auto", *FORMATS):
        raise InputFormatError(f"layout must be one of auto, {', '.join(FORMATS)}, but got {layout!r}")
    if layout != "auto":
        return layout
    suffix = _stripped_suffix(path)
    if suffix == ".h5ad":
        return "h5ad"
    if suffix == ".parquet" or path.is_dir():
        return "parquet"
    if suffix not in TEXT_SUFFIXES:
        raise InputFormatError(
            f"unknown format {suffix!r}: expected .tsv/.csv/.txt (optionally .gz, Xena genes × samples or "
            "samples × genes), .h5ad or .parquet; or pass --layout", path=path)
    if clinical is not None:
        return "xena"
    header, _ = _read_header(path)
    if not labels and header[0].strip().lower() in XENA_FIRST_COLUMNS:
        return "xena"
    return "table"


# ------------------------------------------------------------------------------------------------ text files
_CONVERSION = re.compile(r"In CSV column #(\d+): .*invalid value '([^']*)'")


def _csv_error(err: Exception, path: Path, header: list[str], what: str) -> InputFormatError:
    match = _CONVERSION.search(str(err))
    if match:
        column = header[int(match.group(1))]
        return InputFormatError(f"non-numeric expression value {match.group(2)!r} in {what} {column!r}", path=path)
    first_line = str(err).splitlines()[0] if str(err) else err.__class__.__name__
    return InputFormatError(f"cannot parse as a delimited table ({first_line})", path=path)


def _read_error(err: Exception, path: Path) -> InputFormatError:
    first_line = str(err).splitlines()[0] if str(err) else err.__class__.__name__
    return InputFormatError(f"file is truncated or damaged ({first_line})", path=path)


def _csv_options(path: Path, header: list[str], delimiter: str, types: dict, *, block: int = PARSE_BLOCK_BYTES):
    skip = 0
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="") as handle:
        while handle.readline().startswith("#"):
            skip += 1
    return dict(
        read_options=pcsv.ReadOptions(column_names=header, skip_rows=skip + 1, block_size=block),
        parse_options=pcsv.ParseOptions(delimiter=delimiter),
        convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=True))


def _batch_matrix(batch: pa.RecordBatch | pa.Table, columns: list[str], *, row_major: bool) -> np.ndarray:
    """Float32 matrix of ``columns`` (nulls → NaN) built in Arrow's C++ rather than column by column."""
    if not columns:
        return np.empty((batch.num_rows, 0), dtype=np.float32)
    table = batch.select(columns)
    if isinstance(table, pa.Table):
        table = table.combine_chunks().to_batches()[0] if table.num_rows else None
        if table is None:
            return np.empty((0, len(columns)), dtype=np.float32)
    return np.asarray(table.to_tensor(null_to_nan=True, row_major=row_major))


def open_table(path: str | Path, labels: list[str] | None = None, keep: Collection[str] | None = None) -> Source:
    """Samples × genes CSV/TSV (optionally gzip): first column the sample id, ``labels`` columns kept as labels.

    With ``keep`` (a collection of gene names: a model's genes) only those columns are parsed as expression; the
    others are never read (a label or clinical column's text is no error there) and are listed in
    ``details["ignored_columns"]``.
    """
    path = Path(path)
    header, delimiter = _read_header(path)
    labels = list(labels or [])
    missing = [c for c in labels if c not in header[1:]]
    if missing:
        raise InputFormatError(f"label column {missing[0]!r} not found in the header (columns: "
                               f"{header[:6]}{'...' if len(header) > 6 else ''})", path=path)
    id_column = header[0]
    canonical.check_unique(np.asarray(header), "column", path)
    gene_columns = [c for c in header[1:] if c not in labels and (keep is None or c in keep)]
    ignored = [c for c in header[1:] if c not in labels and c not in gene_columns]
    if not gene_columns and keep is None:
        raise InputFormatError("no gene columns left after the id and label columns", path=path)
    types = {c: pa.float32() for c in gene_columns} | {c: pa.string() for c in [id_column, *labels]}
    obs_schema = pa.schema([pa.field(c, pa.string()) for c in labels])

    def blocks() -> Iterator[Block]:
        try:
            options = _csv_options(path, header, delimiter, types)
            if ignored:
                options["convert_options"].include_columns = [id_column, *labels, *gene_columns]
            reader = pcsv.open_csv(path, **options)
            for batch in reader:
                ids = batch.column(id_column).to_numpy(zero_copy_only=False)
                obs = batch.select(labels).to_pandas() if labels else pd.DataFrame(index=range(len(ids)))
                yield ids, _batch_matrix(batch, gene_columns, row_major=True), obs
        except pa.ArrowInvalid as err:
            raise _csv_error(err, path, header, "gene column") from None
        except (OSError, EOFError) as err:  # a truncated or damaged .gz stream
            raise _read_error(err, path) from None

    return Source(path, "table", gene_columns, obs_schema, blocks,
                  {"label_columns": labels, **({"ignored_columns": ignored} if keep is not None else {})})


def _read_clinical(path: Path, labels: list[str] | None) -> pd.DataFrame:
    if not path.is_file():
        raise InputFormatError("clinical matrix not found", path=path)
    if path.stat().st_size == 0:
        raise InputFormatError("clinical matrix is empty", path=path)
    try:
        clinical = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=True, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputFormatError(f"cannot parse clinical matrix ({err})", path=path) from None
    first = clinical.columns[0]
    if first != "sampleID":
        raise InputFormatError(f"clinical matrix's first column must be 'sampleID', but got {first!r}", path=path)
    clinical = clinical.drop_duplicates(subset="sampleID").set_index("sampleID")
    if labels:
        missing = [c for c in labels if c not in clinical.columns]
        if missing:
            raise InputFormatError(f"label column {missing[0]!r} not found in the clinical matrix", path=path)
        clinical = clinical[labels]
    # Numbers stay numbers (ages, survival times); everything else stays text.
    for column in clinical.columns:
        numeric = pd.to_numeric(clinical[column], errors="coerce")
        if numeric.notna().sum() == clinical[column].notna().sum() and numeric.notna().any():
            clinical[column] = numeric
    return clinical


def open_xena(path: str | Path, clinical: str | Path | None = None, labels: list[str] | None = None) -> Source:
    """UCSC Xena / TCGA matrix: genes as rows, samples as columns, first column the gene (header ``sample``).

    The whole matrix is parsed with Arrow's multi-threaded CSV reader and transposed once into samples × genes;
    clinical labels (Xena ``*_clinicalMatrix``, first column ``sampleID``) are joined by sample id.
    """
    path = Path(path)
    header, delimiter = _read_header(path)
    sample_ids = header[1:]
    canonical.check_unique(np.asarray(sample_ids), "sample id", path)
    clinical_frame = _read_clinical(Path(clinical), labels) if clinical is not None else None
    if clinical_frame is None and labels:
        raise InputFormatError("--labels on a Xena matrix needs --clinical (labels come from the clinical matrix)",
                               path=path)
    obs_schema = canonical.obs_to_arrow_schema(clinical_frame) if clinical_frame is not None else pa.schema([])
    types = {c: pa.float32() for c in sample_ids} | {header[0]: pa.string()}
    try:
        table = pcsv.read_csv(path, **_csv_options(path, header, delimiter, types))
    except pa.ArrowInvalid as err:
        raise _csv_error(err, path, header, "sample column") from None
    except (OSError, EOFError) as err:  # a truncated or damaged .gz stream
        raise _read_error(err, path) from None
    genes = table.column(header[0]).to_numpy(zero_copy_only=False).astype(str).tolist()
    # Column-major [genes, samples] from Arrow is a C-contiguous [samples, genes] once transposed.
    matrix = np.empty((len(sample_ids), len(genes)), dtype=np.float32)
    start = 0
    for batch in table.to_batches():
        part = np.asarray(batch.select(sample_ids).to_tensor(null_to_nan=True, row_major=False))
        matrix[:, start:start + len(part)] = part.T
        start += len(part)
    del table
    ids = np.asarray(sample_ids, dtype=object)
    obs_all = (clinical_frame.reindex(ids).reset_index(drop=True) if clinical_frame is not None
               else pd.DataFrame(index=range(len(ids))))
    matched = int(np.isin(ids, clinical_frame.index).sum()) if clinical_frame is not None else None

    def blocks() -> Iterator[Block]:
        for lo in range(0, len(ids), SAMPLE_BLOCK_ROWS):
            hi = min(len(ids), lo + SAMPLE_BLOCK_ROWS)
            yield ids[lo:hi], matrix[lo:hi], obs_all.iloc[lo:hi]

    return Source(path, "xena", genes, obs_schema, blocks,
                  {"clinical": str(clinical) if clinical else None, "samples_with_clinical": matched})


# ------------------------------------------------------------------------------------------- binary formats
def _var_genes(adata, var_column: str, raw: bool, path: Path) -> list[str]:
    """Gene ids from a ``.var`` column (``.raw.var`` with ``raw``; ``.var`` when ``.raw.var`` lacks it but has the
    same genes); missing values become '' (dropped by the importer)."""
    var = adata.raw.var if raw else adata.var
    where = ".raw.var" if raw else ".var"
    if var_column not in var.columns and raw and var_column in adata.var.columns:
        if set(var.index) <= set(adata.var.index):
            var = adata.var.reindex(var.index)
    if var_column not in var.columns:
        raise InputFormatError(f"--var-column {var_column!r} not found in {where} (columns: {list(var.columns)})",
                               path=path)
    values = var[var_column]
    if values.dtype.kind in "fcb":  # integers may be Entrez ids (floats too when whole: 7157.0)
        numbers = values.to_numpy(dtype=float, na_value=np.nan) if values.dtype.kind != "b" else None
        if numbers is None or not np.all(np.isnan(numbers) | (numbers == np.round(numbers))):
            raise InputFormatError(f"--var-column {var_column!r} holds {values.dtype} values, not gene ids; choose "
                                   f"a column of gene symbols or ids (columns: {list(var.columns)})", path=path)
        return ["" if np.isnan(v) else str(int(v)) for v in numbers]
    return ["" if pd.isna(v) else str(v).strip() for v in values.astype(object)]


def open_h5ad(path: str | Path, labels: list[str] | None = None, layer: str | None = None,
              raw: bool = False, var_column: str | None = None) -> Source:
    """AnnData ``.h5ad``: ``.X`` (or ``layer`` / ``.raw.X``), genes from ``var_names`` (or the ``var_column``
    column of ``.var``), labels from ``.obs``."""
    import anndata
    import scipy.sparse

    path = Path(path)
    try:
        adata = anndata.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for a broken file
        raise InputFormatError(f"not a readable .h5ad file ({err.__class__.__name__}: {err})", path=path) from None
    if raw and layer:
        raise InputFormatError("choose either --raw or --layer, not both", path=path)
    if raw:
        if adata.raw is None:
            raise InputFormatError("file has no .raw matrix (drop --raw)", path=path)
        matrix, genes = adata.raw.X, list(adata.raw.var_names)
    elif layer:
        if layer not in adata.layers:
            raise InputFormatError(f"layer {layer!r} not found (layers: {list(adata.layers)})", path=path)
        matrix, genes = adata.layers[layer], list(adata.var_names)
    else:
        matrix, genes = adata.X, list(adata.var_names)
    if matrix is None:
        raise InputFormatError("file has no expression matrix in .X", path=path)
    if var_column is not None:
        genes = _var_genes(adata, var_column, raw, path)
    obs = adata.obs
    if labels:
        missing = [c for c in labels if c not in obs.columns]
        if missing:
            raise InputFormatError(f"label column {missing[0]!r} not found in .obs (columns: {list(obs.columns)})",
                                   path=path)
        obs = obs[labels]
    obs = obs.copy()
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype) or obs[column].dtype == object:
            obs[column] = obs[column].astype(object).where(obs[column].notna(), None).astype(object)
            obs[column] = obs[column].map(lambda v: None if v is None else str(v))
    obs = obs.reset_index(drop=True)
    ids = np.asarray(adata.obs_names, dtype=object)

    def blocks() -> Iterator[Block]:
        for lo in range(0, len(ids), SAMPLE_BLOCK_ROWS):
            hi = min(len(ids), lo + SAMPLE_BLOCK_ROWS)
            part = matrix[lo:hi]
            part = part.toarray() if scipy.sparse.issparse(part) else np.asarray(part)
            if not np.issubdtype(part.dtype, np.number):
                raise InputFormatError(f"expression matrix has non-numeric dtype {part.dtype}", path=path)
            yield ids[lo:hi], part.astype(np.float32, copy=False), obs.iloc[lo:hi]

    source = "raw.X" if raw else (f"layers[{layer!r}]" if layer else "X")
    details = {"matrix": source, **({"var_column": var_column} if var_column is not None else {})}
    return Source(path, "h5ad", genes, canonical.obs_to_arrow_schema(obs), blocks, details)


def open_parquet(path: str | Path) -> Source:
    """A canonical raygex dataset, validated and passed through."""
    path = Path(path)
    sch = canonical.read_schema(path)
    genes = canonical.read_genes(path)
    obs_schema = pa.schema([sch.field(c) for c in canonical.label_columns(sch)])
    return Source(path, "parquet", genes, obs_schema, lambda: canonical.iter_batches(path), {})


def open_source(path: str | Path, *, layout: str = "auto", labels: list[str] | None = None,
                clinical: str | Path | None = None, layer: str | None = None, raw: bool = False,
                var_column: str | None = None) -> Source:
    """Open ``path`` with the reader its format needs."""
    fmt = detect_format(path, layout, labels=labels, clinical=clinical)
    if fmt != "h5ad" and (layer or raw):
        raise InputFormatError("--layer/--raw only apply to .h5ad input", path=path)
    if fmt != "h5ad" and var_column is not None:
        raise InputFormatError("--var-column only applies to .h5ad input (gene ids from a .var column)", path=path)
    if fmt == "xena":
        return open_xena(path, clinical, labels)
    if clinical is not None:
        raise InputFormatError("--clinical applies to Xena matrices (genes as rows) only", path=path)
    if fmt == "table":
        return open_table(path, labels)
    if fmt == "h5ad":
        return open_h5ad(path, labels, layer, raw, var_column)
    if labels:
        raise InputFormatError("--labels does not apply to Parquet input (all its label columns are kept)", path=path)
    return open_parquet(path)
