"""The embedded demo cohort: a synthetic dataset, generated from a seed, in which the gene graph matters.

A new user should see the whole product work with no download, and see *why* a GCN helps: the labels here
depend on the activity of graph neighbourhoods, so a model that pools neighbours in the true graph has an edge
over the same model on a decoy graph with the same number of edges and the same degrees.

How a cohort is made (numpy only, every random draw from the seed, so a seed gives byte-identical output):

1. a scale-free gene network by Barabási–Albert preferential attachment (each new gene links to ``m`` = 4
   existing genes, average degree ~8); node numbers are shuffled before naming, so ``G0001`` is not the
   first hub;
2. per sample, Gaussian noise diffused over the network (a few steps of neighbour averaging), so neighbouring
   genes co-vary; five shared *programs* are each added, weakly, to up to three *modules* (a hub gene and its
   direct neighbours);
3. the labels read the programs' activity (the mean signal over their modules): ``subtype`` (A/B/C) is the
   argmax over programs 1-3, ``response`` is an XOR of programs 4 and 5 being high; no single gene shows either
   clearly, a neighbourhood mean does;
4. measured expression = per-gene mean and scale, measurement noise, a per-gene ``batch`` offset, then a
   softplus so values look like positive log-expression (float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from raygex.data.canonical import ExpressionDataset, write_dataset
from raygex.errors import ConfigError, RaygexError
from raygex.graphs.controls import random_control
from raygex.graphs.store import Graph, write_graph

EDGES_PER_NEW_GENE = 4  # Barabási–Albert m: average degree ~2m
SMOOTHING_STEPS = 3  # rounds of neighbour averaging: how far co-variation spreads along the graph
SMOOTHING_MIX = 0.6  # weight of the neighbour mean in each round
MODULE_LOADING = 0.5  # strength of each program, relative to unit per-gene variance: weak per gene, clear per module
MEASUREMENT_NOISE = 0.8  # independent per-gene noise (sd), the reason pooling neighbours helps
N_PROGRAMS = 5  # shared expression programs: 3 drive subtype, 2 drive response
HUBS_PER_PROGRAM = 3  # modules (hub + neighbours) per program
MIN_MODULE_SIZE = 4
MODULE_DEGREE = (10, 40)  # hub degrees preferred for modules: big enough to pool, small enough to be specific
SUBTYPE_NOISE = 0.15  # sd of noise on the program scores before the argmax (labels are not a perfect function)
RESPONSE_FLIP = 0.05  # fraction of response labels flipped at random
N_BATCHES = 3
BATCH_EFFECT = 0.3  # sd of each batch's per-gene offset
SUBTYPES = np.array(["A", "B", "C"])
MIN_SAMPLES, MIN_GENES = 20, 100
FILES = {"expression": "expression.parquet", "graph_true": "graph_true.parquet",
         "graph_decoy": "graph_decoy.parquet", "readme": "README.txt"}


def _names(prefix: str, n: int) -> np.ndarray:
    """Fixed-width names (``G0001``...) so that sorting by name is sorting by number."""
    width = max(4, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def barabasi_albert_edges(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """[E, 2] int64 edges of a preferential-attachment graph: a clique on m+1 nodes, then m links per node.

    Targets are drawn from the list of edge endpoints, so a node is picked in proportion to its degree.
    Written here (not networkx) so the graph depends only on numpy's generator, not on a library version.
    """
    seed_nodes = np.arange(m + 1)
    first = np.array([(a, b) for a in seed_nodes for b in seed_nodes if a < b], dtype=np.int64).reshape(-1, 2)
    edges = np.empty((len(first) + (n - m - 1) * m, 2), dtype=np.int64)
    edges[:len(first)] = first
    endpoints = np.empty(2 * len(edges), dtype=np.int64)
    endpoints[:2 * len(first)] = first.reshape(-1)
    n_edges, n_ends = len(first), 2 * len(first)
    for node in range(m + 1, n):
        chosen: list[int] = []
        while len(chosen) < m:
            for pick in endpoints[rng.integers(0, n_ends, size=2 * m)].tolist():
                if pick not in chosen:
                    chosen.append(pick)
                    if len(chosen) == m:
                        break
        edges[n_edges:n_edges + m, 0] = node
        edges[n_edges:n_edges + m, 1] = chosen
        endpoints[n_ends:n_ends + 2 * m] = edges[n_edges:n_edges + m].reshape(-1)
        n_edges, n_ends = n_edges + m, n_ends + 2 * m
    return edges


def _adjacency(edges: np.ndarray, n: int) -> sp.csr_matrix:
    a = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (a + a.T).tocsr()


def pick_modules(adj: sp.csr_matrix, wanted: int, minimum: int, rng: np.random.Generator
                 ) -> list[tuple[int, np.ndarray]]:
    """Up to ``wanted`` disjoint modules, each a hub gene plus its direct neighbours not already in a module.

    Hubs of moderate degree come first, in random order: their module is then nearly the whole neighbourhood a
    one-hop pooling sees at the hub, whereas the biggest hubs touch everything. A small network falls back to
    any hub with a few free neighbours, and may give fewer modules (never fewer than ``minimum``).
    """
    degree = np.diff(adj.indptr)
    lo, hi = MODULE_DEGREE
    preferred = rng.permutation(np.flatnonzero((degree >= lo) & (degree <= hi)))
    fallback = np.argsort(-degree, kind="stable")
    used = np.zeros(adj.shape[0], dtype=bool)
    modules: list[tuple[int, np.ndarray]] = []
    for strict, candidates in ((True, preferred), (False, fallback)):
        for hub in candidates:
            if len(modules) == wanted:
                return modules
            neighbours = adj.indices[adj.indptr[hub]:adj.indptr[hub + 1]]
            free = neighbours[~used[neighbours]]
            if used[hub] or len(free) + 1 < MIN_MODULE_SIZE or (strict and 2 * len(free) < len(neighbours)):
                continue
            members = np.sort(np.concatenate([[hub], free]))
            used[members] = True
            modules.append((int(hub), members))
    if len(modules) < minimum:
        raise ConfigError(f"could not place {minimum} gene modules in a {adj.shape[0]}-gene network; "
                          "use more genes")
    return modules


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)


def make_demo_cohort(seed: int = 0, n_samples: int = 600, n_genes: int = 2000
                     ) -> tuple[ExpressionDataset, Graph, Graph]:
    """The demo cohort in memory: (dataset with subtype/response/batch labels, true graph, decoy graph)."""
    if n_samples < MIN_SAMPLES:
        raise ConfigError(f"--samples must be at least {MIN_SAMPLES}, but got {n_samples}")
    if n_genes < MIN_GENES:
        raise ConfigError(f"--genes must be at least {MIN_GENES}, but got {n_genes}")
    rng = np.random.default_rng(seed)
    genes = _names("G", n_genes)
    sample_ids = _names("S", n_samples)

    # 1. Network, with node numbers shuffled so that hub-ness says nothing about a gene's name.
    relabel = rng.permutation(n_genes)
    edges = relabel[barabasi_albert_edges(n_genes, EDGES_PER_NEW_GENE, rng)]
    adj = _adjacency(edges, n_genes)
    modules = pick_modules(adj, N_PROGRAMS * HUBS_PER_PROGRAM, N_PROGRAMS, rng)
    program_of = np.arange(len(modules)) % N_PROGRAMS

    # 2. Biological signal: diffused noise (neighbours co-vary) plus each module's program.
    degree = np.asarray(adj.sum(axis=1)).ravel()
    walk = (sp.diags(1.0 / np.maximum(degree, 1)) @ adj).T.tocsr()  # x @ walk = neighbour means
    signal = rng.standard_normal((n_samples, n_genes))
    for _ in range(SMOOTHING_STEPS):
        signal = (1 - SMOOTHING_MIX) * signal + SMOOTHING_MIX * np.asarray(signal @ walk)
    signal = _zscore(signal)
    programs = rng.standard_normal((n_samples, N_PROGRAMS))
    for k, (_, members) in enumerate(modules):
        signal[:, members] += MODULE_LOADING * programs[:, [program_of[k]]]

    # 3. Labels from program activity (mean signal over its modules), standardised so classes are balanced.
    activity = _zscore(np.stack([signal[:, np.concatenate([m for k, (_, m) in enumerate(modules)
                                                           if program_of[k] == p])].mean(axis=1)
                                 for p in range(N_PROGRAMS)], axis=1))
    scores = activity[:, :3] + SUBTYPE_NOISE * rng.standard_normal((n_samples, 3))
    subtype = SUBTYPES[np.argmax(scores, axis=1)]
    response = (activity[:, 3] > 0) ^ (activity[:, 4] > 0)
    response ^= rng.random(n_samples) < RESPONSE_FLIP
    batch = rng.integers(0, N_BATCHES, size=n_samples)

    # 4. Measurement: per-gene level and scale, noise, batch offsets, softplus to positive log-expression.
    mean = 2.0 + rng.gamma(2.0, 1.5, size=n_genes)
    scale = rng.uniform(0.4, 1.2, size=n_genes)
    batch_offset = BATCH_EFFECT * rng.standard_normal((N_BATCHES, n_genes))
    noisy = signal + MEASUREMENT_NOISE * rng.standard_normal((n_samples, n_genes))
    logged = mean + scale * noisy + batch_offset[batch]
    expression = np.logaddexp(0.0, logged).astype(np.float32)

    obs = pd.DataFrame({"subtype": subtype,
                        "response": np.where(response, "responder", "non_responder"),
                        "batch": np.array([f"batch{b + 1}" for b in batch])})
    module_info = [{"hub": str(genes[hub]), "size": int(len(m)), "program": int(program_of[k]) + 1,
                    "drives": "subtype" if program_of[k] < 3 else "response"} for k, (hub, m) in enumerate(modules)]
    provenance = {"generator": "raygex data demo", "seed": seed, "n_samples": n_samples, "n_genes": n_genes,
                  "modules": module_info}
    dataset = ExpressionDataset(sample_ids, expression, list(genes), obs, provenance)

    graph_provenance = {"generator": "raygex data demo", "seed": seed, "model": "barabasi_albert",
                        "edges_per_new_gene": EDGES_PER_NEW_GENE}
    true = Graph.from_edges("true", genes[edges[:, 0]], genes[edges[:, 1]], provenance=graph_provenance,
                            nodes=genes)
    rewired = random_control(true, seed)
    decoy = Graph("decoy", rewired.source, rewired.target, None,
                  {"generator": "raygex data demo", "seed": seed, "model": "degree-preserving rewiring of 'true'",
                   "swaps_accepted": rewired.provenance.get("swaps_accepted")}, rewired.isolated)
    return dataset, true, decoy


def _readme(dataset: ExpressionDataset, true: Graph, decoy: Graph) -> str:
    p = dataset.provenance
    counts = dataset.obs["subtype"].value_counts().sort_index()
    modules = "\n".join(f"    module {k + 1}: hub {m['hub']}, {m['size']} genes, program {m['program']} ({m['drives']})"
                        for k, m in enumerate(p["modules"]))
    return f"""raygex demo cohort (synthetic; generated by `raygex data demo --seed {p['seed']}`)

