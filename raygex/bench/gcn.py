r"""`raygex bench gcn`: one training step of our GCN against PyTorch Geometric's, and the step's floor.

Four implementations of one network (gene embedding, ``depth`` layers of [neighbour branch ‖ self branch],
ReLU, node dropout, flatten, linear classifier; forward, cross-entropy, backward), all taking the first layer
in factored form (:math:`x \odot (e W)`: none builds the ``[B, N, embedding]`` tensor):

- ``ours``: :class:`raygex.models.gcn.GCN`: one CSR product per layer with the batch in the columns, a backward
  that reuses :math:`\hat{A}^T`;
- ``pyg_spmm``: PyG's recommended path for a static graph: ``GCNConv`` on ``adj_t`` (torch sparse CSR) with
  node-major ``[N, B·C]`` features, ``spmm``; ``pyg_static``: gather-scatter ``GCNConv`` on ``edge_index`` with
  ``[B, N, C]`` features; ``pyg_batch``: gather-scatter on a disjoint union of ``B`` copies
  (:mod:`raygex.bench.gcn_variants`).

Before anything is timed, a child builds ours and every requested PyG variant with ours' weights on the same
graph (batch ``min(batch, 4)``, dropout off) and checks that logits and all parameter gradients agree
(:func:`raygex.bench.gcn_variants.check_same_function`); a mismatch stops the benchmark. Then each variant runs
in a fresh child process, so its peak resident memory (``VmHWM``, not the ``ru_maxrss`` a child inherits from its
parent) is its own; the child also reports its baseline after imports. Times are the median of ``repeats``
steps after one warm-up step.

The floor is :math:`\max(\mathrm{bytes}/\mathrm{bandwidth},\ \mathrm{FLOPs}/\mathrm{matmul\ rate})` for *our*
step (:mod:`raygex.bench.gcn_floor`, every term in the JSON's ``floor_accounting``). Bytes: every tensor our step
must hold in memory is written once and read once, elementwise work (bias, concatenation, dropout, ReLU and
their gradients) is taken as fused into its neighbours, parameters are read once and their gradients written
once, and :math:`\hat{A}` is read once per sparse product (the activations streamed between two products are far
larger than the last-level cache). With :math:`n` nodes, :math:`\mathrm{nnz}` stored values of :math:`\hat{A}`
(both edge directions and the self-loops), batch :math:`B`, channels :math:`C = C_n + C_s`, input width
:math:`C_{in}`, product width :math:`w = C_n` (1 when :math:`C_{in} = 1`), :math:`K` classes, float32 (4 bytes):

.. math::
    A = 12\,\mathrm{nnz} + 8(n + 1) \quad\text{(values, int64 column indices and row pointers)}

    \mathrm{layer\ forward} = A + \mathrm{in} + 4nB\,(2w + C) + 4(C_{in}C + C)
    \quad\text{(write and read } Z = HW_n\text{, write } H'\text{)}

    \mathrm{layer\ backward} = A + \mathrm{in} + 4nB\,(4w + 2C_s) + 4(C_{in}C + C)
    \quad\text{(the output gradient's two halves, } \hat{A}^T G_n\text{, weight gradients)}

    \mathrm{classifier} = 2 \cdot 4nBC + 2 \cdot 4K(nC + 1) + 8BK

where :math:`\mathrm{in}` is the layer's input read once, :math:`4nBC_{in}` (layer 0: the expression values
:math:`4nB`, plus the embedding :math:`4nC_{in}` read forward and its gradient written backward: the factored
layer never makes :math:`x \odot e`), and the classifier reads the last layer's output in the forward and in the
backward pass. The dropout mask is not charged: where the stored output :math:`H' > 0` the mask is
:math:`1/(1-p)`, elsewhere the gradient is zero. FLOPs: :math:`2\,\mathrm{nnz}\,Bw` per sparse product (one
forward, one backward per layer), :math:`2mnk` per dense product (layer :math:`\ge 1`: :math:`2nBC_{in}C`
forward, twice that backward; layer 0: :math:`eW`, the outer products :math:`x \odot (eW)` and their
gradients; the classifier :math:`2BnCK` forward, twice that backward). The bandwidth is bytes moved (read +
write) per second by a copy of a 1 GiB float32 tensor after a warm-up copy; the matmul rate is FLOPs per second
of a 2048 × 2048 float32 ``torch.mm`` after a warm-up; each is measured in its own child in the same run, with
torch's default thread count like the variants. Both bounds are lower bounds for our step (every term is
traffic or arithmetic it does; the byte bound assumes, as on GeneMANIA, activations larger than the last-level
cache, and the FLOP bound charges sparse products at the dense rate), so ours ÷ floor is its distance from the
machine's limit.

``tune_malloc`` runs every child with glibc's allocator told to keep freed memory (``MALLOC_MMAP_MAX_=0``,
``MALLOC_TRIM_THRESHOLD_``): by default each large tensor is a fresh ``mmap`` whose pages fault in on first
touch, which on small virtual machines costs more than the arithmetic.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from raygex.bench.gcn_floor import floor, step_accounting

VARIANTS = ("ours", "pyg_spmm", "pyg_static", "pyg_batch")
N_CLASSES = 2
DROPOUT = 0.1
CHECK_BATCH = 4
BANDWIDTH_BYTES = 2**30
MATMUL_SIZE = 2048
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


def check_shape(**values: int) -> None:
    """Every benchmark size must be positive, and a GCN needs at least 2 channels."""
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be positive, but got {value}")
    if values.get("channels", 2) < 2:
        raise ValueError(f"channels must be at least 2, but got {values['channels']}")


def _run_child(args: list[str], env: dict) -> tuple[dict | None, str]:
    """One benchmark child: (its JSON line, "") or (None, why it failed)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=False,
                          env=env)
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1]), ""
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    if proc.returncode == -9:
        return None, "killed (signal 9), most likely out of memory"
    return None, f"exit {proc.returncode}: {last}" + (f"\n{proc.stderr[-3000:]}" if args[0] == "check" else "")


