"""`raygex bench scale` on a tiny dataset and a 2-node simulated cluster: its table's fields, that the driver's
growth is a real measurement (a known allocation made during the search shows), and the store sampling."""

from __future__ import annotations

import json


def test_bench_scale_measures_driver_growth_and_node_stores(tmp_path):
    from raygex.bench.scale import format_table, json_line, occupancy, run_scale_benchmark

    result = run_scale_benchmark(tmp_path, [(2000, 500)], nodes=2, cpus_per_node=2, store_mb=128, epochs=1,
                                 trials=1, tile_mb=1.0, ballast_mb=300)
    (row,) = result["results"]
    assert row["dataset_bytes"] > 2000 * 500 * 4 * 0.9 and row["nodes"] == 2
    # the ballast shows (a peak is the larger of the ballast and the search's own): VmHWM is really read
    assert row["driver_peak_reset"] and row["driver_growth_mb"] >= 0.98 * 300, row
    assert set(row["store_peak_mb"]) == {"node0", "node1"} and max(row["store_peak_mb"].values()) > 0
    assert row["store_samples"] > 1 and row["store_limit_mb"] > 0
    assert row["trials"] == row["trials_terminated"] == 2  # one per study: the small and the streamed one
    assert row["trials_sharing_arrays"] == 1, "the small study's trial reads arrays, the large one streams"
    assert 0 < row["occupancy_sequential"] <= 1
    assert not list(tmp_path.glob("raygex-bench-scale-*")), "the temporary datasets are deleted"
    table = format_table(result)
    assert "driver +MB" in table and "2000x500" in table.replace(" ", "")
    assert json.loads(json_line(result))["results"][0]["genes"] == 500
    assert occupancy([(0, 10), (0, 5)], 2) == 0.75
