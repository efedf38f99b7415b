"""One line per finished trial instead of Tune's per-trial result boxes: what users of a sweep watch for."""

from __future__ import annotations

from ray.tune import Callback


class TrialProgress(Callback):
    """Prints ``[k/N] trial model graph metric (best so far)`` as trials finish or fail."""

    def __init__(self, task: str, total: int, metric: str, mode: str, echo=print):
        self.task, self.total, self.metric, self.mode, self.echo = task, total, metric, mode, echo
        self.done = 0
        self.best: float | None = None

    def _line(self, trial, status: str) -> None:
        self.done += 1
        result = trial.last_result or {}
        value = result.get(self.metric)
        if value is not None and value == value:
            better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
            self.best = value if better else self.best
        config = trial.config or {}
        what = config.get("model", "?") + (f"/{config['graph']}" if config.get("graph") else "")
        shown = "-" if value is None else f"{value:.4f}"
        best = "-" if self.best is None else f"{self.best:.4f}"
        self.echo(f"  [{self.task} {self.done}/{self.total}] {trial.trial_id} {what:<12} {status:<10} "
                  f"epochs {result.get('epoch', 0):>3}  {self.metric} {shown}  (best {best})")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._line(trial, "done")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, "ERROR")
