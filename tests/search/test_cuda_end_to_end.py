"""On a machine with CUDA: search → export → predict on the GPU, through the CLI. Skipped without CUDA (the CPU
paths are the rest of the suite; `tests/cluster/test_gpu_placement.py` covers placement on logical GPUs).

Trials ask for half a GPU each: they train on ``cuda``, capped at half the device's memory; the exported winner
predicts on the GPU (`raygex predict --device cuda`) what it predicts on the CPU, to float32 rounding.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from tests.search.conftest import write_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the device machine)")]
ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
       "WANDB_MODE": "disabled"}


def cli(*args, cwd) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "raygex", *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=900, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_search_export_and_predict_on_the_gpu(tiny_demo, tmp_path):
    import raygex

    config = write_config(tmp_path / "gpu.yaml", tiny_demo,
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          train={"max_epochs": 5, "patience": 5, "batch_size": 32},
                          search={"num_samples": 7, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": 2,
                                            "channels": 8, "embedding": 1, "hidden": 32, "lr": 0.003}},
                          resources={"cpu": 1, "gpu": 0.5})
    cli("search", config, cwd=tmp_path)
    experiment = tmp_path / "results" / "tiny"
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    assert set(board["device"]) == {"cuda"}, board[["trial_id", "device"]]
    assert (board["gpu_memory_share"] == 0.5).all()

    model = experiment / "models" / "subtype.pt"
    from raygex.data.canonical import read_dataset

    dataset = read_dataset(tiny_demo / "expression.parquet")
    table = pd.DataFrame(dataset.expression, columns=dataset.genes, index=dataset.sample_ids)
    table.index.name = "sample_id"
    table.to_csv(tmp_path / "samples.tsv", sep="\t")
    cli("predict", model, tmp_path / "samples.tsv", "-o", tmp_path / "gpu.csv", "--device", "cuda", cwd=tmp_path)
    on_gpu = pd.read_csv(tmp_path / "gpu.csv")
    on_cpu = raygex.load_model(model, device="cpu").predict_proba(table)
    classes = raygex.load_model(model).classes
    assert list(on_gpu["sample_id"].astype(str)) == list(dataset.sample_ids)
    np.testing.assert_allclose(on_gpu[[f"p_{c}" for c in classes]].to_numpy(), on_cpu, atol=1e-4)