def run_gcn_benchmark(graph_path=None, nodes: int = 16_300, edges: int = 265_000, batch: int = 64,
                      embedding: int = 32, depth: int = 3, channels: int = 32, repeats: int = 5,
                      variants=VARIANTS, seed: int = 0, tune_malloc: bool = False, log=None) -> dict:
    """Check the variants compute ours' function, then time each (and measure the bandwidth and the matmul rate)
    in its own child process; returns one flat dict (``floor_accounting`` holds the floor's terms)."""
    check_shape(batch=batch, embedding=embedding, depth=depth, channels=channels, repeats=repeats)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"variants must be among {list(VARIANTS)}, but got {unknown}")
    variants = [v for v in VARIANTS if v in variants]
    started = time.perf_counter()
    if graph_path is not None:
        edge_index, nodes, graph_name = load_graph(graph_path)
    else:
        edge_index = scale_free_graph(nodes, edges, seed)
        graph_name = f"synthetic scale-free (seed {seed})"
    edges = edge_index.shape[1] // 2
    nnz = edge_index.shape[1] + nodes
    env = dict(os.environ, **(TUNED_MALLOC if tune_malloc else {}))
    result = {"graph": graph_name, "nodes": int(nodes), "edges": int(edges), "nnz": int(nnz), "batch": batch,
              "embedding": embedding, "depth": depth, "channels": channels, "repeats": repeats,
              "variants": variants, "tune_malloc": tune_malloc, "torch_threads": None,
              "graph_s": round(time.perf_counter() - started, 2)}
    child_ms: dict[str, float] = {}  # unrounded step times
    with tempfile.TemporaryDirectory(prefix="raygex-bench-gcn-") as tmp:
        graph_file = Path(tmp) / "graph.npy"
        np.save(graph_file, edge_index)
        shape = [str(graph_file), str(nodes), str(batch), str(embedding), str(depth), str(channels), str(repeats),
                 str(seed)]
        if any(v != "ours" for v in variants):
            if log:
                log(f"checking {', '.join(v for v in variants if v != 'ours')} against ours on ours' weights ...")
            child, why = _run_child(["check", *shape, *variants], env)
            if child is None:
                from raygex.bench.gcn_variants import VariantMismatch  # (imports torch: not before it is needed)

                raise VariantMismatch(f"the equality check failed, nothing was timed: {why}")
            result["check_batch"] = child.pop("check_batch")
            result["check_tolerance"] = child.pop("tolerance")
            for variant, summary in child["variants"].items():
                for key, value in summary.items():
                    result[f"{variant}_check_{key}"] = value
        for name in ("bandwidth", "matmul", *variants):
            if log:
                log(f"running {name} ...")
            child, why = _run_child([name, *shape], env)
            if child is None:
                if name in ("bandwidth", "matmul"):
                    raise RuntimeError(f"{name} measurement failed: {why}")
                result.update({f"{name}_error": why, f"{name}_ms": None, f"{name}_peak_mb": None})
                if log:
                    log(f"{name} failed: {why}")
                continue
            result["torch_threads"] = child.pop("torch_threads")
            if name == "bandwidth":
                result["bandwidth_gb_s"] = round(child["bytes_per_s"] / 1e9, 2)
                continue
            if name == "matmul":
                result["matmul_gflop_s"] = round(child["flops_per_s"] / 1e9, 1)
                continue
            child_ms[name] = child["step_s"] * 1e3
            result[f"{name}_ms"] = round(child["step_s"] * 1e3, 1)
            result[f"{name}_steps_ms"] = [round(t * 1e3, 1) for t in child["steps_s"]]
            result[f"{name}_peak_mb"] = round(child["peak_kib"] * 1024 / 1e6, 1)
            over = child["peak_kib"] - child["baseline_kib"]
            result[f"{name}_peak_over_baseline_mb"] = round(over * 1024 / 1e6, 1)
            result[f"{name}_setup_s"] = round(child["setup_s"], 2)
    accounting = step_accounting(nodes, nnz, batch, embedding, depth, channels, N_CLASSES)
    bound = floor(accounting, result["bandwidth_gb_s"] * 1e9, result["matmul_gflop_s"] * 1e9)
    result.update({"floor_bytes": accounting["bytes"], "floor_flops": accounting["flops"],
                   "floor_memory_ms": round(bound["memory_ms"], 3), "floor_compute_ms": round(bound["compute_ms"], 3),
                   "floor_ms": round(bound["floor_ms"], 3), "floor_binding": bound["binding"],
                   "floor_accounting": accounting})
    if "ours" in child_ms:
        timed = [v for v in variants if v != "ours" and v in child_ms]
        for variant in timed:
            result[f"{variant}_over_ours"] = round(child_ms[variant] / child_ms["ours"], 2)
            result[f"{variant}_mem_over_ours"] = round(result[f"{variant}_peak_over_baseline_mb"]
                                                      / max(result["ours_peak_over_baseline_mb"], 0.1), 2)
        if timed:
            best = min(timed, key=lambda v: child_ms[v])
            result.update({"pyg_best": best, "pyg_best_over_ours": result[f"{best}_over_ours"],
                           "pyg_best_mem_over_ours": result[f"{best}_mem_over_ours"]})
        result["ours_over_floor"] = round(child_ms["ours"] / bound["floor_ms"], 2)
    return result


