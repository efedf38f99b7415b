r"""The seed paper's graph convolution on one gene graph shared by every sample.

Every sample of a gene-expression batch lives on the same graph, so the neighbour sum is one sparse-dense
product whose columns are all (sample, channel) pairs: no disjoint union of per-sample graphs, no dense
:math:`N \times N` adjacency, and the adjacency's index arrays are read once per product, not once per sample.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn


def normalized_adjacency(edge_index, n_nodes: int, edge_weight=None) -> Tensor:
    r"""The GCN propagation matrix :math:`\hat{A} = D^{-1/2}(A + I)D^{-1/2}` as a float32 CSR tensor.

    :math:`A_{ij}` is the weight of edge :math:`j \to i` (1 for an unweighted graph; repeated edges add up);
    :math:`D_{ii} = \sum_j (A + I)_{ij}`. The identity is added literally, so a self-loop already in
    ``edge_index`` ends up with weight :math:`w + 1`. ``edge_index`` should hold both directions of every
    undirected edge (as :class:`raygex.graphs.align.AlignedGraph` does); then :math:`\hat{A}` is symmetric.

    Args:
        edge_index: integer array or tensor ``(2, E)``.
        n_nodes: number of nodes :math:`N` (isolated nodes keep only their self-loop).
        edge_weight: optional non-negative weights ``(E,)``.

    Shapes:
        returns a ``(N, N)`` sparse CSR tensor with ``E' <= E + N`` stored values, on the CPU.
    """
    if n_nodes < 1:
        raise ValueError(f"n_nodes must be positive, but got {n_nodes}")
    index = (edge_index.detach() if isinstance(edge_index, Tensor) else torch.tensor(edge_index)).to("cpu", torch.long)
    if index.dim() != 2 or index.size(0) != 2:
        raise ValueError(f"edge_index must have shape (2, E), but got {tuple(index.shape)}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n_nodes):
        raise ValueError(f"edge_index must hold node ids in [0, {n_nodes}), but got ids in "
                         f"[{int(index.min())}, {int(index.max())}]")
    if edge_weight is None:
        weight = torch.ones(index.size(1), dtype=torch.float64)
    else:
        weight = edge_weight.detach() if isinstance(edge_weight, Tensor) else torch.tensor(edge_weight)
        weight = weight.to("cpu", torch.float64).reshape(-1)
        if weight.numel() != index.size(1):
            raise ValueError(f"edge_weight must have one value per edge ({index.size(1)}), but got {weight.numel()}")
        if weight.numel() and float(weight.min()) < 0:
            raise ValueError(f"edge_weight must be non-negative, but got a minimum of {float(weight.min())}")
    loops = torch.arange(n_nodes)
    rows, cols = torch.cat([index[0], loops]), torch.cat([index[1], loops])
    values = torch.cat([weight, torch.ones(n_nodes, dtype=torch.float64)])
    matrix = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n_nodes, n_nodes),
                                     check_invariants=False).coalesce()  # ids were checked above
    rows, cols = matrix.indices()
    degree = torch.zeros(n_nodes, dtype=torch.float64).index_add_(0, rows, matrix.values())
    scale = degree.pow(-0.5)
    values = (matrix.values() * (scale[rows] * scale[cols])).to(torch.float32)  # bitwise symmetric for symmetric A
    return torch.sparse_coo_tensor(matrix.indices(), values, (n_nodes, n_nodes), is_coalesced=True,
                                   check_invariants=False).to_sparse_csr()


def _as_csr(adjacency: Tensor) -> Tensor:
    """``adjacency`` as a float32 CSR tensor (CSR and COO accepted; dense is refused: it costs N² memory)."""
    if not isinstance(adjacency, Tensor) or adjacency.dim() != 2 or adjacency.size(0) != adjacency.size(1):
        shape = tuple(adjacency.shape) if isinstance(adjacency, Tensor) else type(adjacency).__name__
        raise ValueError(f"adjacency must be a square sparse tensor (see normalized_adjacency), but got {shape}")
    if adjacency.layout == torch.sparse_coo:
        adjacency = adjacency.coalesce().to_sparse_csr()
    elif adjacency.layout != torch.sparse_csr:
        raise ValueError(f"adjacency must be a sparse CSR or COO tensor (see normalized_adjacency), but got "
                         f"layout {adjacency.layout}")
    return adjacency.to(torch.float32)


def _same_csr(a: Tensor, b: Tensor) -> bool:
    return bool(torch.equal(a.crow_indices(), b.crow_indices()) and torch.equal(a.col_indices(), b.col_indices())
                and torch.equal(a.values(), b.values()))


def is_symmetric(adjacency: Tensor) -> bool:
    """Whether a sparse matrix equals its transpose exactly (indices and values)."""
    adjacency = _as_csr(adjacency)
    return _same_csr(adjacency.t().to_sparse_csr(), adjacency)


class _SparseMatmul(torch.autograd.Function):
    r""":math:`\hat{A} Z` whose backward multiplies by a CSR :math:`\hat{A}^T` given up front.

    torch's own backward for a CSR product transposes the matrix into CSC and converts it back to CSR at every
    call (a sort of all stored values: on GeneMANIA about as long as the product itself); the layer keeps
    :math:`\hat{A}^T` (which is :math:`\hat{A}` for an undirected graph) instead. No gradient for the matrix.

    Under ``torch.func.vmap`` (folds trained as one batched model: :mod:`raygex.training.fold_group`) the batch of
    ``Z`` matrices is laid side by side as the columns of one matrix, so the k folds' products are one sparse
    product (torch has no batching rule for a sparse product: it would run one product per fold).
    """

    @staticmethod
    def forward(adjacency: Tensor, adjacency_t: Tensor, z: Tensor) -> Tensor:
        return torch.sparse.mm(adjacency, z)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.adjacency_t = inputs[1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        return None, None, torch.sparse.mm(ctx.adjacency_t, grad.contiguous())

    @staticmethod
    def vmap(info, in_dims, adjacency: Tensor, adjacency_t: Tensor, z: Tensor):
        if in_dims[0] is not None or in_dims[1] is not None:
            raise ValueError("a graph convolution's adjacency is shared: it cannot be batched")
        z = z.movedim(in_dims[2], 1)  # (N, batch, K)
        n, batch, width = z.shape
        out = _SparseMatmul.apply(adjacency, adjacency_t, z.reshape(n, batch * width))
        return out.view(n, batch, width).transpose(0, 1).contiguous(), 0  # each member's (N, K) contiguous


class SharedGraphConv(nn.Module):
    r"""Graph convolution of Dutil et al. 2018 (https://arxiv.org/abs/1806.06975) on one shared graph:

    .. math::
        H' = \big[\; \hat{A} H W_n + b_n \;\big\|\; H W_s + b_s \;\big]

    a neighbour branch (normalised adjacency :math:`\hat{A}`, see :func:`normalized_adjacency`, then a 1×1
    linear map to :math:`\lfloor C_{out}/2 \rfloor` channels) concatenated with a self branch (a 1×1 linear
    map to :math:`\lceil C_{out}/2 \rceil` channels: an odd ``out_channels`` gives the extra channel to the
    self branch). No activation: the network applies ReLU. The bias of the neighbour branch is added after the
    product, so it is the same for every node.

    :math:`\hat{A}` multiplies all samples at once: the batch of :math:`B` samples is laid out as an
    :math:`N \times (B\,C)` matrix and multiplied by the CSR matrix in a single ``torch.sparse.mm``. The linear
    map runs before the product when it narrows the features (:math:`C_n \le C_{in}`), after it otherwise, so
    the product always runs on the narrower side; the two orders are equal because :math:`\hat{A}` and
    :math:`W_n` act on different axes. In eager mode the product's backward reuses a CSR :math:`\hat{A}^T`
    (:math:`\hat{A}` itself when the graph is undirected) instead of letting torch convert the transpose at
    every step; a TorchScript copy uses torch's own (slower, equal) backward.

    :math:`\hat{A}` is kept as three non-persistent buffers (``adj_crow``, ``adj_col``, ``adj_values``) from
    which a CSR view is made at each call (a few microseconds): the buffers move with ``.to(device)``, and the
    module can be deep-copied and pickled, which a CSR-tensor buffer cannot. They are not in the state dict:
    the graph is structure, given when the module is built.

    Args:
        in_channels: input features per node :math:`C_{in}`.
        out_channels: output features per node :math:`C_{out} \ge 2`.
        adjacency: :math:`\hat{A}` as a sparse ``(N, N)`` CSR (or COO) tensor, e.g. from
            :func:`normalized_adjacency`.
        bias: learn :math:`b_n` and :math:`b_s` (default ``True``).
        symmetric: whether :math:`\hat{A} = \hat{A}^T` exactly, if already known (see :func:`is_symmetric`);
            None checks it (a transpose, about 0.2 s on GeneMANIA).

    Shapes:
        - input: node features ``(B, N, C_in)``
        - output: node features ``(B, N, C_out)``
        - :meth:`forward_node_major`: ``(N, B, C_in)`` to ``(N, B, C_out)`` (the layout :class:`GCN` uses
          inside, which needs no transposes around the sparse product)
        - :meth:`forward_outer`: values ``(N, B)`` and node vectors ``(N, C_in)`` (or None when
          :math:`C_{in} = 1`) to ``(N, B, C_out)``
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor, bias: bool = True,
                 symmetric: Optional[bool] = None):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, but got {in_channels}")
        if out_channels < 2:
            raise ValueError(f"out_channels must be at least 2 (one per branch), but got {out_channels}")
        adjacency = _as_csr(adjacency)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.neighbour_channels = out_channels // 2
        self.self_channels = out_channels - out_channels // 2
        self.n_nodes = int(adjacency.size(0))
        self.project_first = self.neighbour_channels <= in_channels
        self.register_buffer("adj_crow", adjacency.crow_indices().clone(), persistent=False)
        self.register_buffer("adj_col", adjacency.col_indices().clone(), persistent=False)
        self.register_buffer("adj_values", adjacency.values().clone(), persistent=False)
        transposed = adjacency.t().to_sparse_csr() if symmetric is not True else adjacency
        self.symmetric = bool(symmetric) if symmetric is not None else _same_csr(transposed, adjacency)
        empty = torch.zeros(0, dtype=torch.long)
        self.register_buffer("adjt_crow", empty if self.symmetric else transposed.crow_indices(), persistent=False)
        self.register_buffer("adjt_col", empty if self.symmetric else transposed.col_indices(), persistent=False)
        self.register_buffer("adjt_values", empty.float() if self.symmetric else transposed.values(), persistent=False)
        self.weight_neighbour = nn.Parameter(torch.empty(in_channels, self.neighbour_channels))
        self.weight_self = nn.Parameter(torch.empty(in_channels, self.self_channels))
        self.register_parameter("bias_neighbour", nn.Parameter(torch.empty(self.neighbour_channels)) if bias else None)
        self.register_parameter("bias_self", nn.Parameter(torch.empty(self.self_channels)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights over the full width (as one 1×1 map to C_out), zero biases."""
        bound = (6.0 / (self.in_channels + self.out_channels)) ** 0.5
        nn.init.uniform_(self.weight_neighbour, -bound, bound)
        nn.init.uniform_(self.weight_self, -bound, bound)
        if self.bias_neighbour is not None:
            nn.init.zeros_(self.bias_neighbour)
        if self.bias_self is not None:
            nn.init.zeros_(self.bias_self)

    def adjacency(self) -> Tensor:
        """:math:`\\hat{A}` as a sparse CSR tensor on the module's device (a view of the buffers)."""
        return torch.sparse_csr_tensor(self.adj_crow, self.adj_col, self.adj_values, [self.n_nodes, self.n_nodes])

    def adjacency_transposed(self) -> Tensor:
        """:math:`\\hat{A}^T` as a sparse CSR tensor (:math:`\\hat{A}` itself for an undirected graph)."""
        if self.symmetric:
            return self.adjacency()
        return torch.sparse_csr_tensor(self.adjt_crow, self.adjt_col, self.adjt_values, [self.n_nodes, self.n_nodes])

    @property
    def nnz(self) -> int:
        """Stored values of :math:`\\hat{A}` (edges in both directions plus self-loops)."""
        return int(self.adj_values.numel())

    def propagate(self, z: Tensor) -> Tensor:
        """:math:`\\hat{A} Z` for ``z`` of shape ``(N, K)``: one sparse-dense product."""
        if torch.jit.is_scripting():
            return torch.sparse.mm(self.adjacency(), z)
        return self._propagate_eager(z)

    @torch.jit.unused
    def _propagate_eager(self, z: Tensor) -> Tensor:
        # (under vmap a batched ``z`` reports requires_grad False even when it does: grad mode alone decides)
        if not torch.is_grad_enabled():
            return torch.sparse.mm(self.adjacency(), z)
        return _SparseMatmul.apply(self.adjacency(), self.adjacency_transposed(), z)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.size(1) != self.n_nodes or x.size(2) != self.in_channels:
            raise ValueError(f"input must have shape (batch, {self.n_nodes}, {self.in_channels}), but got "
                             f"{list(x.shape)}")
        return self.forward_node_major(x.transpose(0, 1)).transpose(0, 1)

    @torch.jit.export
    def forward_node_major(self, h: Tensor) -> Tensor:
        """The layer on node-major features ``(N, B, C_in)``; returns ``(N, B, C_out)``."""
        n, b = h.size(0), h.size(1)
        flat = h.reshape(n * b, self.in_channels)
        if self.project_first:
            z = torch.mm(flat, self.weight_neighbour).view(n, b * self.neighbour_channels)
            neighbour = self.propagate(z).view(n * b, self.neighbour_channels)
        else:
            z = self.propagate(flat.view(n, b * self.in_channels)).view(n * b, self.in_channels)
            neighbour = torch.mm(z, self.weight_neighbour)
        bias_neighbour, bias_self = self.bias_neighbour, self.bias_self
        if bias_neighbour is not None:
            neighbour = neighbour + bias_neighbour
        if bias_self is not None:
            own = torch.addmm(bias_self, flat, self.weight_self)
        else:
            own = torch.mm(flat, self.weight_self)
        # One GEMM per branch: a single GEMM on [W_n | W_s] was measured slower, as its backward must assemble
        # the gradient of the joint output from two column slices.
        return torch.cat([neighbour, own], dim=1).view(n, b, self.out_channels)

    @torch.jit.export
    def forward_outer(self, values: Tensor, vectors: Optional[Tensor]) -> Tensor:
        r"""The layer on rank-one node features :math:`H_{v,b} = x_{v,b}\, e_v`, without building them.

        :math:`H W = x \odot (e W)` per node, so the :math:`(N, B, C_{in})` features and their product with
        :math:`W` are never formed: this is how :class:`GCN` runs its first layer on the gene embedding.
        ``vectors`` ``(N, C_in)`` are the :math:`e_v`; None means :math:`C_{in} = 1` and :math:`e_v = 1`, and
        then the sparse product runs on the :math:`B` columns of ``values`` before the linear map.
        """
        values = values.contiguous()
        n, b = values.size(0), values.size(1)
        if vectors is None:
            if self.in_channels != 1:
                raise ValueError(f"vectors may be None only when in_channels is 1, but it is {self.in_channels}")
            spread = self.propagate(values)
            neighbour = spread.unsqueeze(-1) * self.weight_neighbour.view(1, 1, -1)
            vectors_self = self.weight_self.view(1, 1, -1)
        else:
            if vectors.size(0) != n or vectors.size(1) != self.in_channels:
                raise ValueError(f"vectors must have shape ({n}, {self.in_channels}), but got {list(vectors.shape)}")
            z = values.unsqueeze(-1) * torch.mm(vectors, self.weight_neighbour).unsqueeze(1)
            neighbour = self.propagate(z.view(n, b * self.neighbour_channels)).view(n, b, self.neighbour_channels)
            vectors_self = torch.mm(vectors, self.weight_self).unsqueeze(1)
        bias_neighbour, bias_self = self.bias_neighbour, self.bias_self
        if bias_neighbour is not None:
            neighbour = neighbour + bias_neighbour
        if bias_self is not None:
            own = torch.addcmul(bias_self, values.unsqueeze(-1), vectors_self)
        else:
            own = values.unsqueeze(-1) * vectors_self
        return torch.cat([neighbour.view(n * b, -1), own.view(n * b, -1)], dim=1).view(n, b, self.out_channels)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, nodes={self.n_nodes}, nnz={self.nnz}, "
                f"bias={self.bias_self is not None}")
