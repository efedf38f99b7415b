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
import time
from contextlib import contextmanager

from ray.tune import Callback
from ray.tune.search import ConcurrencyLimiter, Searcher

from raygex.errors import SweepInterrupted

_POOLS: dict[str, "TrialSlots"] = {}


class TrialSlots:
    """A thread-safe pool of ``capacity`` trial slots; a slot is held by a (study, trial id).

    When a trial ends and its study has trials left to create, its slot stays with the study (``reserved``, for
    at most ``keep_s`` seconds): the study's next suggestion, asked on its very next step, reuses it, and with it the worker process Tune keeps for the study
    (``reuse_actors``). This matters for more than speed: Tune keeps one finished trial's actor per study, holding
    that trial's CPUs or GPU, until the study's search is over; were the slot handed to another study, that study's
    trial could wait on resources held by an idle actor of the first, and with every slot passed on so, nothing
    would run. A study with no trial left to create gives its slots back as its trials end (and Tune keeps no
    actor for it then).
    """

    def __init__(self, capacity: int, *, keep_s: float = 10.0, clock=time.monotonic):
        self.capacity = capacity
        self.keep_s = keep_s
        self.clock = clock
        self._held: set[tuple[str, str]] = set()
        self._reserved: dict[str, list[float]] = {}  # study -> when each of its kept slots lapses
        self._lock = threading.Lock()
        self.peak = 0  # the most slots held at once (tests, bench scale)

    def _lapse(self) -> None:
        now = self.clock()
        for study in list(self._reserved):
            self._reserved[study] = [t for t in self._reserved[study] if t > now]
            if not self._reserved[study]:
                del self._reserved[study]

    def _in_use(self) -> int:
        return len(self._held) + sum(len(v) for v in self._reserved.values())

    def acquire(self, study: str, trial_id: str) -> bool:
        with self._lock:
            if (study, trial_id) in self._held:
                return True
            self._lapse()
            if self._reserved.get(study):
                self._reserved[study].pop(0)
            elif self._in_use() >= self.capacity:
                return False
            self._held.add((study, trial_id))
            self.peak = max(self.peak, len(self._held))
            return True

    def hold(self, study: str, trial_ids) -> None:
        """Count trials that run without asking (restored by Tune), even beyond the capacity."""
        with self._lock:
            self._held.update((study, t) for t in trial_ids)
            self.peak = max(self.peak, len(self._held))

    def release(self, study: str, trial_id: str, *, keep: bool = True) -> None:
        """The trial ended (``keep``: its slot stays with the study for ``keep_s``) or was never started."""
        with self._lock:
            if (study, trial_id) not in self._held:
                return
            self._held.discard((study, trial_id))
            if keep and self.keep_s > 0:
                self._reserved.setdefault(study, []).append(self.clock() + self.keep_s)

    def let_go(self, study: str) -> None:
        """The study will suggest nothing more: its kept slots go back to the pool."""
        with self._lock:
            self._reserved.pop(study, None)

    @property
    def in_use(self) -> int:
        with self._lock:
            self._lapse()
            return self._in_use()


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
    """A study's searcher behind its own concurrency cap and the experiment's shared pool of slots.

    ``budget``: the study's trials; ``created``: how many of them exist (suggested here, or restored by Tune, see
    :func:`raygex.search.tuner.build_tuner`). A trial that ends keeps its slot for the study while the study has
    trials left to create, and gives it back to the pool otherwise.
    """

    def __init__(self, searcher: Searcher, max_concurrent: int, *, study: str, slots_key: str | None,
                 budget: int, created: int = 0):
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.study = study
        self.slots_key = slots_key
        self.budget = budget
        self.created = created

    def set_state(self, state: dict):
        """Tune restores the limiter's saved state (``raygex resume``) after :func:`raygex.search.tuner.build_tuner`
        set up this driver's side of it, which the saved one must not overwrite: the pool's key (the experiment's
        folder: on an object store, a new working copy per process) and how many trials exist now."""
        mine = {"slots_key": self.slots_key, "created": self.created}
        super().set_state(state)
        self.__dict__.update(mine)

    def suggest(self, trial_id: str):
        pool = slots_for(self.slots_key)
        if pool is not None and not pool.acquire(self.study, trial_id):
            return None  # every slot of the experiment is busy: Tune asks again on a later step
        suggestion = super().suggest(trial_id)
        if suggestion not in (None, Searcher.FINISHED):
            self.created += 1
        elif pool is not None:  # its own cap, or nothing left: the slot (and any kept for it) goes back
            pool.release(self.study, trial_id, keep=False)
            pool.let_go(self.study)
        return suggestion

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False):
        super().on_trial_complete(trial_id, result=result, error=error)
        pool = slots_for(self.slots_key)
        if pool is not None:
            pool.release(self.study, trial_id, keep=self.created < self.budget)


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