def format_table(result: dict) -> list[str]:
    """The human-readable report of :func:`run_gcn_benchmark`."""
    lines = [f"GCN training step (forward + backward) on {result['graph']}: {result['nodes']} nodes, "
             f"{result['edges']} edges; batch {result['batch']}, embedding {result['embedding']}, depth "
             f"{result['depth']}, channels {result['channels']}; median of {result['repeats']} steps, "
             f"{result['torch_threads']} torch threads{', tuned malloc' if result['tune_malloc'] else ''}"]
    if "check_batch" in result:
        checked = [f"{v} {result[f'{v}_check_logits_max_abs_diff']:.1e}/{result[f'{v}_check_grad_max_rel_diff']:.1e}"
                   for v in result["variants"] if f"{v}_check_logits_max_abs_diff" in result]
        lines.append(f"same function as ours on ours' weights (batch {result['check_batch']}, max |logit diff| / "
                     f"max relative gradient diff, tolerance {result['check_tolerance']}): {', '.join(checked)}")
    lines.append(f"{'variant':11} {'step ms':>9} {'x ours':>7} {'peak MB':>9} {'+MB':>8} {'+MB x ours':>11}")
    for variant in result["variants"]:
        if f"{variant}_error" in result:
            lines.append(f"{variant:11} failed: {result[f'{variant}_error']}")
        if not result.get(f"{variant}_ms"):
            continue
        ours = variant == "ours"
        ratio = 1.0 if ours else result.get(f"{variant}_over_ours")
        memory = 1.0 if ours else result.get(f"{variant}_mem_over_ours")
        lines.append(f"{variant:11} {result[f'{variant}_ms']:9.1f} {'' if ratio is None else f'{ratio:7.2f}':>7} "
                     f"{result[f'{variant}_peak_mb']:9.0f} {result[f'{variant}_peak_over_baseline_mb']:8.0f} "
                     f"{'' if memory is None else f'{memory:11.2f}':>11}")
    lines.append(f"{'floor':11} {result['floor_ms']:9.1f}   {result['floor_binding']}-bound, max("
                 f"{result['floor_bytes'] / 1e9:.3f} GB at {result['bandwidth_gb_s']:.1f} GB/s copy bandwidth = "
                 f"{result['floor_memory_ms']:.2f} ms, {result['floor_flops'] / 1e9:.3f} GFLOP at "
                 f"{result['matmul_gflop_s']:.0f} GFLOP/s matmul = {result['floor_compute_ms']:.2f} ms)")
    ratios = []
    if "pyg_best" in result:
        ratios.append(f"PyG's best ({result['pyg_best']}) / ours: time {result['pyg_best_over_ours']}, "
                      f"memory {result['pyg_best_mem_over_ours']}")
    if "ours_over_floor" in result:
        ratios.append(f"ours / floor {result['ours_over_floor']}")
    if ratios:
        lines.append("; ".join(ratios))
    return lines


