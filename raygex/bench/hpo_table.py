"""The tabular benchmark behind `raygex bench hpo`: every configuration of a discretised copy of a study's search
space, trained once with raygex's own training loop, its per-epoch validation AUC and best-epoch test AUC kept.

A table is built once per data set (in ``<workdir>/<dataset>/table.jsonl``, one line per configuration, appended
as each finishes, so a build cut short by ``deadline_s`` continues where it stopped) beside ``provenance.json``
(data file and its sha256, split, seeds, training settings, the grid). Trials run with the study's patience, so a
curve ends where raygex's early stopping ends it; ASHA only ever stops a trial earlier, so the curves hold all that
any simulated method can observe (see :mod:`raygex.bench.hpo_sim`).

The grids are sized so that a table builds in about 5 minutes on 2 cores (one torch thread per process): the
configs' parameter kinds are kept (graph and channels categorical, depth an integer range, dropout, lr and weight
decay continuous, cut to 2-3 values and sampled by index so TPE keeps their order), with fewer values than the
configs allow: depth 1-2, channels 8/16, embedding 1 (BRCA's config also tries 8), lr 1e-4/1e-3/1e-2, two weight
decays and dropouts, logistic regression's C at six powers of ten; GCN graphs: the demo's true, decoy and empty (not the per-seed random rewirings), BRCA's
GeneMANIA and empty (not RegNet or Hetionet). Demo: 162 configurations, BRCA: 126 per training-set size.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from raygex.files.fileio import sha256_file
from raygex.version import __version__

LR3 = (1e-4, 1e-3, 1e-2)
C6 = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # logistic regression's inverse penalty (a convex fit: its only parameter)


@dataclass(frozen=True)
class Param:
    """One parameter of the discretised space, sampled as raygex samples it: ``choice`` a categorical (as a
    ``{choice: [...]}`` or a list in a config), ``int`` an integer range (its values consecutive), ``index`` a
    continuous parameter cut to ``values`` and sampled as an integer index so that its order is kept."""

    name: str
    kind: str  # choice | int | index
    values: tuple


@dataclass(frozen=True)
class Grid:
    """The discretised space: per family the parameters sampled, and the constants every trial of it gets."""

    families: dict[str, tuple[Param, ...]]
    constants: dict[str, dict] = field(default_factory=dict)

    def models(self) -> list[str]:
        return list(self.families)

    def points(self) -> list[dict]:
        """Every configuration (family, then parameters in order), without the constants."""
        out = []
        for model, params in self.families.items():
            for combo in itertools.product(*(p.values for p in params)):
                out.append({"model": model, **{p.name: v for p, v in zip(params, combo)}})
        return out

    def describe(self) -> dict:
        return {model: {p.name: [p.kind, list(p.values)] for p in params} for model, params in self.families.items()}


def config_key(params: dict) -> str:
    """The table's key of a configuration: its sampled parameters, sorted."""
    return json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True)


@dataclass
class HpoDataset:
    """One benchmark data set: a raygex config (built by ``config(workdir, shared)``), its study, and its grid."""

    name: str
    study: str
    grid: Grid
    config: Callable[[Path, Path], Any]
    needs_shared: bool = False
    note: str = ""


def _optimiser(lrs, decays) -> tuple[Param, ...]:
    return (Param("lr", "index", tuple(lrs)), Param("weight_decay", "index", tuple(decays)))


