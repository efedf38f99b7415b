r"""`raygex bench predict`: prediction speed of an exported GCN on the CPU, beside the same network in memory.

What a user of an exported model pays per sample. One run builds a GCN over a GeneMANIA-size graph (the
GeneMANIA file of ``../shared/data`` when it is there, else a generated scale-free graph of the same size, see
:func:`raygex.bench.gcn.scale_free_graph`), writes it with :func:`raygex.export.winner.write_model` exactly as
`raygex export` does (a small generated dataset supplies the training statistics and the file's metadata), and
times two predictors of the same weights side by side:

- ``in_memory``: the eager network wrapped in :class:`raygex.export.module.ExpressionClassifier`, i.e. with the
  standardisation (``(x * keep - mean) / std``) and the softmax the exported module applies;
- ``exported``: the ``.pt`` file loaded with plain ``torch.jit.load``, as a program without raygex would.

Both run in eval mode under ``torch.no_grad()`` on raw float32 ``[batch, n_genes]`` input. Two numbers each:

- throughput: samples per second at ``batch`` samples per call, ``batch`` / the median of ``repeats`` calls
  after two warm-up calls (TorchScript's profiling executor profiles the first call and optimises at the second);
- latency: one sample per call, the 50th and 99th percentiles of ``calls`` calls after ten warm-up calls.

The two predictors alternate call by call, so a neighbour's load on a shared machine falls on both alike. The
network is untrained (initial weights from ``seed``): speed does not depend on the values of the weights. The
probabilities of the two predictors on the same batch are compared (``max_abs_diff``); they should agree to
float32 rounding. The target is 2,000 samples/s for the exported file at batch 256.

Where the time goes: every layer holds a ``[n_genes, batch, channels]`` float32 activation (534 MB at
GeneMANIA's 16,300 genes, batch 256, 32 channels), and the flatten readout copies the last one into
``[batch, n_genes * channels]`` for the classifier; so a batch is bound by memory traffic, not arithmetic.
Each such tensor is a fresh ``mmap`` from glibc whose pages fault in on first touch at every call (see
`raygex bench gcn --tune-malloc`); one sample's activations (2 MB a layer) stay in cache instead.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from raygex.bench.gcn import check_shape, scale_free_graph

BENCH_DATA = Path(os.environ.get("RAYGEX_BENCH_DATA")
                  or Path(__file__).resolve().parents[2].parent / "shared" / "data")
GENEMANIA = BENCH_DATA / "graphs" / "genemania.adjlist.gz"  # the benchmark data folder's, when it is there
TARGET_SAMPLES_PER_S = 2000.0
N_SAMPLES = 200  # samples of the generated dataset whose training rows give the standardisation
WARMUP_BATCH = 2
WARMUP_SINGLE = 10
TASK = "label"


def _graph(graph_path, synthetic: bool, nodes: int, edges: int, seed: int):
    """(Graph, source file or None, description): the given file, else GeneMANIA when present, else generated."""
    from raygex.data.prepare import load_graph
    from raygex.graphs.store import Graph

    if graph_path is None and not synthetic and GENEMANIA.is_file():
        graph_path = GENEMANIA
    if graph_path is not None:
        graph_path = Path(graph_path)
        name = graph_path.name.split(".")[0]
        return load_graph(name, graph_path), graph_path, f"{name} ({graph_path.name})"

    edge_index = scale_free_graph(nodes, edges, seed)
    one_way = edge_index[:, edge_index[0] < edge_index[1]]
    names = np.array([f"G{i:05d}" for i in range(nodes)], dtype=object)
    graph = Graph.from_edges("synthetic", names[one_way[0]], names[one_way[1]], nodes=names)
    return graph, None, f"synthetic scale-free (seed {seed})"


def _dataset(genes: list[str], seed: int):
    """A generated dataset over ``genes`` with a balanced two-class label (log-normal-ish raw values)."""
    import pandas as pd

    from raygex.data.canonical import ExpressionDataset

    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 2.0, size=(N_SAMPLES, len(genes))).astype(np.float32)
    label = np.where(np.arange(N_SAMPLES) % 2 == 0, "a", "b")
    return ExpressionDataset([f"S{i:04d}" for i in range(N_SAMPLES)], x, genes, pd.DataFrame({"label": label}))


def _time_calls(predictors: dict, x, calls: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each predictor on ``x``, the predictors alternating call by call."""
    import torch

    times: dict[str, list[float]] = {name: [] for name in predictors}
    with torch.no_grad():
        for _ in range(warmup):
            for predict in predictors.values():
                predict(x)
        for i in range(calls):
            order = list(predictors.items())
            if i % 2:
                order.reverse()
            for name, predict in order:
                start = time.perf_counter()
                predict(x)
                times[name].append(time.perf_counter() - start)
    return times


