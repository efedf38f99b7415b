"""The study progress display: counts, best so far with its choice, elapsed and ETA; redrawn in place on a
terminal, one line per finished trial elsewhere."""

from __future__ import annotations

import io

from raygex.search.progress import StudyProgress, clock


class FakeTrial:
    def __init__(self, trial_id, config, result=None):
        self.trial_id, self.config, self.last_result = trial_id, config, result or {}


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_line_mode_prints_one_line_per_ended_trial_with_counts_best_and_eta(raygex_messages):
    lines, now = raygex_messages, FakeClock()
    progress = StudyProgress("subtype", 4, "valid_auc", "max", live=False, stream=io.StringIO(),
                             clock_fn=now)
    gcn = FakeTrial("a", {"model": "gcn", "graph": "true"}, {"valid_auc": 0.9, "epoch": 7})
    mlp = FakeTrial("b", {"model": "mlp"}, {"valid_auc": 0.8, "epoch": 3})
    progress.on_trial_start(0, [], gcn)
    progress.on_trial_start(0, [], mlp)
    now.now += 30
    progress.on_trial_complete(0, [], gcn)
    now.now += 10
    progress.on_trial_error(0, [], mlp)
    assert len(lines) == 2
    assert lines[0].startswith("  [subtype 1/4] a gcn/true") and "valid_auc 0.9000" in lines[0]
    assert "best 0.9000 gcn/true" in lines[0] and "1 running, 0 errored" in lines[0]
    assert "0:30 elapsed, ETA 1:30" in lines[0]  # 30 s per ended trial, 3 left
    assert "ERROR" in lines[1] and "0 running, 1 errored" in lines[1] and "ETA 0:40" in lines[1]  # 20 s × 2


def test_best_follows_the_mode_and_running_results():
    progress = StudyProgress("t", 3, "valid_loss", "min", live=False, stream=io.StringIO())
    first = FakeTrial("a", {"model": "lr"}, {"valid_loss": 0.5})
    second = FakeTrial("b", {"model": "mlp"})
    progress.on_trial_complete(0, [], first)
    progress.on_trial_result(0, [], second, {"valid_loss": 0.7})
    assert (progress.best, progress.best_choice) == (0.5, "lr")
    progress.on_trial_result(0, [], second, {"valid_loss": 0.3})
    assert (progress.best, progress.best_choice) == (0.3, "mlp")
    assert "best valid_loss 0.3000 (mlp)" in progress.status()


def test_live_mode_redraws_one_line_in_place_and_prints_finished_trials_above_it(raygex_messages):
    stream, printed, now = io.StringIO(), raygex_messages, FakeClock()
    progress = StudyProgress("subtype", 2, "valid_auc", "max", live=True, stream=stream,
                             clock_fn=now)
    trial = FakeTrial("a", {"model": "mlp"}, {"valid_auc": 0.7, "epoch": 2})
    progress.on_trial_start(0, [], trial)
    assert stream.getvalue() == "\r\033[K" + progress.status() and "1 running" in progress.status()
    now.now += 0.5
    progress.on_step_end(0, [])  # less than a second since the last draw: nothing
    assert stream.getvalue().count("\r\033[K") == 1
    now.now += 1
    progress.on_step_end(0, [])  # elapsed time moves on screen
    assert stream.getvalue().count("\r\033[K") == 2 and "0:01 elapsed" in stream.getvalue()
    progress.on_trial_complete(0, [], trial)
    assert len(printed) == 1 and "|" not in printed[0]  # the finished trial, without the status (it is below)
    progress.on_experiment_end([])
    assert stream.getvalue().endswith(progress.status() + "\n") and "1/2 done" in progress.status()


def test_a_resumed_study_counts_its_finished_trials_and_times_only_this_run():
    now = FakeClock()
    progress = StudyProgress("t", 10, "valid_auc", "max", live=False, stream=io.StringIO(),
                             clock_fn=now, ended_before=(6, 0))
    assert progress.eta_s() is None and "6/10 done" in progress.status()
    now.now += 20
    progress.on_trial_complete(0, [], FakeTrial("x", {"model": "lr"}, {"valid_auc": 0.6}))
    assert progress.eta_s() == 60  # 20 s for the one trial of this run, 3 left
    assert clock(3725) == "1:02:05" and clock(65) == "1:05"
