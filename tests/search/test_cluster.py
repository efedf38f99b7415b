"""A sweep on a simulated 3-node cluster with logical GPUs: trials spread over nodes and all finish."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.search.conftest import SWEEP_ONLY, write_config

pytestmark = pytest.mark.slow


def test_fractional_gpu_trials_spread_over_three_nodes(tiny_demo, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    from raygex.config import load_config
    from raygex.pipeline import run_search

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        config = load_config(write_config(
            tmp_path / "cluster.yaml", tiny_demo, tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
            **SWEEP_ONLY,
            # ~1-s trials: six at once need every node (4-epoch trials could all end on the first node)
            train={"max_epochs": 150, "patience": 150, "batch_size": 32}, resources={"cpu": 0.5, "gpu": 0.5},
            search={"num_samples": 6, "max_concurrent": 6, "scheduler": {"kind": "fifo"},
                    "space": {"model": ["mlp", "lr"], "hidden": {"choice": [8, 16]},
                              "lr": {"loguniform": ["1e-3", "1e-2"]}}}))
        experiment = run_search(config, address=cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    assert len(board) == 6 and (board["status"] == "TERMINATED").all()
    assert board["node_id"].nunique() >= 2, "trials should spread over the nodes"
    # Ray hands each trial a logical GPU that torch cannot see here: the trial must fall back to the CPU.
    assert set(board["device"]) == {"cpu"}


def test_a_worker_node_dying_mid_trial_restarts_its_trials_elsewhere_from_their_checkpoints(tiny_demo, tmp_path):
    import json
    import threading
    import time

    import ray
    from ray.cluster_utils import Cluster

    from raygex.config import load_config
    from raygex.pipeline import run_search

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    max_epochs = 24
    config = load_config(write_config(
        tmp_path / "cluster.yaml", tiny_demo, tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
        **SWEEP_ONLY, train={"max_epochs": max_epochs, "patience": max_epochs, "batch_size": 16}, resources={"cpu": 1, "gpu": 0},
        search={"num_samples": 3, "max_concurrent": 3, "scheduler": {"kind": "fifo"}, "checkpoint_every": 2,
                "checkpoint_min_s": 0,
                "space": {"model": ["gcn"], "graph": ["true"], "depth": 2, "channels": 16, "embedding": 4,
                          "lr": {"loguniform": ["1e-3", "1e-2"]}}}))
    task_dir = tmp_path / "results" / "tiny" / "subtype"
    outcome: dict = {}

    def sweep():
        try:
            outcome["experiment"] = run_search(config, address=cluster.address)
        except BaseException as err:  # reported by the assertions below
            outcome["error"] = err

    killed = None
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        worker_ids = {node.node_id: node for node in workers}
        thread = threading.Thread(target=sweep, daemon=True)
        thread.start()
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and thread.is_alive():
            for result_file in task_dir.glob("*/result.json"):
                rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
                if rows and rows[-1]["node_id"] in worker_ids and 4 <= rows[-1]["epoch"] < max_epochs - 4:
                    killed = (rows[-1]["trial_id"], rows[-1]["node_id"], rows[-1]["epoch"])
                    cluster.remove_node(worker_ids[rows[-1]["node_id"]])
                    break
            time.sleep(0.2)
        thread.join(timeout=400)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert killed is not None, "no trial ran on a worker node long enough to be interrupted"
    assert "error" not in outcome, outcome.get("error")
    board = pd.read_parquet(task_dir / "leaderboard.parquet")
    assert len(board) == 3 and (board["status"] == "TERMINATED").all()
    trial_id, dead_node, epoch = killed
    result_file = next(task_dir.glob(f"*{trial_id}*/result.json"))
    rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
    nodes = [row["node_id"] for row in rows]
    restarted = [row["epoch"] for row in rows if row["node_id"] != dead_node]
    print(f"\n[node death] trial {trial_id} killed at epoch {epoch} on its node; resumed on another node from "
          f"epoch {restarted[0] if restarted else None}; finished at epoch {rows[-1]['epoch']}")
    assert rows[-1]["epoch"] == max_epochs
    assert nodes[0] == dead_node and nodes[-1] != dead_node, "the trial moved to a surviving node"
    assert restarted[0] > 1, "it resumed from its last checkpoint, not from scratch"
