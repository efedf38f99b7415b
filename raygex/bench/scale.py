"""`raygex bench scale`: does the driver stay small, and do the object stores hold the data, at scale?

On a simulated cluster (``ray.cluster_utils.Cluster``: a head and ``nodes - 1`` workers on this machine, each
with its own object store; spilling to disk allowed), for each dataset size:

* the dataset: the demo cohort (:func:`raygex.data.demo.make_demo_cohort`) generated in tiles of at most
  ``tile_mb`` and written one tile at a time, so a dataset larger than this machine's memory over the demo's
  generator's (~9x the matrix) can be written; the tiles are seeded apart and their sample ids prefixed;
* a search in a fresh driver process (a child, so its ``VmHWM`` is its own) of two studies of one classification
  task: a small one (train 200 / valid 100 / test 500, the issue's measurement: its arrays are made in a Ray task)
  and a large one (a third of the samples for training, over ``data.in_memory_budget_mb``: it streams);
* measured: the driver's peak RSS growth (``VmHWM`` when the search ends, reset just before it starts via
  ``/proc/self/clear_refs``, minus the RSS then) over the dataset's size on disk, and each node's object-store
  bytes in use at their peak (sampled from each raylet's store statistics every ``sample_s``) against
  1.5 x the dataset / nodes; and the slot occupancy of the experiment's trials (busy trial-slot seconds over
  slots x the span while trials remain, from the trials' own ``wall_start``/``wall_time``).

Then (``occupancy=True``) the slot occupancy of an experiment of six studies run side by side and one after
another on one simulated cluster (:mod:`raygex.bench.occupancy`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from raygex.bench.occupancy import measure_occupancy, occupancy
from raygex.bench.search_driver import code_figures, run_driver
from raygex.runtime.console import quiet
from raygex.search.tune_compat.ray_internals import object_store_stats

DEFAULT_SIZES = ((25_000, 5_000), (50_000, 20_000))  # ~0.5 GB and ~4 GB of float32


# ------------------------------------------------------------------------------------------------ the dataset
def write_tiled_demo(path: Path, n_samples: int, n_genes: int, *, tile_mb: float = 256.0, seed: int = 0) -> Path:
    """The demo cohort at ``n_samples`` x ``n_genes``, generated and written a tile at a time (canonical layout)."""
    from raygex.data.canonical import DatasetWriter, obs_to_arrow_schema
    from raygex.data.demo import make_demo_cohort

    if path.exists():
        return path
    tile = max(100, int(tile_mb * 2**20 // (4 * n_genes)))
    writer = None
    done = 0
    try:
        while done < n_samples:
            rows = min(tile, n_samples - done)
            dataset, _, _ = make_demo_cohort(seed + done, n_samples=rows, n_genes=n_genes)
            if writer is None:
                writer = DatasetWriter(path, dataset.genes, obs_to_arrow_schema(dataset.obs),
                                       {"source": "raygex bench scale (tiled demo cohort)"}).__enter__()
            writer.write([f"T{done:07d}_{s}" for s in dataset.sample_ids], dataset.expression, dataset.obs)
            done += rows
            del dataset
    except BaseException:
        if writer is not None:
            writer.__exit__(*sys.exc_info())
        raise
    writer.__exit__(None, None, None)
    return path


def dataset_bytes(path: Path) -> int:
    path = Path(path)
    return sum(p.stat().st_size for p in path.glob("*.parquet")) if path.is_dir() else path.stat().st_size


# ------------------------------------------------------------------------------------------------ measuring
class StoreSampler(threading.Thread):
    """Each node's object-store bytes in use (and spilled), sampled from its raylet until :meth:`stop`."""

    def __init__(self, nodes: list[tuple[str, str, int]], every_s: float = 0.25):
        super().__init__(daemon=True)
        self.nodes, self.every_s = nodes, every_s
        self.peak = {name: 0 for name, _, _ in nodes}
        self.primary = {name: 0 for name, _, _ in nodes}  # bytes of primary copies (what the data itself holds)
        self.spilled = {name: 0 for name, _, _ in nodes}
        self.series: list[tuple[float, dict]] = []
        self.samples = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        row = {}
        for name, ip, port in self.nodes:
            try:
                stats = object_store_stats(ip, port)
            except Exception:  # a node between starts or stops: the next sample counts
                continue
            self.peak[name] = max(self.peak[name], int(stats.object_store_bytes_used))
            self.primary[name] = max(self.primary[name], int(stats.object_store_bytes_primary_copy))
            self.spilled[name] = max(self.spilled[name], int(stats.spilled_bytes_total))
            row[name] = (int(stats.object_store_bytes_used), int(stats.object_store_bytes_primary_copy))
        self.series.append((time.time(), row))
        self.samples += 1

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


