"""`raygex bench gcn`: every PyG variant computes ours' function (and the check can fail), the floor's accounting
adds up and stays under our measured step, and the CLI prints the table and one JSON object."""

from __future__ import annotations

import json

import pytest
import torch

from raygex.bench.gcn import scale_free_graph
from raygex.bench.gcn_floor import F32, adjacency_bytes, floor, step_accounting
from raygex.bench.gcn_variants import (PYG_VARIANTS, TOLERANCE, VariantMismatch, build_variant, check_same_function,
                                       check_variants, copy_weights)

N_GENES = 120


@pytest.fixture(scope="module")
def edge_index():
    return scale_free_graph(N_GENES, 400, seed=1)


@pytest.mark.parametrize("embedding, channels, depth", [(4, 6, 2), (1, 7, 3), (5, 3, 1)])
def test_every_variant_computes_ours_function(edge_index, embedding, channels, depth):
    """Logits and every parameter gradient agree with ours on ours' weights (odd widths, embedding 1 included)."""
    found = check_variants(("ours", *PYG_VARIANTS), N_GENES, edge_index, 3, embedding, depth, channels, batch=5,
                           dropout=0.1, seed=0)
    assert sorted(found) == sorted(PYG_VARIANTS)
    n_params = (embedding > 1) + 4 * depth + 2
    for summary in found.values():
        assert summary["tensors_compared"] == 1 + n_params
        assert summary["logits_max_abs_diff"] < 1e-5
        assert summary["grad_max_rel_diff"] <= TOLERANCE


def _pair(variant: str, edge_index, batch: int = 4):
    torch.manual_seed(0)
    ours = build_variant("ours", N_GENES, edge_index, 2, 4, 2, 6, batch, 0.1)
    with torch.no_grad():
        for name, param in ours.named_parameters():
            if "bias" in name:
                param.uniform_(-0.1, 0.1)
    other = build_variant(variant, N_GENES, edge_index, 2, 4, 2, 6, batch, 0.1)
    copy_weights(ours, other)
    return ours, other, torch.randn(batch, N_GENES), torch.tensor([0, 1, 1, 0][:batch])


@pytest.mark.parametrize("variant", PYG_VARIANTS)
def test_copied_weights_pass_the_check(edge_index, variant):
    ours, other, x, y = _pair(variant, edge_index)
    assert check_same_function(ours, other, x, y)["grad_max_rel_diff"] <= TOLERANCE


@pytest.mark.parametrize("variant", PYG_VARIANTS)
@pytest.mark.parametrize("sabotage", ["weight", "bias", "normalisation", "readout"])
def test_the_check_catches_a_different_function(edge_index, variant, sabotage):
    """A wrong weight, bias, graph normalisation or feature layout is caught: the check can fail."""
    ours, other, x, y = _pair(variant, edge_index)
    if sabotage == "weight":
        with torch.no_grad():
            other.neighbour[1].lin.weight[0, 0] += 0.05
    elif sabotage == "bias":
        with torch.no_grad():
            other.own[0].bias[0] += 0.05
    elif sabotage == "normalisation":  # 1.1 Â: another graph operator
        if variant == "pyg_spmm":
            other.graph = (other.graph.to_dense() * 1.1).to_sparse_csr()
        else:
            other.edge_weight = other.edge_weight * 1.1
    else:  # flatten the classifier's input in another order than ours (channel-major instead of node-major)
        forward = other.classifier.forward
        other.classifier.forward = lambda h: forward(h.view(h.size(0), N_GENES, -1).transpose(1, 2)
                                                     .reshape(h.size(0), -1))
    with pytest.raises(VariantMismatch, match=variant):
        check_same_function(ours, other, x, y)


