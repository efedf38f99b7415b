"""`raygex bench scale --address ... --store-uri s3://...`: the same measurement on a cluster that is already
running (a real one, or one whose nodes share nothing but the object store), with the dataset on the store.

For each size the demo cohort is written in tiles to a temporary local folder, uploaded part by part under
``store_uri`` (the local copy removed before the search starts) and swept by a fresh driver process attached to
the cluster. Beside the driver's growth, each node's store peaks and the slots' occupancy
(:mod:`raygex.bench.scale`), it reports the **bytes read from the store per node**, counted by the read tasks
themselves (:mod:`raygex.files.counted_reads`), and the nodes' spilled bytes (what a node's disk held). The
store target is 1.5 x dataset / the nodes that run tasks (a head offering no CPUs holds no data).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from raygex.bench.scale import (WARM_UP, StoreSampler, dataset_bytes, figures, modules_a_search_loads, scale_config,
                                write_tiled_demo)
from raygex.bench.search_driver import run_driver
from raygex.files.counted_reads import COUNT_READS_ENV, NAMESPACE, start_counter
from raygex.files.storage import join, open_remote


def upload_tiled_demo(store_uri: str, n_samples: int, n_genes: int, *, tile_mb: float = 256.0,
                      workdir: Path | None = None) -> tuple[str, int]:
    """The demo cohort written locally in tiles, uploaded under ``store_uri`` and removed here: (URI, bytes)."""
    local = Path(tempfile.mkdtemp(prefix="raygex-bench-upload-", dir=workdir))
    try:
        dataset = write_tiled_demo(local / "expression.parquet", n_samples, n_genes, tile_mb=tile_mb)
        size = dataset_bytes(dataset)
        uri = join(store_uri, f"demo_{n_samples}x{n_genes}")  # a folder of parts (a dataset as a folder)
        folder = open_remote(uri)
        for part in sorted(dataset.glob("*.parquet")) if dataset.is_dir() else [dataset]:
            folder.upload(part, part.name)
            part.unlink()  # never two copies on this machine's disk
    finally:
        shutil.rmtree(local, ignore_errors=True)
    return uri, size


def cluster_nodes() -> list[dict]:
    """The running cluster's live nodes: name (head / worker<i>), raylet address and port, CPUs, id."""
    import ray

    out, worker = [], 0
    for node in sorted((n for n in ray.nodes() if n["Alive"]), key=lambda n: n["NodeManagerPort"]):
        cpus = node["Resources"].get("CPU", 0)
        head = "node:__internal_head__" in node["Resources"]
        name = "head" if head else f"worker{worker}"
        worker += 0 if head else 1
        out.append({"name": name, "ip": node["NodeManagerAddress"], "port": node["NodeManagerPort"],
                    "cpus": cpus, "id": node["NodeID"]})
    return out


def measure_on_cluster(address: str, store_uri: str, n_samples: int, n_genes: int, *, tile_mb: float = 256.0,
                       concurrent: int = 2, epochs: int = 2, trials: int = 2, timeout_s: float = 3600,
                       keep: bool = False, workdir: Path | None = None) -> dict:
    """One dataset on the store, swept on the running cluster at ``address``."""
    import ray

    uri, size = upload_tiled_demo(store_uri, n_samples, n_genes, tile_mb=tile_mb, workdir=workdir)
    run = join(store_uri, f"run-{uuid.uuid4().hex[:8]}")
    folder = Path(tempfile.mkdtemp(prefix="raygex-bench-scale-", dir=workdir))
    counter_name = f"raygex-read-counter-{uuid.uuid4().hex[:8]}"
    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        nodes = cluster_nodes()
        counter = start_counter(counter_name)
        sampler = StoreSampler([(n["name"], n["ip"], n["port"]) for n in nodes])
        config = scale_config(folder, uri, n_samples, n_genes, concurrent=concurrent, epochs=epochs, trials=trials,
                              storage=join(run, "results"))
        warm_up, _ = upload_tiled_demo(join(run, "warm-up"), *WARM_UP[:2], tile_mb=WARM_UP[2], workdir=workdir)
        modules = modules_a_search_loads(folder / "warm-up", address, dataset=warm_up, timeout_s=timeout_s,
                                         storage=join(run, "warm-up-results"))
        out = run_driver(config, address, sampler, modules=modules, timeout_s=timeout_s,
                         env={COUNT_READS_ENV: counter_name})
        read = ray.get(counter.totals.remote())
        ray.kill(ray.get_actor(counter_name, namespace=NAMESPACE))
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
        if not keep:
            open_remote(uri).remove_tree("")
            open_remote(run).remove_tree("")
    task_nodes = [n for n in nodes if n["cpus"] > 0]
    by_id = {n["id"]: n["name"] for n in nodes}
    row = figures(out, sampler, size=size, data_nodes=len(task_nodes),
                  slots=min(concurrent, int(sum(n["cpus"] for n in task_nodes))))
    read_mb = {by_id.get(node, node): round(n / 2**20, 1) for node, n in read["bytes"].items()}
    return {"samples": n_samples, "genes": n_genes, "dataset": uri, **row, "nodes": len(nodes),
            "task_nodes": len(task_nodes), "read_from_store_mb": read_mb,
            "read_over_dataset": round(sum(read["bytes"].values()) / size, 3)}


def run_on_cluster(address: str, store_uri: str, sizes, **kwargs) -> dict:
    return {"address": address, "store": store_uri,
            "results": [measure_on_cluster(address, store_uri, n, g, **kwargs) for n, g in sizes],
            "occupancy": None}
