"""When a trial reports to Tune (raygex.search.epoch_reports) and how a report carrying several epochs reads back."""

from __future__ import annotations

import json
from types import SimpleNamespace

from raygex.search.epoch_reports import ReportSchedule
from raygex.search.scheduler import build_scheduler, decision_epochs
from raygex.search.tune_compat.tune_files import EARLIER_EPOCHS, RESTORED, epoch_rows, trial_epochs


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run(schedule: ReportSchedule, clock: Clock, epochs: int, seconds_per_epoch: float, last_epoch: int):
    reports = []
    for epoch in range(1, epochs + 1):
        clock.now += seconds_per_epoch
        report, checkpoint = schedule.report(epoch, {"epoch": epoch}, last=epoch == last_epoch)
        if report is not None:
            reports.append({**report, "checkpoint": checkpoint})
        else:
            assert not checkpoint
    return reports


def test_short_epochs_are_reported_at_checkpoints_decisions_and_the_end():
    clock = Clock()
    schedule = ReportSchedule(checkpoint_every=5, decision_epochs=[2, 8], interval_s=1.0, clock=clock)
    reports = run(schedule, clock, 12, 0.01, last_epoch=12)
    assert [r["epoch"] for r in reports] == [2, 5, 8, 10, 12]
    assert [[e["epoch"] for e in r[EARLIER_EPOCHS]] for r in reports] == [[1], [3, 4], [6, 7], [9], [11]]
    # decision epochs checkpoint too (the scheduler may end the trial there)
    assert [r["checkpoint"] for r in reports] == [True, True, True, True, True]


def test_long_epochs_are_each_reported():
    clock = Clock()
    schedule = ReportSchedule(checkpoint_every=5, interval_s=1.0, clock=clock)
    reports = run(schedule, clock, 7, 1.5, last_epoch=7)
    assert [r["epoch"] for r in reports] == list(range(1, 8))
    assert all(r[EARLIER_EPOCHS] == [] for r in reports)


def test_a_trial_stopped_by_patience_reports_its_last_epoch_with_a_checkpoint():
    clock = Clock()
    schedule = ReportSchedule(checkpoint_every=5, interval_s=1.0, clock=clock)
    reports = run(schedule, clock, 3, 0.01, last_epoch=3)
    assert [(r["epoch"], r["checkpoint"]) for r in reports] == [(3, True)]


def test_checkpoints_are_at_least_checkpoint_min_s_apart_and_the_last_epoch_always_checkpoints():
    clock = Clock()
    schedule = ReportSchedule(checkpoint_every=5, checkpoint_min_s=2.0, interval_s=1.0, clock=clock)
    reports = run(schedule, clock, 23, 0.3, last_epoch=23)  # a checkpoint epoch every 1.5 s
    assert [r["epoch"] for r in reports if r["checkpoint"]] == [10, 20, 23]
    # the epochs between are still reported about once a second, without a checkpoint
    assert [r["epoch"] for r in reports] == [4, 8, 10, 14, 18, 20, 23]


def test_epoch_rows_give_every_epoch_back_with_the_trial_fields():
    result = {"epoch": 3, "auc": 0.9, "trial_id": "t1", "pid": 7, "timestamp": 99, "done": True,
              EARLIER_EPOCHS: [{"epoch": 1, "auc": 0.7}, {"epoch": 2, "auc": 0.8}]}
    rows = epoch_rows(result)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[0] == {"epoch": 1, "auc": 0.7, "trial_id": "t1", "pid": 7}  # not the carrying report's timestamp
    assert EARLIER_EPOCHS not in rows[-1] and rows[-1]["done"] is True
    assert epoch_rows({"epoch": 1}) == [{"epoch": 1}]  # a result written before reports carried epochs


def scheduler_config(kind: str, grace: int, max_epochs: int, scheduler_max: int | None = None):
    return SimpleNamespace(train=SimpleNamespace(max_epochs=max_epochs),
                           search=SimpleNamespace(scheduler=SimpleNamespace(kind=kind, grace_period=grace,
                                                                            max_epochs=scheduler_max,
                                                                            rungs="study")))


def test_decision_epochs_are_the_rungs_of_the_asha_raygex_builds_and_its_max_t():
    for grace, max_epochs, scheduler_max in [(5, 60, None), (1, 3, None), (2, 100, 40), (10, 10, None)]:
        config = scheduler_config("asha", grace, max_epochs, scheduler_max)
        asha = build_scheduler(config, "best_valid_auc", "max")
        rungs = {milestone for bracket in asha._brackets for milestone, _ in bracket._rungs}
        assert set(decision_epochs(config)) == rungs | {asha._max_t}
    assert decision_epochs(scheduler_config("fifo", 5, 60)) == []


def test_a_raising_trial_flushes_the_epochs_it_held_back():
    clock = Clock()
    schedule = ReportSchedule(checkpoint_every=5, interval_s=1.0, clock=clock)
    run(schedule, clock, 3, 0.01, last_epoch=10)
    flushed = schedule.flush()
    assert flushed["epoch"] == 3 and [e["epoch"] for e in flushed[EARLIER_EPOCHS]] == [1, 2]
    assert schedule.flush() is None


def test_trial_epochs_keep_each_epoch_once_the_later_report_winning():
    """A trial restored from its epoch-2 checkpoint trains epochs 3-4 again: the history keeps the rerun."""
    lines = [json.dumps({"epoch": 2, "auc": 0.6, EARLIER_EPOCHS: [{"epoch": 1, "auc": 0.5}]}),
             json.dumps({"epoch": 4, "auc": 0.8, EARLIER_EPOCHS: [{"epoch": 3, "auc": 0.7}]}),
             json.dumps({"epoch": 4, "auc": 0.81, EARLIER_EPOCHS: [{"epoch": 3, "auc": 0.71}]}),
             json.dumps({"epoch": 5, "auc": 0.9, EARLIER_EPOCHS: []}), ""]
    rows = trial_epochs(lines)
    assert [(r["epoch"], r["auc"]) for r in rows] == [(1, 0.5), (2, 0.6), (3, 0.71), (4, 0.81), (5, 0.9)]


def test_epochs_resent_from_a_checkpoint_fill_only_the_epochs_the_store_lost():
    """A driver killed after epoch 4's checkpoint but before it wrote epochs 3-4 to the store: the restored trial
    sends the checkpoint's epochs 1-4 again (marked), which fill 3-4 and leave 1-2 as first reported."""
    restored = [{"epoch": e, "auc": e / 10, RESTORED: True} for e in (1, 2, 3, 4)]
    lines = [json.dumps({"epoch": 2, "auc": 0.6, "node_id": "a", EARLIER_EPOCHS: [{"epoch": 1, "auc": 0.5}]}),
             json.dumps({"epoch": 5, "auc": 0.9, "node_id": "b", EARLIER_EPOCHS: restored})]
    rows = trial_epochs(lines)
    assert [(r["epoch"], r["auc"], bool(r.get(RESTORED))) for r in rows] == [
        (1, 0.5, False), (2, 0.6, False), (3, 0.3, True), (4, 0.4, True), (5, 0.9, False)]