# ----- child side: everything below runs in a fresh interpreter -----

def _rss_kib() -> int:
    """This process's peak resident memory in KiB: ``VmHWM``, which starts afresh at ``exec``. (``ru_maxrss``
    does not: a child started by ``subprocess`` inherits its parent's peak, here torch and the graph.)"""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _median_time(run, repeats: int = 5) -> float:
    run()  # warm-up: pages touched, kernels chosen
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _measure_bandwidth() -> dict:
    import torch

    src = torch.empty(BANDWIDTH_BYTES // 4, dtype=torch.float32)
    src.fill_(1.0)
    dst = torch.empty_like(src)
    seconds = _median_time(lambda: dst.copy_(src))
    return {"bytes_per_s": 2 * BANDWIDTH_BYTES / seconds, "torch_threads": torch.get_num_threads()}


def _measure_matmul() -> dict:
    import torch

    torch.manual_seed(0)
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    out = torch.empty(MATMUL_SIZE, MATMUL_SIZE)
    seconds = _median_time(lambda: torch.mm(a, b, out=out))
    return {"flops_per_s": 2 * MATMUL_SIZE**3 / seconds, "torch_threads": torch.get_num_threads()}


def child_main(argv: list[str]) -> None:
    """Entry point of a benchmark child: prints one JSON line."""
    name, graph_file = argv[0], argv[1]
    nodes, batch, embedding, depth, channels, repeats, seed = (int(a) for a in argv[2:9])
    import torch

    if name in ("bandwidth", "matmul"):
        print(json.dumps(_measure_bandwidth() if name == "bandwidth" else _measure_matmul()))
        return
    import torch.nn.functional as F

    from raygex.bench.gcn_variants import TOLERANCE, build_variant, check_variants

    if name == "check":
        check_batch = min(batch, CHECK_BATCH)
        found = check_variants(argv[9:], nodes, np.load(graph_file), N_CLASSES, embedding, depth, channels,
                               check_batch, DROPOUT, seed)
        print(json.dumps({"check_batch": check_batch, "tolerance": TOLERANCE, "variants": found}))
        return
    if name != "ours":
        importlib.import_module("torch_geometric")  # imported before the baseline is read
    baseline = _rss_kib()
    setup = time.perf_counter()
    edge_index = torch.from_numpy(np.load(graph_file))
    torch.manual_seed(seed)
    x = torch.randn(batch, nodes)
    y = torch.randint(0, N_CLASSES, (batch,))
    model = build_variant(name, nodes, edge_index, N_CLASSES, embedding, depth, channels, batch, DROPOUT)
    model.train()

    def step() -> float:
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    step()  # warm-up
    setup_s = time.perf_counter() - setup
    steps = [step() for _ in range(repeats)]
    print(json.dumps({"step_s": float(np.median(steps)), "steps_s": steps, "peak_kib": _rss_kib(),
                      "baseline_kib": baseline, "setup_s": setup_s, "torch_threads": torch.get_num_threads()}))
