"""A run's dataset as its stages see it: study plans and each study's shared data, made on demand."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from raygex.files import names
from raygex.data import canonical
from raygex.data.study_rows import (StudyPlan, gene_column, is_large, matrix_arrays, plan_study, prepare_small,
                                    read_index, small_study, trial_arrays)
from raygex.errors import ConfigError


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

    def gene_values(self, gene: str) -> np.ndarray:
        """One gene's values over every sample, in :attr:`index` order (a single-gene task's target), read once:
        from the held matrix, else cut out of each block by Ray tasks."""
        cache = self.__dict__.setdefault("_genes", {})
        if gene not in cache:
            ids = self.index[names.SAMPLE_ID].astype(str).to_numpy()
            if self.holds_matrix:
                matrix = self.matrix
                rows = pd.Index(np.asarray(matrix.sample_ids, dtype=str)).get_indexer(ids)
                cache[gene] = matrix.expression[rows, matrix.genes.index(gene)].astype(np.float64)
            else:
                cache[gene] = gene_column(self.config.data.expression, gene, ids)
        return cache[gene]

    def plan(self, study: str, seed: int) -> StudyPlan:
        key = (study, seed)
        if key not in self._plans:
            if self.connect is not None:
                self.connect()
            self._plans[key] = plan_study(self.config, study, self.graphs, seed=seed, index=self.index,
                                          gene_values=self.gene_values)
        return self._plans[key]

    def is_large(self, study: str, seed: int) -> bool:
        return is_large(self.config, self.plan(study, seed))

    def study_data(self, study: str, seed: int):
        """(what trials share, aligned graph choices, the plan) for ``study`` on split ``seed``, made once."""
        key = (study, seed)
        if key not in self._data:
            plan = self.plan(study, seed)
            if is_large(self.config, plan):
                from raygex.data.streamed_study import prepare_large

                shared, aligned = prepare_large(self.config, self.graphs, plan)
            elif self.holds_matrix:
                import ray

                data, aligned = small_study(self.config, self.graphs, matrix_arrays(plan, self.matrix), plan.seed)
                shared = ray.put(data)
            else:
                shared, aligned = prepare_small(self.config, self.graphs, plan)
            self._data[key] = (shared, aligned, plan)
        return self._data[key]

    def trial_data(self, study: str, seed: int, graph: str | None):
        """The study's raw TrialData on ``seed`` here (with the graph choice ``graph`` aligned)."""
        from raygex.data.prepare import choice_graph

        plan = self.plan(study, seed)
        if is_large(self.config, plan) and not self.in_worker:
            raise ConfigError(f"study {study!r}: its sets ({plan.nbytes / 2**20:.0f} MiB) exceed "
                              f"data.in_memory_budget_mb; they are read in a Ray task, not here")
        data = matrix_arrays(plan, self.matrix) if self.holds_matrix else trial_arrays(plan)
        if graph is not None:
            data.graph = choice_graph(self.config, graph, self.graphs, data, seed=seed)
        return data
