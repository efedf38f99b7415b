"""Coarsening: exact cluster graphs against brute force, cluster pooling against loops, the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raygex.models import coarsen as coarsen_module
from raygex.models.coarsen import ClusterPool, cache_stats, clear_cache, coarsen, coarsen_cached
from tests.models.test_graph_conv import random_graph


def brute_force_coarse_edges(edge_index: np.ndarray, cluster: np.ndarray) -> set[tuple[int, int]]:
    """Cluster i ~ cluster j (i != j) iff some edge joins a member of i and a member of j, both directions."""
    edges = set()
    for u, v in edge_index.T:
        a, b = int(cluster[u]), int(cluster[v])
        if a != b:
            edges |= {(a, b), (b, a)}
    return edges


def fine_edge_set(edge_index: np.ndarray) -> set[tuple[int, int]]:
    return {(int(u), int(v)) for u, v in edge_index.T} | {(int(v), int(u)) for u, v in edge_index.T}


@pytest.mark.parametrize("seed", range(6))
def test_coarse_graphs_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 120))
    edge_index, weight = random_graph(n, int(rng.integers(0, 4 * n)), seed=seed, weighted=bool(seed % 2))
    hierarchy = coarsen(edge_index, n, levels=3, seed=seed, edge_weight=weight)
    fine_edges, n_fine = edge_index, n
    for level in hierarchy:
        cluster = level.cluster
        assert cluster.dtype == np.int64 and cluster.shape == (n_fine,) and level.n_fine == n_fine
        assert set(np.unique(cluster)) == set(range(level.n_coarse))
        smallest = [int(np.flatnonzero(cluster == k)[0]) for k in range(level.n_coarse)]
        assert smallest == sorted(smallest)  # numbered by smallest member
        got = {(int(a), int(b)) for a, b in level.edge_index.T}
        assert len(got) == level.edge_index.shape[1]  # no repeats
        assert got == brute_force_coarse_edges(fine_edges, cluster)
        assert level.edge_index.dtype == np.int64
        order = np.lexsort((level.edge_index[1], level.edge_index[0]))
        assert np.array_equal(order, np.arange(len(order)))  # sorted
        adjacent = fine_edge_set(fine_edges)
        for k in range(level.n_coarse):  # clusters of 1-3 nodes, each held together by fine edges
            members = np.flatnonzero(cluster == k)
            assert 1 <= len(members) <= 3
            if len(members) > 1:
                linked = sum((int(a), int(b)) in adjacent for a in members for b in members if a < b)
                assert linked >= len(members) - 1
        fine_edges, n_fine = level.edge_index, level.n_coarse


def test_coarsening_about_halves_and_is_seeded():
    edge_index, _ = random_graph(2000, 16000, seed=1)
    a = coarsen(edge_index, 2000, levels=3, seed=0)
    sizes = [level.n_coarse for level in a]
    assert 0.45 * 2000 <= sizes[0] <= 0.55 * 2000
    assert sizes[1] <= 0.6 * sizes[0] and sizes[2] <= 0.65 * sizes[1]
    b = coarsen(edge_index, 2000, levels=3, seed=0)
    assert all(np.array_equal(x.cluster, y.cluster) for x, y in zip(a, b))
    c = coarsen(edge_index, 2000, levels=3, seed=1)
    assert not np.array_equal(a[0].cluster, c[0].cluster)
    shallow = coarsen(edge_index, 2000, levels=2, seed=0)  # a shallower hierarchy is a prefix
    assert all(np.array_equal(x.cluster, y.cluster) for x, y in zip(shallow, a))


def test_one_direction_or_both_give_the_same_hierarchy():
    edge_index, _ = random_graph(80, 300, seed=2)
    half = edge_index[:, : edge_index.shape[1] // 2]
    a, b = coarsen(edge_index, 80, 2, seed=3), coarsen(half, 80, 2, seed=3)
    assert all(np.array_equal(x.cluster, y.cluster) and np.array_equal(x.edge_index, y.edge_index)
               for x, y in zip(a, b))


def test_isolated_nodes_stay_alone_and_bad_input_is_refused():
    edge_index = np.array([[0, 1], [1, 0]])
    (level,) = coarsen(edge_index, 4, 1, seed=0)
    assert level.cluster.tolist() == [0, 0, 1, 2] and level.n_coarse == 3 and level.edge_index.shape == (2, 0)
    with pytest.raises(ValueError, match="levels must be non-negative"):
        coarsen(edge_index, 4, -1)
    with pytest.raises(ValueError, match=r"node ids in \[0, 1\)"):
        coarsen(edge_index, 1, 1)


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_cluster_pool_matches_python_loop(reduce):
    rng = np.random.default_rng(0)
    cluster = np.concatenate([np.arange(7), rng.integers(0, 7, size=13)])
    rng.shuffle(cluster)
    pool = ClusterPool(cluster, 7, reduce)
    x = torch.randn(3, 20, 4, requires_grad=True)
    out = pool(x)
    expected = torch.empty(3, 7, 4)
    for k in range(7):
        members = x[:, torch.from_numpy(np.flatnonzero(cluster == k))]
        expected[:, k] = members.amax(dim=1) if reduce == "max" else members.mean(dim=1)
    assert out.shape == (3, 7, 4) and torch.allclose(out, expected, atol=1e-6)
    node_major = pool(x.transpose(0, 1), node_dim=0)
    assert torch.allclose(node_major.transpose(0, 1), out)
    out.sum().backward()
    if reduce == "mean":
        sizes = torch.from_numpy(np.bincount(cluster)).float()
        assert torch.allclose(x.grad, (1.0 / sizes[torch.from_numpy(cluster)])[None, :, None].expand_as(x))
    else:  # gradient goes to each cluster's maximum (no ties with random floats)
        assert torch.equal(x.grad.sum(dim=1), torch.ones(3, 4) * 7)
        assert set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_cluster_pool_refuses_empty_clusters_and_bad_reduce():
    with pytest.raises(ValueError, match="must have a member"):
        ClusterPool(np.array([0, 0, 2]), 3)
    with pytest.raises(ValueError, match="reduce must be"):
        ClusterPool(np.array([0, 1]), 2, "sum")
    with pytest.raises(ValueError, match="6 nodes on axis 1"):
        ClusterPool(np.array([0, 1, 1, 2, 2, 0]), 3)(torch.randn(2, 5, 1))


def test_cache_computes_once_in_memory_and_on_disk(tmp_path, monkeypatch):
    calls = []
    real = coarsen_module.coarsen
    monkeypatch.setattr(coarsen_module, "coarsen", lambda *a, **k: calls.append(a) or real(*a, **k))
    clear_cache()
    edge_index, _ = random_graph(200, 800, seed=4)
    first = coarsen_cached(edge_index, 200, 2, seed=0, cache_dir=tmp_path)
    second = coarsen_cached(edge_index, 200, 2, seed=0, cache_dir=tmp_path)
    assert len(calls) == 1 and cache_stats() == {"computed": 1, "memory_hits": 1, "disk_hits": 0}
    assert all(np.array_equal(a.cluster, b.cluster) for a, b in zip(first, second))
    assert not first[0].cluster.flags.writeable
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind

    clear_cache()  # a new process: the disk copy is read, nothing recomputed
    third = coarsen_cached(edge_index, 200, 2, seed=0, cache_dir=tmp_path)
    assert len(calls) == 1 and cache_stats()["disk_hits"] == 1
    assert all(np.array_equal(a.edge_index, b.edge_index) and a.n_coarse == b.n_coarse
               for a, b in zip(first, third))

    coarsen_cached(edge_index, 200, 3, seed=0)  # another depth or seed is another entry
    coarsen_cached(edge_index, 200, 2, seed=1)
    assert len(calls) == 3

    files[0].write_bytes(b"not an npz")  # a damaged file is recomputed and replaced
    clear_cache()
    coarsen_cached(edge_index, 200, 2, seed=0, cache_dir=tmp_path)
    assert len(calls) == 4
    clear_cache()
    coarsen_cached(edge_index, 200, 2, seed=0, cache_dir=tmp_path)
    assert len(calls) == 4
    clear_cache()