def run_predict_benchmark(graph_path=None, synthetic: bool = False, nodes: int = 16_300, edges: int = 265_000,
                          depth: int = 2, channels: int = 32, embedding: int = 8, batch: int = 256,
                          repeats: int = 5, calls: int = 200, threads: int | None = None, seed: int = 0,
                          log=None) -> dict:
    """Export a GCN, time it beside the in-memory network (see the module docstring); returns one flat dict."""
    check_shape(depth=depth, embedding=embedding, channels=channels, batch=batch, repeats=repeats, calls=calls)
    if graph_path is not None and synthetic:
        raise ValueError("pass a graph file or ask for a synthetic graph, not both")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be positive, but got {threads}")
    import torch

    from raygex.config import ExperimentConfig
    from raygex.data.canonical import write_dataset
    from raygex.data.prepare import trial_data
    from raygex.export.module import ExpressionClassifier
    from raygex.export.winner import write_model
    from raygex.training.loop import build_model, default_hyperparameters, seed_everything

    say = log or (lambda message: None)
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        say("building the graph ...")
        graph, graph_file, graph_name = _graph(graph_path, synthetic, nodes, edges, seed)
        genes = sorted(str(g) for g in graph.nodes)
        dataset = _dataset(genes, seed)
        hparams = {**default_hyperparameters("gcn"), "depth": depth, "channels": channels, "embedding": embedding, "seed": seed,
                   "graph": graph.name}
        with tempfile.TemporaryDirectory(prefix="raygex-bench-predict-") as tmp:
            expression = write_dataset(dataset, Path(tmp) / "dataset.parquet")
            config = ExperimentConfig.model_validate({
                "name": "bench-predict", "data": {"expression": str(expression)},
                "graphs": {graph.name: str(graph_file) if graph_file else "(generated in memory)"},
                "tasks": [{"name": TASK, "kind": "classify", "label": "label"}],
                "split": {"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [seed], "folds": None}})
            data = trial_data(config, TASK, dataset, {graph.name: graph}, seed=seed, graph=graph.name)
            seed_everything(seed)
            network = build_model(hparams, len(data.genes), len(data.classes), data.graph).eval()
            setup_s = time.perf_counter() - started
            say("exporting ...")
            started = time.perf_counter()
            model_file = Path(tmp) / f"{TASK}.pt"
            written = write_model(config, TASK, network, data, hparams, model_file, split_seed=seed,
                                  weights="untrained")
            export_s = time.perf_counter() - started
            model_mb = model_file.stat().st_size / 1e6
            exported = torch.jit.load(str(model_file), map_location="cpu").eval()
        standard = data.standardised()
        in_memory = ExpressionClassifier(network, standard.mean, standard.std,
                                         np.zeros(len(data.genes), dtype=bool)).eval()
        predictors = {"in_memory": in_memory, "exported": exported}

        rng = np.random.default_rng(seed + 1)
        x_batch = torch.from_numpy(rng.gamma(2.0, 2.0, size=(batch, len(data.genes))).astype(np.float32))
        x_one = x_batch[:1].clone()
        with torch.no_grad():
            diff = float((in_memory(x_batch) - exported(x_batch)).abs().max())
            diff_one = float((in_memory(x_one) - exported(x_one)).abs().max())

        say(f"throughput: {repeats} calls of {batch} samples each ...")
        batch_times = _time_calls(predictors, x_batch, repeats, WARMUP_BATCH)
        say(f"latency: {calls} calls of 1 sample each ...")
        single_times = _time_calls(predictors, x_one, calls, WARMUP_SINGLE)

        aligned = data.graph
        result = {"graph": graph_name, "n_genes": len(data.genes), "n_edges": int(aligned.n_edges),
                  "nnz": int(aligned.edge_index.shape[1] + aligned.n_nodes), "depth": depth, "channels": channels,
                  "embedding": embedding, "n_classes": len(data.classes), "batch": batch, "repeats": repeats,
                  "calls": calls, "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                  "model_mb": round(model_mb, 2), "pt2": written["pt2"] is not None,
                  "pt2_error": written["pt2_error"], "setup_s": round(setup_s, 2), "export_s": round(export_s, 2),
                  "max_abs_diff": max(diff, diff_one)}
        for name in predictors:
            per_batch = float(np.median(batch_times[name]))
            single = np.asarray(single_times[name])
            result[f"{name}_batch_ms"] = round(per_batch * 1e3, 2)
            result[f"{name}_samples_per_s"] = round(batch / per_batch, 1)
            result[f"{name}_p50_ms"] = round(float(np.percentile(single, 50)) * 1e3, 3)
            result[f"{name}_p99_ms"] = round(float(np.percentile(single, 99)) * 1e3, 3)
        result["exported_over_in_memory_samples_per_s"] = round(
            result["exported_samples_per_s"] / result["in_memory_samples_per_s"], 3)
        result["exported_over_in_memory_p50"] = round(result["exported_p50_ms"] / result["in_memory_p50_ms"], 3)
        result["exported_over_in_memory_p99"] = round(result["exported_p99_ms"] / result["in_memory_p99_ms"], 3)
        result["target_samples_per_s"] = TARGET_SAMPLES_PER_S
        result["target_met"] = bool(result["exported_samples_per_s"] >= TARGET_SAMPLES_PER_S)
        return result
    finally:
        torch.set_num_threads(threads_before)


def format_table(result: dict) -> list[str]:
    """The human-readable report of :func:`run_predict_benchmark`."""
    lines = [f"GCN prediction on {result['graph']}: {result['n_genes']} genes, {result['n_edges']} edges; depth "
             f"{result['depth']}, channels {result['channels']}, embedding {result['embedding']}; "
             f"{result['torch_threads']} torch threads, torch {result['torch']}",
             f"{'predictor':10} {'batch ms':>13} {'samples/s':>10} {'p50 ms':>8} {'p99 ms':>8}"]
    for name in ("in_memory", "exported"):
        lines.append(f"{name:10} {result[f'{name}_batch_ms']:13.1f} {result[f'{name}_samples_per_s']:10.0f} "
                     f"{result[f'{name}_p50_ms']:8.2f} {result[f'{name}_p99_ms']:8.2f}")
    lines.append(f"exported/in-memory: throughput {result['exported_over_in_memory_samples_per_s']}, p50 "
                 f"{result['exported_over_in_memory_p50']}, p99 {result['exported_over_in_memory_p99']}; "
                 f"max |p_exported - p_in_memory| = {result['max_abs_diff']:.2e}")
    lines.append(f"target {result['target_samples_per_s']:.0f} samples/s at batch {result['batch']}: "
                 f"{'met' if result['target_met'] else 'NOT met'} ({result['exported_samples_per_s']:.0f})")
    if not result["pt2"]:
        lines.append(f"no .pt2 (torch.export refused: {result['pt2_error']})")
    return lines
