"""The streaming data path: a study's rows are chosen in the driver from labels alone and read in Ray tasks.

The driver never holds the expression matrix. It reads the sample ids and label columns (column projection:
:func:`raygex.data.canonical.read_labels`) and, for a single-gene task, the target gene's values (one position of
the list column, cut out by a Ray Data map over blocks: :func:`gene_column`); from those it builds the task's
index (:func:`raygex.tasks.task_index`) and its split (:class:`StudyPlan`), which name rows by sample id. Ray Data
then reads the expression column in tasks and keeps only the study's rows and input genes
(:func:`selected_rows`), so what a study holds is its own sets, never the matrix:

* a **small** study (its sets within ``data.in_memory_budget_mb``) is assembled in one Ray task into the arrays
  a trial trains on (standardised once, with the aligned graphs): the task's return value lives in the object
  store and trials read it zero-copy, as they always did (:func:`prepare_small`);
* a **large** study's train/valid/test sets stay materialised Ray Datasets whose blocks live in the cluster's
  object stores (spilling to disk when full); its per-gene training statistics come from a Ray Data aggregation
  over the training rows (:func:`moments`), and each trial streams batches from them every epoch, standardising
  each batch on its device (:class:`StreamData`, :mod:`raygex.training`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from raygex import schema
from raygex.data import canonical
from raygex.data.batches import StreamData
from raygex.errors import ConfigError

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

    column = batch.column(schema.EXPRESSION)
    values = pa.concat_arrays(column.chunks) if isinstance(column, pa.ChunkedArray) else column
    flat = values.flatten().to_numpy(zero_copy_only=False).reshape(-1, n_genes)
    return {"sample_id": batch.column(schema.SAMPLE_ID).to_numpy(zero_copy_only=False).astype(str),
            "value": flat[:, position].astype(np.float64)}


def gene_column(path, gene: str, sample_ids: np.ndarray) -> np.ndarray:
    """One gene's values over every sample, in the order of ``sample_ids``: Ray tasks cut the gene's position out
    of each block; the driver receives one float per sample."""
    import ray.data

    genes = canonical.read_genes(path)
    position = genes.index(gene)
    ds = ray.data.read_parquet(str(path)).select_columns([schema.SAMPLE_ID, schema.EXPRESSION])
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
    :func:`raygex.prepare.trial_data` makes it, without reading an expression value in this process."""
    from raygex.prepare import cut_folds, labelled_count
    from raygex.tasks import task_index

    path = config.data.expression
    index = read_index(path) if index is None else index
    ids = index[schema.SAMPLE_ID].astype(str).to_numpy()
    obs = index.drop(columns=[schema.SAMPLE_ID]).reset_index(drop=True)
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
        at = self.index.get_indexer(batch.column(schema.SAMPLE_ID).to_numpy(zero_copy_only=False).astype(str))
        keep = np.flatnonzero(at >= 0)
        width = self.n_genes if self.columns is None else len(self.columns)
        if len(keep) == 0:
            return {"split": np.empty(0, np.int8), "pos": np.empty(0, np.int64), "y": np.empty(0, np.int64),
                    "x": np.empty((0, width), np.float32)}
        block = canonical.expression_to_numpy(batch.column(schema.EXPRESSION), self.n_genes)
        x = block[keep] if self.columns is None else block[np.ix_(keep, self.columns)]
        if self.masked:
            x[:, 0] = 0.0
        at = at[keep]
        return {"split": self.split[at], "pos": self.pos[at], "y": self.y[at],
                "x": np.ascontiguousarray(x, dtype=np.float32)}


def selected_rows(plan: StudyPlan):
    """A lazy Ray Dataset of the study's rows (every split), read and cut in Ray tasks."""
    import ray.data

    n_genes = len(canonical.read_genes(plan.path))
    ds = ray.data.read_parquet(plan.path).select_columns([schema.SAMPLE_ID, schema.EXPRESSION])
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
    """The study's raw :class:`~raygex.training.TrialData` in this process, its rows read by Ray tasks (the
    caller holds the study's sets, never the matrix: call it where they fit)."""
    from raygex.training import TrialData

    arrays = _assemble(selected_rows(plan).iter_batches(batch_format="numpy", batch_size=None), plan)
    return TrialData(arrays["train"], plan.labels["train"], arrays["valid"], plan.labels["valid"], arrays["test"],
                     plan.labels["test"], list(plan.genes), list(plan.classes), test_ids=plan.test_ids,
                     folds=plan.folds)


