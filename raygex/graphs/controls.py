"""Control graphs: does the GCN gain anything from the biology in a graph, or just from graph structure?

* ``random``: the same degree sequence, edges rewired at random (double-edge swaps) — keeps hubs, loses biology.
* ``empty``: no edges, same node list — the GCN sees no neighbours at all.
* ``coexpression``: top-k absolute Pearson correlations per gene, from the data itself — a graph any dataset
  implies for free. It must be computed on TRAINING samples only, or test labels leak into the model.

Each control is a new :class:`Graph` named ``<name>:<kind>`` whose provenance says how it was made.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from raygex.errors import ConfigError, InputFormatError
from raygex.graphs.store import Graph

# The control vocabulary: every kind, those `raygex graph control` builds from a graph file alone, and how a
# study names them as graph choices: `<graph>:random` per configured graph, `empty` and `coexpression` once.
CONTROL_KINDS = ("random", "empty", "coexpression")
GRAPH_CONTROLS = ("random", "empty")
RANDOM_SUFFIX = ":random"
RESERVED_GRAPH_NAMES = ("random", "empty", "coexpression")


def control_choices(graphs: list[str], kinds) -> list[str]:
    """The graph-choice names of the controls ``kinds`` for the configured ``graphs``, in a fixed order."""
    names = [f"{graph}{RANDOM_SUFFIX}" for graph in graphs] if "random" in kinds else []
    return names + [kind for kind in ("empty", "coexpression") if kind in kinds]


def parse_control(choice: str) -> tuple[str, str | None] | None:
    """``(kind, parent graph)`` of a control's choice name (parent None for empty and co-expression), or None for
    a real graph's name."""
    if choice.endswith(RANDOM_SUFFIX):
        return "random", choice[:-len(RANDOM_SUFFIX)]
    if choice in ("empty", "coexpression"):
        return choice, None
    return None


def _derived_provenance(graph: Graph, kind: str, **extra) -> dict:
    parent = {k: graph.provenance[k] for k in ("source_file", "sha256") if k in graph.provenance}
    return {"control": kind, "parent_graph": graph.name, **({"parent": parent} if parent else {}), **extra}


