"""What a trial trains on: a split task's raw arrays per split, labels, input genes, classes and (for GCNs) its
graph, with the training statistics that standardise it. Built by :mod:`raygex.data.prepare` (in memory) and
:mod:`raygex.data.study_rows` (rows read by Ray tasks); trained on by :mod:`raygex.training.loop`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass
class TrialData:
    """A split task in memory: raw inputs per split, labels, input genes, classes and (for GCNs) the graph."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    genes: list[str]
    classes: list[str]
    graph: object | None = None  # raygex.graphs.align.AlignedGraph over ``genes``
    mean: np.ndarray | None = None  # set once the arrays are standardised (see :meth:`standardised`)
    std: np.ndarray | None = None
    test_ids: list[str] | None = None  # sample ids of the test rows (the study's fixed test set)
    # Cross-validation: (training rows, validation rows) of x_train per fold; x_valid is then empty.
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None

    @classmethod
    def from_task(cls, task, split, labels, graph=None) -> "TrialData":
        """Slice a :class:`raygex.data.tasks.TaskData` by a split (labels from ``task.split``)."""
        return cls(task.x[split.train], labels[split.train], task.x[split.valid], labels[split.valid],
                   task.x[split.test], labels[split.test], list(task.genes), list(task.classes), graph,
                   test_ids=[str(s) for s in task.sample_ids[split.test]])

    def standardised(self) -> "TrialData":
        """A copy with every split standardised by the training statistics, done once (e.g. by the search
        driver) so that trials share the arrays read-only instead of each making its own."""
        if self.mean is not None:
            return self
        mean, std = self.standardisation()

        def scale(x):
            return ((x - mean) / std).astype(np.float32)

        return dataclasses.replace(self, x_train=scale(self.x_train), x_valid=scale(self.x_valid),
                                   x_test=scale(self.x_test), mean=mean, std=std)

    def fold_scalers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per fold, the (shift, spread) that re-standardise the study-standardised arrays by the fold's own
        training rows: ``(z - shift) / spread`` equals standardising the raw values by those rows (standardising is
        affine per gene). A gene constant on the fold's training rows gets raw scale 1 (as :meth:`standardisation`
        gives it), which on the standardised scale is 1 / the study's scale."""
        data = self.standardised()
        scalers = []
        for train_rows, _ in self.folds or []:
            z = data.x_train[train_rows]
            spread = z.std(axis=0, dtype=np.float64)
            scalers.append((z.mean(axis=0, dtype=np.float64),
                            np.where(spread * data.std < 1e-8, 1.0 / data.std, spread)))
        return scalers

    def fold_views(self) -> list["TrialData"]:
        """What each fold trains and validates on: ``[self]`` without folds; else one TrialData per fold, its
        training and validation rows cut from ``x_train`` and every split re-standardised by the fold's own
        training rows (:meth:`fold_scalers`; ``mean``/``std`` are then those rows' raw statistics). The test rows
        are the same in every fold."""
        data = self.standardised()
        if not self.folds:
            return [data]
        views = []
        for (train_rows, valid_rows), (shift, spread) in zip(self.folds, self.fold_scalers()):
            def scale(x, shift=shift, spread=spread):
                return ((x - shift) / spread).astype(np.float32)

            views.append(dataclasses.replace(
                data, x_train=scale(data.x_train[train_rows]), y_train=data.y_train[train_rows],
                x_valid=scale(data.x_train[valid_rows]), y_valid=data.y_train[valid_rows], x_test=scale(data.x_test),
                folds=None, mean=(data.mean + shift * data.std).astype(np.float32),
                std=(spread * data.std).astype(np.float32)))
        return views

    def standardisation(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-gene mean and scale from the TRAINING rows only (constant genes get scale 1)."""
        mean = self.x_train.mean(axis=0, dtype=np.float64)
        std = self.x_train.std(axis=0, dtype=np.float64)
        std[std < 1e-8] = 1.0
        return mean.astype(np.float32), std.astype(np.float32)
