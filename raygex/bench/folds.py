"""`raygex bench folds`: what cross-validation costs a trial — one split, k folds one after another, k folds as
one batched model — side by side, on the same data and configuration.

Each measurement is a fresh child process (its peak resident memory is its own): it builds the case's data, runs
one warm-up epoch, then trains ``epochs`` epochs (``patience`` = ``epochs``: every variant runs them all) and
reports the wall time of that training and its peak memory growth over the process's memory before it (``VmHWM``
reset first). Cases:

* ``demo-lr``, ``demo-mlp``, ``demo-gcn``: the demo cohort (600 samples × 2,000 genes, its true graph; the demo
  config's split 0.6/0.2/0.2 and batch 32), where a trial's epoch is mostly per-step overhead;
* ``genemania-gcn``: a GeneMANIA-size graph (16,300 genes, 265,000 edges, scale-free, as ``raygex bench gcn``)
  on 200 random samples, embedding 8, 32 channels, depth 2: compute-bound;
* ``file``: a canonical dataset of yours (``--expression``, ``--label``, ``--train``).

The figures: batched k folds ÷ one split (target ≤ 1.5 where one split is overhead-bound) and batched ÷ (k × the
one-split arithmetic), the arithmetic of k folds being k × (a fold's training rows ÷ the split's training rows)
times one split's (target ≤ 1.2 where compute-bound).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from raygex.bench.gcn import scale_free_graph

CASES = ("demo-lr", "demo-mlp", "demo-gcn", "genemania-gcn")
VARIANTS = ("one_split", "folds_sequential", "folds_batched")

MODELS = {
    "lr": {"model": "lr", "lr": 0.003},
    "mlp": {"model": "mlp", "hidden": 128, "dropout": 0.2, "lr": 0.003},
    "gcn": {"model": "gcn", "graph": "true", "depth": 2, "channels": 16, "embedding": 1, "dropout": 0.2,
            "lr": 0.003},
    "gcn-large": {"model": "gcn", "graph": "true", "depth": 2, "channels": 32, "embedding": 8, "dropout": 0.2,
                  "lr": 0.003},
}

_CHILD = r"""
import json, sys, time
spec = json.loads(sys.argv[1])
from raygex.bench.folds import child_main
print(json.dumps(child_main(spec)))
"""


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key))


def case_data(spec: dict):
    """(TrialData, hyperparameters) of a case, for its variant's folds."""
    from raygex.config import ExperimentConfig
    from raygex.data.prepare import trial_data

    folds = None if spec["variant"] == "one_split" else spec["folds"]
    split = {"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [0, 1], "folds": folds}
    if spec["case"].startswith("demo"):
        from raygex.data.demo import make_demo_cohort

        dataset, true, _ = make_demo_cohort(0, n_samples=600, n_genes=2000)
        graphs, label, model = {"true": true}, "subtype", MODELS[spec["case"].split("-", 1)[1]]
    elif spec["case"] == "genemania-gcn":
        import pandas as pd

        from raygex.data.canonical import ExpressionDataset
        from raygex.graphs.store import Graph

        n_genes, n_samples = 16_300, 200
        rng = np.random.default_rng(0)
        genes = [f"G{i:05d}" for i in range(n_genes)]
        edges = scale_free_graph(n_genes, 265_000, seed=0)
        keep = edges[0] < edges[1]
        names = np.asarray(genes)
        graphs = {"true": Graph("true", names[edges[0][keep]], names[edges[1][keep]])}
        obs = pd.DataFrame({"subtype": rng.choice(["a", "b", "c"], size=n_samples)})
        dataset = ExpressionDataset(np.asarray([f"S{i:04d}" for i in range(n_samples)]),
                                    rng.standard_normal((n_samples, n_genes), dtype=np.float32), genes, obs, {})
        label, model = "subtype", MODELS["gcn-large"]
    else:
        from raygex.data.canonical import read_dataset

        dataset, graphs, label = read_dataset(spec["expression"]), {}, spec["label"]
        split["train"] = spec["train"]
        model = MODELS["mlp"] if spec.get("model", "mlp") == "mlp" else MODELS["lr"]
    config = ExperimentConfig.model_validate({
        "name": "bench-folds", "data": {"expression": "in-memory"}, "graphs": {g: "in-memory" for g in graphs},
        "controls": [], "tasks": [{"name": "task", "kind": "classify", "label": label}], "split": split})
    data = trial_data(config, "task", dataset, graphs, seed=0, graph=model.get("graph"))
    hparams = {**model, "max_epochs": spec["epochs"], "patience": spec["epochs"], "batch_size": spec["batch"],
               "seed": 0}
    return data, hparams


def child_main(spec: dict) -> dict:
    import torch

    from raygex.training.loop import run_trial

    torch.set_num_threads(spec["threads"])
    data, hparams = case_data(spec)
    batched = spec["variant"] == "folds_batched"
    run_trial({**hparams, "max_epochs": 1, "patience": 1}, data, batched_folds=batched)  # warm: first-call costs
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS:")
    started = time.perf_counter()
    result = run_trial(hparams, data, batched_folds=batched)
    seconds = time.perf_counter() - started
    views = data.fold_views()
    # the kernel raises its high-water mark lazily: a run that never rose above its start can read a little below it
    growth = max(0.0, (_status_kib("VmHWM:") - before) / 1024)
    return {"seconds": seconds, "epochs": result.epochs_run, "peak_growth_mb": growth,
            "folds": len(views), "train_rows": int(np.mean([len(v.y_train) for v in views])),
            "batched": bool(result.extra.get("batched_folds")), "valid_auc": result.best_valid.get("auc")}


def run_folds_benchmark(cases=CASES, *, folds: int = 5, epochs: int = 10, batch: int = 32, threads: int = 1,
                        repeats: int = 1, file_case: dict | None = None, log=None) -> dict:
    """Every case × variant in its own child process (``repeats`` times each; the median time is kept)."""
    rows = []
    for case in cases:
        row = {"case": case}
        for variant in VARIANTS:
            spec = {"case": case, "variant": variant, "folds": folds, "epochs": epochs, "batch": batch,
                    "threads": threads, **(file_case or {})}
            runs = []
            for _ in range(repeats):
                proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True,
                                      text=True, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f"bench folds {case} {variant}: {proc.stderr.strip()[-2000:]}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            runs.sort(key=lambda r: r["seconds"])
            row[variant] = runs[len(runs) // 2]
            if log:
                log(f"{case} {variant}: {row[variant]['seconds']:.2f} s")
        one, seq, bat = row["one_split"], row["folds_sequential"], row["folds_batched"]
        arithmetic = bat["folds"] * bat["train_rows"] / one["train_rows"]
        row.update({"batched_over_one_split": bat["seconds"] / one["seconds"],
                    "sequential_over_one_split": seq["seconds"] / one["seconds"],
                    "batched_over_sequential": bat["seconds"] / seq["seconds"],
                    "arithmetic_ratio": arithmetic,
                    "batched_over_arithmetic": bat["seconds"] / (one["seconds"] * arithmetic)})
        rows.append(row)
    return {"folds": folds, "epochs": epochs, "batch": batch, "threads": threads, "repeats": repeats,
            "results": rows}


def format_table(result: dict) -> list[str]:
    lines = [f"{result['folds']} folds, {result['epochs']} epochs, batch {result['batch']}, "
             f"{result['threads']} thread(s), median of {result['repeats']}",
             f"{'case':>14} {'one split s':>11} {'seq. s':>8} {'batched s':>9} {'bat/one':>8} {'seq/one':>8} "
             f"{'bat/(k·arith)':>13} {'MB one/seq/bat':>18}"]
    for r in result["results"]:
        one, seq, bat = r["one_split"], r["folds_sequential"], r["folds_batched"]
        lines.append(f"{r['case']:>14} {one['seconds']:11.2f} {seq['seconds']:8.2f} {bat['seconds']:9.2f} "
                     f"{r['batched_over_one_split']:8.2f} {r['sequential_over_one_split']:8.2f} "
                     f"{r['batched_over_arithmetic']:13.2f} "
                     f"{one['peak_growth_mb']:6.0f}/{seq['peak_growth_mb']:.0f}/{bat['peak_growth_mb']:.0f}")
    return lines
