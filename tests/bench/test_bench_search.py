"""`raygex bench search` end to end on a small dataset: the sweep and the loop run the same configurations, the
trial phase is timed apart from start-up and the post-sweep stages, and every run works in a fresh folder."""

from __future__ import annotations

import json
from pathlib import Path


def test_bench_search_replays_one_configuration_list_in_a_fresh_folder(run_cli, tmp_path):
    args = ("bench", "search", "--samples", "120", "--genes", "200", "--trials", "3", "--concurrent", "2",
            "--cpus-per-trial", "1", "--epochs", "2", "--workdir", str(tmp_path), "--json")
    code, out, err = run_cli(*args)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["trials"] == 3 and result["concurrent"] == 2
    # the sweep ran each of the 3 configurations once; the loop replayed that list
    assert result["configurations"] == result["distinct_configurations"] == 3
    # Every trial's split arrays were read-only views of Ray's object store, not copies of its own.
    assert result["trials_reading_shared_arrays"] == "3/3"
    for key in ("sweep_trials_s", "sequential_trials_s", "sequential_1thread_trials_s",
                "sequential_tuned_malloc_trials_s"):
        assert result[key] > 0, key
    assert result["sequential_data_s"] >= 0 and result["sweep_data_s"] >= 0
    # the post-sweep stages are listed apart from the trial phase
    assert {"sweep", "leaderboard", "export", "evaluation", "report"} <= set(result["sweep_stages_s"])
    # the trial phase (first trial start to last trial end) plus Tune's start fit inside Tuner.fit
    assert 0 < result["sweep_trials_s"] <= result["sweep_fit_s"] <= result["sweep_stages_s"]["sweep"] + 0.1
    assert result["sweep_tune_start_s"] > 0
    assert result["sweep_tune_start_s"] + result["sweep_trials_s"] <= result["sweep_fit_s"] + 0.2
    loops = [result[k] for k in ("sequential_trials_s", "sequential_1thread_trials_s",
                                 "sequential_tuned_malloc_trials_s")]
    assert result["best_sequential_trials_s"] == min(loops)
    assert abs(result["speedup_trials_vs_best_sequential"] - min(loops) / result["sweep_trials_s"]) < 0.1
    # the run worked in a fresh temporary folder of its own under the workdir (mkdtemp: a second run gets another,
    # so an experiment left by an earlier run never stops it)
    folder = Path(result["folder"])
    assert folder.parent == tmp_path and folder.name.startswith("raygex-bench-search-")
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
