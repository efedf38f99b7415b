"""Slot occupancy (`raygex bench scale`'s concurrent vs one-after-another figure): busy slot-seconds over slots ×
the span while trials remain, from the trials' own clocks."""

from __future__ import annotations

import json

import pytest

from raygex.bench.occupancy import occupancy, trial_spans


def test_occupancy_counts_idle_slots_between_studies():
    # two slots; study a fills both for 10 s, then 5 s of set-up with nothing running, then b fills one for 10 s
    spans = [(0, 10), (0, 10), (15, 25)]
    assert occupancy(spans, 2) == pytest.approx(30 / (2 * 25))
    assert occupancy([(0, 10), (0, 10)], 2) == 1.0
    assert occupancy([], 3) != occupancy([], 3)  # nan: no trials, no figure


def test_spans_come_from_every_trials_first_and_last_report(tmp_path):
    for study, trial, rows in (("a", "t1", [(5.0, 6.0), (5.0, 9.0)]), ("b", "t2", [(7.0, 8.0)])):
        folder = tmp_path / study / trial
        folder.mkdir(parents=True)
        (folder / "result.json").write_text("".join(json.dumps({"wall_start": s, "wall_time": t}) + "\n"
                                                    for s, t in rows))
    assert sorted(trial_spans(tmp_path, ["a", "b"])) == [("a", 5.0, 9.0), ("b", 7.0, 8.0)]
