"""`raygex bench search` end to end on a small dataset: both measurements come back and trials read shared arrays."""

from __future__ import annotations

import json


def test_bench_search_reports_zero_copy_and_throughput(run_cli, tmp_path):
    code, out, err = run_cli("bench", "search", "--samples", "120", "--genes", "200", "--trials", "3",
                             "--concurrent", "2", "--cpus-per-trial", "1", "--epochs", "2",
                             "--workdir", tmp_path, "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["trials"] == 3 and result["concurrent"] == 2
    # Every trial's split arrays were read-only views of Ray's object store, not copies of its own.
    assert result["trials_reading_shared_arrays"] == "3/3"
    for key in ("sweep_trials_s", "sequential_trials_s", "sequential_1thread_trials_s",
                "sequential_tuned_malloc_trials_s"):
        assert result[key] > 0, key
    assert result["speedup_trials"] == round(result["sequential_trials_s"] / result["sweep_trials_s"], 2) or \
        abs(result["speedup_trials"] - result["sequential_trials_s"] / result["sweep_trials_s"]) < 0.2