Files
  expression.parquet   {dataset.n_samples} samples x {dataset.n_genes} genes, float32; labels subtype, response, batch
  graph_true.parquet   'true': the network the expression was generated on, {true.n_edges} edges
  graph_decoy.parquet  'decoy': the true graph's edges rewired at random, keeping every gene's degree
                       (seed {p['seed']}), {decoy.n_edges} edges

Seed {p['seed']}; the same seed, sample count and gene count always give the same files.

How it was generated
  Network: Barabasi-Albert preferential attachment, each new gene linked to {EDGES_PER_NEW_GENE} existing genes
    (scale-free, average degree ~{2 * EDGES_PER_NEW_GENE}); names G0001... are given to the genes in random order.
  Expression: per sample, Gaussian noise diffused over the network ({SMOOTHING_STEPS} rounds of mixing each gene
    with its neighbours' mean, weight {SMOOTHING_MIX}), so neighbouring genes co-vary. {N_PROGRAMS} shared programs
    (per-sample Gaussian activities) are each added, with loading {MODULE_LOADING}, to up to {HUBS_PER_PROGRAM} modules;
    a module is a hub gene and its direct neighbours. Then a per-gene mean and scale, measurement noise
    (sd {MEASUREMENT_NOISE}), a per-gene offset per batch (sd {BATCH_EFFECT}) and a softplus, giving positive
    log-expression-like values.
{modules}
  Labels (a program's activity = the mean signal over its modules' genes, standardised over samples):
    subtype   A/B/C = which of programs 1-3 is most active (argmax, after noise of sd {SUBTYPE_NOISE});
              counts {', '.join(f'{k}: {v}' for k, v in counts.items())}
    response  responder when exactly one of programs 4 and 5 is above average (XOR); {RESPONSE_FLIP:.0%} flipped
    batch     batch1..batch{N_BATCHES}, assigned at random; shifts expression, not the labels

Why the graph matters: labels follow the mean activity of graph neighbourhoods, while each single gene carries
only a weak share of it under noise. A model that pools each gene's neighbours in graph_true.parquet sees the
module signal; graph_decoy.parquet has the same number of edges and the same degrees, but random neighbours.
"""


def check_out_dir(out_dir: str | Path, force: bool) -> Path:
    """Refuse a non-empty ``out_dir`` unless ``force``, so a typo never overwrites a user's data."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RaygexError("output exists and is not a directory", path=out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RaygexError("output directory is not empty; pass --force to overwrite it", path=out)
    return out


def write_demo(out_dir: str | Path, dataset: ExpressionDataset, true: Graph, decoy: Graph) -> dict[str, Path]:
    """Write a cohort from :func:`make_demo_cohort` into ``out_dir`` (each file atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, name in FILES.items()}
    write_dataset(dataset, paths["expression"])
    write_graph(true, paths["graph_true"])
    write_graph(decoy, paths["graph_decoy"])
    paths["readme"].write_text(_readme(dataset, true, decoy), encoding="utf-8")
    return paths


def generate_demo(out_dir: str | Path, *, seed: int = 0, n_samples: int = 600, n_genes: int = 2000,
                  force: bool = False) -> dict[str, Path]:
    """Generate the demo cohort and write it to ``out_dir``; returns the paths by key.

    Keys: ``expression``, ``graph_true``, ``graph_decoy``, ``readme``. A non-empty ``out_dir`` is refused unless
    ``force`` (files of the same names are then replaced; other files are left alone).
    """
    out = check_out_dir(out_dir, force)
    return write_demo(out, *make_demo_cohort(seed, n_samples, n_genes))


def summary_lines(dataset: ExpressionDataset, true: Graph, decoy: Graph) -> list[str]:
    """What the CLI prints: sizes and class counts."""
    lines = [f"samples: {dataset.n_samples}, genes: {dataset.n_genes}, "
             f"edges: {true.n_edges} (true), {decoy.n_edges} (decoy)"]
    for column in ("subtype", "response", "batch"):
        counts = dataset.obs[column].value_counts().sort_index()
        lines.append(f"{column}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return lines
