r"""The PyTorch Geometric variants of `raygex bench gcn`, and the check that each computes our GCN's function.

Every variant is the network of :class:`raygex.models.gcn.GCN` (gene embedding, ``depth`` layers of
[neighbour branch ‖ self branch], ReLU, node dropout, flatten, linear classifier) with PyG's ``GCNConv`` as the
neighbour branch and ``nn.Linear`` as the self branch. All take the first layer in factored form, as ours does:
:math:`H^{(0)}_{v,b} = x_{v,b}\,e_v`, so :math:`H^{(0)} W = x \odot (e W)` and the ``[B, N, embedding]`` tensor is
never built; the ``GCNConv`` of layer 0 propagates :math:`x \odot (e W_n)` (its ``propagate``, then its bias),
the later layers call ``GCNConv.forward``. The graph is normalised once, before the first step, by PyG's own
``gcn_norm`` (what ``GCNConv(cached=True)`` does on its first call); the layers then run with
``normalize=False`` on the normalised graph, so no step pays for normalisation.

- ``pyg_spmm``: PyG's recommended path for a static graph (docs, "Memory-efficient aggregations"): the
  adjacency as a transposed sparse matrix ``adj_t`` (a torch sparse CSR tensor: ``torch_sparse`` is not needed),
  features node-major ``[N, B, C]``, and ``GCNConv``'s fused ``message_and_aggregate``, i.e.
  ``torch_geometric.utils.spmm(adj_t, ·)``, on the ``[N, B·C]`` view: one sparse product per layer with the
  batch in the columns, as ours. Its backward is torch's own (which transposes the CSR matrix at every call).
- ``pyg_static``: gather-scatter message passing on ``edge_index`` with features ``[B, N, C]``
  (``node_dim=-2``, the static-graph batching of PyG's docs): the ``[B, E, C]`` messages are materialised.
- ``pyg_batch``: gather-scatter on the disjoint union of ``B`` copies of the graph (a PyG ``Batch``), features
  ``[B·N, C]``; the union is built once, outside the timed step.

:func:`check_same_function` runs ours and a variant with ours' weights copied into it (biases randomised first,
so that they matter), dropout off, and compares the logits and every parameter gradient of one cross-entropy
step: the largest absolute difference of each must stay under ``TOLERANCE`` times the largest absolute value
of ours' tensor (float32 sums in another order differ by a few units in the last place, a wrong weight, layout
or normalisation by order 1).
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PYG_VARIANTS = ("pyg_spmm", "pyg_static", "pyg_batch")
TOLERANCE = 1e-3


class VariantMismatch(AssertionError):
    """A variant does not compute ours' function on ours' weights."""


@functools.lru_cache(maxsize=None)
def _node_major_conv():
    """``GCNConv`` whose fused sparse aggregation takes node-major ``[N, B, C]`` features as ``[N, B·C]``."""
    from torch_geometric.nn import GCNConv
    from torch_geometric.utils import spmm

    class NodeMajorGCNConv(GCNConv):
        def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
            out = spmm(adj_t, x.reshape(x.size(0), -1), reduce=self.aggr)
            return out.view(adj_t.size(0), *x.shape[1:])

    return NodeMajorGCNConv


def normalised_graph(variant: str, edge_index: Tensor, n_nodes: int, batch: int):
    """The graph argument of ``variant``'s convolutions, normalised once by PyG's ``gcn_norm`` (self-loops added):
    ``(adj_t, None)`` for ``pyg_spmm``, ``(edge_index, edge_weight)`` for the gather-scatter variants."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    edge_index = torch.as_tensor(edge_index, dtype=torch.long)
    if variant == "pyg_spmm":
        ones = torch.ones(edge_index.size(1))
        adj_t = torch.sparse_coo_tensor(edge_index.flip(0), ones, (n_nodes, n_nodes), check_invariants=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            adj_t = adj_t.coalesce().to_sparse_csr()
        return gcn_norm(adj_t, None, n_nodes, add_self_loops=True)[0], None
    if variant == "pyg_batch":
        offsets = torch.arange(batch, dtype=torch.long).repeat_interleave(edge_index.size(1)) * n_nodes
        edge_index = edge_index.repeat(1, batch) + offsets  # the edge_index of PyG's Batch of `batch` copies
        n_nodes *= batch
    return gcn_norm(edge_index, None, n_nodes, add_self_loops=True)


class PygGCN(nn.Module):
    """Our GCN's function on PyG's ``GCNConv`` in one of the layouts of :data:`PYG_VARIANTS` (see the module)."""

    def __init__(self, variant: str, n_genes: int, edge_index, n_classes: int, embedding: int, depth: int,
                 channels: int, batch: int, dropout: float):
        super().__init__()
        from torch_geometric.nn import GCNConv

        from raygex.models.gcn import dropout_rates

        if variant not in PYG_VARIANTS:
            raise ValueError(f"variant must be one of {list(PYG_VARIANTS)}, but got {variant!r}")
        self.variant, self.n_genes, self.batch = variant, n_genes, batch
        self.graph, self.edge_weight = normalised_graph(variant, edge_index, n_genes, batch)
        if embedding > 1:
            self.embedding = nn.Parameter(torch.randn(n_genes, embedding))
        else:  # as ours: the raw value is the single input channel
            self.register_buffer("embedding", torch.ones(n_genes, 1), persistent=False)
        widths = [embedding] + [channels] * depth
        conv = _node_major_conv() if variant == "pyg_spmm" else GCNConv
        node_dim = 0 if variant in ("pyg_spmm", "pyg_batch") else -2
        self.neighbour = nn.ModuleList([conv(widths[i], channels // 2, normalize=False, node_dim=node_dim)
                                        for i in range(depth)])
        self.own = nn.ModuleList([nn.Linear(widths[i], channels - channels // 2) for i in range(depth)])
        self.rates = dropout_rates(dropout, depth)
        self.classifier = nn.Linear(n_genes * channels, n_classes)

    def _first_layer(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Layer 0 in factored form: (neighbour, self) branches from x ``[B, N]`` and the embedding."""
        conv, own = self.neighbour[0], self.own[0]
        e_n, e_s = conv.lin(self.embedding), F.linear(self.embedding, own.weight)  # (N, C_n), (N, C_s)
        if self.variant == "pyg_spmm":
            values, e_n, e_s = x.t().contiguous().unsqueeze(-1), e_n.unsqueeze(1), e_s.unsqueeze(1)  # [N, B, 1]
        else:
            values = x.unsqueeze(-1)  # [B, N, 1]
        z, self_branch = values * e_n, torch.addcmul(own.bias, values, e_s)
        if self.variant == "pyg_batch":
            z, self_branch = z.reshape(-1, z.size(-1)), self_branch.reshape(-1, self_branch.size(-1))
        neighbour = conv.propagate(self.graph, x=z, edge_weight=self.edge_weight) + conv.bias
        return neighbour, self_branch

    def forward(self, x: Tensor) -> Tensor:
        from raygex.models.gcn import node_dropout

        if x.dim() != 2 or x.size(1) != self.n_genes or (self.variant == "pyg_batch" and x.size(0) != self.batch):
            raise ValueError(f"input must have shape ({self.batch}, {self.n_genes}), but got {list(x.shape)}")
        h = x
        for layer, (conv, own, rate) in enumerate(zip(self.neighbour, self.own, self.rates)):
            if layer == 0:
                neighbour, self_branch = self._first_layer(x)
            else:
                neighbour, self_branch = conv(h, self.graph, self.edge_weight), own(h)
            h = node_dropout(torch.relu(torch.cat([neighbour, self_branch], dim=-1)), rate, self.training)
        if self.variant == "pyg_spmm":
            h = h.transpose(0, 1)
        return self.classifier(h.reshape(x.size(0), -1))


def build_variant(variant: str, n_genes: int, edge_index, n_classes: int, embedding: int, depth: int,
                  channels: int, batch: int, dropout: float) -> nn.Module:
    """``ours`` (:class:`raygex.models.gcn.GCN`) or one of :data:`PYG_VARIANTS`, freshly initialised."""
    if variant == "ours":
        from raygex.models.gcn import GCN

        return GCN(n_genes, n_classes, edge_index=torch.as_tensor(edge_index), depth=depth, channels=channels,
                   embedding=embedding, dropout=dropout)
    return PygGCN(variant, n_genes, edge_index, n_classes, embedding, depth, channels, batch, dropout)


def parameter_pairs(ours: nn.Module, other: PygGCN) -> list[tuple[str, Tensor, Tensor, bool]]:
    """(name, ours' parameter, the variant's, whether the variant stores it transposed) for every parameter."""
    pairs = []
    if ours.gene_embedding is not None:
        pairs.append(("embedding", ours.gene_embedding, other.embedding, False))
    for i, (conv, neighbour, own) in enumerate(zip(ours.convs, other.neighbour, other.own)):
        pairs += [(f"layer{i}.weight_neighbour", conv.weight_neighbour, neighbour.lin.weight, True),
                  (f"layer{i}.bias_neighbour", conv.bias_neighbour, neighbour.bias, False),
                  (f"layer{i}.weight_self", conv.weight_self, own.weight, True),
                  (f"layer{i}.bias_self", conv.bias_self, own.bias, False)]
    pairs += [("classifier.weight", ours.classifier.weight, other.classifier.weight, False),
              ("classifier.bias", ours.classifier.bias, other.classifier.bias, False)]
    return pairs


def copy_weights(ours: nn.Module, other: PygGCN) -> None:
    """Give ``other`` ours' weights (transposed where PyG stores ``(out, in)``)."""
    with torch.no_grad():
        for name, mine, theirs, transposed in parameter_pairs(ours, other):
            source = mine.t() if transposed else mine
            if theirs.shape != source.shape:
                raise ValueError(f"{name}: ours has shape {list(source.shape)}, the variant {list(theirs.shape)}")
            theirs.copy_(source)


def _step(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    model.eval()  # dropout off: its masks are drawn in different layouts
    model.zero_grad(set_to_none=True)
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    return logits.detach()


def _difference(mine: Tensor, theirs: Tensor) -> tuple[float, float]:
    """(max |ours - theirs|, max |ours|)."""
    return float((mine - theirs).abs().max()), float(mine.abs().max())


def compare_to_ours(ours: nn.Module, other: PygGCN, x: Tensor, y: Tensor) -> dict:
    """Logits and parameter gradients of one step of each, on the models' current weights: for each tensor,
    ``{"max_abs_diff", "max_abs", "ok"}`` with ok = diff <= TOLERANCE * max(max_abs, 1e-12)."""
    mine = _step(ours, x, y)
    theirs = _step(other, x, y)
    found = {"logits": _difference(mine, theirs)}
    for name, a, b, transposed in parameter_pairs(ours, other):
        if a.grad is None or b.grad is None:
            raise VariantMismatch(f"{name}: no gradient in {'ours' if a.grad is None else other.variant}")
        found[f"grad.{name}"] = _difference(a.grad, b.grad.t() if transposed else b.grad)
    return {name: {"max_abs_diff": diff, "max_abs": scale, "ok": diff <= TOLERANCE * max(scale, 1e-12)}
            for name, (diff, scale) in found.items()}


def check_same_function(ours: nn.Module, other: PygGCN, x: Tensor, y: Tensor) -> dict:
    """:func:`compare_to_ours`, raising :class:`VariantMismatch` on the first tensor out of tolerance; returns
    the summary ``{"logits_max_abs_diff", "grad_max_abs_diff", "grad_max_rel_diff", "tensors_compared"}``."""
    report = compare_to_ours(ours, other, x, y)
    bad = [f"{name} (max |diff| {r['max_abs_diff']:.3g}, max |ours| {r['max_abs']:.3g})"
           for name, r in report.items() if not r["ok"]]
    if bad:
        raise VariantMismatch(f"{other.variant} does not compute ours' function on ours' weights (tolerance "
                              f"{TOLERANCE} x max |ours|): {', '.join(bad)}")
    grads = [r for name, r in report.items() if name.startswith("grad.")]
    return {"logits_max_abs_diff": report["logits"]["max_abs_diff"],
            "grad_max_abs_diff": max(r["max_abs_diff"] for r in grads),
            "grad_max_rel_diff": max(r["max_abs_diff"] / max(r["max_abs"], 1e-12) for r in grads),
            "tensors_compared": len(report)}


def check_variants(variants, n_genes: int, edge_index, n_classes: int, embedding: int, depth: int, channels: int,
                   batch: int, dropout: float, seed: int) -> dict:
    """Build ours and every PyG variant in ``variants`` on the same weights and check each computes ours' function
    (:func:`check_same_function`); returns ``{variant: summary}``. Raises :class:`VariantMismatch`."""
    torch.manual_seed(seed)
    ours = build_variant("ours", n_genes, edge_index, n_classes, embedding, depth, channels, batch, dropout)
    with torch.no_grad():  # non-zero biases, so that a variant that drops or misplaces one is caught
        for name, param in ours.named_parameters():
            if "bias" in name:
                param.uniform_(-0.1, 0.1)
    x = torch.randn(batch, n_genes)
    y = torch.arange(batch) % n_classes
    found = {}
    for variant in variants:
        if variant == "ours":
            continue
        other = build_variant(variant, n_genes, edge_index, n_classes, embedding, depth, channels, batch, dropout)
        copy_weights(ours, other)
        found[variant] = check_same_function(ours, other, x, y)
        del other
    return found
