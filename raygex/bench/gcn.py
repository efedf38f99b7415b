r"""`raygex bench gcn`: one training step of the GCN, ours against PyTorch Geometric, and the memory floor.

Three variants of the same network (gene embedding, ``depth`` layers of [neighbour branch ‖ self branch],
ReLU, node dropout, flatten, linear classifier; forward, cross-entropy, backward):

- ``ours``: :class:`raygex.models.gcn.GCN`: one CSR product per layer with the batch in the columns;
- ``pyg_static``: the neighbour branch is PyG ``GCNConv`` (cached normalisation) on a static graph with node
  features ``[batch, nodes, channels]``;
- ``pyg_batch``: ``GCNConv`` on a disjoint union (a PyG ``Batch`` of ``batch`` copies of the graph) with
  features ``[batch * nodes, channels]``; the batch is collated once, outside the timed step.

Each variant runs in a fresh child process, so its peak resident memory (``ru_maxrss``) is its own; the child
also reports its baseline after imports. Times are the median of ``repeats`` steps after one warm-up step.

The floor is the time the step needs just to move its bytes once at the measured memory bandwidth. For each
layer on a graph of :math:`n` nodes with :math:`\mathrm{nnz}` stored values of :math:`\hat{A}` (both edge
directions and the self-loops), input width :math:`C_{in}`, output width :math:`C_{out}`, batch :math:`B`:

.. math::
    A = 12\,\mathrm{nnz} + 8(n + 1) \quad\text{(float32 values, int64 column indices and row pointers)}

    \mathrm{forward} = A + 4Bn\,(C_{in} + C_{out}) \quad\text{(read }\hat{A}\text{ and } H\text{, write } H')

    \mathrm{backward} = A + 4Bn\,(C_{out} + 2C_{in}) \quad\text{(read }\hat{A}\text{, the output gradient and }
    H\text{, write the input gradient)}

    \mathrm{floor} = \sum_{\mathrm{layers}} (\mathrm{forward} + \mathrm{backward}) \,/\, \mathrm{bandwidth}

The bandwidth is bytes moved (read + write) per second by a copy of a 1 GiB float32 tensor, timed after a
warm-up copy so that its pages are touched, measured in its own child in the same run. The floor leaves out
the embedding and the classifier, and it assumes each row of :math:`H` is read once, which a sparse product
whose :math:`H` exceeds the last-level cache does not achieve.

``tune_malloc`` runs every child with glibc's allocator told to keep freed memory (``MALLOC_MMAP_MAX_=0``,
``MALLOC_TRIM_THRESHOLD_``): by default each large tensor is a fresh ``mmap`` whose pages fault in on first
touch, which on small virtual machines costs more than the arithmetic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VARIANTS = ("ours", "pyg_static", "pyg_batch")
N_CLASSES = 2
DROPOUT = 0.1
BANDWIDTH_BYTES = 2**30
TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40), "MALLOC_TOP_PAD_": str(2**28)}

_CHILD = "import sys; from raygex.bench.gcn import child_main; child_main(sys.argv[1:])"


def scale_free_graph(n_nodes: int, n_edges: int, seed: int = 0, exponent: float = 2.5) -> np.ndarray:
    """A Chung-Lu random graph with power-law expected degrees, ``n_edges`` distinct undirected edges.

    Returns ``edge_index`` int64 ``(2, 2 * n_edges)`` with both directions, sorted, node labels shuffled (hubs
    are not numbered first, as in a gene list sorted by symbol). Deterministic from ``seed``.
    """
    if n_nodes < 2 or not 0 < n_edges <= n_nodes * (n_nodes - 1) // 2:
        raise ValueError(f"need 2 <= nodes and 0 < edges <= nodes * (nodes - 1) / 2, but got {n_nodes} nodes and "
                         f"{n_edges} edges")
    rng = np.random.default_rng(seed)
    p = (np.arange(n_nodes) + 10.0) ** (-1.0 / (exponent - 1.0))
    p /= p.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_edges:
        draw = int((n_edges - len(keys)) * 1.3) + 64
        a, b = rng.choice(n_nodes, size=draw, p=p), rng.choice(n_nodes, size=draw, p=p)
        keep = a != b
        lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
        keys = np.unique(np.concatenate([keys, lo * n_nodes + hi]))
    keys = np.sort(rng.choice(keys, size=n_edges, replace=False))
    label = rng.permutation(n_nodes)
    lo, hi = label[keys // n_nodes], label[keys % n_nodes]
    rows, cols = np.concatenate([lo, hi]), np.concatenate([hi, lo])
    order = np.lexsort((cols, rows))
    return np.stack([rows[order], cols[order]]).astype(np.int64)


def load_graph(path: str | Path) -> tuple[np.ndarray, int, str]:
    """A graph file (our ``.parquet``, or anything ``raygex graph import`` reads) as (edge_index, nodes, name)."""
    from raygex.graphs.align import align_graph
    from raygex.graphs.io import import_graph
    from raygex.graphs.store import read_graph

    path = Path(path)
    graph = read_graph(path) if path.suffix == ".parquet" else import_graph(path, path.name.split(".")[0])[0]
    aligned = align_graph(graph, graph.nodes, dataset=path)
    return aligned.edge_index, aligned.n_nodes, f"{graph.name} ({path.name})"


def layer_shapes(n_nodes: int, nnz: int, embedding: int, channels: int, depth: int) -> list[dict]:
    """(n, nnz, c_in, c_out) of every layer (all on the input graph: the benchmark does not coarsen)."""
    return [{"n": n_nodes, "nnz": nnz, "c_in": embedding if i == 0 else channels, "c_out": channels}
            for i in range(depth)]


def floor_bytes(layers: list[dict], batch: int) -> int:
    """Bytes a forward + backward step must move at least (the formula in this module's docstring)."""
    total = 0
    for layer in layers:
        n, c_in, c_out = layer["n"], layer["c_in"], layer["c_out"]
        adjacency = 12 * layer["nnz"] + 8 * (n + 1)
        total += adjacency + 4 * batch * n * (c_in + c_out)  # forward
        total += adjacency + 4 * batch * n * (c_out + 2 * c_in)  # backward
    return total


def check_shape(**values: int) -> None:
    """Every benchmark size must be positive, and a GCN needs at least 2 channels."""
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be positive, but got {value}")
    if values.get("channels", 2) < 2:
        raise ValueError(f"channels must be at least 2, but got {values['channels']}")


def run_gcn_benchmark(graph_path=None, nodes: int = 16_300, edges: int = 265_000, batch: int = 64,
                      embedding: int = 32, depth: int = 3, channels: int = 32, repeats: int = 5,
                      variants=VARIANTS, seed: int = 0, tune_malloc: bool = False, log=None) -> dict:
    """Run every variant (and the bandwidth copy) in its own child process; returns one flat dict."""
    check_shape(batch=batch, embedding=embedding, depth=depth, channels=channels, repeats=repeats)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"variants must be among {list(VARIANTS)}, but got {unknown}")
    started = time.perf_counter()
    if graph_path is not None:
        edge_index, nodes, graph_name = load_graph(graph_path)
    else:
        edge_index = scale_free_graph(nodes, edges, seed)
        graph_name = f"synthetic scale-free (seed {seed})"
    edges = edge_index.shape[1] // 2
    nnz = edge_index.shape[1] + nodes
    env = dict(os.environ, **(TUNED_MALLOC if tune_malloc else {}))
    result = {"graph": graph_name, "nodes": int(nodes), "edges": int(edges), "batch": batch,
              "embedding": embedding, "depth": depth, "channels": channels, "repeats": repeats,
              "tune_malloc": tune_malloc, "torch_threads": None, "graph_s": round(time.perf_counter() - started, 2)}
    with tempfile.TemporaryDirectory(prefix="raygex-bench-gcn-") as tmp:
        graph_file = Path(tmp) / "graph.npy"
        np.save(graph_file, edge_index)
        for variant in ("bandwidth", *[v for v in VARIANTS if v in variants]):
            if log:
                log(f"running {variant} ...")
            args = [variant, str(graph_file), str(nodes), str(batch), str(embedding), str(depth), str(channels),
                    str(repeats), str(seed)]
            proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                                  check=False, env=env)
            if proc.returncode != 0:
                if variant == "bandwidth":
                    raise RuntimeError(f"bandwidth measurement failed (exit {proc.returncode}):\n"
                                       f"{proc.stderr[-3000:]}")
                last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
                why = ("killed (signal 9), most likely out of memory" if proc.returncode == -9
                       else f"exit {proc.returncode}: {last}")
                result.update({f"{variant}_error": why, f"{variant}_ms": None, f"{variant}_peak_mb": None})
                if log:
                    log(f"{variant} failed: {why}")
                continue
            child = json.loads(proc.stdout.strip().splitlines()[-1])
            result["torch_threads"] = child.pop("torch_threads")
            if variant == "bandwidth":
                result["bandwidth_gb_s"] = round(child["bytes_per_s"] / 1e9, 2)
                continue
            result[f"{variant}_ms"] = round(child["step_s"] * 1e3, 1)
            result[f"{variant}_steps_ms"] = [round(t * 1e3, 1) for t in child["steps_s"]]
            result[f"{variant}_peak_mb"] = round(child["peak_kib"] * 1024 / 1e6, 1)
            over = child["peak_kib"] - child["baseline_kib"]
            result[f"{variant}_peak_over_baseline_mb"] = round(over * 1024 / 1e6, 1)
            result[f"{variant}_setup_s"] = round(child["setup_s"], 2)
    moved = floor_bytes(layer_shapes(nodes, nnz, embedding, channels, depth), batch)
    result["floor_bytes"] = moved
    result["floor_ms"] = round(moved / (result["bandwidth_gb_s"] * 1e9) * 1e3, 1)
    if result.get("ours_ms"):
        for variant in ("pyg_static", "pyg_batch"):
            if result.get(f"{variant}_ms"):
                result[f"{variant}_over_ours"] = round(result[f"{variant}_ms"] / result["ours_ms"], 2)
        result["ours_over_floor"] = round(result["ours_ms"] / result["floor_ms"], 1)
    return result


