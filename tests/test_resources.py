"""The per-trial resource check: a request the cluster cannot hold now passes when a node type the autoscaler may
start can (GPU nodes at zero workers), and is refused with one line when no node ever could."""

from __future__ import annotations

from pathlib import Path

import pytest

from raygex.errors import ConfigError
from raygex.ray_session import autoscaler_node_types, check_request

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"
HEAD_ONLY = {"CPU": 8.0}  # a head node without GPUs, before the autoscaler has started anything


def test_shipped_cluster_files_list_their_gpu_node_types():
    types = autoscaler_node_types(str(CLUSTER / "cluster.yaml"))
    assert types["gpu1"]["GPU"] == 1 and "head" not in types


@pytest.mark.parametrize("cluster", ["cluster.yaml", "cluster-gcp.yaml"])
def test_a_half_gpu_trial_passes_against_gpu_nodes_at_zero(cluster):
    note = check_request(4, 0.5, HEAD_ONLY, autoscaler_node_types(str(CLUSTER / cluster)))
    assert note and "autoscaler will start nodes" in note


def test_a_request_no_node_type_holds_is_refused_with_one_line():
    with pytest.raises(ConfigError) as err:
        check_request(1, 16, HEAD_ONLY, autoscaler_node_types(str(CLUSTER / "cluster.yaml")))
    message = str(err.value)
    assert "resources.gpu = 16" in message and "gpu1" in message and "\n" not in message


def test_without_a_cluster_file_the_running_cluster_decides():
    assert check_request(2, 0, HEAD_ONLY, {}) is None
    with pytest.raises(ConfigError, match="no trial could ever start"):
        check_request(1, 0.5, HEAD_ONLY, {})


def test_the_environment_names_the_cluster_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RAYGEX_CLUSTER_CONFIG", str(CLUSTER / "cluster.yaml"))
    assert "gpu1" in autoscaler_node_types()
    monkeypatch.setenv("RAYGEX_CLUSTER_CONFIG", str(tmp_path / "absent.yaml"))
    assert autoscaler_node_types() == {}
