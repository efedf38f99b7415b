"""What a person watching a study sees: one progress display per running study, instead of Tune's boxes.

On a terminal the display is one line redrawn in place (``\\r``), at most once a second and at every trial
event: ``subtype  5/24 done · 2 running · 0 errored · best valid_auc 0.9120 (gcn/true) · 0:41 elapsed · ETA
2:10``; each finished trial is printed once above it. Anywhere else (CI logs, ``ray job submit``, a pipe) the
output is line-based: one line per finished trial, which carries the same counts, best and ETA.

The ETA is this run's elapsed time per trial ended in this run, times the trials left (the ended trials include
ASHA's early stops, so it is honest about a mix of short and long trials once a few have ended). A resumed study
starts its counts from the trials that had ended before.

Studies that sweep side by side share one :class:`ProgressBoard`: on a terminal it keeps one line per running
study at the bottom (redrawn together), finished trials of every study are printed above it, and a study's line
is printed for good when its sweep ends.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from ray.tune import Callback

logger = logging.getLogger(__name__)

REDRAW_S = 1.0


def clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe_choice(config: dict) -> str:
    return config.get("model", "?") + (f"/{config['graph']}" if config.get("graph") else "")


class ProgressBoard:
    """The live lines of the studies sweeping at once (one per study), and the lines printed above them.

    Every study's callbacks run on its own Tune thread, so drawing and printing hold one lock.
    """

    def __init__(self, *, live: bool | None = None, stream=None, clock_fn=time.monotonic):
        self._stream = stream  # None: sys.stdout when drawing
        self.live = self.stream.isatty() if live is None else live
        self.clock = clock_fn
        self.studies: list[StudyProgress] = []
        self._shown = 0  # lines of the block on screen
        self._drawn = 0.0
        self._lock = threading.RLock()

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    def add(self, study: "StudyProgress") -> None:
        with self._lock:
            if study not in self.studies:
                self.studies.append(study)

    def _clear(self) -> None:
        self.stream.write("\r\033[K" + "\033[1A\033[K" * max(0, self._shown - 1))
        self._shown = 0

    def draw(self, *, unless_recent: bool = False) -> None:
        with self._lock:
            if unless_recent and self.clock() - self._drawn < REDRAW_S:
                return
            if self.live and self.studies:
                self._clear()
                self.stream.write("\n".join(study.status() for study in self.studies))
                self.stream.flush()
                self._shown = len(self.studies)
            self._drawn = self.clock()

    def print_above(self, text: str) -> None:
        with self._lock:
            if self.live and self._shown:
                self._clear()
            logger.info(text)

    def end(self, study: "StudyProgress") -> None:
        """The study's sweep ended: its last status is printed for good, the others stay live below it."""
        with self._lock:
            if study not in self.studies:
                return
            if self.live and self._shown:
                self._clear()
                self.stream.write(study.status() + "\n")
            self.studies.remove(study)
            self.draw()


class StudyProgress(Callback):
    """Counts a study's trials (done, running, errored of ``total``), its best metric so far and an ETA.

    ``board``: the display shared with the studies sweeping at the same time (default: one of its own).
    """

    def __init__(self, task: str, total: int, metric: str, mode: str, *, live: bool | None = None,
                 stream=None, clock_fn=time.monotonic, ended_before: tuple[int, int] = (0, 0),
                 board: ProgressBoard | None = None):
        self.task, self.total, self.metric, self.mode = task, total, metric, mode
        self.board = board or ProgressBoard(live=live, stream=stream, clock_fn=clock_fn)
        self.clock = clock_fn
        self.started = clock_fn()
        self.running: set[str] = set()
        self.done, self.errored = ended_before  # a resumed study's trials that had ended (done, errored)
        self._ended_before = sum(ended_before)
        self.best: float | None = None
        self.best_choice = ""

    @property
    def live(self) -> bool:
        return self.board.live

    def __getstate__(self):
        # Tune pickles its callbacks into the study's state (tuner.pkl): the board (a lock, a stream) is not kept;
        # a resumed sweep is given fresh callbacks (raygex.search.tuner.build_tuner).
        state = self.__dict__.copy()
        state["board"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.board = ProgressBoard(live=False)

    # -- the numbers ------------------------------------------------------------------------------------------------
    def _consider(self, trial, result: dict | None) -> None:
        value = (result or {}).get(self.metric)
        if value is None or value != value:
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best, self.best_choice = value, describe_choice(trial.config or {})

    def eta_s(self) -> float | None:
        ended = self.done + self.errored
        ended_here = ended - self._ended_before
        if not ended_here:
            return None
        return (self.clock() - self.started) / ended_here * max(0, self.total - ended)

    def status(self) -> str:
        """The display's text: counts, best so far with its choice, elapsed and ETA."""
        best = "-" if self.best is None else f"{self.best:.4f} ({self.best_choice})"
        eta = self.eta_s()
        return (f"{self.task}  {self.done + self.errored}/{self.total} done · {len(self.running)} running · "
                f"{self.errored} errored · best {self.metric} {best} · {clock(self.clock() - self.started)} "
                f"elapsed · ETA {'-' if eta is None else clock(eta)}")

    # -- the output -------------------------------------------------------------------------------------------------
    def _ended(self, trial, status: str) -> None:
        self.running.discard(trial.trial_id)
        result = trial.last_result or {}
        self._consider(trial, result)
        value = result.get(self.metric)
        shown = "-" if value is None else f"{value:.4f}"
        line = (f"  [{self.task} {self.done + self.errored}/{self.total}] {trial.trial_id} "
                f"{describe_choice(trial.config or {}):<16} {status:<5} epochs {result.get('epoch', 0):>3}  "
                f"{self.metric} {shown}")
        if not self.live:
            eta = self.eta_s()
            best = "-" if self.best is None else f"{self.best:.4f} {self.best_choice}"
            line += (f"  | best {best} | {len(self.running)} running, {self.errored} errored | "
                     f"{clock(self.clock() - self.started)} elapsed, ETA {'-' if eta is None else clock(eta)}")
        self.board.print_above(line)
        self.board.draw()

    def setup(self, **info):
        self.board.add(self)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.board.add(self)
        self.running.add(trial.trial_id)
        self.board.draw()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._consider(trial, result)

    def on_step_end(self, iteration, trials, **info):
        if self.live:
            self.board.draw(unless_recent=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        self._ended(trial, "done")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.errored += 1
        self._ended(trial, "ERROR")

    def on_experiment_end(self, trials, **info):
        self.board.end(self)
