"""The embedded demo cohort: a synthetic dataset, generated from a seed, in which the gene graph matters.

A new user should see the whole product work with no download, and see *why* a GCN helps: the labels depend on
the average activity of gene *modules*, groups of 30-60 genes that are densely linked in the true graph. Each
gene carries only a weak, noisy share of its module's activity, so a model over raw genes must find the module
genes one by one from few samples, while a GCN that averages each gene's neighbours in the true graph sees the
module's activity with most of the noise averaged away. On the decoy graph (same degrees, rewired at random) the
same averaging mixes unrelated genes.

How a cohort is made (numpy only, every random draw from the seed, so a seed gives byte-identical output):

1. genes are split into modules of 30-60 genes (fewer, smaller ones in a small cohort), and 20 % of genes are in
   no module;
2. a scale-free network grows by *modular* preferential attachment: each new gene makes ``m`` = 4 links
   (average degree ~8), the first to its module's founding gene (the module's hub), each other one with
   probability 0.9 to a gene of its own module chosen in proportion to degree, else to any gene in proportion to
   degree; so a module is a hub with its dense neighbourhood, modules are joined by cross-module links, and a few
   genes become hubs of the whole network; node numbers are shuffled before naming, so ``G0001`` is not the first
   gene grown;
3. every module has one activity per sample: five *programs* (the label modules, one module each) and an
   independent, stronger activity for each other (*distractor*) module; a gene's signal is its module's activity
   times a small per-gene loading, so module genes co-vary and neighbours in the graph co-vary;
4. the labels read the programs: ``subtype`` (A/B/C) is the argmax over programs 1-3, ``response`` is an XOR of
   programs 4 and 5 being high; no single gene shows either clearly, a neighbourhood mean does; gene ``G0001`` is
   the hub of program 4's module and is *regulated by its graph neighbours*: its level is the mean of their
   noisy activity (standardised, times :data:`TARGET_LOADING`) plus its own noise, so whether it is high (the
   demo's single-gene task) is told by its true-graph neighbourhood mean, and no single gene tells it;
5. measured expression = per-gene mean and scale, measurement noise, a per-gene ``batch`` offset, then a
   softplus so values look like positive log-expression (float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from raygex.data.canonical import ExpressionDataset, write_dataset
from raygex.errors import ConfigError, RaygexError
from raygex.graphs.controls import random_control
from raygex.graphs.store import Graph, write_graph

EDGES_PER_NEW_GENE = 4  # m: average degree ~2m
WITHIN_MODULE = 0.9  # chance that a new gene's link goes to its own module (else anywhere, by degree)
MODULE_SIZE = (30, 60)  # genes per module, shrunk in small cohorts so that every label module fits
UNASSIGNED_FRACTION = 0.2  # genes in no module: pure noise
N_PROGRAMS = 5  # label programs: 3 drive subtype, 2 drive response; one module each
LABEL_LOADING = 0.3  # per-gene loading of a program (noise sd 1): weak per gene, clear over a module
DISTRACTOR_LOADING = 0.8  # per-gene loading of a distractor module: the strongest co-expression is label-free
TARGET_LOADING = 2.0  # G0001 (the single-gene task's target, hub of program 4's module): its neighbours' mean
LOADING_SPREAD = 0.5  # per-gene loadings are uniform in loading * [1 - spread, 1 + spread]
MEASUREMENT_NOISE = 1.0  # independent per-gene noise (sd), the reason averaging neighbours helps
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


def module_sizes(n_genes: int, rng: np.random.Generator) -> list[int]:
    """Sizes of the modules that cover all but :data:`UNASSIGNED_FRACTION` of ``n_genes``.

    Sizes are uniform in :data:`MODULE_SIZE`; a small cohort gets proportionally smaller modules, so that there
    are always at least two more modules than label programs.
    """
    covered = int(round((1 - UNASSIGNED_FRACTION) * n_genes))
    shrink = min(1.0, covered / (N_PROGRAMS + 2) / (sum(MODULE_SIZE) / 2))
    lo, hi = (max(4, int(round(size * shrink))) for size in MODULE_SIZE)
    sizes: list[int] = []
    while sum(sizes) < covered:
        sizes.append(int(rng.integers(lo, hi + 1)))
    sizes[-1] -= sum(sizes) - covered
    if sizes[-1] < lo and len(sizes) > 1:  # too small a remainder: one more gene for each of the first modules
        for i in range(sizes.pop()):
            sizes[i % len(sizes)] += 1
    if len(sizes) < N_PROGRAMS:
        raise ConfigError(f"could not place {N_PROGRAMS} gene modules in {n_genes} genes; use more genes")
    return sizes


def modular_attachment_edges(module_of: np.ndarray, m: int, within: float, rng: np.random.Generator
                             ) -> np.ndarray:
    """[E, 2] int64 edges grown by preferential attachment with modules: a clique on m+1 nodes, then m links per
    node, in node order.

    A new node of a module (``module_of`` >= 0, else -1) links first to the module's founding node (the first of
    its nodes placed), which so becomes the module's hub. Each other link goes, with probability ``within``, to a
    node of its own module drawn from that module's list of edge endpoints, i.e. in proportion to degree;
    otherwise (or when its module has no free node left) to any node drawn from the list of all edge endpoints.
    Modules therefore become a hub with its dense neighbourhood, and the cross-module links still make a few
    genes hubs of the whole network. Written here (not networkx) so the graph depends only on numpy's generator,
    not on a library version.
    """
    n = len(module_of)
    seed_nodes = np.arange(m + 1)
    first = np.array([(a, b) for a in seed_nodes for b in seed_nodes if a < b], dtype=np.int64).reshape(-1, 2)
    edges = np.empty((len(first) + (n - m - 1) * m, 2), dtype=np.int64)
    edges[:len(first)] = first
    endpoints = np.empty(2 * len(edges), dtype=np.int64)
    endpoints[:2 * len(first)] = first.reshape(-1)
    n_edges, n_ends = len(first), 2 * len(first)
    module_ends: dict[int, list[int]] = {}  # per module, its nodes once per edge end (degree-weighted draws)
    module_nodes: dict[int, int] = {}  # nodes placed so far per module
    founder: dict[int, int] = {}
    for node in range(m + 1):
        module = int(module_of[node])
        if module >= 0:
            module_ends.setdefault(module, []).extend([node] * m)
            module_nodes[module] = module_nodes.get(module, 0) + 1
            founder.setdefault(module, node)
    for node in range(m + 1, n):
        module = int(module_of[node])
        own = module_ends.get(module, []) if module >= 0 else []
        placed = module_nodes.get(module, 0) if module >= 0 else 0
        chosen: list[int] = []
        from_own = 0
        if placed > 0:
            chosen.append(founder[module])
            from_own = 1
        while len(chosen) < m:
            if from_own < placed and rng.random() < within:
                pool, size = own, len(own)
            else:
                pool, size = endpoints, n_ends
            pick = int(pool[int(rng.integers(0, size))])
            if pick in chosen:
                continue
            chosen.append(pick)
            from_own += int(module_of[pick] == module and module >= 0)
        edges[n_edges:n_edges + m, 0] = node
        edges[n_edges:n_edges + m, 1] = chosen
        endpoints[n_ends:n_ends + 2 * m] = edges[n_edges:n_edges + m].reshape(-1)
        n_edges, n_ends = n_edges + m, n_ends + 2 * m
        for pick in chosen:
            if module_of[pick] >= 0:
                module_ends.setdefault(int(module_of[pick]), []).append(pick)
        if module >= 0:
            founder.setdefault(module, node)
            module_ends.setdefault(module, []).extend([node] * m)
            module_nodes[module] = placed + 1
    return edges


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

    # 1-2. Modules (-1: none) over the growth order, the network grown on them, then node numbers shuffled so
    # that neither growth order nor module says anything about a gene's name.
    sizes = module_sizes(n_genes, rng)
    grown_module = np.full(n_genes, -1, dtype=np.int64)
    grown_module[rng.permutation(n_genes)[:sum(sizes)]] = np.repeat(np.arange(len(sizes)), sizes)
    relabel = rng.permutation(n_genes)
    edges = relabel[modular_attachment_edges(grown_module, EDGES_PER_NEW_GENE, WITHIN_MODULE, rng)]
    module_of = np.empty(n_genes, dtype=np.int64)
    module_of[relabel] = grown_module
    label_modules = rng.choice(len(sizes), size=N_PROGRAMS, replace=False)  # module of program p: label_modules[p]
    # The single-gene demo task predicts G0001 from its neighbourhood: G0001 is made the hub of program 4's module
    # (a swap of two node numbers, no random draw), so its graph neighbours carry its activity, weakly each.
    target_module = int(label_modules[3])
    degree = np.bincount(edges.reshape(-1), minlength=n_genes)
    in_module = np.flatnonzero(module_of == target_module)
    hub = int(in_module[np.argmax(degree[in_module])])
    swap = np.arange(n_genes)
    swap[[0, hub]] = swap[[hub, 0]]
    edges, module_of = swap[edges], module_of[swap]
    members = [np.flatnonzero(module_of == k) for k in range(len(sizes))]

    # 3. Signal: each module's activity times small per-gene loadings; programs for the label modules.
    programs = rng.standard_normal((n_samples, N_PROGRAMS))
    program_of = {int(k): p for p, k in enumerate(label_modules)}
    signal = np.zeros((n_samples, n_genes))
    for k, genes_k in enumerate(members):
        if k in program_of:
            activity, loading = programs[:, [program_of[k]]], LABEL_LOADING
        else:
            activity, loading = rng.standard_normal((n_samples, 1)), DISTRACTOR_LOADING
        signal[:, genes_k] += activity * (loading * rng.uniform(1 - LOADING_SPREAD, 1 + LOADING_SPREAD,
                                                                 size=len(genes_k)))
    signal[:, 0] = 0.0  # G0001's level is set from its neighbours' below

    # 4. Labels from program activity (standard normal, so the classes are balanced).
    scores = programs[:, :3] + SUBTYPE_NOISE * rng.standard_normal((n_samples, 3))
    subtype = SUBTYPES[np.argmax(scores, axis=1)]
    response = (programs[:, 3] > 0) ^ (programs[:, 4] > 0)
    response ^= rng.random(n_samples) < RESPONSE_FLIP
    batch = rng.integers(0, N_BATCHES, size=n_samples)

    # 5. Measurement: per-gene level and scale, noise, batch offsets, softplus to positive log-expression.
    mean = 2.0 + rng.gamma(2.0, 1.5, size=n_genes)
    scale = rng.uniform(0.4, 1.2, size=n_genes)
    batch_offset = BATCH_EFFECT * rng.standard_normal((N_BATCHES, n_genes))
    noisy = signal + MEASUREMENT_NOISE * rng.standard_normal((n_samples, n_genes))
    # G0001's level is driven by its graph neighbours (a target regulated by them): the standardised mean of
    # their noisy activity, times TARGET_LOADING, plus its own noise. No random draw, so the rest is unchanged.
    neighbours = np.unique(np.concatenate([edges[edges[:, 0] == 0, 1], edges[edges[:, 1] == 0, 0]]))
    drive = noisy[:, neighbours].mean(axis=1)
    noisy[:, 0] = TARGET_LOADING * (drive - drive.mean()) / drive.std() + (noisy[:, 0] - signal[:, 0])
    logged = mean + scale * noisy + batch_offset[batch]
    expression = np.logaddexp(0.0, logged).astype(np.float32)

    obs = pd.DataFrame({"subtype": subtype,
                        "response": np.where(response, "responder", "non_responder"),
                        "batch": np.array([f"batch{b + 1}" for b in batch])})
    degree = np.bincount(edges.reshape(-1), minlength=n_genes)
    module_info = []
    for p, k in enumerate(label_modules):
        hub = members[k][np.argmax(degree[members[k]])]
        module_info.append({"hub": str(genes[hub]), "size": int(len(members[k])), "program": p + 1,
                            "drives": "subtype" if p < 3 else "response"})
    within = module_of[edges[:, 0]] == module_of[edges[:, 1]]
    within &= module_of[edges[:, 0]] >= 0
    provenance = {"generator": "raygex data demo", "seed": seed, "n_samples": n_samples, "n_genes": n_genes,
                  "modules": module_info, "distractor_modules": len(sizes) - N_PROGRAMS,
                  "module_sizes": [int(min(sizes)), int(max(sizes))],
                  "genes_in_no_module": int((module_of < 0).sum()),
                  "edges_within_modules": round(float(within.mean()), 3)}
    dataset = ExpressionDataset(sample_ids, expression, list(genes), obs, provenance)

    graph_provenance = {"generator": "raygex data demo", "seed": seed, "model": "modular preferential attachment",
                        "edges_per_new_gene": EDGES_PER_NEW_GENE, "within_module": WITHIN_MODULE}
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
    modules = "\n".join(f"    program {m['program']} ({m['drives']}): module of {m['size']} genes, hub {m['hub']}"
                        for m in p["modules"])
    n_modules = len(p["modules"]) + p["distractor_modules"]
    sizes = f"{p['module_sizes'][0]}-{p['module_sizes'][1]}"
    return f"""raygex demo cohort (synthetic; generated by `raygex data demo --seed {p['seed']}`)

