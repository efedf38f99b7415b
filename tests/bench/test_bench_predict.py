"""`raygex bench predict` end to end on a small generated graph: both predictors are timed and agree."""

from __future__ import annotations

import json


def test_bench_predict_times_exported_beside_in_memory(run_cli):
    code, out, err = run_cli("bench", "predict", "--synthetic", "--nodes", "500", "--edges", "3000",
                             "--depth", "2", "--channels", "8", "--embedding", "4", "--batch", "32",
                             "--repeats", "3", "--calls", "20", "--threads", "1", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["graph"].startswith("synthetic")
    assert (result["n_genes"], result["n_edges"], result["nnz"]) == (500, 3000, 2 * 3000 + 500)
    assert (result["depth"], result["channels"], result["embedding"], result["batch"]) == (2, 8, 4, 32)
    assert result["torch_threads"] == 1
    # The exported file computes the same probabilities as the network it was written from.
    assert 0.0 <= result["max_abs_diff"] < 1e-5
    for name in ("in_memory", "exported"):
        assert result[f"{name}_batch_ms"] > 0
        assert abs(result[f"{name}_samples_per_s"] - 32 / (result[f"{name}_batch_ms"] / 1e3)) \
            < 0.01 * result[f"{name}_samples_per_s"] + 1
        assert 0 < result[f"{name}_p50_ms"] <= result[f"{name}_p99_ms"]
    ratio = result["exported_samples_per_s"] / result["in_memory_samples_per_s"]
    assert abs(result["exported_over_in_memory_samples_per_s"] - ratio) < 0.01
    assert result["target_samples_per_s"] == 2000
    assert result["target_met"] == (result["exported_samples_per_s"] >= 2000)
    assert "exported" in out and "in_memory" in out  # the table precedes the JSON line


def test_bench_predict_rejects_bad_options(run_cli):
    code, _, err = run_cli("bench", "predict", "--synthetic", "--nodes", "50", "--edges", "100", "--batch", "0")
    assert code != 0
    assert "batch must be positive" in err