def matrix_arrays(plan: StudyPlan, matrix):
    """The study's raw TrialData cut from a dataset held in this process (``matrix``: an
    :class:`~raygex.data.canonical.ExpressionDataset`): the same rows, genes and masking as :func:`trial_arrays`."""
    from raygex.training import TrialData

    at = pd.Index(np.asarray(matrix.sample_ids, dtype=str))
    arrays = {}
    for s in SPLITS:
        rows = at.get_indexer(plan.ids[s])
        if (rows < 0).any():
            raise ConfigError(f"study {plan.study!r}: {int((rows < 0).sum())} {s} samples missing from the dataset")
        x = matrix.expression[rows] if plan.columns is None else matrix.expression[np.ix_(rows, plan.columns)]
        x = np.ascontiguousarray(x, dtype=np.float32)
        if plan.masked:
            x[:, 0] = 0.0
        arrays[s] = x
    return TrialData(arrays["train"], plan.labels["train"], arrays["valid"], plan.labels["valid"], arrays["test"],
                     plan.labels["test"], list(plan.genes), list(plan.classes), test_ids=plan.test_ids,
                     folds=plan.folds)


def _study_graphs(config, graphs: dict, data, seed: int) -> dict:
    from raygex.prepare import study_graphs

    return study_graphs(config, graphs, data, seed=seed)


def graph_counts(aligned: dict) -> dict:
    return {name: {"edges": int(g.n_edges), "nodes": int(g.n_nodes)} for name, g in aligned.items()}


def _prepare_small(config, graphs: dict, plan: StudyPlan):
    data = trial_arrays(plan)
    aligned = _study_graphs(config, graphs, data, plan.seed)
    return data.standardised(), aligned


def prepare_small(config, graphs: dict, plan: StudyPlan):
    """(ObjectRef of the study's standardised TrialData, the aligned graph choices): the arrays are made in a Ray
    task and stay in the object store, where trials read them zero-copy."""
    import ray

    task = ray.remote(num_cpus=1, num_returns=2)(_prepare_small)
    data_ref, graphs_ref = task.remote(config, graphs, plan)
    return data_ref, ray.get(graphs_ref)


# ------------------------------------------------------------------------------------------------ large studies
def _moments(batch: dict) -> dict:
    x = batch["x"].astype(np.float64)
    n = len(x)
    mean = x.mean(axis=0) if n else np.zeros(x.shape[1])
    m2 = ((x - mean) ** 2).sum(axis=0) if n else np.zeros(x.shape[1])
    return {"n": np.array([n], np.int64), "mean": mean[None, :], "m2": m2[None, :]}


