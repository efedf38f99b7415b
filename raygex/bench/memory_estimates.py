"""`raygex bench memory --estimates`: each configuration's memory estimate (``resources.memory_mb: auto``,
:func:`raygex.search.memory_estimate.trial_memory_mb`) beside the peak its training measured.

Each configuration trains in a fresh child process (its peak is its own): the case's data is built, the peak
resident memory is reset (``/proc/self/clear_refs``), then ``epochs`` epochs run, and the peak growth over the
memory before the networks existed is compared with the estimate less :data:`WORKER_MB` (what the estimate adds
for the worker itself, which holds the data here as in a trial it is mapped from the object store). Cases are
``raygex bench folds``' data: the demo cohort (600 × 2,000) and a GeneMANIA-size graph (200 × 16,300, 265,000
edges).
"""

from __future__ import annotations

import json
import subprocess
import sys

from raygex.bench.folds import MODELS, _status_kib, case_data
from raygex.search.memory_estimate import WORKER_MB, study_shape, trial_memory_mb

CONFIGS = (
    ("demo", {"model": "lr", "C": 1.0}),
    ("demo", {"model": "mlp", "hidden": 256, "dropout": 0.2, "lr": 0.003}),
    ("demo", {"model": "gcn", "depth": 1, "channels": 8, "embedding": 1, "dropout": 0.2, "lr": 0.003}),
    ("demo", {"model": "gcn", "depth": 3, "channels": 32, "embedding": 1, "dropout": 0.2, "lr": 0.003}),
    ("demo", {"model": "gcn", "depth": 2, "channels": 32, "embedding": 8, "dropout": 0.2, "lr": 0.003}),
    ("genemania", {"model": "mlp", "hidden": 256, "dropout": 0.2, "lr": 0.003}),
    ("genemania", {"model": "gcn", "depth": 3, "channels": 32, "embedding": 8, "dropout": 0.2, "lr": 0.003}),
)

_CHILD = r"""
import json, sys
from raygex.bench.memory_estimates import child_main
print(json.dumps(child_main(json.loads(sys.argv[1]))))
"""


def child_main(spec: dict) -> dict:
    import torch

    from raygex.training.loop import run_trial

    torch.set_num_threads(1)
    case = "demo-gcn" if spec["data"] == "demo" else "genemania-gcn"
    data, base = case_data({"variant": "one_split", "case": case, "folds": 1, "epochs": spec["epochs"],
                            "batch": spec["batch"]})
    hparams = {**{k: v for k, v in base.items() if k not in MODELS["gcn-large"]}, **spec["hparams"]}
    if hparams["model"] == "gcn":
        hparams["graph"] = "true"
    graph = data.graph if hparams["model"] == "gcn" else None
    estimate = trial_memory_mb(hparams, study_shape(data), graph)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS:")
    run_trial(hparams, data)
    growth = max(0.0, (_status_kib("VmHWM:") - before) / 1024)  # the high-water mark is raised lazily
    return {"data": spec["data"], "hparams": spec["hparams"], "estimate_mb": estimate,
            "estimated_trial_mb": estimate - WORKER_MB, "measured_trial_mb": round(growth, 1),
            "worker_before_mb": round(before / 1024, 1)}


def run_estimates_benchmark(configs=None, *, epochs: int = 2, batch: int = 32) -> list[dict]:
    """Each configuration's estimate beside its measured peak growth (one fresh child process each; default:
    :data:`CONFIGS`)."""
    rows = []
    for data, hparams in CONFIGS if configs is None else configs:
        spec = {"data": data, "hparams": hparams, "epochs": epochs, "batch": batch}
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{data} {hparams}: {proc.stderr.strip().splitlines()[-1:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


def format_table(rows: list[dict]) -> list[str]:
    lines = [f"{'data':>10} {'configuration':<46} {'estimate MB':>11} {'trial part':>10} {'measured':>9} "
             f"{'ratio':>6}"]
    for row in rows:
        h = row["hparams"]
        what = h["model"] + "".join(f" {k}={v}" for k, v in h.items() if k in ("depth", "channels", "embedding",
                                                                              "hidden"))
        ratio = row["estimated_trial_mb"] / max(row["measured_trial_mb"], 1.0)
        lines.append(f"{row['data']:>10} {what:<46} {row['estimate_mb']:>11.0f} {row['estimated_trial_mb']:>10.0f} "
                     f"{row['measured_trial_mb']:>9.1f} {ratio:>6.2f}")
    lines.append(f"trial part = estimate - {WORKER_MB:.0f} MB for the worker; measured = peak growth while the "
                 "configuration trained")
    return lines
