"""The streaming data path: a study's rows are chosen in the driver from labels alone and read in Ray tasks.

The driver never holds the expression matrix. It reads the sample ids and label columns (column projection:
:func:`raygex.data.canonical.read_labels`) and, for a single-gene task, the target gene's values (one position of
the list column, cut out by a Ray Data map over blocks: :func:`gene_column`); from those it builds the task's
index (:func:`raygex.data.tasks.task_index`) and its split (:class:`StudyPlan`), which name rows by sample id. Ray Data
then reads the expression column in tasks and keeps only the study's rows and input genes
(:func:`selected_rows`), so what a study holds is its own sets, never the matrix:

* a **small** study (its sets within ``data.in_memory_budget_mb``) is assembled in one Ray task into the arrays
  a trial trains on (standardised once, with the aligned graphs): the task's return value lives in the object
  store and trials read it zero-copy, as they always did (:func:`prepare_small`);
* a **large** study's train/valid/test sets stay materialised Ray Datasets whose blocks live in the cluster's
  object stores (spilling to disk when full); its per-gene training statistics come from a Ray Data aggregation
  over the training rows (:func:`moments`), and each trial streams batches from them every epoch, standardising
  each batch on its device (:mod:`raygex.data.streamed_study`, :mod:`raygex.training.loop`).

A run's stages see the dataset through :class:`raygex.data.study_source.StudySource`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from raygex.data import canonical
from raygex.data.trial_data import TrialData
from raygex.errors import ConfigError
from raygex.files import names

SPLITS = ("train", "valid", "test")


@dataclass
class StudyPlan:
    """A study's split on one seed, by sample id: what the Ray tasks read and what the driver keeps (labels)."""

    study: str
    seed: int
    path: str
    genes: list[str]  # the input genes, in the model's order
    classes: list[str]
    columns: np.ndarray | None  # input-gene positions in the dataset (None: every gene, in dataset order)
    masked: bool  # a single-gene task: the first input (the target) is zeroed
    ids: dict  # split -> sample ids, in the split's order
    labels: dict  # split -> int64 labels, aligned with ids
    folds: list | None = None

    @property
    def rows(self) -> int:
        return sum(len(v) for v in self.ids.values())

    @property
    def nbytes(self) -> int:
        """float32 bytes of the study's sets (what the in-memory path would hold)."""
        return self.rows * len(self.genes) * 4

    @property
    def test_ids(self) -> list[str]:
        return [str(s) for s in self.ids["test"]]


# ------------------------------------------------------------------------------------------------ driver side
def read_index(path) -> pd.DataFrame:
    """Sample ids and label columns only (the expression column is never read)."""
    return canonical.read_labels(path)


def _gene_batch(batch, position: int, n_genes: int):
    import pyarrow as pa

    column = batch.column(names.EXPRESSION)
    values = pa.concat_arrays(column.chunks) if isinstance(column, pa.ChunkedArray) else column
    flat = values.flatten().to_numpy(zero_copy_only=False).reshape(-1, n_genes)
    return {"sample_id": batch.column(names.SAMPLE_ID).to_numpy(zero_copy_only=False).astype(str),
            "value": flat[:, position].astype(np.float64)}


def gene_column(path, gene: str, sample_ids: np.ndarray) -> np.ndarray:
    """One gene's values over every sample, in the order of ``sample_ids``: Ray tasks cut the gene's position out
    of each block; the driver receives one float per sample."""
    genes = canonical.read_genes(path)
    position = genes.index(gene)
    ds = canonical.read_with_ray(path).select_columns([names.SAMPLE_ID, names.EXPRESSION])
    parts = ds.map_batches(_gene_batch, fn_kwargs={"position": position, "n_genes": len(genes)},
                           batch_format="pyarrow", batch_size=None, zero_copy_batch=True)
    frame = parts.to_pandas()
    order = pd.Index(frame["sample_id"].astype(str)).get_indexer(np.asarray(sample_ids, dtype=str))
    if (order < 0).any():
        raise ConfigError(f"gene {gene!r}: {int((order < 0).sum())} samples missing from the values read")
    return frame["value"].to_numpy()[order]