def _demo_config(workdir: Path, shared: Path, *, samples: int = 600, genes: int = 2000, epochs: int = 30,
                 patience: int = 6, grace: int = 5, folder: str = "demo-data"):
    """configs/demo.yaml's classify task (``subtype``) and settings, on the demo cohort generated with seed 0."""
    from raygex.config import ExperimentConfig
    from raygex.data.demo import make_demo_cohort, write_demo

    data = workdir / folder
    if not (data / "expression.parquet").exists():
        write_demo(data, *make_demo_cohort(0, samples, genes))
    return ExperimentConfig(
        name="bench-hpo", data={"expression": str(data / "expression.parquet")},
        graphs={"true": str(data / "graph_true.parquet"), "decoy": str(data / "graph_decoy.parquet")},
        controls=["empty"], tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
        split={"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [0, 1], "folds": None},
        train={"max_epochs": epochs, "patience": patience, "batch_size": 32, "metric": "auc"},
        search={"scheduler": {"kind": "asha", "grace_period": grace}})


def brca_config(workdir: Path, shared: Path):
    """configs/brca-pam50.yaml's task and training settings, with one validation split of 100 instead of
    cross-validation (a table needs one validation curve per configuration), GeneMANIA and the empty control."""
    from raygex.config import ExperimentConfig
    from raygex.data.importer import import_expression
    from raygex.graphs.io import import_graph
    from raygex.graphs.store import write_graph

    data, graph = workdir / "brca.parquet", workdir / "genemania.parquet"
    symbols = shared / "graphs" / "hgnc_symbol_map_Feb2019.txt"
    if not data.exists():
        import_expression(shared / "expression" / "brca_pam50.tsv.gz", data, labels=["pam50", "er_status"],
                          symbol_map=symbols)
    if not graph.exists():
        write_graph(import_graph(shared / "graphs" / "genemania.adjlist.gz", "genemania", symbol_map=symbols)[0],
                    graph)
    return ExperimentConfig(
        name="bench-hpo", data={"expression": str(data)}, graphs={"genemania": str(graph)}, controls=["empty"],
        tasks=[{"name": "pam50", "kind": "classify", "label": "pam50", "min_samples_per_class": 10}],
        split={"train": [50, 200], "valid": 100, "test": 200, "seeds": [0, 1], "folds": None},
        train={"max_epochs": 100, "patience": 10, "batch_size": 16, "metric": "auc"},
        search={"scheduler": {"kind": "asha", "grace_period": 10}})


DEMO_GRID = Grid({
    "gcn": (Param("graph", "choice", ("true", "decoy", "empty")), Param("depth", "int", (1, 2)),
            Param("channels", "choice", (8, 16)), Param("dropout", "index", (0.0, 0.5)),
            *_optimiser(LR3, (1e-8, 1e-3))),
    "mlp": (Param("dropout", "index", (0.0, 0.5)), *_optimiser(LR3, (1e-8, 1e-3))),
    "lr": (Param("C", "index", C6),),
}, constants={"gcn": {"embedding": 1}})
BRCA_GRID = Grid({
    "gcn": (Param("graph", "choice", ("genemania", "empty")), Param("depth", "int", (1, 2)),
            Param("channels", "choice", (8, 16)), Param("dropout", "index", (0.0, 0.5)),
            *_optimiser(LR3, (1e-6, 1e-3))),
    "mlp": (Param("hidden", "choice", (128, 512)), Param("dropout", "index", (0.0, 0.5)),
            *_optimiser(LR3, (1e-6, 1e-3))),
    "lr": (Param("C", "index", C6),),
}, constants={"gcn": {"embedding": 1}})
TINY_GRID = Grid({
    "gcn": (Param("graph", "choice", ("true", "empty")), Param("depth", "int", (1,)), Param("channels", "choice", (4,)),
            *_optimiser((1e-3, 1e-2), (1e-8,))),
    "mlp": (Param("dropout", "index", (0.0,)), *_optimiser((1e-3, 1e-2), (1e-8,))),
    "lr": (Param("C", "index", (0.01, 1.0)),),
}, constants={"gcn": {"embedding": 1}, "mlp": {"hidden": 16}})

DATASETS = {
    "demo": HpoDataset("demo", "subtype", DEMO_GRID, _demo_config,
                       note="demo cohort (seed 0, 600 x 2000), split 0.6/0.2/0.2 (split seed 0), 30 epochs, "
                            "patience 6, ASHA grace 5"),
    "brca-n50": HpoDataset("brca-n50", "pam50-n50", BRCA_GRID, brca_config, needs_shared=True,
                           note="TCGA BRCA PAM50, train 50 / valid 100 / fixed test 200 (split seed 0), 100 epochs, "
                                "patience 10, ASHA grace 10"),
    "brca-n200": HpoDataset("brca-n200", "pam50-n200", BRCA_GRID, brca_config, needs_shared=True,
                            note="TCGA BRCA PAM50, train 200 / valid 100 / fixed test 200 (split seed 0), 100 "
                                 "epochs, patience 10, ASHA grace 10"),
    # A seconds-long table for tests and smoke runs (not a benchmark).
    "demo-tiny": HpoDataset("demo-tiny", "subtype", TINY_GRID,
                            lambda w, s: _demo_config(w, s, samples=150, genes=100, epochs=8, patience=3, grace=2,
                                                      folder="demo-tiny-data"),
                            note="tiny demo cohort (150 x 100), 8 epochs: a smoke test, not a benchmark"),
}

# --- building -------------------------------------------------------------------------------------------------

_WORKER: dict = {}


def _worker_init(spec: str, workdir: str, shared: str) -> None:
    """Per build process: one torch thread, the study's arrays standardised once and every graph choice aligned
    once (what a sweep's trials share through the object store)."""
    import torch

    from raygex.data.prepare import load_dataset, load_graphs, study_graphs, trial_data

    torch.set_num_threads(1)
    dataset = DATASETS[spec]
    config = dataset.config(Path(workdir), Path(shared))
    seed = config.split.seeds[0]
    data = trial_data(config, dataset.study, load_dataset(config), load_graphs(config), seed=seed,
                      graph=None).standardised()
    _WORKER.update(data=data, graphs=study_graphs(config, load_graphs(config), data, seed=seed),
                   fixed={**config.train.model_dump(), "seed": seed}, constants=dataset.grid.constants)


def _train(params: dict) -> dict:
    """Train one configuration (in a build process): its curves, as raygex's trial reports them per epoch."""
    from raygex.training.loop import run_trial

    hparams = {**_WORKER["fixed"], **_WORKER["constants"].get(params["model"], {}), **params}
    graph = _WORKER["graphs"][params["graph"]] if params["model"] == "gcn" else None
    started = time.perf_counter()
    result = run_trial(hparams, dataclasses.replace(_WORKER["data"], graph=graph))
    metric = hparams["metric"]
    return {"key": config_key(params), "params": params, "epochs": result.epochs_run,
            "valid": [row[f"valid_{metric}"] for row in result.history],
            "best_valid": [row[f"best_valid_{metric}"] for row in result.history],
            "best_test": [row.get(f"best_test_{metric}") for row in result.history],
            "seconds": round(time.perf_counter() - started, 3)}


def table_path(workdir: Path, name: str) -> Path:
    return Path(workdir) / name / "table.jsonl"


def read_table(path: Path) -> dict[str, dict]:
    """The configurations trained so far, by key (a line cut by a killed build is ignored)."""
    rows: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["key"]] = row
    return rows


