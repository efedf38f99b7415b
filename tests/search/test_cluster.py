"""A sweep on a simulated 3-node cluster with logical GPUs: trials spread over nodes and all finish."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.search.conftest import write_config

pytestmark = pytest.mark.slow


def test_fractional_gpu_trials_spread_over_three_nodes(tiny_demo, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    from raygex.config import load_config
    from raygex.search.run import run_search

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        config = load_config(write_config(
            tmp_path / "cluster.yaml", tiny_demo, tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
            train={"max_epochs": 4, "patience": 4, "batch_size": 32}, resources={"cpu": 0.5, "gpu": 0.5},
            search={"num_samples": 6, "max_concurrent": 6, "scheduler": {"kind": "fifo"},
                    "space": {"model": ["mlp", "lr"], "hidden": {"choice": [8, 16]},
                              "lr": {"loguniform": ["1e-3", "1e-2"]}}}))
        experiment = run_search(config, address=cluster.address, echo=lambda *_: None)
    finally:
        ray.shutdown()
        cluster.shutdown()
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    assert len(board) == 6 and (board["status"] == "TERMINATED").all()
    assert board["node_id"].nunique() >= 2, "trials should spread over the nodes"
    # Ray hands each trial a logical GPU that torch cannot see here: the trial must fall back to the CPU.
    assert set(board["device"]) == {"cpu"}