def plan_study(config, study: str, graphs: dict, *, seed: int, index: pd.DataFrame | None = None,
               gene_values=None) -> StudyPlan:
    """The study's split on ``seed`` from its labels (and a single-gene target's column), as
    :func:`raygex.data.prepare.trial_data` makes it, without reading an expression value in this process."""
    from raygex.data.prepare import cut_folds, labelled_count
    from raygex.data.tasks import task_index

    path = config.data.expression
    index = read_index(path) if index is None else index
    ids = index[names.SAMPLE_ID].astype(str).to_numpy()
    obs = index.drop(columns=[names.SAMPLE_ID]).reset_index(drop=True)
    genes = canonical.read_genes(path)
    spec = config.task(study)
    task = task_index(spec, obs, ids, genes, gene_values or (lambda gene: gene_column(path, gene, ids)), graphs)
    train, valid = config.train_size(study), config.split.valid
    labelled = labelled_count(config, study, len(task.y))
    folds = config.split.fold_count(labelled)
    if folds is not None:
        train, valid = labelled, 0
    split, labels = task.split(train=train, valid=valid, test=config.split.test, seed=seed,
                               test_seed=config.split.test_seed)
    parts = {"train": split.train, "valid": split.valid, "test": split.test}
    plan = StudyPlan(study, seed, str(path), list(task.genes), list(task.classes), task.columns,
                     task.kind == "single_gene",
                     {name: task.sample_ids[rows].astype(str) for name, rows in parts.items()},
                     {name: np.asarray(labels[rows], dtype=np.int64) for name, rows in parts.items()})
    if folds is not None:
        plan.folds = cut_folds(config, plan.labels["train"], folds, seed)
    return plan


def budget_bytes(config) -> int:
    return int(config.data.in_memory_budget_mb * 2**20)


def is_large(config, plan: StudyPlan) -> bool:
    """Whether the study's sets exceed ``data.in_memory_budget_mb`` (they then stream to trials)."""
    return plan.nbytes > budget_bytes(config)


# ------------------------------------------------------------------------------------------------ task side
def _input_rows(block: np.ndarray, rows: np.ndarray, columns, masked: bool) -> np.ndarray:
    """``rows`` of an expression block cut to the study's input genes (``columns``; None: all), float32 and
    contiguous, with a single-gene task's target (the first input) zeroed."""
    x = block[rows] if columns is None else block[np.ix_(rows, columns)]
    x = np.ascontiguousarray(x, dtype=np.float32)
    if masked:
        x[:, 0] = 0.0
    return x


def _trial_data(plan: StudyPlan, arrays: dict):
    """The study's raw :class:`~raygex.data.trial_data.TrialData` from its per-split input arrays."""
    return TrialData(arrays["train"], plan.labels["train"], arrays["valid"], plan.labels["valid"], arrays["test"],
                     plan.labels["test"], list(plan.genes), list(plan.classes), test_ids=plan.test_ids,
                     folds=plan.folds)


class _Select:
    """Keep a block's rows that belong to the study, cut to its input genes: columns ``split`` (0 train, 1 valid,
    2 test), ``pos`` (the row's place in its split), ``y`` and ``x`` (float32 [rows, input genes])."""

    def __init__(self, plan: StudyPlan, n_genes: int):
        ids = np.concatenate([plan.ids[s] for s in SPLITS])
        self.index = pd.Index(ids)
        self.split = np.concatenate([np.full(len(plan.ids[s]), k, np.int8) for k, s in enumerate(SPLITS)])
        self.pos = np.concatenate([np.arange(len(plan.ids[s]), dtype=np.int64) for s in SPLITS])
        self.y = np.concatenate([plan.labels[s] for s in SPLITS])
        self.columns, self.masked, self.n_genes = plan.columns, plan.masked, n_genes

    def __call__(self, batch):
        at = self.index.get_indexer(batch.column(names.SAMPLE_ID).to_numpy(zero_copy_only=False).astype(str))
        keep = np.flatnonzero(at >= 0)
        width = self.n_genes if self.columns is None else len(self.columns)
        if len(keep) == 0:
            return {"split": np.empty(0, np.int8), "pos": np.empty(0, np.int64), "y": np.empty(0, np.int64),
                    "x": np.empty((0, width), np.float32)}
        block = canonical.expression_to_numpy(batch.column(names.EXPRESSION), self.n_genes)
        at = at[keep]
        return {"split": self.split[at], "pos": self.pos[at], "y": self.y[at],
                "x": _input_rows(block, keep, self.columns, self.masked)}


