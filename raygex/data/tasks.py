"""Tasks: what a sweep predicts. A task turns a dataset (and a graph, for some inputs) into inputs and labels.

Two kinds, as in the seed paper:

* ``classify``: a label column, e.g. a TCGA clinical variable within one cohort (``where`` filters samples);
* ``single_gene``: whether a target gene's expression is above its mean (mean over *training* samples only),
  from other genes: the target's first-degree neighbours in a graph, the first k genes of a breadth-first search
  from it, all genes, or the L1000 landmark genes. The target's own input column is zeroed (masked), keeping its
  node in the graph.

The task specs (pydantic models, so configs validate with errors that name the bad field) live in
:mod:`raygex.config.tasks`; this module turns them into arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


import numpy as np
import pandas as pd

from raygex.config.tasks import ClassifyTask, SingleGeneTask
from raygex.data.canonical import ExpressionDataset
from raygex.errors import ConfigError, InputFormatError
from raygex.data.splits import Split, stratified_split


@dataclass
class TaskData:
    """A task's samples in input-gene order, with labels; ``split`` gives per-split arrays."""

    name: str
    kind: str
    sample_ids: np.ndarray
    x: np.ndarray | None  # None from :func:`task_index` (the caller reads the rows itself)
    genes: list[str]
    y: np.ndarray
    classes: list[str]
    target: np.ndarray | None = None
    masked_gene: str | None = None
    info: dict = field(default_factory=dict)
    # Where the task's samples and input genes sit in the dataset (row and column positions): what a reader that
    # never holds the whole matrix needs to fetch ``x`` itself (:func:`task_index`, raygex.data.study_rows).
    rows: np.ndarray | None = None
    columns: np.ndarray | None = None

    def split(self, *, train, valid=0, test=None, seed: int = 0, test_seed: int = 0) -> tuple[Split, np.ndarray]:
        """A stratified split and the labels to use with it.

        For single-gene tasks the threshold is the target's mean over the *training* rows, so labels are
        recomputed after splitting (the split itself is stratified on the all-sample threshold).
        """
        split = stratified_split(self.y, train=train, valid=valid, test=test, seed=seed, test_seed=test_seed)
        if self.kind != "single_gene":
            return split, self.y
        threshold = float(self.target[split.train].mean())
        labels = (self.target > threshold).astype(np.int64)
        if len(np.unique(labels[split.train])) < 2:
            raise ConfigError(f"task {self.name!r}: gene {self.masked_gene!r} is constant on the training samples")
        return split, labels


def build_task(spec: ClassifyTask | SingleGeneTask, dataset: ExpressionDataset, graphs: dict | None = None) -> TaskData:
    """Inputs and labels for ``spec`` from ``dataset`` (``graphs`` maps names to :class:`Graph` objects)."""
    index = dataset.gene_index()

    def gene_values(gene: str) -> np.ndarray:
        return dataset.expression[:, index[gene]]

    task = task_index(spec, dataset.obs, dataset.sample_ids, dataset.genes, gene_values, graphs)
    if isinstance(spec, ClassifyTask):
        task.x = dataset.expression[task.rows]
    else:
        task.x = dataset.expression[:, task.columns].copy()
        task.x[:, 0] = 0.0  # the target's own input is masked; its node stays in the graph
    return task


def task_index(spec: ClassifyTask | SingleGeneTask, obs: pd.DataFrame, sample_ids: np.ndarray, genes: list[str],
               gene_values, graphs: dict | None = None) -> TaskData:
    """Everything of :func:`build_task` but the inputs ``x`` (None): labels, classes, the target's values, and the
    dataset rows and input-gene columns that ``x`` is cut from (``x = expression[rows][:, columns]``, a single-gene
    task's first column zeroed). Needs the label columns and, for a single-gene task, ``gene_values(gene)``: that
    one gene's column over every sample; never the matrix."""
    if isinstance(spec, ClassifyTask):
        return _build_classify(spec, obs, np.asarray(sample_ids), list(genes))
    return _build_single_gene(spec, sample_ids, list(genes), gene_values, graphs or {})