def _contains(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Membership of ``queries`` in ``keys`` through a hash table (pandas), much faster than sorting."""
    return pd.Series(queries, copy=False).isin(keys).to_numpy()


def random_control(graph: Graph, seed: int, *, swaps_per_edge: float = 10.0) -> Graph:
    """Degree-preserving rewiring by seeded double-edge swaps: (a,b),(c,d) -> (a,d),(c,b).

    About ``swaps_per_edge`` x edges swaps are accepted; a swap that would create a self-loop or a multi-edge
    is rejected. Swaps run in vectorised rounds over disjoint random edge pairs, so GeneMANIA (264k edges,
    2.6M swaps) takes about a second. Weights travel with the edge they belong to. Same seed, same graph.
    """
    names = graph.nodes
    n_edges, n_nodes = graph.n_edges, len(names)
    u = np.searchsorted(names, graph.source).astype(np.int64)
    v = np.searchsorted(names, graph.target).astype(np.int64)
    u, v = np.minimum(u, v), np.maximum(u, v)
    weight = None if graph.weight is None else graph.weight.copy()
    keys = u * n_nodes + v
    rng = np.random.default_rng(seed)
    wanted = int(round(swaps_per_edge * n_edges)) if n_edges >= 2 else 0
    max_attempts = 20 * wanted
    accepted = attempted = 0
    while accepted < wanted and attempted < max_attempts:
        m = min(n_edges // 2, max(1, wanted - accepted))
        perm = rng.permutation(n_edges)
        e1, e2 = perm[:m], perm[m:2 * m]
        flip = rng.random(m) < 0.5
        a, b = u[e1], v[e1]
        c, d = np.where(flip, v[e2], u[e2]), np.where(flip, u[e2], v[e2])
        attempted += m
        n1_lo, n1_hi = np.minimum(a, d), np.maximum(a, d)
        n2_lo, n2_hi = np.minimum(c, b), np.maximum(c, b)
        k1, k2 = n1_lo * n_nodes + n1_hi, n2_lo * n_nodes + n2_hi
        ok = (a != d) & (c != b)
        exists = _contains(keys, np.concatenate([k1, k2]))
        ok &= ~exists[:m] & ~exists[m:]
        # Two swaps in one round must not create the same new edge: drop every swap proposing a repeated one.
        repeated = pd.Series(np.concatenate([np.where(ok, k1, -1 - np.arange(m)),
                                             np.where(ok, k2, -1 - np.arange(m, 2 * m))])).duplicated(keep=False)
        repeated = repeated.to_numpy()
        ok &= ~repeated[:m] & ~repeated[m:]
        s1, s2 = e1[ok], e2[ok]
        u[s1], v[s1], keys[s1] = n1_lo[ok], n1_hi[ok], k1[ok]
        u[s2], v[s2], keys[s2] = n2_lo[ok], n2_hi[ok], k2[ok]
        accepted += int(ok.sum())
    order = np.argsort(keys, kind="stable")
    provenance = _derived_provenance(graph, "random", seed=seed, swaps_per_edge=swaps_per_edge,
                                     swaps_accepted=accepted, swaps_attempted=attempted)
    return Graph(f"{graph.name}:random", names[u[order]], names[v[order]],
                 None if weight is None else weight[order], provenance, graph.isolated)


def empty_control(graph: Graph) -> Graph:
    """No edges, same node list (kept as isolated nodes), so alignment coverage still means something."""
    weight = None if graph.weight is None else np.empty(0, dtype=np.float32)
    return Graph(f"{graph.name}:empty", np.empty(0, dtype=str), np.empty(0, dtype=str), weight,
                 _derived_provenance(graph, "empty", parent_edges=graph.n_edges), graph.nodes)


def coexpression_control(expression_train, genes, k: int = 10, name: str = "coexpression", *,
                         block_rows: int = 1024) -> Graph:
    """Graph linking each gene to its ``k`` most correlated genes (absolute Pearson r, the edge weight).

    ``expression_train`` is [samples, genes] and must hold TRAINING rows only: correlations over validation or
    test samples would leak them into the model. Correlations are computed ``block_rows`` genes at a time
    ([block, genes] float32, 64 MiB at 16k genes), never as the full genes x genes matrix. Genes that are
    constant over the training rows get no edges (their correlation is undefined).
    """
    genes = [str(g) for g in genes]
    x = np.asarray(expression_train)
    if x.ndim != 2 or x.shape[1] != len(genes):
        raise InputFormatError(f"expression must be [samples, {len(genes)} genes], but got shape {x.shape}")
    if x.shape[0] < 3:
        raise InputFormatError(f"coexpression needs at least 3 training samples, but got {x.shape[0]}")
    if len(set(genes)) != len(genes):
        raise InputFormatError("coexpression gene list has repeated names")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < len(genes):
        raise ConfigError(f"coexpression k must be an integer in 1..{len(genes) - 1}, but got {k!r}")
    if not np.isfinite(x).all():
        raise InputFormatError("expression has NaN or infinite values; coexpression needs finite values")
    z = (x - x.mean(axis=0, dtype=np.float64)).astype(np.float32)
    norm = np.sqrt(np.einsum("ij,ij->j", z, z, dtype=np.float64))
    constant = norm <= 1e-12 * max(1.0, float(norm.max(initial=0.0)))
    z /= np.where(constant, 1.0, norm).astype(np.float32)
    z[:, constant] = 0.0
    n_genes = len(genes)
    sources, targets, weights = [], [], []
    for start in range(0, n_genes, block_rows):
        stop = min(start + block_rows, n_genes)
        corr = np.abs(z[:, start:stop].T @ z)
        corr[np.arange(stop - start), np.arange(start, stop)] = -1.0
        corr[:, constant] = -1.0
        top = np.argpartition(-corr, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(corr, top, axis=1)
        rows = np.repeat(np.arange(start, stop), k).reshape(-1, k)
        keep = (values > 0) & ~constant[start:stop, None]
        sources.append(rows[keep]), targets.append(top[keep]), weights.append(values[keep])
    gene_arr = np.asarray(genes, dtype=object)
    src, dst = np.concatenate(sources), np.concatenate(targets)
    provenance = {"control": "coexpression", "k": int(k), "n_train_samples": int(x.shape[0]),
                  "n_genes": n_genes, "constant_genes": int(constant.sum()),
                  "note": "absolute Pearson r over the training rows passed in only"}
    return Graph.from_edges(name, gene_arr[src], gene_arr[dst], np.concatenate(weights), provenance, nodes=genes)


def build_control(kind: str, graph: Graph | None = None, *, seed: int = 0, expression_train=None, genes=None,
                  k: int = 10, swaps_per_edge: float = 10.0) -> Graph:
    """Build the control graph ``kind`` ('random', 'empty' or 'coexpression') for ``graph``.

    'coexpression' ignores the graph's edges and needs ``expression_train`` (training rows only) and ``genes``.
    """
    if kind not in CONTROL_KINDS:
        raise ConfigError(f"control kind must be one of {list(CONTROL_KINDS)}, but got {kind!r}")
    if kind == "coexpression":
        if expression_train is None or genes is None:
            raise ConfigError("the coexpression control needs the training expression rows and their genes")
        name = f"{graph.name}:coexpression" if graph is not None else f"coexpression:k{k}"
        return coexpression_control(expression_train, genes, k, name)
    if graph is None:
        raise ConfigError(f"the {kind} control needs a graph to start from")
    if kind == "random":
        return random_control(graph, seed, swaps_per_edge=swaps_per_edge)
    return empty_control(graph)


def aligned_control(choice: str, aligned: dict, genes, *, seed: int, x_train=None, k: int = 10,
                    swaps_per_edge: float = 10.0):
    """The control graph-choice ``choice`` over a study's input ``genes``, as an aligned graph named ``choice``.

    * ``<graph>:random``: the configured graph *induced on the input genes* (``aligned[graph]``), rewired by
      degree-preserving double-edge swaps, so its degrees are those the model would see from the real graph (for a
      single-gene task's BFS inputs too) and its edge count is the same. The rewiring seed mixes the split seed
      with the graph's name: each split seed gets a new randomisation, so its randomness is inside the interval.
    * ``empty``: no edges over the same genes.
    * ``coexpression``: each gene's top-``k`` absolute Pearson correlations over ``x_train`` (the split seed's
      training rows only).
    """
    from raygex.graphs.align import align_graph

    genes = [str(g) for g in genes]
    parsed = parse_control(choice)
    if parsed is None:
        raise ConfigError(f"graph choice {choice!r} is not a control")
    kind, parent = parsed
    if kind == "random":
        base = aligned[parent]
        names = np.asarray(base.genes, dtype=object)
        upper = base.edge_index[0] < base.edge_index[1]
        weight = None if base.edge_weight is None else base.edge_weight[upper]
        induced = Graph.from_edges(parent, names[base.edge_index[0][upper]], names[base.edge_index[1][upper]], weight,
                                   {"induced_on": f"{len(genes)} input genes"}, nodes=genes)
        rewire_seed = int(np.random.SeedSequence([int(seed), zlib.crc32(parent.encode())]).generate_state(1)[0])
        control = random_control(induced, rewire_seed, swaps_per_edge=swaps_per_edge)
    elif kind == "empty":
        control = Graph.from_edges("empty", np.empty(0, dtype=str), np.empty(0, dtype=str), None,
                                   {"control": "empty"}, nodes=genes)
    else:
        if x_train is None:
            raise ConfigError("the coexpression control needs the split's training rows")
        control = coexpression_control(np.asarray(x_train, dtype=np.float32), genes, min(k, len(genes) - 1),
                                       "coexpression")
    result = align_graph(control, genes)
    result.graph_name = choice
    return result
