"""When a trial reports to Tune, and how a report that carries several epochs is read back.

Every Tune report costs the trial a round trip to the driver (Tune's function trainables block until the driver
has taken the result) and costs the driver its whole result loop: loggers, searcher, scheduler, progress
display, and, for a report with a checkpoint, a snapshot of the experiment state. Measured by
``raygex bench search`` on 10-ms epochs, that was as much CPU as the training itself. So a trial holds an
epoch's metrics back and reports them with a later epoch, but always reports

* every checkpoint (every ``search.checkpoint_every`` epochs, at least ``search.checkpoint_min_s`` seconds
  apart) and the last epoch, which always checkpoints,
* every epoch the scheduler decides at (:func:`raygex.search.scheduler.decision_epochs`), with a checkpoint (the
  trial may end there), so ASHA sees the results it would see with a report every epoch,
* the epochs held back when the trial raises (before the error reaches Tune), and
* any epoch once :data:`REPORT_INTERVAL_S` have passed since the last report (long epochs: each one).

A report's own metrics are its latest epoch's (what Tune, the scheduler and the leaderboard read); the held-back
epochs travel in it under ``EARLIER_EPOCHS``, in order, and :func:`raygex.search.tune_compat.tune_files.epoch_rows` gives every epoch back (the
trial histories, W&B's per-epoch runs and Optuna's intermediate values read them so).
"""

from __future__ import annotations

import time

from raygex.search.tune_compat.tune_files import EARLIER_EPOCHS

REPORT_INTERVAL_S = 1.0


class ReportSchedule:
    """Decides, epoch by epoch, whether a trial reports now and with a checkpoint (see the module), and keeps the
    epochs held back."""

    def __init__(self, checkpoint_every: int, checkpoint_min_s: float = 0.0, decision_epochs=(),
                 interval_s: float = REPORT_INTERVAL_S, clock=time.monotonic):
        self.checkpoint_every, self.checkpoint_min_s = int(checkpoint_every), float(checkpoint_min_s)
        self.decisions = {int(e) for e in decision_epochs}
        self.interval_s, self.clock = float(interval_s), clock
        self.last_report = self.last_checkpoint = clock()
        self.held: list[dict] = []

    def report(self, epoch: int, metrics: dict, last: bool) -> tuple[dict | None, bool]:
        """(the metrics to report now, with the held-back epochs under ``EARLIER_EPOCHS``, or None when this epoch
        is held back for a later report; whether the report carries a checkpoint)."""
        now = self.clock()
        # at a decision epoch too: the scheduler may end the trial there (the export reads the checkpoint it ended at)
        checkpoint = last or epoch in self.decisions or (epoch % self.checkpoint_every == 0
                                                         and now - self.last_checkpoint >= self.checkpoint_min_s)
        if not (checkpoint or now - self.last_report >= self.interval_s):
            self.held.append(metrics)
            return None, False
        self.last_report = now
        if checkpoint:
            self.last_checkpoint = now
        report = {**metrics, EARLIER_EPOCHS: self.held}
        self.held = []
        return report, checkpoint

    def flush(self) -> dict | None:
        """The epochs held back as one report (the latest with the others under ``EARLIER_EPOCHS``), or None: what
        a trial that is raising still reports, so its history ends where its training did."""
        if not self.held:
            return None
        *earlier, latest = self.held
        self.held = []
        return {**latest, EARLIER_EPOCHS: earlier}
