"""GPU placement on a simulated cluster (``ray.cluster_utils.Cluster`` with logical GPUs).

A trial that asks for ``gpu: 0.5`` gets half of one GPU: two trials share each GPU, and Ray tells each which one
(``ray.get_gpu_ids()``, reported by every trial as ``gpu_ids``). Ray also sets ``CUDA_VISIBLE_DEVICES`` to that id in
the trial's process, so the trainer's ``cuda`` device (cuda:0 of what the process sees) is the GPU Ray assigned.
There is no CUDA here: the sweep shows the real fallback to the CPU; the CUDA branch of the device choice is checked
with ``torch.cuda.is_available`` patched, inside processes that Ray gave half a GPU each.
"""

from __future__ import annotations

import ast
import threading
import time
from collections import Counter

import pandas as pd
import pytest
import torch

from tests.cluster.conftest import write_config
from tests.search.conftest import SWEEP_ONLY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gpu_cluster():
    """A head without GPUs (the driver, Ray Data) and one worker node with 2 CPUs and 2 logical GPUs (shared by
    this module's tests: starting a cluster costs half a minute on two cores)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    gpu_node = cluster.add_node(num_cpus=2, num_gpus=2)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        yield cluster, gpu_node
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_half_gpu_trials_land_two_to_a_gpu_and_train_on_the_cpu_without_cuda(gpu_cluster, tiny_demo, tmp_path):
    import ray

    from raygex.config import load_config
    from raygex.pipeline import run_search

    cluster, gpu_node = gpu_cluster
    config = load_config(write_config(
        tmp_path / "gpu.yaml", tiny_demo, tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
        **SWEEP_ONLY,
        # trials of several seconds: all four must be running at once, so none can take over a finished one's slot
        train={"max_epochs": 100, "patience": 100, "batch_size": 16}, resources={"cpu": 0.5, "gpu": 0.5},
        search={"num_samples": 4, "max_concurrent": 4, "scheduler": {"kind": "fifo"},
                "space": {"model": ["gcn"], "graph": ["true"], "depth": 2, "channels": 8, "embedding": 1,
                          "lr": {"loguniform": ["1e-3", "1e-2"]}}}))
    free_gpus: list[float] = []
    done = threading.Event()

    def watch():  # how many GPUs the cluster has left while the sweep runs
        while not done.is_set():
            free_gpus.append(ray.available_resources().get("GPU", 0.0))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        experiment = run_search(config, address=cluster.address)
    finally:
        done.set()
        watcher.join(timeout=5)
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    assert len(board) == 4 and (board["status"] == "TERMINATED").all()
    assert set(board["node_id"]) == {gpu_node.node_id}, "only the GPU node can hold a trial asking for a GPU"
    gpu_ids = [tuple(ast.literal_eval(ids)) for ids in board["gpu_ids"]]
    assert all(len(ids) == 1 for ids in gpu_ids), f"each trial holds one (shared) GPU: {gpu_ids}"
    print(f"\n[gpu placement] trials per GPU id: {dict(Counter(ids[0] for ids in gpu_ids))}; "
          f"fewest GPUs free during the sweep: {min(free_gpus):g} of 2")
    assert Counter(ids[0] for ids in gpu_ids) == {"0": 2, "1": 2}, "two half-GPU trials on each GPU"
    assert (board["gpu_memory_share"] == 0.5).all(), "each trial is capped at half its GPU's memory"
    assert min(free_gpus) == 0, "all four half-GPU trials ran at once: both GPUs fully taken"
    # Ray's GPUs here are logical: torch sees no CUDA, so the trials trained on the CPU.
    assert set(board["device"]) == {"cpu"}


def test_a_trial_process_sees_exactly_the_gpu_ray_assigned_and_the_trainer_picks_it(gpu_cluster):
    import ray

    @ray.remote(num_cpus=0.5, num_gpus=0.5)
    class TrialProcess:
        """A process with the resources of one ``{cpu: 0.5, gpu: 0.5}`` trial."""

        def devices(self):
            import os
            from unittest import mock

            import torch

            from raygex.training.loop import pick_device

            with mock.patch.object(torch.cuda, "is_available", return_value=True):
                with_cuda = pick_device()
            with mock.patch.object(torch.cuda, "is_available", return_value=False):
                without_cuda = pick_device()
            return {"gpu_ids": [str(g) for g in ray.get_gpu_ids()], "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                    "with_cuda": str(with_cuda), "without_cuda": str(without_cuda), "real": str(pick_device())}

    processes = [TrialProcess.remote() for _ in range(4)]
    seen = ray.get([p.devices.remote() for p in processes], timeout=120)
    for process in seen:
        assert len(process["gpu_ids"]) == 1
        # Ray hides every other GPU from the process: torch's cuda:0 there is the GPU Ray assigned.
        assert process["visible"] == process["gpu_ids"][0]
        assert process["with_cuda"] == "cuda"
        assert torch.device(process["with_cuda"]).index is None  # i.e. the current device: cuda:0 of the visible
        assert process["without_cuda"] == "cpu"
        assert process["real"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert Counter(p["gpu_ids"][0] for p in seen) == {"0": 2, "1": 2}
