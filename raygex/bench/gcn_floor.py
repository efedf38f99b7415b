r"""The floor of `raygex bench gcn`: the least bytes and floating-point operations of our GCN's training step.

The rules and the formulas are in :mod:`raygex.bench.gcn`'s docstring; :func:`step_accounting` writes every
term out (per layer and for the classifier) so that the JSON shows where the floor comes from, and
:func:`floor` turns the totals into a time with the measured bandwidth and dense matmul rate.
"""

from __future__ import annotations

F32 = 4  # bytes of a float32 value


def adjacency_bytes(n: int, nnz: int) -> int:
    """A CSR :math:`\\hat{A}` read once: float32 values, int64 column indices and row pointers."""
    return (F32 + 8) * nnz + 8 * (n + 1)


def layer_accounting(layer: int, n: int, nnz: int, batch: int, c_in: int, channels: int) -> dict:
    """Bytes and FLOPs of one graph-convolution layer, forward and backward (layer 0 in factored form)."""
    cn, cs = channels // 2, channels - channels // 2
    # Columns per sample of the sparse product: C_n (Z = H W_n; layer 0: x ⊙ e W_n), or x itself when C_in = 1.
    width = cn if c_in > 1 else 1
    nb = n * batch
    adjacency = adjacency_bytes(n, nnz)
    params = F32 * (c_in * channels + channels)  # W_n, W_s and the two biases
    if layer == 0:  # input: the expression values x (N, B) and the embedding e (N, c_in), never x ⊙ e
        input_bytes, embedding = F32 * nb, F32 * n * c_in if c_in > 1 else 0
    else:  # input: the previous layer's output (N, B, c_in)
        input_bytes, embedding = F32 * nb * c_in, 0
    terms = {
        "forward.adjacency_read": adjacency,
        "forward.input_read": input_bytes,
        "forward.embedding_read": embedding,
        "forward.weights_read": params,
        "forward.product_operand_write_read": 2 * F32 * nb * width,  # Z = H W_n (layer 0: x ⊙ e W_n), (N, B·C_n)
        "forward.output_write": F32 * nb * channels,  # ReLU(dropout([ÂZ + b_n ‖ H W_s + b_s])), fused
        "backward.adjacency_read": adjacency,
        "backward.input_read": input_bytes,  # for the weight (layer 0: embedding) gradients
        "backward.product_operand_write_read": 2 * F32 * nb * width,  # the neighbour half of the output gradient
        "backward.self_gradient_write_read": 2 * F32 * nb * cs,  # the self half of the output gradient
        "backward.product_result_write_read": 2 * F32 * nb * width,  # Â^T G_n
        "backward.weight_gradients_write": params,
        "backward.embedding_gradient_write": embedding,
    }
    if layer == 0:
        dense_forward = 2 * n * c_in * channels * (c_in > 1) + nb * channels  # e [W_n | W_s], then x ⊙ (e W)
        dense_backward = 2 * nb * channels + 4 * n * c_in * channels * (c_in > 1)  # Σ_b x·G, then e, W grads
    else:
        dense_forward = 2 * nb * c_in * channels  # H [W_n | W_s]
        dense_backward = 4 * nb * c_in * channels  # input gradient and weight gradients
    flops = {"forward.sparse": 2 * nnz * batch * width, "forward.dense": dense_forward,
             "backward.sparse": 2 * nnz * batch * width, "backward.dense": dense_backward}
    return {"part": f"layer {layer}", "n": n, "nnz": nnz, "c_in": c_in, "c_out": channels, "bytes": terms,
            "bytes_total": sum(terms.values()), "flops": flops, "flops_total": sum(flops.values())}


def classifier_accounting(n: int, batch: int, channels: int, n_classes: int) -> dict:
    """Bytes and FLOPs of the flatten readout and the linear classifier, forward and backward."""
    features = n * channels
    terms = {
        "forward.input_read": F32 * batch * features,  # the last layer's output, read by the classifier
        "forward.weights_read": F32 * (n_classes * features + n_classes),  # read once: still cached in backward
        "forward.logits_write_read": 2 * F32 * batch * n_classes,
        "backward.input_read": F32 * batch * features,  # for the weight gradient and the ReLU/dropout masks
        "backward.weight_gradients_write": F32 * (n_classes * features + n_classes),
    }
    flops = {"forward.dense": 2 * batch * features * n_classes,
             "backward.dense": 4 * batch * features * n_classes}  # input gradient and weight gradient
    return {"part": "classifier", "features": features, "classes": n_classes, "bytes": terms,
            "bytes_total": sum(terms.values()), "flops": flops, "flops_total": sum(flops.values())}


def step_accounting(n: int, nnz: int, batch: int, embedding: int, depth: int, channels: int,
                    n_classes: int) -> dict:
    """Every part's bytes and FLOPs, and their totals (all layers on the input graph: no coarsening)."""
    parts = [layer_accounting(i, n, nnz, batch, embedding if i == 0 else channels, channels) for i in range(depth)]
    parts.append(classifier_accounting(n, batch, channels, n_classes))
    return {"parts": parts, "bytes": sum(p["bytes_total"] for p in parts),
            "flops": sum(p["flops_total"] for p in parts)}


def floor(accounting: dict, bytes_per_s: float, flops_per_s: float) -> dict:
    """max(bytes ÷ bandwidth, FLOPs ÷ dense matmul rate), both bounds and which one binds."""
    memory_s, compute_s = accounting["bytes"] / bytes_per_s, accounting["flops"] / flops_per_s
    return {"memory_ms": memory_s * 1e3, "compute_ms": compute_s * 1e3, "floor_ms": max(memory_s, compute_s) * 1e3,
            "binding": "memory" if memory_s >= compute_s else "compute"}
