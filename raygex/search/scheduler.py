"""A study's trial scheduler (ASHA or FIFO) and the epochs at which it can stop a trial.

Trials report to Tune in batches of epochs (:mod:`raygex.search.epoch_reports`), but always at the epochs
returned by :func:`decision_epochs`, so the scheduler sees exactly the results it would see with a report every
epoch and takes the same decisions.
"""

from __future__ import annotations

import numpy as np

REDUCTION_FACTOR = 4  # Ray's default for ASHA, which raygex uses


def asha_milestones(grace: int, max_t: int, reduction_factor: float = REDUCTION_FACTOR) -> list[int]:
    """Ray's rungs of one ASHA bracket (``_Bracket(min_t=grace, max_t, rf, s=0)``), ascending."""
    count = int(np.log(max_t / grace) / np.log(reduction_factor) + 1)
    return sorted(int(grace * reduction_factor ** k) for k in range(count))


def scheduler_max_epochs(config) -> int:
    """The epoch at which the scheduler ends every trial (ASHA's ``max_t``)."""
    return config.search.scheduler.max_epochs or config.train.max_epochs


def build_scheduler(config, metric: str, mode: str):
    """Ray's ``ASHAScheduler`` on the ``epoch`` a trial reports (one bracket; with ``rungs: family`` one per model
    family), or ``FIFOScheduler``."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if config.search.scheduler.kind != "asha":
        return FIFOScheduler()
    max_t = scheduler_max_epochs(config)
    settings = dict(time_attr="epoch", metric=metric, mode=mode, max_t=max_t,
                    grace_period=min(config.search.scheduler.grace_period, max_t), reduction_factor=REDUCTION_FACTOR)
    if config.search.scheduler.rungs == "family":
        from raygex.search.tune_compat.family_asha import FamilyASHAScheduler

        return FamilyASHAScheduler(**settings)
    return ASHAScheduler(**settings)


def decision_epochs(config) -> list[int]:
    """The epochs whose results the scheduler decides on: ASHA's rungs and ``max_t`` (none for FIFO)."""
    if config.search.scheduler.kind != "asha":
        return []
    max_t = scheduler_max_epochs(config)
    return sorted({*asha_milestones(min(config.search.scheduler.grace_period, max_t), max_t), max_t})
