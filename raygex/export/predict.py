"""Running an exported model on new samples: :func:`load_model` (``raygex.load_model``), whatever order or
container their genes come in, and :func:`predict_file` (`raygex predict`), which streams any expression file
through a model into a CSV of classes and probabilities.

Inputs of :func:`predict_file` are read in blocks by the same readers as `raygex data import` (so a 10 GB matrix
never sits in memory at once); with ``address`` a Parquet dataset is read with Ray Data instead. The CSV appears
only when complete.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from raygex.errors import InputFormatError
from raygex.export.archive import read_torchscript
from raygex.files.fileio import atomic_path
from raygex.files.remote_files import fetch_file, local_input, put_file
from raygex.files.storage import is_uri, open_remote
from raygex.runtime.ray_session import connect

FILL_POLICIES = ("mean", "zero")


class LoadedModel:
    """An exported raygex model: ``genes``, ``classes``, ``metadata``, ``predict`` and ``predict_proba``.

    Inputs may be a pandas DataFrame (samples × genes, columns in any order, extra genes ignored), an AnnData
    (``var_names`` are genes), or a NumPy array already in ``genes`` order. Missing genes are an error unless
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

    def __repr__(self) -> str:
        return (f"LoadedModel({self.path.name}: task {self.metadata['task'].get('name')!r}, "
                f"{self.metadata['hyperparameters'].get('model')}, {len(self.genes)} genes, classes {self.classes})")

    def to_matrix(self, x, allow_missing: str | None = None) -> np.ndarray:
        """``x`` as float32 [samples, n_genes] in the model's gene order."""
        if allow_missing is not None and allow_missing not in FILL_POLICIES:
            raise ValueError(f"allow_missing must be one of {FILL_POLICIES} or None, but got {allow_missing!r}")
        if isinstance(x, pd.DataFrame):
            bad = [str(c) for c in x.columns if str(c) in self._index and not pd.api.types.is_numeric_dtype(x[c])]
            if bad:
                raise InputFormatError(f"gene column(s) {bad[:5]} hold non-numeric values ({len(bad)} such genes)")
            return self._align(x.to_numpy(), [str(c) for c in x.columns], allow_missing, "DataFrame columns")
        if hasattr(x, "var_names") and hasattr(x, "X"):  # AnnData, without importing anndata
            matrix = x.X.toarray() if hasattr(x.X, "toarray") else np.asarray(x.X)
            return self._align(matrix, [str(g) for g in x.var_names], allow_missing, "AnnData var_names")
        matrix = np.asarray(x)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.genes):
            raise InputFormatError(f"a NumPy input must be [samples, {len(self.genes)}] in the model's gene order, "
                                   f"but got shape {matrix.shape}")
        return _as_float32(matrix, "input")

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


def _blocks(input_path: Path, layout: str, batch_size: int, address: str | None):
    """(sample ids, float32 block, gene names) per batch."""
    if address is not None or input_path.is_dir():  # a directory of Parquet parts: Ray Data reads them in parallel
        from raygex.data import canonical
        from raygex.data.ray_io import read_expression

        genes = canonical.read_genes(input_path)  # a bad dataset is an error before Ray starts
        connect(None if address in (None, "auto") else address)
        for batch in read_expression(input_path).iter_batches(batch_size=batch_size, batch_format="pyarrow"):
            ids, block, _ = canonical.batch_to_arrays(batch, len(genes))
            yield ids, block, genes
        return
    from raygex.data.readers import open_source

    source = open_source(input_path, layout=layout)
    for ids, block, _ in source.blocks():
        for start in range(0, len(ids), batch_size):
            yield ids[start:start + batch_size], block[start:start + batch_size], source.genes


def predict_file(model_path, input_path, output, *, allow_missing: str | None = None, layout: str = "auto",
                 batch_size: int = 4096, address: str | None = None, device: str | None = "cpu") -> dict:
    """Predict every sample of ``input_path`` on ``device`` (cpu, cuda, auto); returns {"samples", "classes"}.
    ``model_path``, ``input_path`` and ``output`` may be object-store URIs (``s3://``, ``gs://``): the model and
    the input (a file, or a folder of Parquet parts) are fetched first, the CSV uploaded once complete."""
    if is_uri(output):
        open_remote(str(output))  # an unsupported scheme or missing credentials: before any work
        with tempfile.TemporaryDirectory(prefix="raygex-predict-") as folder:
            local = Path(folder) / str(output).rstrip("/").rsplit("/", 1)[-1].split("?")[0]
            report = predict_file(model_path, input_path, local, allow_missing=allow_missing, layout=layout,
                                  batch_size=batch_size, address=address, device=device)
            put_file(local, str(output))
        return report
    model = load_model(fetch_file(str(model_path)) if is_uri(model_path) else model_path, device)
    if is_uri(input_path):
        input_path = local_input(str(input_path), "INPUT")
    columns = ["sample_id", "predicted", *[f"p_{c}" for c in model.classes]]
    plan, plan_genes, samples = None, None, 0
    with atomic_path(output) as tmp:
        with open(tmp, "w", newline="") as handle:
            handle.write(",".join(columns) + "\n")
            for ids, block, genes in _blocks(Path(input_path), layout, batch_size, address):
                if plan is None or genes is not plan_genes:
                    plan = model.column_plan(list(genes), allow_missing, f"input {input_path}",
                                             fill_hint="pass --allow-missing mean or zero to fill them")
                    plan_genes = genes
                proba = model.predict_proba(plan.apply(block, ids))
                frame = pd.DataFrame(proba, columns=columns[2:])
                frame.insert(0, "predicted", np.asarray(model.classes, dtype=object)[proba.argmax(axis=1)])
                frame.insert(0, "sample_id", np.asarray(ids).astype(str))
                frame.to_csv(handle, header=False, index=False, float_format="%.6g")
                samples += len(frame)
    return {"samples": samples, "classes": model.classes}
