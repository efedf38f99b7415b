"""A cluster whose nodes share nothing but the object store: the isolation itself, then a search through the CLI
with data, graphs and experiment on S3 (moto on 127.0.0.1), every trial on a worker node."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from tests.cluster.isolated import IsolatedCluster, missing_tools
from tests.search.conftest import write_config, write_demo
from tests.search.test_resume import SPACE
from tests.storage.test_s3_sweep import upload

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))]


@pytest.fixture
def cluster(tmp_path, s3_env):
    with IsolatedCluster(tmp_path / "cluster", workers=2, cpus=2, env=s3_env) as running:
        yield running


def run_driver(cluster: IsolatedCluster, script: str, cwd, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=cluster.env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_the_nodes_share_no_files_and_the_head_runs_no_task(cluster, tmp_path):
    """A file the driver writes in its folder is not there for a task on a worker; what a task writes in its
    working directory or /tmp stays on its node; tasks never land on the head (CPU: 0)."""
    (tmp_path / "driver").mkdir()
    done = run_driver(cluster, f"""
        import json, os, ray
        from pathlib import Path
        Path("written-by-the-driver.txt").write_text("here")
        ray.init(address={cluster.address!r}, logging_level="ERROR")
        head = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) == 0]

        @ray.remote(num_cpus=1)
        def look(driver_file):
            Path("written-by-a-task.txt").write_text("there")
            Path("/tmp/written-by-a-task.txt").write_text("there")
            return {{"node": ray.get_runtime_context().get_node_id(), "sees_driver_file": Path(driver_file).exists(),
                     "cwd": os.getcwd()}}

        seen = ray.get([look.options(resources={{f"worker_{{i}}": 0.1}}).remote(
            str(Path("written-by-the-driver.txt").resolve())) for i in range(2)])
        print(json.dumps({{"head": head, "tasks": seen,
                          "task_file_here": Path("/tmp/written-by-a-task.txt").exists()}}))
        """, cwd=tmp_path / "driver")
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["head"]) == 1
    assert {t["node"] for t in out["tasks"]}.isdisjoint(out["head"]) and len({t["node"] for t in out["tasks"]}) == 2
    assert not any(t["sees_driver_file"] for t in out["tasks"]), out
    assert not out["task_file_here"]
    assert not any((tmp_path / "driver" / "written-by-a-task.txt").exists() for _ in out["tasks"])


def test_a_search_with_everything_on_s3_runs_every_trial_on_a_worker(cluster, tmp_path, s3_server, bucket):
    """`raygex search --address` on the cluster: the dataset read from the store by the workers' read tasks
    (``data.read_in_driver_mb: 0``), the graph and the experiment on the store; the winner exported."""
    (tmp_path / "demo").mkdir()
    demo = write_demo(tmp_path / "demo")
    upload(s3_server, bucket, demo / "expression.parquet", "data/expression.parquet")
    upload(s3_server, bucket, demo / "graph_true.parquet", "data/graph_true.parquet")
    uri = f"s3://{bucket}/data/expression.parquet"
    config = write_config(tmp_path / "tiny.yaml", demo, data={"expression": uri, "read_in_driver_mb": 0},
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          graphs={"true": f"s3://{bucket}/data/graph_true.parquet"}, controls=["empty"],
                          train={"max_epochs": 3, "patience": 3, "batch_size": 32},
                          search={"num_samples": 4, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": SPACE})
    (tmp_path / "driver").mkdir()
    experiment = f"s3://{bucket}/exp/tiny"
    done = subprocess.run([sys.executable, "-m", "raygex", "search", str(config), "--address", cluster.address,
                           "--storage", f"s3://{bucket}/exp"], env=cluster.env, cwd=tmp_path / "driver",
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    status = subprocess.run([sys.executable, "-m", "raygex", "status", experiment, "--json"], env=cluster.env,
                            cwd=tmp_path / "driver", capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr[-2000:]
    nodes = {n["id"]: n["resources"] for n in cluster.alive_nodes()}
    head = {node for node, resources in nodes.items() if resources.get("CPU", 0) == 0}
    from raygex.experiment.layout import ExperimentLayout

    layout = ExperimentLayout.open(experiment)
    board = layout.read_leaderboard("subtype")
    assert len(board) == 4 and (board["status"] == "TERMINATED").all()
    ran_on = set()
    for _, row in board.iterrows():
        ran_on |= set(pd.DataFrame(layout.trial_history("subtype", row))["node_id"].dropna())
    assert ran_on and ran_on.isdisjoint(head), (ran_on, head)
