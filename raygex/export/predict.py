"""Running an exported model on new samples: :func:`load_model` (``raygex.load_model``), whatever order or
container their genes come in, and :func:`predict_file` (`raygex predict`), which streams any expression file
through a model into a CSV of classes and probabilities.

Inputs of :func:`predict_file` are read in blocks by the same readers as `raygex data import` (so a 10 GB matrix
never sits in memory at once); with ``address`` a Parquet dataset is read with Ray Data instead. The CSV appears
only when complete. Columns that are not genes of the model (label or clinical columns, other genes) are never
parsed, only counted; a label column may score the predictions (:class:`Scorer`). An AnnData input is read from
the matrix the model was trained on (metadata ``h5ad``: ``.X``, a layer or ``.raw``).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from raygex.errors import InputFormatError
from raygex.genes import GeneTable, id_kind
from raygex.export.archive import read_torchscript
from raygex.files.fileio import atomic_path
from raygex.files.remote_files import fetch_file, local_input, put_file
from raygex.files.storage import is_uri, open_remote
from raygex.export.scoring import Scorer
from raygex.runtime.ray_session import connect

FILL_POLICIES = ("mean", "zero")
LAYOUTS = {"genes-by-samples": "xena", "samples-by-genes": "table"}  # `raygex predict --layout` → reader format
logger = logging.getLogger(__name__)


class LoadedModel:
    """An exported raygex model: ``genes``, ``classes``, ``metadata``, ``predict``, ``predict_proba`` and ``score``.

    Inputs may be a pandas DataFrame (samples × genes, columns in any order; columns that are not genes of the
    model, such as labels, are ignored and counted), an AnnData (``var_names`` are genes; read from the matrix the
    model was trained on: ``.X``, a layer or ``.raw``), or a NumPy array already in ``genes`` order. Missing genes are an error unless
    ``allow_missing`` names a fill policy: ``"mean"`` (the gene's training mean, i.e. a neutral input) or
    ``"zero"``; a warning then says how many were filled.
    """

    def __init__(self, module, metadata: dict, path: Path, device: str = "cpu"):
        self.module, self.metadata, self.path = module, metadata, path
        self.device = torch.device(device)
        self._mean = module.mean.detach().cpu().numpy()  # the training means, on the host (missing-gene fill)
        self.module.to(self.device)
        self.genes: list[str] = list(metadata["genes"])
        self.classes: list[str] = list(metadata["classes"])
        self._index = {gene: i for i, gene in enumerate(self.genes)}
        self._table: GeneTable | None = None  # raygex's gene id table, read when an input needs it

    def __repr__(self) -> str:
        return (f"LoadedModel({self.path.name}: task {self.metadata['task'].get('name')!r}, "
                f"{self.metadata['hyperparameters'].get('model')}, {len(self.genes)} genes, classes {self.classes})")

    def to_matrix(self, x, allow_missing: str | None = None, *, label: str | None = None) -> np.ndarray:
        """``x`` as float32 [samples, n_genes] in the model's gene order. Columns that are not genes of the model
        are ignored (and counted in an info log line), except ``label``, a label column being scored."""
        if allow_missing is not None and allow_missing not in FILL_POLICIES:
            raise ValueError(f"allow_missing must be one of {FILL_POLICIES} or None, but got {allow_missing!r}")
        if isinstance(x, pd.DataFrame):
            names = [str(c) for c in x.columns]
            maps = not _positional(names)  # columns 0..n-1 (a DataFrame made from an array) name no gene ids
            used = [i for i, name in enumerate(names) if self.knows(name, maps)]
            self._log_ignored([n for n in names if not self.knows(n, maps) and n != label])
            frame = x.iloc[:, used] if len(used) < len(names) else x
            return self._align(self._numeric(frame), [str(c) for c in frame.columns], allow_missing,
                               "DataFrame columns")
        if hasattr(x, "var_names") and hasattr(x, "X"):  # AnnData, without importing anndata
            matrix, names, what = self._anndata_matrix(x)
            self._log_ignored([n for n in names if not self.knows(n)])
            matrix = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
            return self._align(matrix, names, allow_missing, what)
        matrix = np.asarray(x)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.genes):
            raise InputFormatError(f"a NumPy input must be [samples, {len(self.genes)}] in the model's gene order, "
                                   f"but got shape {matrix.shape}")
        return _as_float32(matrix, "input")

    @staticmethod
    def _numeric(frame: pd.DataFrame) -> np.ndarray:
        """The model's gene columns as numbers; a value that is no number is an error naming its gene and value."""
        converted = False
        for position, column in enumerate(frame.columns):
            values = frame.iloc[:, position]
            if pd.api.types.is_numeric_dtype(values):
                continue
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna() & values.notna()
            if bad.any():
                raise InputFormatError(f"non-numeric expression value {values[bad].iloc[0]!r} in gene column "
                                       f"{str(column)!r} (sample {str(values[bad].index[0])!r})")
            frame = frame if converted else frame.copy()
            frame.isetitem(position, numbers)
            converted = True
        return frame.to_numpy(dtype=np.float32, na_value=np.nan)

    def _anndata_matrix(self, adata) -> tuple:
        """(matrix, gene names, description) of the AnnData matrix the model was trained on (metadata ``h5ad``)."""
        spec = self.metadata.get("h5ad") or {}
        if spec.get("raw"):
            if getattr(adata, "raw", None) is None:
                raise InputFormatError("the model was trained on .raw.X of an .h5ad, but the AnnData has no .raw",
                                       path=self.path)
            return adata.raw.X, [str(g) for g in adata.raw.var_names], "AnnData .raw var_names"
        layer = spec.get("layer")
        if layer:
            if layer not in adata.layers:
                raise InputFormatError(f"the model was trained on layer {layer!r} of an .h5ad, but the AnnData has "
                                       f"no such layer (layers: {list(adata.layers)})", path=self.path)
            return adata.layers[layer], [str(g) for g in adata.var_names], f"AnnData layer {layer!r}"
        return adata.X, [str(g) for g in adata.var_names], "AnnData var_names"

    def mapped_gene(self, name: str, map_ids: bool = True) -> str | None:
        """The gene of the model an input column named ``name`` holds: itself, or the approved symbol raygex's gene
        table maps it to (an Ensembl id with or without version, an Entrez id, a previous symbol), as
        `raygex data import` maps a dataset's ids; None when it is no gene of the model."""
        if name in self._index or not map_ids:
            return name if name in self._index else None
        if self._table is None:
            self._table = GeneTable.default()
        symbol, _ = self._table.resolve(name, id_kind(name))
        return symbol if symbol in self._index else None

    def knows(self, name: str, map_ids: bool = True) -> bool:
        """Whether an input column named ``name`` holds a gene of the model (see :meth:`mapped_gene`)."""
        return self.mapped_gene(name, map_ids) is not None

    def ignored_line(self, ignored: list[str]) -> str:
        """One line saying how many input columns were ignored (not genes of the model), naming the first few."""
        shown = ", ".join(ignored[:5]) + (", ..." if len(ignored) > 5 else "")
        return (f"ignored {len(ignored)} input column(s) that are not among the model's {len(self.genes)} genes: "
                f"{shown}")

    def _log_ignored(self, ignored: list[str]) -> None:
        if ignored:
            logger.info(self.ignored_line(ignored))

    def _align(self, matrix: np.ndarray, names: list[str], allow_missing: str | None, what: str) -> np.ndarray:
        return self.column_plan(names, allow_missing, what).apply(matrix)

    def column_plan(self, names: list[str], allow_missing: str | None = None, what: str = "input", *,
                    fill_hint: str = "pass allow_missing='mean' or 'zero' to fill them") -> "ColumnPlan":
        """How to turn matrices with columns ``names`` into the model's gene order (checked, and warned, once).

        Missing genes are an error naming the model file, how many are missing and the first few; ``fill_hint``
        ends that message (the CLI names its ``--allow-missing`` option there).
        """
        positions: dict[str, int] = {}
        for column, name in enumerate(names):
            if name in self._index:
                positions.setdefault(name, column)
        if len(positions) < len(self.genes) and not _positional(names):  # ids the gene table maps to missing genes
            mapped = 0
            for column, name in enumerate(names):
                gene = None if name in self._index else self.mapped_gene(name)
                if gene is not None and gene not in positions:
                    positions[gene], mapped = column, mapped + 1
            if mapped:
                logger.info(f"{what}: {mapped} gene id(s) mapped to the model's symbols with {self._table.label()}")
        missing = [gene for gene in self.genes if gene not in positions]
        if missing and allow_missing is None:
            raise InputFormatError(f"{len(missing)} of the model's {len(self.genes)} genes are missing from the "
                                   f"{what} (first: {missing[:5]}); {fill_hint}", path=self.path)
        fill = None
        if missing:
            rows = np.array([self._index[g] for g in missing])
            fill = (rows, self._mean[rows] if allow_missing == "mean" else np.float32(0.0))
            warnings.warn(f"{len(missing)} of {len(self.genes)} genes ({len(missing) / len(self.genes):.1%}) were "
                          f"missing and filled with {'their training mean' if allow_missing == 'mean' else 0}",
                          UserWarning, stacklevel=3)
        present = np.array([self._index[g] for g in self.genes if g in positions], dtype=np.int64)
        source = np.array([positions[g] for g in self.genes if g in positions], dtype=np.int64)
        return ColumnPlan(len(self.genes), present, source, fill, what, [self.genes[i] for i in present])

    @torch.no_grad()
    def predict_proba(self, x, allow_missing: str | None = None, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities [samples, n_classes], columns in ``classes`` order."""
        matrix = self.to_matrix(x, allow_missing)
        parts = [self.module(torch.from_numpy(matrix[i:i + batch_size]).to(self.device)).cpu().numpy()
                 for i in range(0, len(matrix), batch_size)]
        return np.concatenate(parts) if parts else np.empty((0, len(self.classes)), dtype=np.float32)

    def predict(self, x, allow_missing: str | None = None) -> np.ndarray:
        """The most probable class name per sample."""
        return np.asarray(self.classes, dtype=object)[self.predict_proba(x, allow_missing).argmax(axis=1)]

    def score(self, x, labels, allow_missing: str | None = None) -> dict:
        """Score the predictions for ``x`` against ``labels``: a column of a DataFrame (or of an AnnData's
        ``.obs``), or the labels themselves, one per sample. Returns :meth:`Scorer.result`'s dict: ``auc`` (macro
        one-vs-rest), ``accuracy``, ``balanced_accuracy``, ``loss``, ``n_scored``, and the samples left out
        (``n_missing_label``; ``n_unknown_class``, with ``unknown_classes``: a class the model does not know)."""
        column = labels if isinstance(labels, str) else None
        if column is not None:
            if isinstance(x, pd.DataFrame) and column in x.columns:
                values = x[column].to_numpy(dtype=object)
            elif hasattr(x, "obs") and hasattr(x, "var_names") and column in x.obs.columns:
                values = x.obs[column].to_numpy(dtype=object)
            elif isinstance(x, pd.DataFrame) or hasattr(x, "obs"):
                where = "DataFrame's columns" if isinstance(x, pd.DataFrame) else "AnnData's .obs"
                raise InputFormatError(f"label column {column!r} not found in the {where}")
            else:
                raise InputFormatError("labels given as a column name need a DataFrame or AnnData input; pass the "
                                       "labels themselves (one per sample) with a NumPy input")
        else:
            values = np.asarray(labels, dtype=object).ravel()
        proba = self.predict_proba(self.to_matrix(x, allow_missing, label=column))
        if len(values) != len(proba):
            raise InputFormatError(f"labels: one per sample ({len(proba)}), but got {len(values)}")
        scorer = Scorer(self.classes, column)
        scorer.add(values, proba)
        return scorer.result()


class ColumnPlan:
    """Reorders (and fills) the columns of input blocks into a model's gene order."""

    def __init__(self, n_genes: int, present: np.ndarray, source: np.ndarray, fill, what: str,
                 genes: list[str] | None = None):
        self.n_genes, self.present, self.source, self.fill, self.what = n_genes, present, source, fill, what
        self.genes = genes  # the input's gene name for each column of ``source``, to name a bad value's gene

    def apply(self, matrix: np.ndarray, sample_ids=None) -> np.ndarray:
        """The model's input for ``matrix``; ``sample_ids`` (one per row) only name a bad value's sample."""
        values = _as_float32(np.asarray(matrix)[:, self.source], self.what, sample_ids, self.genes)
        out = np.empty((len(values), self.n_genes), dtype=np.float32)
        out[:, self.present] = values
        if self.fill is not None:
            out[:, self.fill[0]] = self.fill[1]
        return out


def _as_float32(matrix: np.ndarray, what: str, sample_ids=None, genes: list[str] | None = None) -> np.ndarray:
    try:
        values = np.asarray(matrix, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputFormatError(f"{what}: expression values must be numeric") from None
    if not np.isfinite(values).all():
        rows, cols = np.nonzero(~np.isfinite(values))
        row = f"sample {str(sample_ids[rows[0]])!r}" if sample_ids is not None else f"row {rows[0]}"
        col = f"gene {genes[cols[0]]!r}" if genes is not None else f"column {cols[0]}"
        raise InputFormatError(f"{what}: {len(rows)} missing or non-finite value(s), the first "
                               f"({values[rows[0], cols[0]]}) at {row}, {col}")
    return np.ascontiguousarray(values)


def resolve_device(device: str | None) -> str:
    """``auto`` / None: CUDA when present, else the CPU; ``cuda`` without CUDA is a one-line error."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputFormatError(f"device {device!r}: CUDA is not available on this machine (use cpu or auto)")
    return str(device)


def load_model(path: str | Path, device: str | None = "cpu") -> LoadedModel:
    """Load a model written by `raygex search`/`raygex export` (a ``.pt`` TorchScript archive), on ``device``
    (``cpu``, ``cuda``, ``cuda:1`` or ``auto``)."""
    module, metadata = read_torchscript(path)
    n_genes = int(module.mean.shape[0])
    if len(metadata["genes"]) != n_genes:
        raise InputFormatError(f"model metadata lists {len(metadata['genes'])} genes but the network takes {n_genes}",
                               path=path)
    return LoadedModel(module, metadata, Path(path), resolve_device(device))


def _positional(names: list[str]) -> bool:
    """Column names 0, 1, …, n-1: positions (a DataFrame made from an array), not Entrez ids."""
    return len(names) > 1 and all(name == str(i) for i, name in enumerate(names))


class _ModelColumns:
    """The input columns a table reader parses: those holding a gene of the model (:meth:`LoadedModel.knows`)."""

    def __init__(self, model: LoadedModel):
        self.model = model

    def __contains__(self, name) -> bool:
        return self.model.knows(str(name))


def _open_input(model: LoadedModel, path: Path, layout: str, labels: str | None, address: str | None):
    """(gene names, ignored columns, batches(batch_size) → (ids, block, label frame)) for ``path``; everything
    that can be checked is checked here, before any output: the format, the label column, the AnnData matrix."""
    if address is not None or path.is_dir():  # a directory of Parquet parts: Ray Data reads them in parallel
        from raygex.data import canonical

        schema, genes = canonical.read_schema(path), canonical.read_genes(path)  # errors before Ray starts
        _check_label(labels, canonical.label_columns(schema), path)

        def batches(batch_size: int):
            from raygex.data.ray_io import read_expression

            connect(None if address in (None, "auto") else address)
            for batch in read_expression(path).iter_batches(batch_size=batch_size, batch_format="pyarrow"):
                yield canonical.batch_to_arrays(batch, len(genes))

        return genes, [g for g in genes if not model.knows(g)], batches
    from raygex.data import readers

    fmt = readers.detect_format(path, LAYOUTS.get(layout, layout))
    if fmt == "table":  # only the model's genes are parsed: label or clinical columns are never an error
        source = readers.open_table(path, [labels] if labels else None, keep=_ModelColumns(model))
    elif fmt == "h5ad":
        source = _open_h5ad(model, path, labels)
    elif fmt == "xena":
        if labels:
            raise InputFormatError(f"label column {labels!r} not found: a genes × samples (Xena) matrix holds no "
                                   "label columns (a samples × genes table: pass --layout samples-by-genes)",
                                   path=path)
        source = readers.open_xena(path)
    else:
        source = readers.open_parquet(path)
        _check_label(labels, source.obs_schema.names, path)
    ignored = source.details.get("ignored_columns", [g for g in source.genes if not model.knows(g)])

    def batches(batch_size: int):
        for ids, block, obs in source.blocks():
            for start in range(0, len(ids), batch_size):
                yield ids[start:start + batch_size], block[start:start + batch_size], obs.iloc[start:start + batch_size]

    return source.genes, ignored, batches


def _check_label(label: str | None, columns: list[str], path: Path) -> None:
    if label is not None and label not in columns:
        raise InputFormatError(f"label column {label!r} not found (label columns: {list(columns)})", path=path)


def _open_h5ad(model: LoadedModel, path: Path, labels: str | None):
    """The .h5ad's matrix the model was trained on (metadata ``h5ad``: a layer, ``.raw`` or ``.X``)."""
    from raygex.data.readers import open_h5ad

    spec = model.metadata.get("h5ad") or {}
    layer, raw = spec.get("layer"), bool(spec.get("raw"))
    try:
        return open_h5ad(path, [labels] if labels else None, layer, raw)
    except InputFormatError as err:
        detail = str(err)[len(err.path) + 2:] if err.path else str(err)
        if not (layer or raw) or not ("layer" in detail or ".raw" in detail):
            raise
        trained_on = ".raw.X" if raw else f"layer {layer!r}"
        raise InputFormatError(f"{detail.removesuffix(' (drop --raw)')}: the model {model.path.name} was trained on "
                               f"{trained_on} of an .h5ad and reads the same matrix here", path=path) from None


def predict_file(model_path, input_path, output, *, allow_missing: str | None = None, layout: str = "auto",
                 batch_size: int = 4096, address: str | None = None, device: str | None = "cpu",
                 labels: str | None = None) -> dict:
    """Predict every sample of ``input_path`` on ``device`` (cpu, cuda, auto); returns {"samples", "classes",
    "ignored_columns" (input columns that are not genes of the model: never parsed), "ignored_line", "scores", "metric" (the
    task's selection metric, when recorded)}.
    ``labels`` names a label column to score the predictions against (:meth:`Scorer.result`; else "scores" is
    None). ``model_path``, ``input_path`` and ``output`` may be object-store URIs (``s3://``, ``gs://``): the model
    and the input (a file, or a folder of Parquet parts) are fetched first, the CSV uploaded once complete."""
    if is_uri(output):
        open_remote(str(output))  # an unsupported scheme or missing credentials: before any work
        with tempfile.TemporaryDirectory(prefix="raygex-predict-") as folder:
            local = Path(folder) / str(output).rstrip("/").rsplit("/", 1)[-1].split("?")[0]
            report = predict_file(model_path, input_path, local, allow_missing=allow_missing, layout=layout,
                                  batch_size=batch_size, address=address, device=device, labels=labels)
            put_file(local, str(output))
        return report
    model = load_model(fetch_file(str(model_path)) if is_uri(model_path) else model_path, device)
    if is_uri(input_path):
        input_path = local_input(str(input_path), "INPUT")
    genes, ignored, batches = _open_input(model, Path(input_path), layout, labels, address)
    plan = model.column_plan(list(genes), allow_missing, f"input {input_path}",
                             fill_hint="pass --allow-missing mean or zero to fill them")
    scorer = Scorer(model.classes, labels) if labels else None
    columns = ["sample_id", "predicted", *[f"p_{c}" for c in model.classes]]
    samples = 0
    with atomic_path(output) as tmp:
        with open(tmp, "w", newline="") as handle:
            handle.write(",".join(columns) + "\n")
            for ids, block, obs in batches(batch_size):
                proba = model.predict_proba(plan.apply(block, ids))
                frame = pd.DataFrame(proba, columns=columns[2:])
                frame.insert(0, "predicted", np.asarray(model.classes, dtype=object)[proba.argmax(axis=1)])
                frame.insert(0, "sample_id", np.asarray(ids).astype(str))
                frame.to_csv(handle, header=False, index=False, float_format="%.6g")
                samples += len(frame)
                if scorer is not None:
                    scorer.add(obs[labels].to_numpy(dtype=object), proba)
    return {"samples": samples, "classes": model.classes, "ignored_columns": len(ignored),
            "ignored_line": model.ignored_line(list(ignored)) if ignored else None,
            "scores": scorer.result() if scorer is not None else None,
            "metric": str((model.metadata.get("selection") or {}).get("metric") or "").removeprefix("valid_") or None}
