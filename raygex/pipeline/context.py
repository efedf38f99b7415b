"""What the stages of one run share, each made once and only when a stage first needs it: the Ray connection,
the dataset, the graphs, each study's trial payload and the dataset's hash.

A resume whose stages are all done therefore starts no Ray and reads no data.
"""

from __future__ import annotations

import os
import time
from functools import cached_property

from raygex.experiment.layout import ExperimentLayout
from raygex.runtime.ray_session import check_resources, connect
from raygex.search.memory_estimate import study_shape
from raygex.search.payload import TrialPayload, TrialSettings
from raygex.search.scheduler import decision_epochs


class SweepContext:
    """Lazily made inputs of a pipeline run over one experiment."""

    def __init__(self, layout: ExperimentLayout, *, address: str | None = None, timings: dict | None = None):
        self.layout = layout
        self.config = layout.config
        self.address = address
        self.timings = {} if timings is None else timings
        self.timings.setdefault("trials_s", 0.0)
        self._ray = False
        self.results: dict = {}  # study -> the ResultGrid its sweep returned in this run

    def ray(self) -> None:
        """Connect to (or start) Ray and check the per-trial request fits the cluster, once."""
        if self._ray:
            return

        started = time.perf_counter()
        connect(self.address)
        check_resources(self.config.resources)
        if (self.address or os.environ.get("RAY_ADDRESS")) and not self.dataset.holds_matrix:
            # a cluster's nodes may not see what the driver sees: each reads the dataset's schema first
            from raygex.data.ray_io import check_nodes_read

            check_nodes_read(self.config.data.expression)
        self.timings["ray_s"] = self.timings.get("ray_s", 0.0) + time.perf_counter() - started
        self._ray = True

    @cached_property
    def dataset(self):
        """The expression dataset as the stages see it: a :class:`raygex.data.study_source.StudySource`, which reads
        ids and labels here and each study's rows in Ray tasks (the driver never holds the matrix)."""
        from raygex.data.study_source import StudySource

        return StudySource(self.config, self.graphs, connect=self.ray)

    @cached_property
    def graphs(self) -> dict:
        """Every configured graph by name (controls are built per study and split seed)."""
        from raygex.data.prepare import load_graphs

        return load_graphs(self.config)

    @cached_property
    def dataset_sha256(self) -> str:
        """The dataset's content hash (provenance of exported models): the one recorded at import, else computed
        once per run."""
        from raygex.export.winner import dataset_hash

        return dataset_hash(self.config.data.expression)

    def payload(self, study: str) -> TrialPayload:
        """What a study's trials share (put in the object store once by Tune): the ObjectRef of its arrays made in
        a Ray task (small studies) or its streamed Ray Datasets (large ones), the aligned graphs and settings."""
        config = self.config
        seed = config.split.seeds[0]
        self.ray()
        started = time.perf_counter()
        data, aligned, plan = self.dataset.study_data(study, seed)
        self.layout.write_graph_counts(study, {name: {"edges": int(g.n_edges), "nodes": int(g.n_nodes)}
                                               for name, g in aligned.items()})
        settings = TrialSettings(train={**config.train.model_dump(), "seed": seed},
                                 cpus_per_trial=config.resources.cpu,
                                 checkpoint_every=config.search.checkpoint_every,
                                 checkpoint_min_s=config.search.checkpoint_min_s,
                                 decision_epochs=tuple(decision_epochs(config)))
        self.timings["data_s"] = self.timings.get("data_s", 0.0) + time.perf_counter() - started
        shape = study_shape(plan, batched_folds=config.train.batched_folds,
                            streaming=bool(getattr(data, "streaming", False)))
        return TrialPayload(data=data, settings=settings, graphs=aligned, shape=shape)
