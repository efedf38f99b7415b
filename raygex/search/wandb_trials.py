"""One W&B run per trial, written off the driver's critical path.

Tune calls its callbacks inside the driver's result loop, so whatever a callback does there delays every trial's
next result. Ray's ``WandbLoggerCallback`` starts two actors per trial (a logger and its queue, new processes of
~220 MB each) and its first ``put`` waits for them to start: seconds per trial on a small machine, and Tune's
"may be a performance bottleneck" warnings. Here the hooks only put the event on an in-process queue; one
background thread of the driver owns the runs (``wandb.init(reinit="create_new")``: several open at once, one
per running trial), logs each epoch's row and finishes the run when its trial ends. Offline, a run costs about
70 ms of that thread's time.

A failure anywhere in the thread (wandb.init refusing the settings, a dead server) turns W&B off for the
experiment with one warning (:mod:`raygex.runtime.wandb_guard`); the sweep never waits on or fails because of W&B. At the
end of a study the thread is given ``UPLOAD_TIMEOUT_S`` to finish writing (or uploading).
"""

from __future__ import annotations

import numbers
import queue
import threading
from pathlib import Path

from ray.tune import Callback

from raygex.search.tune_compat.tune_files import epoch_rows
from raygex.runtime.wandb_guard import active, describe, is_off, run_group, run_tags, turn_off, wandb_mode

UPLOAD_TIMEOUT_S = 120  # at the end of a study, how long to wait for runs still writing or uploading
EXCLUDED_KEYS = ("config", "done", "should_checkpoint", "trial_id", "date", "hostname", "node_ip", "pid",
                 "checkpoint_dir_name")
_STOP = object()
# One W&B service per process: the writers of studies sweeping side by side take turns with it, and only the last
# one to close tears it down (a teardown while another study's runs are open would cut them off).
_WANDB_LOCK = threading.RLock()
_LIVE_WRITERS: set = set()
_UNFLUSHED = {"runs": 0}


def loggable_row(result: dict) -> dict:
    """A trial's result as a W&B row: numbers only (nested dicts flattened with ``/``), as Ray's logger keeps."""
    row = {}
    for key, value in result.items():
        if key in EXCLUDED_KEYS:
            continue
        if isinstance(value, dict):
            row.update({f"{key}/{k}": v for k, v in loggable_row(value).items()})
        elif isinstance(value, numbers.Number):
            row[key] = int(value) if isinstance(value, bool) else value
    return row


class RunWriter:
    """The background thread that owns the trials' W&B runs; every public method returns at once."""

    def __init__(self, exp_dir: Path, init_kwargs: dict):
        self.exp_dir, self.init_kwargs = Path(exp_dir), init_kwargs
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.runs: dict = {}
        self.written: list[str] = []  # trial ids whose runs were finished
        self.thread = threading.Thread(target=self._loop, name="raygex-wandb-trials", daemon=True)
        with _WANDB_LOCK:
            _LIVE_WRITERS.add(self)
        self.thread.start()

    def start(self, trial_id: str, name: str, config: dict) -> None:
        self.events.put(("start", trial_id, (name, config)))

    def log(self, trial_id: str, row: dict) -> None:
        self.events.put(("log", trial_id, row))

    def end(self, trial_id: str, failed: bool) -> None:
        self.events.put(("end", trial_id, failed))

    def close(self, timeout: float = UPLOAD_TIMEOUT_S) -> bool:
        """Finish every open run and stop the thread; False when it had not finished within ``timeout``."""
        self.events.put(_STOP)
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _loop(self) -> None:
        while True:
            event = self.events.get()
            if event is _STOP:
                with _WANDB_LOCK:
                    self._finish_all()
                    _LIVE_WRITERS.discard(self)
                    if _UNFLUSHED["runs"] and not _LIVE_WRITERS:
                        self._flush()
                        _UNFLUSHED["runs"] = 0
                return
            if is_off(self.exp_dir):
                continue  # W&B is off for this experiment: drain, do nothing
            try:
                with _WANDB_LOCK:
                    self._handle(*event)
            except Exception as err:
                turn_off(self.exp_dir, f"trial logging failed ({describe(err)})")
                with _WANDB_LOCK:
                    self._finish_all(exit_code=1)

    def _handle(self, kind: str, trial_id: str, value) -> None:
        import wandb

        if kind == "start":
            if trial_id in self.runs:  # a restored trial starts again: keep its open run
                return
            name, config = value
            self.runs[trial_id] = wandb.init(id=trial_id, name=name, config=config, reinit="create_new",
                                             allow_val_change=True, **self.init_kwargs)
        elif kind == "log" and trial_id in self.runs:
            self.runs[trial_id].log(value)
        elif kind == "end" and trial_id in self.runs:
            self.runs.pop(trial_id).finish(exit_code=1 if value else 0)
            self.written.append(trial_id)
            _UNFLUSHED["runs"] += 1

    @staticmethod
    def _flush() -> None:
        """Wait for wandb's service to write every finished run: ``finish()`` of one of several open runs can
        return before its transaction log is on disk (seen with wandb 0.31 offline); teardown waits for it."""
        import wandb

        try:
            wandb.teardown()
        except Exception:
            pass

    def _finish_all(self, exit_code: int = 0) -> None:
        for trial_id in list(self.runs):
            run = self.runs.pop(trial_id)
            _UNFLUSHED["runs"] += 1
            try:
                run.finish(exit_code=exit_code)
            except Exception:
                pass


class TrialLogger(Callback):
    """Tune callback: each trial's start, per-epoch results and end, handed to a :class:`RunWriter`."""

    def __init__(self, exp_dir: Path, task: str, extra_config: dict, **init_kwargs):
        self.exp_dir, self.task, self.extra_config, self.init_kwargs = Path(exp_dir), task, extra_config, init_kwargs
        self.writer: RunWriter | None = None

    def _writer(self) -> RunWriter | None:
        if is_off(self.exp_dir):
            return None
        if self.writer is None:
            self.writer = RunWriter(self.exp_dir, self.init_kwargs)
        return self.writer

    def on_trial_start(self, iteration, trials, trial, **info):
        writer = self._writer()
        if writer is not None:
            config = {k: v for k, v in (trial.config or {}).items() if isinstance(v, (numbers.Number, str))}
            writer.start(trial.trial_id, f"{self.task}-{trial.trial_id}", {**config, **self.extra_config})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        writer = self._writer()
        if writer is not None:
            for row in epoch_rows(result):  # a report may carry several epochs: each is a step of the run
                writer.log(trial.trial_id, loggable_row(row))

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.writer is not None:
            self.writer.end(trial.trial_id, failed=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        if self.writer is not None:
            self.writer.end(trial.trial_id, failed=True)

    def on_experiment_end(self, trials, **info):
        if self.writer is not None and not self.writer.close():
            turn_off(self.exp_dir, f"trial runs still writing after {UPLOAD_TIMEOUT_S} s; left unfinished")


def trial_callbacks(config, exp_dir: Path, task: str) -> list:
    """``[callback]`` logging each of the task's trials to W&B, or ``[]`` when W&B is disabled or unusable."""
    try:
        if not active(config, exp_dir, task):
            return []
        extra = {"task": task, "experiment": Path(exp_dir).name, "train": config.train.model_dump()}
        return [TrialLogger(Path(exp_dir), task, extra, project=config.wandb.project,
                            group=run_group(exp_dir, task), mode=wandb_mode(config), dir=str(exp_dir),
                            job_type="trial", tags=run_tags(exp_dir, task),
                            settings={"silent": True, "console": "off"})]
    except Exception as err:
        turn_off(exp_dir, describe(err))
        return []
