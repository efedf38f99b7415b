"""When a trial reports to Tune, and how a report that carries several epochs is read back.

Every Tune report costs the trial a round trip to the driver (Tune's function trainables block until the driver
has taken the result) and costs the driver its whole result loop: loggers, searcher, scheduler, progress
display, and, for a report with a checkpoint, a snapshot of the experiment state. Measured by
``raygex bench search`` on 10-ms epochs, that was as much CPU as the training itself. So a trial holds an
epoch's metrics back and reports them with a later epoch, but always reports

* every checkpoint epoch (``search.checkpoint_every``) and the last epoch,
* every epoch the scheduler decides at (:func:`raygex.search.scheduler.decision_epochs`), so ASHA sees the
  results it would see with a report every epoch, and
* any epoch once :data:`REPORT_INTERVAL_S` have passed since the last report (long epochs: each one).

A report's own metrics are its latest epoch's (what Tune, the scheduler and the leaderboard read); the held-back
epochs travel in it under ``EARLIER_EPOCHS``, in order, and :func:`raygex.tune_state.epoch_rows` gives every epoch back (the
trial histories, W&B's per-epoch runs and Optuna's intermediate values read them so).
"""

from __future__ import annotations

import time

from raygex.tune_state import EARLIER_EPOCHS

REPORT_INTERVAL_S = 1.0


class ReportSchedule:
    """Decides, epoch by epoch, whether a trial reports now (see the module) and keeps the epochs held back."""

    def __init__(self, checkpoint_every: int, decision_epochs=(), interval_s: float = REPORT_INTERVAL_S,
                 clock=time.monotonic):
        self.checkpoint_every, self.decisions = int(checkpoint_every), {int(e) for e in decision_epochs}
        self.interval_s, self.clock = float(interval_s), clock
        self.last_report = clock()
        self.held: list[dict] = []

    def checkpoints(self, epoch: int, last: bool) -> bool:
        """Whether this epoch's report carries a checkpoint."""
        return last or epoch % self.checkpoint_every == 0

    def report(self, epoch: int, metrics: dict, last: bool) -> dict | None:
        """The metrics to report now (with the held-back epochs under :data:`EARLIER_EPOCHS`), or None when this
        epoch is held back for a later report."""
        now = self.clock()
        if not (self.checkpoints(epoch, last) or epoch in self.decisions or now - self.last_report >= self.interval_s):
            self.held.append(metrics)
            return None
        self.last_report = now
        report = {**metrics, EARLIER_EPOCHS: self.held}
        self.held = []
        return report
