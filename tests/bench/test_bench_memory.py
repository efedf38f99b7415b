"""`raygex bench memory`: a search's peak memory per kind of process, through the CLI, on a tiny demo."""

from __future__ import annotations

import json
import os

from raygex.bench.memory import kind_of, pss_mb, tree
from tests.pipeline.test_stages import run_cli
from tests.search.conftest import write_config, write_demo


def test_process_kinds_from_rays_titles():
    assert kind_of(10, 10, "python -m raygex search x.yaml") == "driver"
    assert kind_of(11, 10, "ray::ImplicitFunc.train") == "trial actors"
    assert kind_of(12, 10, "ray::train()") == "retraining tasks"
    assert kind_of(13, 10, "ray::IDLE") == "idle workers"
    assert kind_of(14, 10, "/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet --x") == "ray system"
    assert kind_of(15, 10, "ray::DashboardAgent") == "ray system"
    assert kind_of(16, 10, "/venv/lib/python3.11/site-packages/wandb/bin/wandb-core") == "W&B service"
    assert kind_of(17, 10, "sleep 1") == "other"
    assert os.getpid() in tree(os.getppid()) and pss_mb(os.getpid()) > 10


def test_bench_memory_reports_each_kind_of_a_real_search(tmp_path):
    (tmp_path / "demo").mkdir()
    config = write_config(tmp_path / "memory.yaml", write_demo(tmp_path / "demo"), graphs={}, controls=[],
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          train={"max_epochs": 2, "patience": 2, "batch_size": 32},
                          search={"num_samples": 2, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {"model": ["mlp", "lr"], "hidden": 16, "lr": 0.01}})
    code, out, err = run_cli("bench", "memory", config, "--storage", tmp_path / "results", "--interval", "0.2",
                             "--json")
    assert code == 0, err[-2000:] + out[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    peaks = result["peak_mb_by_kind"]
    print("\n" + "\n".join(out.strip().splitlines()[:-1]))
    # a driver holding torch and Ray, trial actors and retraining tasks (seed 1 is trained again) each seen
    assert peaks["driver"] > 100 and peaks["trial actors"] > 100 and peaks["retraining tasks"] > 50, peaks
    assert peaks["ray system"] > 20, peaks
    assert max(peaks.values()) <= result["peak_mb"] <= sum(peaks.values()) + 1e-6
    assert (tmp_path / "results" / "tiny" / "subtype" / "leaderboard.parquet").exists()


def test_the_estimates_table_through_the_cli(run_cli, monkeypatch):
    """`raygex bench memory --estimates` prints each configuration's estimate beside its measured peak (two of the
    demo's configurations here, to keep it short); with neither a CONFIG nor the flag it is one line, exit 2."""
    from raygex.bench import memory_estimates

    monkeypatch.setattr(memory_estimates, "CONFIGS", memory_estimates.CONFIGS[:2])  # fewer cases, same code
    code, out, err = run_cli("bench", "memory", "--estimates")
    assert code == 0, err
    assert "estimate MB" in out and "demo lr" in out and "demo mlp hidden=256" in out
    code, _, err = run_cli("bench", "memory")
    assert code == 2 and "needs a CONFIG or --estimates (one of them)" in err