def format_table(result: dict) -> list[str]:
    """The human-readable report of :func:`run_gcn_benchmark`."""
    lines = [f"GCN training step (forward + backward) on {result['graph']}: {result['nodes']} nodes, "
             f"{result['edges']} edges; batch {result['batch']}, embedding {result['embedding']}, depth "
             f"{result['depth']}, channels {result['channels']}; median of {result['repeats']} steps, "
             f"{result['torch_threads']} torch threads{', tuned malloc' if result['tune_malloc'] else ''}",
             f"{'variant':11} {'step ms':>9} {'peak MB':>9} {'+MB':>8} {'x ours':>7}"]
    for variant in VARIANTS:
        if f"{variant}_error" in result:
            lines.append(f"{variant:11} failed: {result[f'{variant}_error']}")
        if not result.get(f"{variant}_ms"):
            continue
        ratio = result[f"{variant}_ms"] / result["ours_ms"] if result.get("ours_ms") else None
        lines.append(f"{variant:11} {result[f'{variant}_ms']:9.1f} {result[f'{variant}_peak_mb']:9.0f} "
                     f"{result[f'{variant}_peak_over_baseline_mb']:8.0f} "
                     f"{'' if ratio is None else f'{ratio:7.2f}'}")
    lines.append(f"{'floor':11} {result['floor_ms']:9.1f}   ({result['floor_bytes'] / 1e9:.2f} GB at "
                 f"{result['bandwidth_gb_s']:.1f} GB/s copy bandwidth)")
    ratios = [f"{name} {result[key]}" for name, key in (("pyg_static/ours", "pyg_static_over_ours"),
                                                         ("pyg_batch/ours", "pyg_batch_over_ours"),
                                                         ("ours/floor", "ours_over_floor")) if key in result]
    if ratios:
        lines.append("ratios: " + ", ".join(ratios))
    return lines