def provenance(dataset: HpoDataset, config, workdir: Path, workers: int) -> dict:
    import torch


    expression = Path(config.data.expression)
    return {"dataset": dataset.name, "note": dataset.note, "study": dataset.study,
            "expression": str(expression), "expression_sha256": sha256_file(expression),
            "graphs": dict(config.graphs), "controls": list(config.controls),
            "split": {"train": config.train_size(dataset.study), "valid": config.split.valid,
                      "test": config.split.test, "split_seed": config.split.seeds[0],
                      "test_seed": config.split.test_seed, "folds": None},
            "train": config.train.model_dump(), "trial_seed": config.split.seeds[0],
            "grace_period": config.search.scheduler.grace_period, "grid": dataset.grid.describe(),
            "constants": dataset.grid.constants, "raygex": __version__, "torch": torch.__version__,
            "build_processes": workers, "torch_threads_per_process": 1}


def build_table(name: str, workdir: Path, shared: Path, *, workers: int = 2, deadline_s: float | None = None,
                log: Callable[[str], None] = lambda m: None) -> tuple[dict[str, dict], dict]:
    """Train every configuration of data set ``name`` not yet in its table, ``workers`` processes with one torch
    thread each; new work stops being started after ``deadline_s`` seconds (rerun to continue). Returns (rows by
    key, provenance)."""

    dataset = DATASETS[name]
    workdir = Path(workdir)
    config = dataset.config(workdir, Path(shared))
    path = table_path(workdir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta_path = path.parent / "provenance.json"
    meta = provenance(dataset, config, workdir, workers)
    meta_path.write_text(json.dumps(meta, indent=1))
    keys = {config_key(p) for p in dataset.grid.points()}
    rows = {k: r for k, r in read_table(path).items() if k in keys}  # rows of an older grid are left out
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        with path.open("a") as out:  # a line cut by a killed build: start the next one on its own line
            out.write("\n")
    todo = [p for p in dataset.grid.points() if config_key(p) not in rows]
    if not todo:
        return rows, meta
    log(f"{name}: training {len(todo)} of {len(dataset.grid.points())} configurations "
        f"({max(workers, 1)} process{'es' if workers > 1 else ''})")
    started = time.perf_counter()
    if workers <= 0:  # in this process (tests: no process start), torch's thread count put back after
        import torch

        threads = torch.get_num_threads()
        try:
            _worker_init(name, str(workdir), str(shared))
            with path.open("a") as out:
                for params in todo:
                    if deadline_s is not None and time.perf_counter() - started >= deadline_s:
                        break
                    row = rows[config_key(params)] = _train(params)
                    out.write(json.dumps(row) + "\n")
        finally:
            torch.set_num_threads(threads)
            _WORKER.clear()
        return rows, meta
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                             initargs=(name, str(workdir), str(shared))) as pool, path.open("a") as out:
        pending, queue, last_log = set(), list(todo), started
        while queue or pending:
            while queue and len(pending) < 2 * workers and \
                    (deadline_s is None or time.perf_counter() - started < deadline_s):
                pending.add(pool.submit(_train, queue.pop(0)))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                row = future.result()
                rows[row["key"]] = row
                out.write(json.dumps(row) + "\n")
                out.flush()
            if time.perf_counter() - last_log > 60:
                last_log = time.perf_counter()
                log(f"{name}: {len(rows)} of {len(dataset.grid.points())} in the table "
                    f"({last_log - started:.0f}s)")
    return rows, meta


def complete(name: str, rows: dict[str, dict]) -> bool:
    return all(config_key(p) in rows for p in DATASETS[name].grid.points())
