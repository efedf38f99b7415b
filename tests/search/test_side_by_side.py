"""Studies sweep side by side under one experiment-wide budget of trial slots (`search.max_concurrent`), with an
optional cap per study (`search.max_concurrent_per_study`) and a cap on how many studies sweep at once
(`search.studies_at_once`: 1 runs them one after another).

The evidence is the trials' own wall clocks (every report carries when the trial started and the time of the
report), read from the trial folders: how many trials ran at the same instant, and of which studies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ray.tune.search import Searcher

from raygex.experiment.layout import ExperimentLayout
from raygex.search.slots import SlotLimiter, TrialSlots, open_slots
from tests.search.conftest import SWEEP_ONLY, write_config

ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
       "WANDB_MODE": "disabled"}
TASKS = [{"name": "subtype", "kind": "classify", "label": "subtype"},
         {"name": "sgi", "kind": "single_gene", "gene": "G0001", "inputs": {"mode": "all"}}]
TRIALS = 3


class ListSearcher(Searcher):
    """A stand-in searcher: suggests from a list, records completions (the limiter's inner searcher)."""

    def __init__(self, configs):
        super().__init__(metric="valid_auc", mode="max")
        self.configs, self.completed = list(configs), []

    def suggest(self, trial_id):
        return self.configs.pop(0) if self.configs else None

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append(trial_id)


def test_studies_draw_from_one_pool_and_a_slot_stays_with_its_study_while_it_has_trials_left():
    with open_slots("exp", 2) as pool:
        first = SlotLimiter(ListSearcher([{"a": 1}, {"a": 2}, {"a": 3}]), 2, study="one", slots_key="exp", budget=3)
        second = SlotLimiter(ListSearcher([{"b": 1}, {"b": 2}]), 1, study="two", slots_key="exp", budget=2)
        assert first.suggest("t1") == {"a": 1}
        assert second.suggest("u1") == {"b": 1}
        assert pool.in_use == 2
        assert first.suggest("t2") is None  # the experiment's two slots are taken
        second.on_trial_complete("u1", {"x": 1})
        assert second.searcher.completed == ["u1"]
        assert first.suggest("t2") is None, "a study with trials left keeps its slot (and Tune's actor) for them"
        assert second.suggest("u2") == {"b": 2} and pool.in_use == 2
        second.on_trial_complete("u2")  # its last trial: nothing left to create, the slot goes back
        assert pool.in_use == 1
        assert first.suggest("t3") == {"a": 2}
        assert pool.peak == 2
    empty = SlotLimiter(ListSearcher([]), 1, study="three", slots_key="exp", budget=1)
    assert empty.suggest("v1") is None  # no pool open (a pickled searcher read elsewhere): only its own cap


def test_a_kept_slot_lapses_and_a_finished_search_lets_go():
    now = [0.0]
    pool = TrialSlots(1, keep_s=10, clock=lambda: now[0])
    assert pool.acquire("one", "t1")
    pool.release("one", "t1")  # kept for "one"
    assert not pool.acquire("two", "u1")
    now[0] = 11.0
    assert pool.acquire("two", "u1"), "a study that never asked again lost its kept slot"
    pool.release("two", "u1")
    pool.let_go("two")
    assert pool.in_use == 0


def test_a_suggestion_refused_by_the_study_cap_does_not_keep_a_slot():
    with open_slots("exp", 3) as pool:
        limiter = SlotLimiter(ListSearcher([{"a": 1}, {"a": 2}]), 1, study="one", slots_key="exp", budget=2)
        assert limiter.suggest("t1") == {"a": 1}
        assert limiter.suggest("t2") is None and pool.in_use == 1  # its own cap said no
        limiter.on_trial_complete("t1")  # kept for its last trial
        assert pool.in_use == 1 and limiter.suggest("t2") == {"a": 2} and pool.in_use == 1
        pool.hold("one", ["restored"])  # a trial Tune restores runs without a suggestion
        assert pool.in_use == 2


def test_slots_are_thread_safe_and_never_exceed_the_capacity():
    import threading

    pool, granted = TrialSlots(3), []

    def grab(worker):
        for i in range(200):
            if pool.acquire("s", f"{worker}-{i}"):
                granted.append(1)
                pool.release("s", f"{worker}-{i}", keep=False)

    threads = [threading.Thread(target=grab, args=(w,)) for w in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert pool.peak <= 3 and pool.in_use == 0 and granted


def trial_spans(experiment: Path, task: str) -> list[tuple[float, float]]:
    """(start, end) wall clock of each trial of the task, from its reports."""
    spans = []
    for result in (experiment / task).glob("*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        spans.append((rows[0]["wall_start"], rows[-1]["wall_time"]))
    return spans


def most_at_once(spans: list[tuple[float, float, str]]) -> tuple[int, int]:
    """The most trials running at one instant, and the most distinct studies among them."""
    peak, studies = 0, 0
    for start, _, _ in spans:
        running = [s for s in spans if s[0] <= start < s[1]]
        peak = max(peak, len(running))
        studies = max(studies, len({s[2] for s in running}))
    return peak, studies


def run_search(tiny_demo, tmp_path, name: str, **search) -> Path:
    config = write_config(tmp_path / f"{name}.yaml", tiny_demo, name=name, tasks=TASKS,
                          **SWEEP_ONLY,  # each trial runs to its end: the later stages train nothing again
                          # long enough (~1 s) that a study's two trials overlap: they start ~a second apart
                          train={"max_epochs": 150, "patience": 150, "batch_size": 32},
                          search={"num_samples": TRIALS, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {"model": "mlp", "hidden": 16,
                                            "lr": {"choice": [0.001, 0.003, 0.01]}}, **search})
    done = subprocess.run([sys.executable, "-m", "raygex", "search", str(config)], env=ENV, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "results" / name


@pytest.mark.slow
def test_studies_sweep_side_by_side_within_the_experiment_budget(tiny_demo, tmp_path):
    experiment = run_search(tiny_demo, tmp_path, "together", max_concurrent_per_study=1)
    spans = [(*span, task["name"]) for task in TASKS for span in trial_spans(experiment, task["name"])]
    assert len(spans) == TRIALS * len(TASKS)
    peak, studies = most_at_once(spans)
    for task in TASKS:
        own = [s for s in spans if s[2] == task["name"]]
        assert most_at_once(own)[0] == 1, f"{task['name']}: its cap of 1 trial at a time was exceeded"
    assert peak == 2 and studies == 2, "the two studies never ran trials at the same time"

    layout = ExperimentLayout.open(experiment)
    sweeps = [entry["study"] for entry in layout.journal() if entry["stage"] == "sweep"]
    assert sorted(sweeps) == sorted(t["name"] for t in TASKS)  # one sweep each, none run again afterwards
    for task in TASKS:
        states = layout.trial_states(task["name"])
        assert len(states) == TRIALS and set(states.values()) == {"TERMINATED"}

    apart = run_search(tiny_demo, tmp_path, "apart", studies_at_once=1)
    spans = {task["name"]: trial_spans(apart, task["name"]) for task in TASKS}
    first, second = sorted(spans.values(), key=lambda s: min(start for start, _ in s))
    assert max(end for _, end in first) <= min(start for start, _ in second), "studies_at_once: 1 overlapped"
    assert most_at_once([(*s, "x") for s in first])[0] == 2  # one study alone may use the whole budget
