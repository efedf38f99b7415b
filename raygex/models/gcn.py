r"""The seed paper's graph convolutional network over gene expression (Dutil et al. 2018, arXiv 1806.06975)."""

from __future__ import annotations

from typing import List

import numpy as np
import torch
from torch import Tensor, nn

from raygex.models.registry import register_model
from raygex.models.coarsen import ClusterPool, CoarseLevel, coarsen_cached
from raygex.models.graph_conv import SharedGraphConv, _as_csr, is_symmetric, normalized_adjacency

POOLS = ("max", "mean")
READOUTS = ("flatten", "mean")
MAX_GROWN_DROPOUT = 0.4


def dropout_rates(dropout: float, depth: int, growth: bool = True) -> List[float]:
    r"""Node-dropout rate after each layer: :math:`p_l = \min(p\,(l+1),\ \max(p, 0.4))` with growth, else
    :math:`p`.

    Growth follows the seed paper (0.1, 0.2, 0.3, then 0.4 for every deeper layer); the cap never lowers a rate
    below the base rate :math:`p`, so ``dropout=0.5`` means 0.5 everywhere.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), but got {dropout}")
    if not growth:
        return [float(dropout)] * depth
    cap = max(float(dropout), MAX_GROWN_DROPOUT)
    return [round(min(float(dropout) * (layer + 1), cap), 12) for layer in range(depth)]


def node_dropout(h: Tensor, p: float, training: bool) -> Tensor:
    r"""Drop whole nodes: zero all channels of a (node, sample) with probability :math:`p`, scale the rest by
    :math:`1/(1-p)`; identity when not ``training`` or :math:`p = 0`.

    The mask has the shape of ``h`` with the last (channel) axis set to 1, so it works for node-major
    ``(N, B, C)`` and batch-major ``(B, N, C)`` features alike; it is drawn on ``h``'s device.
    """
    if not training or p == 0.0:
        return h
    # empty_like of a channel slice: the mask is made like ``h`` (under torch.func.vmap, batched like it, so every
    # fold of a batched cross-validation draws its own mask)
    keep = torch.empty_like(h[..., :1]).bernoulli_(1.0 - p).div_(1.0 - p)
    return h * keep


class _NoPool(nn.Module):
    """Stands in for :class:`ClusterPool` before the first layer or without coarsening."""

    def forward(self, x: Tensor, node_dim: int = 1) -> Tensor:
        return x


def _edges_from_csr(adjacency: Tensor) -> np.ndarray:
    """Off-diagonal stored entries of a CSR matrix as an edge_index (for coarsening a given adjacency)."""
    crow, col = adjacency.crow_indices().cpu().numpy(), adjacency.col_indices().cpu().numpy()
    row = np.repeat(np.arange(len(crow) - 1), np.diff(crow))
    keep = row != col
    return np.stack([row[keep], col[keep]]).astype(np.int64)


# The GCN family's search hyperparameters and their defaults (the registry's entry; the class defaults match).
GCN_DEFAULTS = {"graph": None, "depth": 2, "channels": 32, "embedding": 8, "dropout": 0.1, "dropout_growth": True,
                "coarsen": False, "pool": "max", "readout": "flatten", "coarsen_seed": 0, "edge_weights": False}


@register_model("gcn", hyperparameters=GCN_DEFAULTS)
class GCN(nn.Module):
    r"""Gene embedding, ``depth`` shared-graph convolutions with node dropout, optional coarsening, a linear
    classifier:

    .. math::
        H^{(0)}_{v} = x_v\, e_v, \qquad
        H^{(l+1)} = \mathrm{NodeDrop}_{p_l}\Big(\mathrm{ReLU}\big(\mathrm{Conv}_{\hat{A}_l}(P_l H^{(l)})\big)\Big),
        \qquad \mathrm{logits} = W\, \mathrm{readout}(H^{(depth)}) + b

    :math:`e_v \in \mathbb{R}^{embedding}` is a learned vector per gene (``embedding=1``: the raw value is the
    single input channel, nothing learned). :math:`\mathrm{Conv}` is :class:`SharedGraphConv`; NodeDrop
    zeroes whole genes per sample (:func:`node_dropout`) at the rates of :func:`dropout_rates`, in training
    only. Without coarsening :math:`P_l` is the identity and every :math:`\hat{A}_l` is the input graph's. With
    coarsening, layer :math:`l \ge 1` runs on the coarse graph of level :math:`l` and :math:`P_l` is
    :class:`ClusterPool` (``pool``: max or mean) from level :math:`l-1` to :math:`l`. The readout flattens the
    last layer's node features (``'flatten'``, the seed's choice) or averages them over nodes (``'mean'``).

    Inside, features are node-major ``(N, B, C)``, the layout :meth:`SharedGraphConv.forward_node_major`
    multiplies without transposes, and the first layer takes the embedding in factored form
    (:meth:`SharedGraphConv.forward_outer`), so the ``(G, B, embedding)`` tensor is never built.

    Args:
        n_genes: input genes :math:`G`, which are the graph's nodes, in the same order.
        n_classes: output classes.
        adjacency: :math:`\hat{A}` as a sparse ``(G, G)`` tensor (:func:`normalized_adjacency`), or None to pass
            ``edge_index`` (and optional ``edge_weight``) instead.
        depth: graph-convolution layers (default 3).
        channels: output channels of every layer (default 64; split half neighbour, half self).
        embedding: gene embedding size (default 32; 1 disables it).
        dropout, dropout_growth: base node-dropout rate and whether it grows with depth (default 0.1, True).
        coarsen: run layer :math:`l \ge 1` on coarsening level :math:`l` (default False).
        pool: ``'max'`` or ``'mean'`` pooling into coarse nodes.
        readout: ``'flatten'`` or ``'mean'``.
        levels: precomputed :class:`CoarseLevel` list (at least ``depth - 1``), else computed with
            :func:`coarsen_cached` from ``coarsen_seed`` and ``coarsen_cache_dir``.

    Shapes:
        - input: expression ``(B, G)`` float32
        - output: logits ``(B, n_classes)``
    """

    def __init__(self, n_genes: int, n_classes: int, adjacency: Tensor | None = None, *, edge_index=None,
                 edge_weight=None, depth: int = GCN_DEFAULTS["depth"], channels: int = GCN_DEFAULTS["channels"],
                 embedding: int = GCN_DEFAULTS["embedding"], dropout: float = GCN_DEFAULTS["dropout"],
                 dropout_growth: bool = True, coarsen: bool = False, pool: str = "max",
                 readout: str = "flatten", levels: list[CoarseLevel] | None = None, coarsen_seed: int = 0,
                 coarsen_cache_dir=None):
        super().__init__()
        if n_genes < 1:
            raise ValueError(f"n_genes must be positive, but got {n_genes}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, but got {n_classes}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, but got {depth}")
        if embedding < 1:
            raise ValueError(f"embedding must be positive, but got {embedding}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {list(POOLS)}, but got {pool!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {list(READOUTS)}, but got {readout!r}")
        if (adjacency is None) == (edge_index is None):
            raise ValueError("pass exactly one of adjacency (a sparse tensor) or edge_index, but got "
                             f"{'both' if adjacency is not None else 'neither'}")
        if adjacency is None:
            adjacency = normalized_adjacency(edge_index, n_genes, edge_weight)
        adjacency = _as_csr(adjacency)
        if adjacency.size(0) != n_genes:
            raise ValueError(f"the graph must have one node per gene ({n_genes}), but got {adjacency.size(0)} nodes")

        self.n_genes, self.n_classes, self.depth, self.channels = n_genes, n_classes, depth, channels
        self.embedding, self.dropout, self.dropout_growth = embedding, float(dropout), bool(dropout_growth)
        self.coarsen, self.pool, self.readout = bool(coarsen), pool, readout
        self.rates: List[float] = dropout_rates(self.dropout, depth, self.dropout_growth)

        graphs, pools = [adjacency], [_NoPool()]
        if self.coarsen and depth > 1:
            if levels is None:
                edges = _edges_from_csr(adjacency) if edge_index is None else np.asarray(torch.as_tensor(edge_index))
                weights = None if edge_index is None else edge_weight
                levels = coarsen_cached(edges, n_genes, depth - 1, coarsen_seed, coarsen_cache_dir, weights)
            if len(levels) < depth - 1:
                raise ValueError(f"levels must hold at least depth - 1 = {depth - 1} coarsening levels, but got "
                                 f"{len(levels)}")
            n = n_genes
            for level in levels[:depth - 1]:
                if level.n_fine != n:
                    raise ValueError(f"coarsening level for {n} nodes expected, but got one for {level.n_fine}")
                graphs.append(normalized_adjacency(level.edge_index, level.n_coarse))
                pools.append(ClusterPool(level.cluster, level.n_coarse, pool))
                n = level.n_coarse
        else:
            graphs *= depth
            pools += [_NoPool() for _ in range(depth - 1)]
        self.n_readout_nodes = int(graphs[-1].size(0))

        if embedding > 1:
            self.gene_embedding = nn.Parameter(torch.empty(n_genes, embedding))
        else:
            self.register_parameter("gene_embedding", None)
        widths = [embedding] + [channels] * depth
        symmetric = {id(g): is_symmetric(g) for g in graphs}  # once per distinct graph, not per layer
        self.convs = nn.ModuleList([SharedGraphConv(widths[i], widths[i + 1], graphs[i], symmetric=symmetric[id(g)])
                                    for i, g in enumerate(graphs)])
        self.pools = nn.ModuleList(pools)
        features = channels if readout == "mean" else channels * self.n_readout_nodes
        self.classifier = nn.Linear(features, n_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.gene_embedding is not None:
            nn.init.normal_(self.gene_embedding, 0.0, 1.0)
        for conv in self.convs:
            conv.reset_parameters()
        self.classifier.reset_parameters()

    @classmethod
    def from_hparams(cls, hparams: dict, n_genes: int, n_classes: int, graph) -> "GCN":
        """Same as :func:`build_gcn`."""
        return build_gcn(hparams, n_genes, n_classes, graph)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.n_genes:
            raise ValueError(f"input must have shape (batch, {self.n_genes}), but got {list(x.shape)}")
        values = x.t().contiguous()  # node-major (G, B); layer 0 sees x_vb * e_v without building it (forward_outer)
        h = values
        layer = 0
        for pool, conv in zip(self.pools, self.convs):
            if layer == 0:
                h = conv.forward_outer(values, self.gene_embedding)
            else:
                h = conv.forward_node_major(pool(h, 0))
            rate = self.rates[layer]
            if self.training and rate > 0.0:
                # Dropout before ReLU equals ReLU before dropout (the mask is >= 0); ReLU then runs in place on
                # the masked copy, so a layer allocates and keeps one activation for the backward pass, not two.
                h = torch.relu_(node_dropout(h, rate, True))
            else:
                h = torch.relu(h)
            layer += 1
        if self.readout == "mean":
            return self.classifier(h.mean(dim=0))
        return self.classifier(h.transpose(0, 1).reshape(h.size(1), -1))

    def extra_repr(self) -> str:
        return (f"n_genes={self.n_genes}, n_classes={self.n_classes}, depth={self.depth}, "
                f"channels={self.channels}, embedding={self.embedding}, dropout={self.rates}, "
                f"coarsen={self.coarsen}, pool={self.pool!r}, readout={self.readout!r}")


def build_gcn(hparams: dict, n_genes: int, n_classes: int, aligned_graph) -> GCN:
    """A :class:`GCN` from search hyperparameters and an aligned graph (:class:`raygex.graphs.align.AlignedGraph`).

    Keys and defaults: :data:`GCN_DEFAULTS` (``edge_weights`` False: the graph is binary, as in the seed paper;
    True uses the graph's weights when it has them), plus ``coarsen_cache_dir`` (None). Other keys (optimiser,
    seed, ...) are ignored.
    """
    if aligned_graph is None:
        raise ValueError("the 'gcn' model needs a gene graph aligned to the dataset, but got none; pass a graph "
                         "(e.g. --graph) or choose the 'mlp' or 'lr' model")
    if int(aligned_graph.n_nodes) != n_genes:
        raise ValueError(f"the graph must be aligned to the dataset's {n_genes} genes, but has "
                         f"{aligned_graph.n_nodes} nodes")
    p = {**GCN_DEFAULTS, **hparams}
    weights = aligned_graph.edge_weight if bool(p["edge_weights"]) else None
    return GCN(n_genes, n_classes, edge_index=aligned_graph.edge_index, edge_weight=weights,
               depth=int(p["depth"]), channels=int(p["channels"]), embedding=int(p["embedding"]),
               dropout=float(p["dropout"]), dropout_growth=bool(p["dropout_growth"]), coarsen=bool(p["coarsen"]),
               pool=str(p["pool"]), readout=str(p["readout"]), coarsen_seed=int(p["coarsen_seed"]),
               coarsen_cache_dir=p.get("coarsen_cache_dir"))