# ----- child side: everything below runs in a fresh interpreter -----

def _rss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _measure_bandwidth() -> dict:
    import torch

    src = torch.empty(BANDWIDTH_BYTES // 4, dtype=torch.float32)
    src.fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up: every page of both buffers is touched
    times = []
    for _ in range(5):
        start = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - start)
    return {"bytes_per_s": 2 * BANDWIDTH_BYTES / float(np.median(times)), "torch_threads": torch.get_num_threads()}


def _pyg_model(n_genes: int, embedding: int, depth: int, channels: int, disjoint: bool, batch: int):
    """The same network as :class:`GCN` with PyG's ``GCNConv`` as the neighbour branch."""
    import torch
    from torch import nn
    from torch_geometric.nn import GCNConv

    from raygex.models.gcn import dropout_rates, node_dropout

    class PygGCN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Parameter(torch.randn(n_genes, embedding))
            widths = [embedding] + [channels] * depth
            self.neighbour = nn.ModuleList([GCNConv(widths[i], channels // 2, cached=True) for i in range(depth)])
            self.own = nn.ModuleList([nn.Linear(widths[i], channels - channels // 2) for i in range(depth)])
            self.rates = dropout_rates(DROPOUT, depth)
            self.classifier = nn.Linear(n_genes * channels, N_CLASSES)

        def forward(self, x, edge_index):
            h = x.unsqueeze(-1) * self.embedding  # (B, N, E)
            if disjoint:
                h = h.reshape(-1, embedding)  # (B * N, E)
            for conv, own, rate in zip(self.neighbour, self.own, self.rates):
                h = torch.relu(torch.cat([conv(h, edge_index), own(h)], dim=-1))
                h = node_dropout(h, rate, self.training)
            return self.classifier(h.reshape(batch, -1))

    return PygGCN()


def child_main(argv: list[str]) -> None:
    """Entry point of a benchmark child: prints one JSON line."""
    variant, graph_file = argv[0], argv[1]
    nodes, batch, embedding, depth, channels, repeats, seed = (int(a) for a in argv[2:9])
    import torch

    if variant == "bandwidth":
        print(json.dumps(_measure_bandwidth()))
        return
    import torch.nn.functional as F

    if variant == "ours":
        from raygex.models.gcn import GCN
    else:
        import torch_geometric  # noqa: F401  (imported before the baseline is read)
        from torch_geometric.data import Batch, Data
    baseline = _rss_kib()
    setup = time.perf_counter()
    edge_index = torch.from_numpy(np.load(graph_file))
    torch.manual_seed(seed)
    x = torch.randn(batch, nodes)
    y = torch.randint(0, N_CLASSES, (batch,))
    if variant == "ours":
        model = GCN(nodes, N_CLASSES, edge_index=edge_index, depth=depth, channels=channels, embedding=embedding,
                    dropout=DROPOUT)
        inputs: tuple = (x,)
    else:
        disjoint = variant == "pyg_batch"
        model = _pyg_model(nodes, embedding, depth, channels, disjoint, batch)
        if disjoint:
            edge_index = Batch.from_data_list([Data(edge_index=edge_index, num_nodes=nodes)
                                               for _ in range(batch)]).edge_index
        inputs = (x, edge_index)
    model.train()

    def step() -> float:
        start = time.perf_counter()
        loss = F.cross_entropy(model(*inputs), y)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    step()  # warm-up (PyG caches its normalised graph here)
    setup_s = time.perf_counter() - setup
    steps = [step() for _ in range(repeats)]
    print(json.dumps({"step_s": float(np.median(steps)), "steps_s": steps, "peak_kib": _rss_kib(),
                      "baseline_kib": baseline, "setup_s": setup_s, "torch_threads": torch.get_num_threads()}))