def selected_rows(plan: StudyPlan):
    """A lazy Ray Dataset of the study's rows (every split), read and cut in Ray tasks."""
    n_genes = len(canonical.read_genes(plan.path))
    ds = canonical.read_with_ray(plan.path).select_columns([names.SAMPLE_ID, names.EXPRESSION])
    return ds.map_batches(_Select(plan, n_genes), batch_format="pyarrow", batch_size=None, zero_copy_batch=True)


def _assemble(batches, plan: StudyPlan) -> dict:
    """split -> float32 [rows, input genes] in the plan's order, from batches of :class:`_Select` rows."""
    out = {s: np.empty((len(plan.ids[s]), len(plan.genes)), np.float32) for s in SPLITS}
    seen = {s: 0 for s in SPLITS}
    for batch in batches:
        split, pos, x = batch["split"], batch["pos"], batch["x"]
        for k, s in enumerate(SPLITS):
            mine = split == k
            out[s][pos[mine]] = x[mine]
            seen[s] += int(mine.sum())
    for s in SPLITS:
        if seen[s] != len(plan.ids[s]):
            raise ConfigError(f"study {plan.study!r}: read {seen[s]} of the {len(plan.ids[s])} {s} rows")
    return out


def trial_arrays(plan: StudyPlan):
    """The study's raw :class:`~raygex.data.trial_data.TrialData` in this process, its rows read by Ray tasks (the
    caller holds the study's sets, never the matrix: call it where they fit)."""
    return _trial_data(plan, _assemble(selected_rows(plan).iter_batches(batch_format="numpy", batch_size=None),
                                       plan))


def matrix_arrays(plan: StudyPlan, matrix):
    """The study's raw TrialData cut from a dataset held in this process (``matrix``: an
    :class:`~raygex.data.canonical.ExpressionDataset`): the same rows, genes and masking as :func:`trial_arrays`."""
    at = pd.Index(np.asarray(matrix.sample_ids, dtype=str))
    arrays = {}
    for s in SPLITS:
        rows = at.get_indexer(plan.ids[s])
        if (rows < 0).any():
            raise ConfigError(f"study {plan.study!r}: {int((rows < 0).sum())} {s} samples missing from the dataset")
        arrays[s] = _input_rows(matrix.expression, rows, plan.columns, plan.masked)
    return _trial_data(plan, arrays)


def _study_graphs(config, graphs: dict, data, seed: int) -> dict:
    from raygex.data.prepare import study_graphs

    return study_graphs(config, graphs, data, seed=seed)


def graph_counts(aligned: dict) -> dict:
    return {name: {"edges": int(g.n_edges), "nodes": int(g.n_nodes)} for name, g in aligned.items()}


def small_study(config, graphs: dict, data, seed: int):
    """(the study's standardised TrialData, its aligned graph choices) from its raw arrays ``data``."""
    return data.standardised(), _study_graphs(config, graphs, data, seed)


def _prepare_small(config, graphs: dict, plan: StudyPlan):
    return small_study(config, graphs, trial_arrays(plan), plan.seed)


def prepare_small(config, graphs: dict, plan: StudyPlan):
    """(ObjectRef of the study's standardised TrialData, the aligned graph choices): the arrays are made in a Ray
    task and stay in the object store, where trials read them zero-copy."""
    import ray

    task = ray.remote(num_cpus=1, num_returns=2)(_prepare_small)
    data_ref, graphs_ref = task.remote(config, graphs, plan)
    return data_ref, ray.get(graphs_ref)
