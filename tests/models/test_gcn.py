"""The GCN: shapes, seeding, node dropout, coarsening, registry, building from an aligned graph, TorchScript."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from raygex.graphs.align import AlignedGraph
from raygex.models import BUILDERS, MODELS, register_model
from raygex.models.coarsen import coarsen
from raygex.models.gcn import GCN, build_gcn, dropout_rates, node_dropout
from raygex.models.graph_conv import normalized_adjacency
from tests.models.test_graph_conv import random_graph, script_round_trip

N_GENES = 40


@pytest.fixture
def edges():
    return random_graph(N_GENES, 150, seed=0)[0]


@pytest.mark.parametrize("coarsen_graph", [False, True])
@pytest.mark.parametrize("readout", ["flatten", "mean"])
@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("embedding", [1, 6])
def test_output_shape_and_gradients(edges, coarsen_graph, readout, pool, embedding):
    torch.manual_seed(0)
    model = GCN(N_GENES, 3, edge_index=edges, depth=3, channels=8, embedding=embedding, coarsen=coarsen_graph,
                pool=pool, readout=readout)
    x = torch.randn(5, N_GENES)
    logits = model(x)
    assert logits.shape == (5, 3) and logits.dtype == torch.float32
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert (model.gene_embedding is None) == (embedding == 1)
    if coarsen_graph:
        assert [c.adjacency().size(0) for c in model.convs][0] == N_GENES
        assert model.n_readout_nodes < N_GENES // 2
    else:
        assert model.n_readout_nodes == N_GENES


def test_same_seed_same_model_and_output(edges):
    def run(seed):
        torch.manual_seed(seed)
        model = GCN(N_GENES, 2, edge_index=edges, depth=2, channels=6, embedding=4, dropout=0.3)
        return model(torch.randn(4, N_GENES))  # training mode: dropout masks follow the seed too

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_dropout_rates_grow_with_depth_up_to_the_cap():
    assert dropout_rates(0.1, 6) == [0.1, 0.2, 0.3, 0.4, 0.4, 0.4]
    assert dropout_rates(0.1, 3, growth=False) == [0.1, 0.1, 0.1]
    assert dropout_rates(0.5, 2) == [0.5, 0.5]  # the cap never lowers the base rate
    assert dropout_rates(0.0, 2) == [0.0, 0.0]
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        dropout_rates(1.0, 2)


def test_node_dropout_drops_whole_genes_per_sample():
    torch.manual_seed(0)
    h = torch.rand(500, 8, 6) + 0.5  # node-major (N, B, C), no zeros of its own
    out = node_dropout(h, 0.3, training=True)
    dropped = out == 0
    assert torch.equal(dropped.all(dim=-1), dropped.any(dim=-1))  # all channels of a (gene, sample) or none
    rate = dropped.all(dim=-1).float().mean().item()
    assert 0.25 < rate < 0.35
    assert not torch.equal(dropped[:, 0], dropped[:, 1])  # drawn per sample
    kept = ~dropped
    assert torch.allclose(out[kept], h[kept] / 0.7)
    assert node_dropout(h, 0.3, training=False) is h
    assert node_dropout(h, 0.0, training=True) is h


def test_train_mode_is_random_and_eval_mode_is_deterministic(edges):
    torch.manual_seed(0)
    model = GCN(N_GENES, 2, edge_index=edges, depth=2, channels=6, embedding=4, dropout=0.3)
    x = torch.randn(4, N_GENES)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    no_dropout = GCN(N_GENES, 2, edge_index=edges, depth=2, channels=6, embedding=4, dropout=0.0)
    assert torch.equal(no_dropout(x), no_dropout(x))


def test_precomputed_levels_and_adjacency_input(edges):
    levels = coarsen(edges, N_GENES, 2, seed=5)
    adjacency = normalized_adjacency(edges, N_GENES)
    torch.manual_seed(0)
    a = GCN(N_GENES, 2, adjacency, depth=3, channels=4, embedding=2, coarsen=True, levels=levels)
    torch.manual_seed(0)
    b = GCN(N_GENES, 2, edge_index=edges, depth=3, channels=4, embedding=2, coarsen=True, coarsen_seed=5)
    assert a.n_readout_nodes == levels[1].n_coarse == b.n_readout_nodes
    a.eval(), b.eval()
    x = torch.randn(3, N_GENES)
    assert torch.allclose(a(x), b(x))
    with pytest.raises(ValueError, match="at least depth - 1 = 2"):
        GCN(N_GENES, 2, adjacency, depth=3, coarsen=True, levels=levels[:1])


def test_bad_arguments_are_refused(edges):
    with pytest.raises(ValueError, match="exactly one of adjacency"):
        GCN(N_GENES, 2)
    with pytest.raises(ValueError, match="one node per gene"):
        GCN(N_GENES + 1, 2, normalized_adjacency(edges, N_GENES))
    with pytest.raises(ValueError, match="pool must be one of"):
        GCN(N_GENES, 2, edge_index=edges, pool="sum")
    with pytest.raises(ValueError, match="readout must be one of"):
        GCN(N_GENES, 2, edge_index=edges, readout="max")
    model = GCN(N_GENES, 2, edge_index=edges, depth=1, channels=4, embedding=2)
    with pytest.raises(ValueError, match=rf"shape \(batch, {N_GENES}\)"):
        model(torch.randn(2, N_GENES - 1))


def test_state_dict_deepcopy_and_pickle(edges):
    torch.manual_seed(0)
    model = GCN(N_GENES, 2, edge_index=edges, depth=2, channels=4, embedding=3, coarsen=True).eval()
    assert not any("adj" in key or "cluster" in key for key in model.state_dict())
    x = torch.randn(2, N_GENES)
    torch.manual_seed(1)
    other = GCN(N_GENES, 2, edge_index=edges, depth=2, channels=4, embedding=3, coarsen=True).eval()
    other.load_state_dict({k: v.clone() for k, v in model.state_dict().items()})
    assert torch.equal(other(x), model(x))
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert torch.equal(clone(x), model(x))


def test_gcn_torchscript_round_trip_in_fresh_process(edges, tmp_path):
    torch.manual_seed(0)
    model = GCN(N_GENES, 3, edge_index=edges, depth=3, channels=6, embedding=4, coarsen=True, pool="mean")
    script_round_trip(model, (torch.randn(4, N_GENES),), tmp_path)


def test_registry_and_build_from_aligned_graph(edges):
    assert MODELS["gcn"] is GCN
    genes = [f"G{i}" for i in range(N_GENES)]
    weight = np.linspace(0.5, 1.5, edges.shape[1]).astype(np.float32)
    graph = AlignedGraph(N_GENES, edges, weight, genes, "toy")
    hparams = {"model": "gcn", "lr": 1e-3, "depth": 2, "channels": 6, "embedding": 3, "dropout": 0.2,
               "dropout_growth": False, "coarsen": True, "pool": "mean", "readout": "mean"}
    model = BUILDERS["gcn"](hparams, N_GENES, 4, graph)
    assert isinstance(model, GCN) and model.rates == [0.2, 0.2] and model.pool == "mean"
    assert model(torch.randn(2, N_GENES)).shape == (2, 4)
    binary = build_gcn({"depth": 1}, N_GENES, 2, graph)
    weighted = build_gcn({"depth": 1, "edge_weights": True}, N_GENES, 2, graph)
    assert torch.equal(binary.convs[0].adjacency().to_dense(), normalized_adjacency(edges, N_GENES).to_dense())
    assert not torch.equal(weighted.convs[0].adjacency().to_dense(), binary.convs[0].adjacency().to_dense())
    with pytest.raises(ValueError, match="needs a gene graph"):
        build_gcn(hparams, N_GENES, 2, None)
    with pytest.raises(ValueError, match="aligned to the dataset's 41 genes"):
        build_gcn(hparams, N_GENES + 1, 2, graph)


def test_register_model_refuses_a_taken_name():
    class Other(torch.nn.Module):
        @classmethod
        def from_hparams(cls, hparams, n_genes, n_classes, graph):
            return cls()

    with pytest.raises(ValueError, match="already registered"):
        register_model("gcn")(Other)
    assert register_model("gcn")(GCN) is GCN and MODELS["gcn"] is GCN
    with pytest.raises(TypeError, match="needs a builder"):
        register_model("nothing")(torch.nn.Linear)