def test_floor_accounting_adds_up_and_charges_no_embedding_activation():
    n, nnz, batch, depth, channels, classes = 1000, 9000, 16, 3, 32, 2
    accounting = step_accounting(n, nnz, batch, 8, depth, channels, classes)
    parts = accounting["parts"]
    assert [p["part"] for p in parts] == ["layer 0", "layer 1", "layer 2", "classifier"]
    for part in parts:
        assert part["bytes_total"] == sum(part["bytes"].values())
        assert part["flops_total"] == sum(part["flops"].values())
    assert accounting["bytes"] == sum(p["bytes_total"] for p in parts)
    assert accounting["flops"] == sum(p["flops_total"] for p in parts)
    # Every product reads Â once: forward and backward of each layer.
    assert sum(v for p in parts for k, v in p["bytes"].items() if "adjacency" in k) == 2 * depth * adjacency_bytes(
        n, nnz)
    # The classifier's weights, weight gradient and its input activation (forward and backward) are charged.
    classifier = parts[-1]["bytes"]
    assert classifier["forward.weights_read"] == classifier["backward.weight_gradients_write"] == F32 * classes * (
        n * channels + 1)
    assert classifier["forward.input_read"] == classifier["backward.input_read"] == F32 * batch * n * channels
    # A larger embedding adds only its own values and W's rows: nothing of size batch x nodes x embedding.
    wide = step_accounting(n, nnz, batch, 64, depth, channels, classes)
    extra = wide["parts"][0]["bytes_total"] - parts[0]["bytes_total"]
    assert extra == 2 * F32 * n * (64 - 8) + 2 * F32 * (64 - 8) * channels
    # Layer 1 on its own, written out: Â twice, input read twice, Z and both gradient halves written and read.
    cn = channels // 2
    layer = parts[1]["bytes"]
    assert parts[1]["bytes_total"] == (2 * adjacency_bytes(n, nnz) + 2 * F32 * n * batch * channels
                                       + F32 * n * batch * (2 * cn + channels + 2 * cn + 2 * (channels - cn) + 2 * cn)
                                       + 2 * F32 * (channels * channels + channels))
    assert layer["forward.output_write"] == F32 * n * batch * channels
    assert parts[1]["flops"]["forward.sparse"] == 2 * nnz * batch * cn
    assert parts[1]["flops"]["backward.dense"] == 2 * parts[1]["flops"]["forward.dense"] == 4 * n * batch * 32 * 32


def test_floor_is_the_larger_bound():
    accounting = {"bytes": 4e9, "flops": 1e11}
    assert floor(accounting, 10e9, 100e9) == {"memory_ms": 400.0, "compute_ms": 1000.0, "floor_ms": 1000.0,
                                              "binding": "compute"}
    assert floor(accounting, 1e9, 100e9)["binding"] == "memory"


def test_bench_gcn_cli_prints_the_table_and_one_json_object(run_cli):
    code, out, err = run_cli("bench", "gcn", "--nodes", "300", "--edges", "1200", "--batch", "8", "--embedding",
                             "4", "--depth", "2", "--channels", "8", "--repeats", "3", "--json")
    assert code == 0, err
    lines = out.strip().splitlines()
    result = json.loads(lines[-1])
    assert "same function as ours" in out and "floor" in out and "pyg_spmm" in out  # the table precedes the JSON
    assert (result["nodes"], result["edges"], result["nnz"]) == (300, 1200, 2 * 1200 + 300)
    assert result["variants"] == ["ours", *PYG_VARIANTS]
    for variant in PYG_VARIANTS:
        assert result[f"{variant}_check_logits_max_abs_diff"] < 1e-5
        assert result[f"{variant}_check_grad_max_rel_diff"] <= result["check_tolerance"]
        assert result[f"{variant}_over_ours"] > 0 and result[f"{variant}_mem_over_ours"] >= 0  # tiny: ~0 MB over
    for variant in result["variants"]:
        assert result[f"{variant}_ms"] > 0 and result[f"{variant}_peak_mb"] > 0
    assert result["pyg_best"] in PYG_VARIANTS
    assert result["pyg_best_over_ours"] == min(result[f"{v}_over_ours"] for v in PYG_VARIANTS)
    # The floor: the larger bound, under our measured step, its accounting written out and adding up.
    assert result["bandwidth_gb_s"] > 0 and result["matmul_gflop_s"] > 0
    assert result["floor_ms"] == max(result["floor_memory_ms"], result["floor_compute_ms"])
    assert result["floor_binding"] in ("memory", "compute")
    assert 0 < result["floor_ms"] <= result["ours_ms"]
    assert result["ours_over_floor"] >= 1
    accounting = result["floor_accounting"]
    assert accounting["bytes"] == result["floor_bytes"] == sum(p["bytes_total"] for p in accounting["parts"])
    assert accounting["flops"] == result["floor_flops"] == sum(p["flops_total"] for p in accounting["parts"])
    assert abs(result["floor_memory_ms"] - result["floor_bytes"] / (result["bandwidth_gb_s"] * 1e6)) < 0.01
    assert abs(result["floor_compute_ms"] - result["floor_flops"] / (result["matmul_gflop_s"] * 1e6)) < 0.01


def test_bench_gcn_rejects_bad_options(run_cli):
    code, _, err = run_cli("bench", "gcn", "--nodes", "50", "--edges", "100", "--channels", "1")
    assert code != 0
    assert "channels must be at least 2" in err
