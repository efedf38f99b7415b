"""`raygex bench scale` on a tiny dataset and a 2-node simulated cluster: its table's fields, that the driver's
growth is a real measurement (a known allocation made during the search shows), and the store sampling."""

from __future__ import annotations

import json
import time


def test_bench_scale_measures_driver_growth_and_node_stores(tmp_path):
    from raygex.bench.scale import format_table, json_line, occupancy, run_scale_benchmark

    result = run_scale_benchmark(tmp_path, [(2000, 500)], nodes=2, cpus_per_node=2, store_mb=128, epochs=1,
                                 trials=1, tile_mb=1.0, ballast_mb=300, occupancy_studies=0)
    (row,) = result["results"]
    assert row["dataset_bytes"] > 2000 * 500 * 4 * 0.9 and row["nodes"] == 2
    # the ballast shows (a peak is the larger of the ballast and the search's own): VmHWM is really read
    assert row["driver_peak_reset"] and row["driver_growth_mb"] >= 0.98 * 300, row
    # the code a search loads is loaded before it (a tiny search on the same cluster lists it), and counted apart
    assert row["driver_code_mb"] > 20 and row["modules_during_search"] < 20, row["packages_during_search"]
    # where the RSS rose: sampled rises above the running maximum, so together never more than the peak growth
    rises = row["driver_rises_mb"]
    assert all(":" in place or place == "(outside raygex)" for place in rises), rises
    assert 0 <= sum(rises.values()) <= row["driver_growth_mb"] + 1, (rises, row["driver_growth_mb"])
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


def test_read_tasks_count_the_bytes_they_read_per_node(tmp_path, monkeypatch):
    """With ``RAYGEX_COUNT_READS`` naming a counter, Ray Data's read tasks (here on a 2-node simulated cluster)
    add what they read to it under their node's id: the whole dataset (and each part's footer read again), split between the nodes the tasks ran on; without the variable nothing is counted."""
    import ray
    from ray.cluster_utils import Cluster

    from raygex.data.canonical import read_with_ray, write_dataset
    from raygex.data.demo import make_demo_cohort
    from raygex.files.counted_reads import COUNT_READS_ENV, start_counter

    dataset, _, _ = make_demo_cohort(0, n_samples=3000, n_genes=400)
    path = write_dataset(dataset, tmp_path / "expression.parquet", part_bytes=2**20, row_group_bytes=2**19)
    parts = list(path.glob("*.parquet"))
    size = sum(p.stat().st_size for p in parts)
    assert len(parts) > 2
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, runtime_env={"env_vars": {COUNT_READS_ENV: "counter-test"}},
                 log_to_driver=False, logging_level="ERROR")
        counter = start_counter("counter-test")
        assert read_with_ray(path).count() == 3000  # not counted: this driver has no variable
        assert ray.get(counter.totals.remote())["bytes"] == {}
        monkeypatch.setenv(COUNT_READS_ENV, "counter-test")
        rows = sum(len(b) for b in read_with_ray(path).iter_batches(batch_format="pyarrow", batch_size=None))
        del rows
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # reports are sent without waiting for them
            counted = ray.get(counter.totals.remote())["bytes"]
            if sum(counted.values()) >= size:
                break
            time.sleep(0.2)
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert set(counted) <= nodes and counted, counted
    # every byte once, plus each part's footer read again by schema inference and by its read task (pyarrow
    # reads a file's last 64 KiB to find the footer): at most four such reads a part
    assert size <= sum(counted.values()) <= size + 4 * 65536 * len(parts), (counted, size)


def test_bench_scale_on_a_running_cluster_needs_the_store_its_nodes_read(run_cli):
    code, _, err = run_cli("bench", "scale", "--address", "127.0.0.1:1")
    assert code == 2 and "--address and --store-uri go together" in err
