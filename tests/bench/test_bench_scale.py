"""`raygex bench scale` on a tiny dataset and a 2-node simulated cluster: its table's fields, that the driver's
growth is a real measurement (a known allocation made during the search shows), and the store sampling."""

from __future__ import annotations

import json


def test_bench_scale_measures_driver_growth_and_node_stores(tmp_path):
    from raygex.bench.scale import format_table, json_line, occupancy, run_scale_benchmark

    result = run_scale_benchmark(tmp_path, [(2000, 500)], nodes=2, cpus_per_node=2, store_mb=128, epochs=1,
                                 trials=1, tile_mb=1.0, ballast_mb=300, occupancy_studies=0)
    (row,) = result["results"]
    assert row["dataset_bytes"] > 2000 * 500 * 4 * 0.9 and row["nodes"] == 2
    # the ballast shows (a peak is the larger of the ballast and the search's own): VmHWM is really read
    assert row["driver_peak_reset"] and row["driver_growth_mb"] >= 0.98 * 300, row
    assert set(row["store_peak_mb"]) == {"node0", "node1"} and max(row["store_peak_mb"].values()) > 0
    # pinned primary copies are part of the bytes in use (sampled together: never more)
    primary = row["store_primary_peak_mb"]
    assert all(primary[n] <= row["store_peak_mb"][n] for n in ("node0", "node1")) and max(primary.values()) > 0, row
    assert row["store_ok"] == (row["store_primary_over_limit"] <= 1)
    assert row["store_samples"] > 1 and row["store_limit_mb"] > 0
    assert row["trials"] == row["trials_terminated"] == 2  # one per study: the small and the streamed one
    assert row["trials_sharing_arrays"] == 1, "the small study's trial reads arrays, the large one streams"
    assert 0 < row["occupancy"] <= 1 and result["occupancy"] is None
    assert not list(tmp_path.glob("raygex-bench-scale-*")), "the temporary datasets are deleted"
    table = format_table(result)
    assert "driver +MB" in table and "primary" in table and "2000x500" in table.replace(" ", "")
    assert json.loads(json_line(result))["results"][0]["genes"] == 500
    assert occupancy([(0, 10), (0, 5)], 2) == 0.75


def test_bench_scale_measures_occupancy_side_by_side_and_one_after_another(tmp_path):
    """Three studies of two trials on a 3-node cluster (a head without CPUs, two one-CPU workers), both ways:
    every trial ran, and one after another kept the studies apart in time."""
    from raygex.bench.occupancy import measure_occupancy, trial_spans

    run = measure_occupancy(studies=3, trials=2, nodes=3, epochs=2, samples=200, genes=100, workdir=tmp_path)
    assert run["slots"] == 2 and set(run["runs"]) == {"side_by_side", "one_after_another"}
    for mode, figures in run["runs"].items():
        assert figures["trials"] == 6 and 0 < figures["occupancy"] <= 1, (mode, figures)
    apart = sorted(tmp_path.glob("one_after_another-*/results/occupancy"))[0]
    spans = trial_spans(apart, [f"sgi_G{i:04d}" for i in (1, 2, 3)])
    by_study = {study: (min(a for s, a, _ in spans if s == study), max(b for s, _, b in spans if s == study))
                for study, _, _ in spans}
    ordered = sorted(by_study.values())
    assert all(first[1] <= second[0] for first, second in zip(ordered, ordered[1:])), by_study