Files
  expression.parquet   {dataset.n_samples} samples x {dataset.n_genes} genes, float32; labels subtype, response, batch
  graph_true.parquet   'true': the network the expression was generated on, {true.n_edges} edges
  graph_decoy.parquet  'decoy': the true graph's edges rewired at random, keeping every gene's degree
                       (seed {p['seed']}), {decoy.n_edges} edges

Seed {p['seed']}; the same seed, sample count and gene count always give the same files.

How it was generated
  Modules: {n_modules} gene modules of {sizes} genes; {p['genes_in_no_module']} genes are in no module.
  Network: preferential attachment with modules. Each new gene makes {EDGES_PER_NEW_GENE} links (average degree ~{2 * EDGES_PER_NEW_GENE}):
    the first to its module's founding gene (which becomes the module's hub), each other one to a gene of its
    own module with probability {WITHIN_MODULE}, else to any gene, always in proportion to degree. So a module is a hub
    with its dense neighbourhood ({p['edges_within_modules']:.0%} of all edges lie inside a module), and cross-module links
    make a few genes hubs of the whole network (scale-free). Names G0001... are given in random order.
  Expression: every module has one activity per sample. {N_PROGRAMS} label modules carry the programs, with a weak
    per-gene loading (about {LABEL_LOADING}); the {p['distractor_modules']} distractor modules carry independent activities,
    unrelated to any label, with a stronger loading (about {DISTRACTOR_LOADING}). Then a per-gene mean and scale,
    measurement noise (sd {MEASUREMENT_NOISE}), a per-gene offset per batch (sd {BATCH_EFFECT}) and a softplus, giving
    positive log-expression-like values.
{modules}
  Labels (a program's activity is a standard normal per sample):
    subtype   A/B/C = which of programs 1-3 is most active (argmax, after noise of sd {SUBTYPE_NOISE});
              counts {', '.join(f'{k}: {v}' for k, v in counts.items())}
    response  responder when exactly one of programs 4 and 5 is above average (XOR); {RESPONSE_FLIP:.0%} flipped
    batch     batch1..batch{N_BATCHES}, assigned at random; shifts expression, not the labels
  G0001 (the demo config's single-gene target) is the hub of program 4's module and is regulated by its neighbours
    in graph_true.parquet: its level is their mean activity (standardised, times {TARGET_LOADING}) plus its own noise.

Why the graph matters: labels follow the mean activity of a few modules, while each single gene carries only a
weak share of it under noise (and the strongest co-expression belongs to distractor modules). A model that averages
each gene's neighbours in graph_true.parquet sees the module signal with the noise averaged away;
graph_decoy.parquet has the same number of edges and the same degrees, but random neighbours, so its averages mix
unrelated genes. The advantage is largest with few training samples.
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