def scale_config(folder: Path, dataset: Path | str, n_samples: int, n_genes: int, *, concurrent: int, epochs: int,
                 trials: int, storage: str | None = None) -> Path:
    """Two studies of the demo's subtype: train 200 (valid 100, test 500: the issue's) and a third of the
    samples; the in-memory budget sits between them, so the small one is in-memory and the large one streams."""
    small_mb = (200 + 100 + 500) * n_genes * 4 / 2**20
    config = {
        "name": "scale", "data": {"expression": str(dataset), "in_memory_budget_mb": round(1.5 * small_mb, 3),
                                   "read_in_driver_mb": 0},  # the path that scales, at every size
        "storage": storage or str(folder / "results"),
        "tasks": [{"name": "subtype", "kind": "classify", "label": "subtype"}],
        "split": {"train": [200, n_samples // 3], "valid": 100, "test": 500, "seeds": [0], "folds": None},
        "train": {"max_epochs": epochs, "patience": epochs, "batch_size": 256},
        "search": {"num_samples": trials, "max_concurrent": concurrent, "scheduler": {"kind": "fifo"},
                   "space": {"model": ["mlp"], "hidden": 16, "lr": {"choice": [1e-3, 3e-3]}}},
        "resources": {"cpu": 1, "gpu": 0},
        "wandb": {"mode": "disabled"},
    }
    path = folder / "scale.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


WARM_UP = (3000, 100, 0.1)  # samples, genes, tile MiB: a tiny dataset of the same layout (a folder of parts)


def modules_a_search_loads(folder: Path, address: str, *, dataset: Path | str | None = None,
                           storage: str | None = None, timeout_s: float = 1800, env: dict | None = None) -> list[str]:
    """Every module a driver holds after a search of a tiny dataset (``dataset``, default :data:`WARM_UP`
    written under ``folder``; one study in memory and one streamed) on the cluster at ``address``: the code a
    measured search may import."""
    folder.mkdir(parents=True, exist_ok=True)
    n_samples, n_genes, tile_mb = WARM_UP
    if dataset is None:
        dataset = write_tiled_demo(folder / "warm-up.parquet", n_samples, n_genes, tile_mb=tile_mb)
    config = scale_config(folder, dataset, n_samples, n_genes, concurrent=2, epochs=1, trials=1, storage=storage)
    return run_driver(config, address, StoreSampler([]), timeout_s=timeout_s, env=env)["modules"]


def measure(dataset: Path, n_samples: int, n_genes: int, *, nodes: int = 3, cpus_per_node: int = 2,
            store_mb: int = 2560, concurrent: int = 2, epochs: int = 2, trials: int = 2,
            timeout_s: float = 1800, ballast_mb: float = 0) -> dict:
    """One dataset on a fresh simulated cluster: the driver's growth, each node's store peak, occupancy.
    ``ballast_mb``: the driver allocates and frees that much during the search (a known growth, for tests)."""
    from ray.cluster_utils import Cluster

    folder = Path(tempfile.mkdtemp(prefix="run-", dir=Path(dataset).parent))
    config = scale_config(folder, dataset, n_samples, n_genes, concurrent=concurrent, epochs=epochs, trials=trials)
    size = dataset_bytes(dataset)
    store = int(store_mb * 2**20)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus_per_node, "object_store_memory": store,
                                                            "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=cpus_per_node, object_store_memory=store)
        cluster.wait_for_nodes()
        sampler = StoreSampler([(f"node{i}", node.node_ip_address, node.node_manager_port)
                                for i, node in enumerate(cluster.list_all_nodes())])
        modules = modules_a_search_loads(folder / "warm-up", cluster.address, timeout_s=timeout_s)
        out = run_driver(config, cluster.address, sampler, modules=modules, ballast_mb=ballast_mb,
                         timeout_s=timeout_s)
    finally:
        cluster.shutdown()
    (folder / "store_series.json").write_text(json.dumps(sampler.series))  # (used, primary) bytes per node over time
    row = figures(out, sampler, size=size, data_nodes=nodes, slots=min(concurrent, nodes * cpus_per_node))
    return {"samples": n_samples, "genes": n_genes, **row, "nodes": nodes, "object_store_mb_per_node": store_mb}


def figures(out: dict, sampler: "StoreSampler", *, size: int, data_nodes: int, slots: int) -> dict:
    """The driver's growth against the dataset, each node's store peaks against 1.5 x dataset / ``data_nodes``,
    the trials and the slots' occupancy."""
    growth = max(0, out["peak_kib"] - out["rss_before_kib"]) * 1024
    limit = 1.5 * size / data_nodes
    intervals = [(t["start"], t["end"]) for t in out["trials"]]
    return {
        "dataset_bytes": size, "dataset_gb": round(size / 1e9, 3),
        "driver_rss_before_mb": round(out["rss_before_kib"] / 1024, 1),
        "driver_peak_mb": round(out["peak_kib"] / 1024, 1), "driver_peak_reset": out["peak_reset"],
        "driver_growth_mb": round(growth / 2**20, 1), "driver_growth_over_dataset": round(growth / size, 4),
        "driver_growth_ok": growth <= 0.05 * size, **code_figures(out),
        # Two figures per node: the primary copies (the bytes of the study's sets and in-flight blocks that the
        # node holds pinned: what its store must have room for), and all bytes in use, which add the cached
        # copies of blocks a task or trial on the node fetched from another node (unpinned: Ray evicts them when
        # the store fills; they are never spilled). The target is judged on the first, the second is beside it.
        "store_primary_peak_mb": {k: round(v / 2**20, 1) for k, v in sampler.primary.items()},
        "store_peak_mb": {k: round(v / 2**20, 1) for k, v in sampler.peak.items()},
        "store_spilled_mb": {k: round(v / 2**20, 1) for k, v in sampler.spilled.items()},
        "store_limit_mb": round(limit / 2**20, 1),
        "store_primary_over_limit": round(max(sampler.primary.values()) / limit, 3),
        "store_peak_over_limit": round(max(sampler.peak.values()) / limit, 3),
        "store_ok": max(sampler.primary.values()) <= limit, "store_samples": sampler.samples,
        "trials": len(out["trials"]), "trials_terminated": sum(t["status"] == "TERMINATED" for t in out["trials"]),
        "trials_sharing_arrays": sum(t["shares_memory"] for t in out["trials"]),
        "slots": slots, "occupancy": round(occupancy(intervals, slots), 3),
        "search_s": round(out["seconds"], 1), "experiment": out["experiment"],
    }


def run_scale_benchmark(workdir: Path | None = None, sizes=DEFAULT_SIZES, *, nodes: int = 3, cpus_per_node: int = 2,
                        store_mb: int = 2560, tile_mb: float = 256.0, epochs: int = 2, trials: int = 2,
                        keep: bool = False, ballast_mb: float = 0, occupancy_studies: int = 6,
                        occupancy_trials: int = 12, occupancy_epochs: int = 80) -> dict:
    """Every size in a fresh temporary folder (under ``workdir``); the datasets are deleted unless ``keep``. Then,
    unless ``occupancy_studies`` is 0, the occupancy of that many studies side by side vs one after another."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="raygex-bench-scale-", dir=workdir))
    rows = []
    try:
        for n_samples, n_genes in sizes:
            started = time.perf_counter()
            dataset = write_tiled_demo(folder / f"demo_{n_samples}x{n_genes}.parquet", n_samples, n_genes,
                                       tile_mb=tile_mb)
            generate_s = time.perf_counter() - started
            row = measure(dataset, n_samples, n_genes, nodes=nodes, cpus_per_node=cpus_per_node, store_mb=store_mb,
                          epochs=epochs, trials=trials, ballast_mb=ballast_mb)
            row["generate_s"] = round(generate_s, 1)
            rows.append(row)
            if not keep:
                shutil.rmtree(dataset, ignore_errors=True) if dataset.is_dir() else dataset.unlink()
        occupancy_run = None
        if occupancy_studies:
            with quiet():
                occupancy_run = measure_occupancy(studies=occupancy_studies, trials=occupancy_trials, nodes=nodes,
                                                  epochs=occupancy_epochs, workdir=folder / "occupancy")
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return {"folder": str(folder), "results": rows, "occupancy": occupancy_run}


def format_table(result: dict) -> str:
    head = (f"{'dataset':>17} {'GB':>6} {'code MB':>7} {'driver +MB':>10} {'/data':>7} {'ok':>3} "
            f"{'store MB/node: primary':>23} {'in use':>17} {'limit MB':>9} {'ok':>3} {'trials':>6} {'occup.':>6} {'search s':>8}")
    lines = [head]
    for r in result["results"]:
        primary = "/".join(f"{v:.0f}" for v in r["store_primary_peak_mb"].values())
        peaks = "/".join(f"{v:.0f}" for v in r["store_peak_mb"].values())
        lines.append(f"{r['samples']:>8}x{r['genes']:<8} {r['dataset_gb']:6.2f} {r['driver_code_mb']:7.1f} "
                     f"{r['driver_growth_mb']:10.1f} "
                     f"{r['driver_growth_over_dataset']:7.2%} {'yes' if r['driver_growth_ok'] else 'NO':>3} "
                     f"{primary:>23} {peaks:>17} {r['store_limit_mb']:9.0f} {'yes' if r['store_ok'] else 'NO':>3} "
                     f"{r['trials_terminated']:>3}/{r['trials']:<2} {r['occupancy']:6.2f} "
                     f"{r['search_s']:8.1f}")
        if "read_from_store_mb" in r:  # on a running cluster: what each node read from the store, and spilled
            lines.append(f"{'':>17} read from the store per node (MB): " + ", ".join(
                f"{k} {v:.0f}" for k, v in r["read_from_store_mb"].items()) + f" ({r['read_over_dataset']:.2f}x "
                f"the dataset); spilled (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in r["store_spilled_mb"].items()))
    run = result.get("occupancy")
    if run:
        lines.append(f"occupancy, {run['studies']} studies x {run['trials_per_study']} trials on {run['slots']} slots "
                     f"({run['nodes']} nodes, head without CPUs): " + "; ".join(
                         f"{mode.replace('_', ' ')} {r['occupancy']:.1%} (sweep phase {r['sweep_phase_s']:.0f} s)"
                         for mode, r in run["runs"].items()))
    return "\n".join(lines)


def sizes_option(values: tuple[str, ...]) -> list[tuple[int, int]]:
    """``SAMPLESxGENES`` strings as pairs."""
    out = []
    for value in values:
        samples, _, genes = value.lower().partition("x")
        out.append((int(samples), int(genes)))
    return out


def json_line(result: dict) -> str:
    return json.dumps(result, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