def moments(train) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene (mean, std) of a training Dataset: each block's count, mean and sum of squared deviations in Ray
    tasks, merged here (Chan et al.'s pairwise update; 2 floats per gene per block reach the driver). Constant
    genes get scale 1, as :meth:`raygex.training.TrialData.standardisation` gives them."""
    parts = train.map_batches(_moments, batch_format="numpy", batch_size=None).take_all()
    n, mean, m2 = 0, None, None
    for part in parts:
        count = int(part["n"])
        if count == 0:
            continue
        if mean is None:
            n, mean, m2 = count, np.asarray(part["mean"], np.float64), np.asarray(part["m2"], np.float64)
            continue
        delta = part["mean"] - mean
        total = n + count
        mean = mean + delta * count / total
        m2 = m2 + part["m2"] + delta ** 2 * n * count / total
        n = total
    std = np.sqrt(m2 / n)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _split_of(batch: dict, k: int) -> dict:
    keep = batch["split"] == k
    return {"pos": batch["pos"][keep], "y": batch["y"][keep], "x": batch["x"][keep]}


def stream_data(plan: StudyPlan) -> StreamData:
    """Materialise the study's three sets in the object stores (one read of the dataset), and their training
    statistics; nothing but labels and statistics reach this process."""
    if plan.folds:
        raise ConfigError(f"study {plan.study!r}: cross-validation (split.folds) needs the study's sets within "
                          "data.in_memory_budget_mb; raise it or set split.folds: null")
    selected = selected_rows(plan).materialize()
    sets = {s: selected.map_batches(_split_of, fn_kwargs={"k": k}, batch_format="numpy", batch_size=None)
            .materialize() for k, s in enumerate(SPLITS)}
    del selected  # its blocks are freed once the three sets hold their own
    mean, std = moments(sets["train"])
    return StreamData(sets["train"], sets["valid"], sets["test"], plan.labels["train"], plan.labels["valid"],
                      plan.labels["test"], list(plan.genes), list(plan.classes), mean, std, test_ids=plan.test_ids)


def _stream_graphs(config, graphs: dict, data: StreamData, plan: StudyPlan) -> dict:
    """The aligned graph choices of a large study (in a Ray task: the co-expression control reads the training
    rows there, never in the driver)."""
    from raygex.training import TrialData

    x_train = None
    if any(choice == "coexpression" for choice in config.graph_choices()):
        x_train = np.empty((len(plan.ids["train"]), len(plan.genes)), np.float32)
        for batch in data.train.iter_batches(batch_format="numpy", batch_size=None):
            x_train[batch["pos"]] = batch["x"]
    shell = TrialData(x_train if x_train is not None else np.empty((0, len(plan.genes)), np.float32),
                      plan.labels["train"], np.empty((0, 0)), plan.labels["valid"], np.empty((0, 0)),
                      plan.labels["test"], list(plan.genes), list(plan.classes))
    return _study_graphs(config, graphs, shell, plan.seed)


def prepare_large(config, graphs: dict, plan: StudyPlan):
    import ray

    data = stream_data(plan)
    data.batch_rows = int(config.train.batch_size)
    aligned = ray.get(ray.remote(num_cpus=1)(_stream_graphs).remote(config, graphs, data, plan))
    return data, aligned


class StudySource:
    """A run's dataset as the stages see it: study plans and study data made on demand.

    ``study_data(study, seed)`` gives what a trial shares (an ObjectRef of the small path's arrays or a
    :class:`StreamData`) with the aligned graph choices; ``trial_data`` gives a study's raw arrays in this
    process (export), refused for a large study outside a Ray worker.

    A dataset whose whole matrix is within ``data.read_in_driver_mb`` is read once into this process
    (:attr:`holds_matrix`), and its small studies are cut from it here (Ray Data's tasks and their worker start-up
    cost more than they save at that size); a larger one is never read here: Ray tasks read each study's rows."""

    def __init__(self, config, graphs: dict, *, in_worker: bool = False, connect=None):
        self.config = config
        self.graphs = graphs
        self.in_worker = in_worker
        self.connect = connect  # called before anything uses Ray (the run's connection: its --address)
        self._plans: dict = {}
        self._data: dict = {}

    def __getstate__(self):
        return {"config": self.config, "graphs": self.graphs, "in_worker": True, "connect": None, "_plans": {},
                "_data": {}}

    @cached_property
    def index(self) -> pd.DataFrame:
        return read_index(self.config.data.expression)

    @cached_property
    def holds_matrix(self) -> bool:
        """Whether this process reads the whole matrix (a dataset within ``data.read_in_driver_mb``; never in a
        Ray worker, which is given a study's rows)."""
        limit = self.config.data.read_in_driver_mb * 2**20
        return not self.in_worker and canonical.matrix_bytes(self.config.data.expression) <= limit

    @cached_property
    def matrix(self):
        """The whole dataset in this process (only where :attr:`holds_matrix`)."""
        assert self.holds_matrix
        return canonical.read_dataset(self.config.data.expression)

    def _matrix_gene(self, gene: str, ids: np.ndarray) -> np.ndarray:
        matrix = self.matrix
        rows = pd.Index(np.asarray(matrix.sample_ids, dtype=str)).get_indexer(np.asarray(ids, dtype=str))
        return matrix.expression[rows, matrix.genes.index(gene)].astype(np.float64)

    def plan(self, study: str, seed: int) -> StudyPlan:
        key = (study, seed)
        if key not in self._plans:
            if self.connect is not None:
                self.connect()
            spec = self.config.task(study)
            gene_values = None
            if getattr(spec, "kind", None) == "single_gene":
                cache = self.__dict__.setdefault("_genes", {})
                ids = self.index[schema.SAMPLE_ID].astype(str).to_numpy()

                def gene_values(gene, cache=cache, ids=ids):
                    if gene not in cache:
                        cache[gene] = (self._matrix_gene(gene, ids) if self.holds_matrix
                                       else gene_column(self.config.data.expression, gene, ids))
                    return cache[gene]
            self._plans[key] = plan_study(self.config, study, self.graphs, seed=seed, index=self.index,
                                          gene_values=gene_values)
        return self._plans[key]

    def is_large(self, study: str, seed: int) -> bool:
        return is_large(self.config, self.plan(study, seed))

    def study_data(self, study: str, seed: int):
        """(what trials share, aligned graph choices, the plan) for ``study`` on split ``seed``, made once."""
        key = (study, seed)
        if key not in self._data:
            plan = self.plan(study, seed)
            if is_large(self.config, plan):
                shared, aligned = prepare_large(self.config, self.graphs, plan)
            elif self.holds_matrix:
                import ray

                data = matrix_arrays(plan, self.matrix)
                aligned = _study_graphs(self.config, self.graphs, data, plan.seed)
                shared = ray.put(data.standardised())
            else:
                shared, aligned = prepare_small(self.config, self.graphs, plan)
            self._data[key] = (shared, aligned, plan)
        return self._data[key]

    def trial_data(self, study: str, seed: int, graph: str | None):
        """The study's raw TrialData on ``seed`` here (with the graph choice ``graph`` aligned)."""
        from raygex.prepare import choice_graph

        plan = self.plan(study, seed)
        if is_large(self.config, plan) and not self.in_worker:
            raise ConfigError(f"study {study!r}: its sets ({plan.nbytes / 2**20:.0f} MiB) exceed "
                              f"data.in_memory_budget_mb; they are read in a Ray task, not here")
        data = matrix_arrays(plan, self.matrix) if self.holds_matrix else trial_arrays(plan)
        if graph is not None:
            data.graph = choice_graph(self.config, graph, self.graphs, data, seed=seed)
        return data


def with_graph(data, graph):
    """``data`` (TrialData or StreamData) with ``graph`` attached."""
    return dataclasses.replace(data, graph=graph)
