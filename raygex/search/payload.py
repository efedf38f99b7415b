"""What a study's trials receive: one :class:`TrialPayload` per study, put in Ray's object store once by Tune
(``tune.with_parameters``) and read by every trial of the study (:func:`raygex.search.trainable.train_fn`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrialSettings:
    """The study's settings every trial shares (the sampled hyperparameters come from Tune's ``config``)."""

    train: dict  # the config's ``train`` section with the study's split seed: each trial's defaults
    cpus_per_trial: float = 1.0  # Ray CPUs, and torch threads (at least 1)
    checkpoint_every: int = 5  # epochs between checkpoints
    checkpoint_min_s: float = 0.0  # seconds between checkpoints at the least (the last epoch always saves)
    decision_epochs: tuple[int, ...] = ()  # the epochs the scheduler decides at (reported at once)


@dataclass(frozen=True)
class TrialPayload:
    """``data``: the ObjectRef of the study's standardised :class:`~raygex.data.trial_data.TrialData` (no graph),
    made in a Ray task, or a large study's :class:`~raygex.data.batches.StreamData`; ``graphs``: the aligned
    graph of every graph choice (:class:`~raygex.graphs.align.AlignedGraph`)."""

    data: object
    settings: TrialSettings
    graphs: dict = field(default_factory=dict)
    shape: object = None  # the study's :class:`raygex.search.memory_estimate.StudyShape` (resources.memory_mb: auto)
