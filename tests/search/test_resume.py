"""Kill the driver mid-sweep (SIGKILL), `raygex resume`, and check nothing was lost or run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.search.conftest import write_config

pytestmark = pytest.mark.slow
MAX_EPOCHS = 6
NUM_SAMPLES = 8


def finished_trials(task_dir: Path) -> dict[str, dict]:
    """trial id → last reported result, for trials whose last result says they are done."""
    done = {}
    for result_file in task_dir.glob("*/result.json"):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if lines and (lines[-1].get("done") or lines[-1].get("epoch") == MAX_EPOCHS):
            done[lines[-1]["trial_id"]] = lines[-1]
    return done


def kill_tree(process: subprocess.Popen, children: list[psutil.Process]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    for child in children:  # the local Ray the driver started: raylet, GCS, workers
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=30)


def test_sigkilled_sweep_resumes_without_losing_or_repeating_trials(tiny_demo, tmp_path):
    space = {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": {"int": [1, 2]},
             "channels": {"choice": [4, 8]}, "embedding": {"choice": [1, 4]}, "hidden": {"choice": [16, 32]},
             "dropout": {"float": [0.0, 0.3]}, "lr": {"loguniform": ["1e-3", "1e-2"]}}
    config = write_config(tmp_path / "tiny.yaml", tiny_demo,
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          train={"max_epochs": MAX_EPOCHS, "patience": MAX_EPOCHS, "batch_size": 32},
                          search={"num_samples": NUM_SAMPLES, "max_concurrent": 2,
                                  "scheduler": {"kind": "fifo"}, "space": space})
    experiment = tmp_path / "results" / "tiny"
    task_dir = experiment / "subtype"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "offline"}
    driver = subprocess.Popen([sys.executable, "-m", "raygex", "search", str(config)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            children = psutil.Process(driver.pid).children(recursive=True) or children
            if len(finished_trials(task_dir)) >= 2 or driver.poll() is not None:
                break
            time.sleep(0.5)
        assert driver.poll() is None, "the sweep ended before it could be interrupted"
        children = psutil.Process(driver.pid).children(recursive=True)
    finally:
        kill_tree(driver, children)
    before = finished_trials(task_dir)
    assert 2 <= len(before) < NUM_SAMPLES

    resumed = subprocess.run([sys.executable, "-m", "raygex", "resume", str(experiment)], env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    board = pd.read_parquet(task_dir / "leaderboard.parquet")
    assert len(board) == NUM_SAMPLES, board[["trial_id", "status"]]
    assert (board["status"] == "TERMINATED").all()
    for trial_id, result in before.items():
        row = board[board["trial_id"] == trial_id]
        assert len(row) == 1, f"finished trial {trial_id} lost"
        assert row["best_valid_auc"].iloc[0] == pytest.approx(result["best_valid_auc"])
    configs = board.filter(like="config/").astype(str).apply(tuple, axis=1)
    assert configs.is_unique, "a hyperparameter configuration was run twice"
