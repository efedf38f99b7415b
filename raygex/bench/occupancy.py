"""Slot occupancy of an experiment's sweeps: the share of its trial slots that were busy while trials remained.

An experiment of several studies runs twice on one simulated multi-node cluster (``ray.cluster_utils.Cluster``):
with the studies sweeping side by side under the experiment's one budget of ``search.max_concurrent`` slots,
and one after another (``search.studies_at_once: 1``). The same configurations both ways (a finite space of MLPs,
one per learning rate, FIFO and patience = epochs: every trial does the same work and runs once).

Occupancy = busy slot-seconds ÷ (slots × the span from the first trial's start to the last trial's end), from the
trials' own wall clocks (``wall_start`` when the trial's function began, ``wall_time`` of its last report). What
keeps a slot idle while trials remain counts against it: a study's tail (its last trials running while its
searcher has nothing left to suggest), the next study's set-up (its data put in the object store, its Tuner made),
and the time a worker takes to start a trial.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import yaml

from raygex.runtime.console import quiet

logger = logging.getLogger(__name__)


def trial_spans(experiment: Path, studies: list[str]) -> list[tuple[str, float, float]]:
    """(study, start, end) of every trial of ``studies``, from its reports in the trial folders."""
    spans = []
    for study in studies:
        for result in sorted((Path(experiment) / study).glob("*/result.json")):
            rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
            if rows:
                spans.append((study, float(rows[0]["wall_start"]), float(rows[-1]["wall_time"])))
    return spans


def occupancy(intervals: list[tuple[float, float]], slots: int) -> float:
    """Busy trial-slot seconds over ``slots`` x the span from the first trial's start to the last trial's end
    (the time while trials remain): 1.0 when every slot is busy throughout; nan without trials."""
    if not intervals or slots < 1:
        return float("nan")
    start = min(a for a, _ in intervals)
    end = max(b for _, b in intervals)
    busy = sum(b - a for a, b in intervals)
    return busy / (slots * (end - start)) if end > start else float("nan")


def _config(workdir: Path, demo: Path, studies: int, trials: int, slots: int, epochs: int, **search) -> dict:
    rates = [float(f"{r:.3g}") for r in __import__("numpy").logspace(-3.5, -2, trials)]
    return {
        "name": "occupancy", "data": {"expression": str(demo / "expression.parquet")},
        "storage": str(workdir / "results"),
        "tasks": [{"name": f"sgi_G{i + 1:04d}", "kind": "single_gene", "gene": f"G{i + 1:04d}",
                   "inputs": {"mode": "all"}} for i in range(studies)],
        "split": {"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [0], "folds": None},
        "train": {"max_epochs": epochs, "patience": epochs, "batch_size": 32},
        "search": {"num_samples": trials, "max_concurrent": slots, "scheduler": {"kind": "fifo"},
                   "space": {"model": ["mlp"], "hidden": 64, "lr": {"choice": rates}}, **search},
        "resources": {"cpu": 1, "gpu": 0},
        "wandb": {"mode": "disabled"},
    }


def measure_occupancy(*, studies: int = 6, trials: int = 12, nodes: int = 3, epochs: int = 80,
                      samples: int = 2000, genes: int = 2000, workdir: Path | None = None) -> dict:
    """Run the experiment side by side and one after another on a ``nodes``-node cluster shaped as the shipped
    cluster files are: a head that advertises no CPUs (the driver's) and ``nodes - 1`` workers of one CPU each,
    one trial slot per worker; returns both occupancies with the trials' count and the sweep phase's span."""
    import ray
    from ray.cluster_utils import Cluster

    from raygex.config import load_config
    from raygex.data.demo import generate_demo
    from raygex.pipeline.run import run_search

    workdir = Path(workdir or tempfile.mkdtemp(prefix="raygex-occupancy-"))
    workdir.mkdir(parents=True, exist_ok=True)
    demo = workdir / "demo"
    if not (demo / "expression.parquet").exists():
        generate_demo(demo, n_samples=samples, n_genes=genes)
    slots = nodes - 1
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(slots):
        cluster.add_node(num_cpus=1)
    out: dict = {"studies": studies, "trials_per_study": trials, "nodes": nodes, "slots": slots,
                 "epochs": epochs, "samples": samples, "genes": genes, "runs": {}}
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        for mode, extra in (("side_by_side", {}), ("one_after_another", {"studies_at_once": 1})):
            folder = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=workdir))
            path = folder / "occupancy.yaml"
            path.write_text(yaml.safe_dump(_config(folder, demo, studies, trials, slots, epochs, **extra)))
            config = load_config(path)
            timings: dict = {}
            started = time.perf_counter()
            with quiet():
                experiment = run_search(config, address=cluster.address, timings=timings)
            spans = trial_spans(experiment, [s.name for s in config.studies()])
            out["runs"][mode] = {
                "occupancy": round(occupancy([(a, b) for _, a, b in spans], slots), 3), "trials": len(spans),
                "sweep_phase_s": round(max(e for *_, e in spans) - min(s for _, s, _ in spans), 1),
                "search_s": round(time.perf_counter() - started, 1)}
            logger.info(f"{mode}: occupancy {out['runs'][mode]['occupancy']:.1%} over {len(spans)} trials, sweep phase "
                 f"{out['runs'][mode]['sweep_phase_s']:.1f} s")
    finally:
        ray.shutdown()
        cluster.shutdown()
    return out
