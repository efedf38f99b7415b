"""The per-trial resource check: a request the cluster cannot hold now passes when a node type the autoscaler may
start can (GPU nodes at zero workers), and is refused with one line when no node ever could."""

from __future__ import annotations

from pathlib import Path

import pytest

from raygex.errors import ConfigError
from raygex.runtime.ray_session import autoscaler_node_types, check_request, node_resources

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"
HEAD_ONLY = [{"CPU": 8.0}]  # a head node without GPUs, before the autoscaler has started anything


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


@pytest.mark.parametrize("cluster", ["cluster.yaml", "cluster-gcp.yaml"])
def test_cloud_heads_hold_no_trials_and_the_shipped_gpu_config_fits_their_gpu_nodes(cluster):
    """The cloud cluster files' head advertises no CPUs (trials and Ray Data's read tasks go to the workers), and
    the shipped GPU config ({cpu: 4, gpu: 0.5}) passes against them with the GPU workers still at zero."""
    import yaml

    from raygex.config import load_config

    text = yaml.safe_load((CLUSTER / cluster).read_text())
    head = text["available_node_types"][text["head_node_type"]]
    assert head["resources"] == {"CPU": 0}
    config = load_config(CLUSTER.parent / "configs" / "brca-pam50-gpu.yaml")
    assert (config.resources.cpu, config.resources.gpu) == (4, 0.5)
    assert config.search.max_concurrent == 16 and config.search.max_concurrent_per_study == 8
    note = check_request(config.resources.cpu, config.resources.gpu, [{"CPU": 0.0}],
                         autoscaler_node_types(str(CLUSTER / cluster)))
    assert note and "autoscaler will start nodes" in note
    assert check_request(1, 0, [{"CPU": 0.0}], autoscaler_node_types(str(CLUSTER / cluster)))  # CPU-only: workers too


def test_a_fractional_gpu_is_a_memory_share_and_a_whole_one_is_not():
    from raygex.runtime.gpu_share import gpu_memory_share, limit_gpu_memory

    assert gpu_memory_share({"CPU": 4.0, "GPU": 0.5}) == 0.5
    assert gpu_memory_share({"CPU": 4.0, "GPU": 1.0}) is None and gpu_memory_share({"CPU": 1.0}) is None
    assert limit_gpu_memory({"GPU": 0.25}) == 0.25  # set on the device when CUDA is there; the share either way


def test_a_memory_request_no_node_holds_is_refused_with_one_line():
    total = [{"CPU": 8.0, "memory": 16 * 2**30}]
    assert check_request(1, 0, total, {}, memory_mb=4096) is None
    with pytest.raises(ConfigError) as err:
        check_request(1, 0, total, {}, memory_mb=32_768)
    assert "resources.memory_mb = 32768 per trial" in str(err.value) and "16384 MiB of memory" in str(err.value)


def test_a_trial_must_fit_on_one_node_not_on_the_cluster_summed():
    """Three one-CPU nodes hold three one-CPU trials, never one three-CPU trial; a big CPU node and a small GPU node
    never hold a trial that wants both: the check asks each node for the whole request."""
    nodes = [{"Alive": True, "Resources": {"CPU": 1.0, "memory": 4 * 2**30}} for _ in range(3)]
    nodes.append({"Alive": False, "Resources": {"CPU": 64.0}})  # a dead node holds nothing
    alive = node_resources(nodes)
    assert alive == [{"CPU": 1.0, "memory": 4 * 2**30}] * 3
    assert check_request(1, 0, alive, {}) is None
    with pytest.raises(ConfigError) as err:
        check_request(3, 0, alive, {})
    assert str(err.value).startswith("resources.cpu = 3 per trial, but the largest node has 1 CPUs")
    mixed = [{"CPU": 16.0}, {"CPU": 2.0, "GPU": 1.0}]
    assert check_request(2, 1, mixed, {}) is None
    with pytest.raises(ConfigError) as err:
        check_request(4, 1, mixed, {})
    assert str(err.value).startswith("no node has resources.cpu = 4, resources.gpu = 1 at once")
