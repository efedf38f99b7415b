"""One budget of concurrent trials for a whole experiment, shared by the studies that run side by side.

Each study's sweep is its own Tune run (own searcher, scheduler and state folder, so each resumes exactly as a
single study does); they run at the same time in one driver. :class:`TrialSlots` is the experiment's pool of
``search.max_concurrent`` slots; every study's searcher is wrapped in a :class:`SlotLimiter`, which asks the pool
for a slot before it suggests a configuration and gives it back when the trial ends (finished, stopped by ASHA or
errored). A study may also be capped on its own (``search.max_concurrent_per_study``).

Tune pickles its searcher into the study's state, so the limiter holds only the pool's key; the pool itself lives
in the driver (:func:`open_slots`). A restored searcher (``raygex resume``) finds the pool of the driver that
restored it. Trials a killed driver left running or pending are restored by Tune without a new suggestion: the
driver holds their slots (:meth:`TrialSlots.hold`) so the budget counts them too.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from ray.tune import Callback
from ray.tune.search import ConcurrencyLimiter, Searcher

from raygex.errors import SweepInterrupted

_POOLS: dict[str, "TrialSlots"] = {}


class TrialSlots:
    """A thread-safe pool of ``capacity`` trial slots; a slot is held by a (study, trial id)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.peak = 0  # the most slots held at once (tests, bench scale)

    def acquire(self, study: str, trial_id: str) -> bool:
        with self._lock:
            if (study, trial_id) in self._held:
                return True
            if len(self._held) >= self.capacity:
                return False
            self._held.add((study, trial_id))
            self.peak = max(self.peak, len(self._held))
            return True

    def hold(self, study: str, trial_ids) -> None:
        """Count trials that run without asking (restored by Tune), even beyond the capacity."""
        with self._lock:
            self._held.update((study, t) for t in trial_ids)
            self.peak = max(self.peak, len(self._held))

    def release(self, study: str, trial_id: str) -> None:
        with self._lock:
            self._held.discard((study, trial_id))

    @property
    def in_use(self) -> int:
        with self._lock:
            return len(self._held)


@contextmanager
def open_slots(key: str, capacity: int):
    """The experiment's pool under ``key`` (its folder) for the duration of a run of its sweeps."""
    pool = _POOLS[key] = TrialSlots(capacity)
    try:
        yield pool
    finally:
        _POOLS.pop(key, None)


def slots_for(key: str | None) -> TrialSlots | None:
    return _POOLS.get(key) if key else None


class SlotLimiter(ConcurrencyLimiter):
    """A study's searcher behind its own concurrency cap and the experiment's shared pool of slots."""

    def __init__(self, searcher: Searcher, max_concurrent: int, *, study: str, slots_key: str | None):
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.study = study
        self.slots_key = slots_key

    def suggest(self, trial_id: str):
        pool = slots_for(self.slots_key)
        if pool is not None and not pool.acquire(self.study, trial_id):
            return None  # every slot of the experiment is busy: Tune asks again on a later step
        suggestion = super().suggest(trial_id)
        if pool is not None and suggestion in (None, Searcher.FINISHED):
            pool.release(self.study, trial_id)
        return suggestion

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False):
        super().on_trial_complete(trial_id, result=result, error=error)
        pool = slots_for(self.slots_key)
        if pool is not None:
            pool.release(self.study, trial_id)


class StopOnEvent(Callback):
    """Ends a sweep running on a thread at its next step once ``event`` is set: Tune's own Ctrl-C handling
    works only on the main thread. The sweep stops as a killed driver's would (Tune's last saved state, each
    trial's last checkpoint), which ``raygex resume`` continues exactly."""

    def __init__(self, event: threading.Event | None):
        self.event = event

    def __getstate__(self):  # Tune pickles its callbacks into the study's state; an Event is not picklable
        return {"event": None}

    def on_step_begin(self, iteration, trials, **info):
        if self.event is not None and self.event.is_set():
            raise SweepInterrupted("the sweep was stopped")