def _build_classify(spec: ClassifyTask, obs: pd.DataFrame, sample_ids: np.ndarray, genes: list[str]) -> TaskData:
    keep = np.ones(len(sample_ids), dtype=bool)
    for column, wanted in spec.where.items():
        if column not in obs:
            raise ConfigError(f"task {spec.name!r}: where column {column!r} is not a label column of the dataset "
                              f"(columns: {list(obs.columns)})")
        wanted = [wanted] if isinstance(wanted, str) else wanted
        keep &= obs[column].astype(str).isin(wanted).to_numpy()
    if spec.label not in obs:
        raise ConfigError(f"task {spec.name!r}: label column {spec.label!r} not found in the dataset "
                          f"(columns: {list(obs.columns)})")
    labels = obs[spec.label]
    keep &= labels.notna().to_numpy() & (labels.astype(str).str.strip() != "").to_numpy()
    values = labels.astype(str).to_numpy()
    counts = pd.Series(values[keep]).value_counts()
    rare = counts[counts < spec.min_samples_per_class]
    keep &= ~np.isin(values, rare.index.to_numpy())
    classes = sorted(counts[counts >= spec.min_samples_per_class].index.tolist())
    if len(classes) < 2:
        raise ConfigError(f"task {spec.name!r}: label {spec.label!r} has {len(classes)} class(es) with at least "
                          f"{spec.min_samples_per_class} samples; a classification task needs 2 "
                          f"(counts: {counts.to_dict()})")
    code = {c: i for i, c in enumerate(classes)}
    rows = np.flatnonzero(keep)
    y = np.fromiter((code[v] for v in values[rows]), dtype=np.int64, count=len(rows))
    info = {"dropped_missing_label": int(labels.isna().sum()), "dropped_rare_classes": rare.to_dict(),
            "samples": len(rows), "class_counts": {c: int((y == i).sum()) for c, i in code.items()}}
    return TaskData(spec.name, spec.kind, np.asarray(sample_ids)[rows], None, list(genes), y,
                    classes, info=info, rows=rows, columns=None)


def read_gene_list(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise InputFormatError("gene list not found", path=path)
    genes = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not genes:
        raise InputFormatError("gene list is empty", path=path)
    return genes


def select_input_genes(spec: SingleGeneTask, genes: list[str], graphs: dict) -> list[str]:
    """The input genes of a single-gene task, target first, all present in ``genes`` (the dataset's)."""
    inputs = spec.inputs
    if inputs.mode == "all":
        return [spec.gene] + [g for g in genes if g != spec.gene]
    if inputs.mode == "landmark":
        present = set(genes)
        landmarks = [g for g in read_gene_list(inputs.landmark_file) if g in present and g != spec.gene]
        if not landmarks:
            raise ConfigError(f"task {spec.name!r}: none of the landmark genes is in the dataset")
        return [spec.gene] + landmarks
    if inputs.graph not in graphs:
        raise ConfigError(f"task {spec.name!r}: inputs.graph {inputs.graph!r} is not a configured graph "
                          f"(graphs: {sorted(graphs)})")
    from raygex.graphs.align import align_graph
    import scipy.sparse
    from scipy.sparse.csgraph import breadth_first_order

    aligned = align_graph(graphs[inputs.graph], genes, dataset=f"task {spec.name!r}")
    n = len(genes)
    src, dst = aligned.edge_index
    adjacency = scipy.sparse.csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    start = genes.index(spec.gene)
    if inputs.mode == "neighbors":
        order = [start] + sorted(set(adjacency.indices[adjacency.indptr[start]:adjacency.indptr[start + 1]]) - {start})
    else:
        order = breadth_first_order(adjacency, start, directed=False, return_predecessors=False)
    if len(order) < 2:
        raise ConfigError(f"task {spec.name!r}: gene {spec.gene!r} has no neighbours in graph {inputs.graph!r} "
                          "among the dataset's genes")
    if inputs.size is not None:
        order = order[: inputs.size]
    return [genes[i] for i in order]


def _build_single_gene(spec: SingleGeneTask, sample_ids, genes: list[str], gene_values, graphs: dict) -> TaskData:
    index = {g: i for i, g in enumerate(genes)}
    if spec.gene not in index:
        raise ConfigError(f"task {spec.name!r}: gene {spec.gene!r} is not in the dataset")
    input_genes = select_input_genes(spec, genes, graphs)
    columns = np.fromiter((index[g] for g in input_genes), dtype=np.int64, count=len(input_genes))
    target = np.asarray(gene_values(spec.gene)).astype(np.float64)
    y = (target > target.mean()).astype(np.int64)
    if len(np.unique(y)) < 2:
        raise ConfigError(f"task {spec.name!r}: gene {spec.gene!r} is constant across samples")
    info = {"input_mode": spec.inputs.mode, "input_genes": len(input_genes), "requested_size": spec.inputs.size}
    return TaskData(spec.name, spec.kind, np.asarray(sample_ids), None, input_genes, y, ["below_mean", "above_mean"],
                    target=target, masked_gene=spec.gene, info=info, rows=np.arange(len(sample_ids)), columns=columns)
