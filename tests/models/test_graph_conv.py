"""SharedGraphConv and normalized_adjacency against dense references; TorchScript round trips."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from raygex.models.graph_conv import SharedGraphConv, normalized_adjacency


def random_graph(n: int, m: int, seed: int, weighted: bool = False):
    """A random undirected graph as edge_index with both directions (and weights when asked)."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, n, size=(2, m))
    pairs = pairs[:, pairs[0] != pairs[1]]
    edge_index = np.concatenate([pairs, pairs[::-1]], axis=1)
    weight = None
    if weighted:
        w = rng.uniform(0.1, 2.0, size=pairs.shape[1])
        weight = np.concatenate([w, w]).astype(np.float32)
    return edge_index, weight


def dense_normalized(edge_index, n, weight=None) -> np.ndarray:
    a = np.zeros((n, n))
    np.add.at(a, (edge_index[0], edge_index[1]), 1.0 if weight is None else weight)
    a += np.eye(n)
    d = a.sum(axis=1) ** -0.5
    return d[:, None] * a * d[None, :]


def script_round_trip(module: torch.nn.Module, inputs: tuple, tmp_path) -> None:
    """Script, save, and reload in a fresh interpreter that imports only torch; outputs must match."""
    module.eval()
    scripted = torch.jit.script(module)
    with torch.no_grad():
        expected = module(*inputs)
        assert torch.allclose(scripted(*inputs), expected, atol=1e-6)
    path = tmp_path / "model.pt"
    torch.jit.save(scripted, str(path))
    torch.save({"inputs": inputs, "expected": expected}, str(tmp_path / "io.pt"))
    code = textwrap.dedent(f"""
        import sys, torch
        model = torch.jit.load({str(path)!r})
        io = torch.load({str(tmp_path / "io.pt")!r})
        with torch.no_grad():
            out = model(*io["inputs"])
        assert torch.allclose(out, io["expected"], atol=1e-6), (out - io["expected"]).abs().max()
        leaked = [m for m in sys.modules if m.split(".")[0] in ("raygex", "torch_geometric")]
        assert not leaked, leaked
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n,m", [(1, 0), (7, 10), (60, 200)])
def test_normalized_adjacency_matches_dense_formula(n, m, weighted):
    edge_index, weight = random_graph(n, m, seed=n, weighted=weighted)
    adj = normalized_adjacency(edge_index, n, weight)
    assert adj.layout == torch.sparse_csr and adj.dtype == torch.float32 and adj.shape == (n, n)
    np.testing.assert_allclose(adj.to_dense().numpy(), dense_normalized(edge_index, n, weight), atol=1e-6)
    dense = adj.to_dense()
    assert torch.allclose(dense, dense.t())


def test_normalized_adjacency_accepts_tensors_and_rejects_bad_input():
    edge_index, _ = random_graph(10, 20, seed=0)
    a = normalized_adjacency(torch.from_numpy(edge_index), 10).to_dense()
    b = normalized_adjacency(edge_index, 10).to_dense()
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="shape"):
        normalized_adjacency(np.zeros((3, 4), dtype=np.int64), 10)
    with pytest.raises(ValueError, match=r"node ids in \[0, 5\)"):
        normalized_adjacency(edge_index, 5)
    with pytest.raises(ValueError, match="non-negative"):
        normalized_adjacency(edge_index, 10, -np.ones(edge_index.shape[1]))


def close(got: torch.Tensor, want: torch.Tensor, tol: float = 1e-5) -> bool:
    """Agreement to ``tol`` relative to the reference's scale (weight gradients sum thousands of float32 terms)."""
    got, want = got.detach(), want.detach()
    return bool((got - want).abs().max() <= tol * max(1.0, float(want.abs().max())))


def dense_reference(layer: SharedGraphConv, x: torch.Tensor) -> torch.Tensor:
    a = layer.adjacency().to_dense()
    neighbour = torch.einsum("ij,bjc->bic", a, x @ layer.weight_neighbour) + layer.bias_neighbour
    own = x @ layer.weight_self + layer.bias_self
    return torch.cat([neighbour, own], dim=-1)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n,m,c_in,c_out", [(5, 6, 3, 4), (40, 120, 8, 6), (150, 600, 2, 9), (300, 1500, 16, 32)])
def test_layer_matches_dense_reference_forward_and_backward(n, m, c_in, c_out, weighted):
    torch.manual_seed(n)
    edge_index, weight = random_graph(n, m, seed=n + 1, weighted=weighted)
    layer = SharedGraphConv(c_in, c_out, normalized_adjacency(edge_index, n, weight))
    with torch.no_grad():  # non-zero biases so that their placement is tested too
        layer.bias_neighbour.normal_()
        layer.bias_self.normal_()
    assert layer.project_first == (c_out // 2 <= c_in)
    x = torch.randn(4, n, c_in, requires_grad=True)
    grad_out = torch.randn(4, n, c_out)
    params = [x, layer.weight_neighbour, layer.weight_self, layer.bias_neighbour, layer.bias_self]

    out = layer(x)
    assert out.shape == (4, n, c_out)
    grads = torch.autograd.grad(out, params, grad_out)
    ref = dense_reference(layer, x)
    ref_grads = torch.autograd.grad(ref, params, grad_out)
    assert close(out, ref)
    for got, want in zip(grads, ref_grads):
        assert close(got, want)


def test_odd_width_gives_the_extra_channel_to_the_self_branch():
    edge_index, _ = random_graph(10, 20, seed=3)
    layer = SharedGraphConv(4, 5, normalized_adjacency(edge_index, 10))
    assert (layer.neighbour_channels, layer.self_channels) == (2, 3)
    assert layer(torch.randn(2, 10, 4)).shape == (2, 10, 5)
    with pytest.raises(ValueError, match="out_channels must be at least 2"):
        SharedGraphConv(4, 1, normalized_adjacency(edge_index, 10))


def test_node_major_layout_and_input_checks():
    edge_index, _ = random_graph(12, 30, seed=4)
    layer = SharedGraphConv(3, 6, normalized_adjacency(edge_index, 12))
    x = torch.randn(5, 12, 3)
    assert torch.allclose(layer.forward_node_major(x.transpose(0, 1)).transpose(0, 1), layer(x))
    with pytest.raises(ValueError, match=r"shape \(batch, 12, 3\)"):
        layer(torch.randn(5, 11, 3))
    with pytest.raises(ValueError, match="square sparse tensor"):
        SharedGraphConv(3, 6, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="layout"):
        SharedGraphConv(3, 6, torch.eye(3))


def test_coo_adjacency_and_no_bias():
    edge_index, _ = random_graph(9, 20, seed=5)
    csr = normalized_adjacency(edge_index, 9)
    layer = SharedGraphConv(3, 4, csr.to_sparse_coo(), bias=False)
    assert layer.bias_self is None and layer.bias_neighbour is None
    x = torch.randn(2, 9, 3)
    expected = torch.cat([torch.einsum("ij,bjc->bic", csr.to_dense(), x @ layer.weight_neighbour),
                          x @ layer.weight_self], dim=-1)
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_graph_is_structure_not_state_and_module_copies():
    edge_index, _ = random_graph(20, 50, seed=6)
    layer = SharedGraphConv(3, 4, normalized_adjacency(edge_index, 20))
    assert set(layer.state_dict()) == {"weight_neighbour", "weight_self", "bias_neighbour", "bias_self"}
    x = torch.randn(2, 20, 3)
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert torch.equal(clone(x), layer(x))
    assert "nodes=20" in repr(layer) and f"nnz={layer.nnz}" in repr(layer)


def test_layer_torchscript_round_trip_in_fresh_process(tmp_path):
    edge_index, weight = random_graph(30, 80, seed=7, weighted=True)
    layer = SharedGraphConv(5, 7, normalized_adjacency(edge_index, 30, weight))
    script_round_trip(layer, (torch.randn(3, 30, 5),), tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_layer_on_cuda_matches_cpu():
    edge_index, _ = random_graph(50, 200, seed=8)
    layer = SharedGraphConv(4, 6, normalized_adjacency(edge_index, 50))
    x = torch.randn(3, 50, 4)
    expected = layer(x)
    layer = layer.to("cuda")
    assert layer.adj_values.is_cuda
    out = layer(x.cuda())
    out.sum().backward()
    assert torch.allclose(out.cpu(), expected, atol=1e-5)


def test_directed_graph_backward_uses_the_transpose():
    rng = np.random.default_rng(9)
    edge_index = rng.integers(0, 25, size=(2, 60))  # one direction only: Â is not symmetric
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    layer = SharedGraphConv(3, 4, normalized_adjacency(edge_index, 25))
    assert not layer.symmetric
    x = torch.randn(2, 25, 3, requires_grad=True)
    grad_out = torch.randn(2, 25, 4)
    got = torch.autograd.grad(layer(x), x, grad_out)[0]
    want = torch.autograd.grad(dense_reference(layer, x), x, grad_out)[0]
    assert close(got, want)
    undirected = SharedGraphConv(3, 4, normalized_adjacency(np.concatenate([edge_index, edge_index[::-1]], 1), 25))
    assert undirected.symmetric and undirected.adjt_values.numel() == 0


@pytest.mark.parametrize("in_channels", [1, 5])
def test_outer_form_equals_the_built_features(in_channels):
    torch.manual_seed(in_channels)
    edge_index, _ = random_graph(30, 90, seed=10)
    layer = SharedGraphConv(in_channels, 6, normalized_adjacency(edge_index, 30))
    values = torch.randn(30, 4, requires_grad=True)
    vectors = torch.randn(30, in_channels, requires_grad=True) if in_channels > 1 else None
    built = values.unsqueeze(-1) * (vectors.unsqueeze(1) if vectors is not None else 1.0)
    grad_out = torch.randn(30, 4, 6)
    inputs = [values] + ([vectors] if vectors is not None else []) + [layer.weight_neighbour, layer.weight_self]
    outer = layer.forward_outer(values, vectors)
    full = layer.forward_node_major(built)
    assert close(outer, full)
    for got, want in zip(torch.autograd.grad(outer, inputs, grad_out), torch.autograd.grad(full, inputs, grad_out)):
        assert close(got, want)


def test_scripted_layer_gradients_match_eager():
    edge_index, _ = random_graph(40, 120, seed=11)
    layer = SharedGraphConv(4, 6, normalized_adjacency(edge_index, 40))
    scripted = torch.jit.script(layer)
    x = torch.randn(3, 40, 4, requires_grad=True)
    eager_grad = torch.autograd.grad(layer(x).square().sum(), x)[0]
    scripted_grad = torch.autograd.grad(scripted(x).square().sum(), x)[0]
    assert close(scripted_grad, eager_grad)
