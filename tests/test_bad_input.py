"""The bad-input catalogue: every way a user can hand raygex a broken file, key, gene or folder, in one table.

One row per case: the bad input (built in ``tmp_path`` by ``make``), the command, the expected exit code and the
words the error must contain (the file/key/gene and what is wrong). For every row: exit code 2, stderr is
exactly one line ``raygex: error: ...``, no traceback anywhere, the command's output (``output``, relative to
``tmp_path``) does not exist afterwards, not even as a temporary sibling, files it must not touch (``keeps``) are
still there, and Ray was not started for it. A few rows (``debug=True``) also check that ``--debug`` shows the
traceback instead.

Strings in ``args`` and in config values are formatted with ``{tmp}`` (the test's folder), ``{demo}`` (a tiny
demo cohort: expression.parquet, graph_true.parquet, graph_decoy.parquet) and ``{model}`` (a model exported from
the demo's ``subtype`` task). ``raygex search`` rows are config errors that must fail before Ray starts.
"""

from __future__ import annotations

import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from raygex.data.canonical import ExpressionDataset, read_dataset, write_dataset
from raygex.errors import RaygexError
from raygex.graphs.store import Graph, write_graph
from tests.search.conftest import write_config

EXIT_USER_ERROR = 2
TABLE = "sample_id\ttissue\tTP53\tEGFR\n"  # a samples × genes TSV header with one label column
LONG_TABLE = "sample_id\tTP53\tEGFR\n" + "".join(f"S{i}\t{i % 7}.5\t{i % 5}.25\n" for i in range(5000))


@dataclass(frozen=True)
class Ctx:
    demo: Path
    model: Path


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path, Ctx], None]  # writes the bad input under tmp
    args: tuple[str, ...]  # the command line after `raygex`
    words: tuple[str, ...]  # what the one-line error must contain
    output: str | None = None  # the command's output, relative to tmp: must not exist afterwards
    code: int = EXIT_USER_ERROR
    debug: bool = False  # also check that --debug raises with the traceback
    marks: tuple = ()
    keeps: tuple[str, ...] = ()  # files (relative to tmp) the failed command must have left alone


def _fmt(value, tmp: Path, ctx: Ctx):
    """``{tmp}``/``{demo}``/``{model}`` filled in, through lists and dicts (config values)."""
    if isinstance(value, str):
        return value.format(tmp=tmp, demo=ctx.demo, model=ctx.model)
    if isinstance(value, list):
        return [_fmt(v, tmp, ctx) for v in value]
    if isinstance(value, dict):
        return {k: _fmt(v, tmp, ctx) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------------ input makers
def nothing(tmp, ctx):
    pass


def text(name: str, content: str):
    def make(tmp, ctx):
        (tmp / name).write_text(content)
    return make


def raw_bytes(name: str, content: bytes):
    def make(tmp, ctx):
        (tmp / name).write_bytes(content)
    return make


def both(*makers):
    def make(tmp, ctx):
        for maker in makers:
            maker(tmp, ctx)
    return make


def h5ad(name: str = "cells.h5ad", *, raw: bool = False):
    def make(tmp, ctx):
        import anndata

        adata = anndata.AnnData(X=np.ones((2, 2), np.float32),
                                obs=pd.DataFrame({"cell_type": ["T", "B"]}, index=["a", "b"]),
                                var=pd.DataFrame(index=["TP53", "EGFR"]))
        if raw:
            adata.raw = adata
        adata.write_h5ad(tmp / name)
    return make


def gzipped(name: str, content: str, *, truncate: bool = False):
    """``content`` gzipped; ``truncate`` cuts the stream off near its end (a download that stopped)."""
    def make(tmp, ctx):
        data = gzip.compress(content.encode())
        (tmp / name).write_bytes(data[: len(data) - 20] if truncate else data)
    return make


def folder(name: str, *files: str):
    """A folder holding empty ``files`` (which must survive the failed command)."""
    def make(tmp, ctx):
        (tmp / name).mkdir(parents=True)
        for file in files:
            (tmp / name / file).write_text("keep me\n")
    return make


def foreign_parquet(name: str = "wide.parquet"):
    """A plain pandas Parquet table: readable, but without raygex's gene order metadata."""
    def make(tmp, ctx):
        pd.DataFrame({"sample_id": ["S1"], "TP53": [1.0], "EGFR": [2.0]}).to_parquet(tmp / name)
    return make


def truncated_copy(source: str, name: str):
    def make(tmp, ctx):
        data = Path(_fmt(source, tmp, ctx)).read_bytes()
        (tmp / name).write_bytes(data[: len(data) // 2])
    return make


def dataset(name: str, change: Callable[[ExpressionDataset], ExpressionDataset]):
    """The demo dataset, changed, written as a canonical dataset."""
    def make(tmp, ctx):
        write_dataset(change(read_dataset(ctx.demo / "expression.parquet")), tmp / name)
    return make


def with_label(column: str, value: str):
    def change(data: ExpressionDataset) -> ExpressionDataset:
        data.obs[column] = value
        return data
    return change


def constant_gene(gene: str):
    def change(data: ExpressionDataset) -> ExpressionDataset:
        data.expression = data.expression.copy()
        data.expression[:, data.genes.index(gene)] = 1.0
        return data
    return change


def graph(name: str, edges: list[tuple[str, str]]):
    def make(tmp, ctx):
        write_graph(Graph.from_edges(Path(name).stem, [a for a, _ in edges], [b for _, b in edges]), tmp / name)
    return make


DISJOINT_GRAPH = graph("other.parquet", [("X1", "X2"), ("X2", "X3"), ("X3", "X4")])  # no demo gene
# G0001's bfs inputs need it in the graph: this graph covers demo genes, but not G0001.
NO_G0001_GRAPH = graph("partial.parquet", [("G0002", "G0003"), ("G0003", "G0004")])


def config(name: str = "bad.yaml", **changes):
    """A tiny sweep config over the demo (tests/search/conftest.py::write_config) with ``changes``."""
    def make(tmp, ctx):
        write_config(tmp / name, ctx.demo, **_fmt(changes, tmp, ctx))
    return make


def experiment(folder: str = "exp", *, meta: bool = True, board: pd.DataFrame | None = None):
    """An experiment folder as `raygex search` leaves it: config.yaml, raygex.json (unless ``meta`` is False)."""
    def make(tmp, ctx):
        from raygex.experiment.layout import ExperimentLayout

        exp = tmp / folder
        exp.mkdir(parents=True)
        write_config(exp / "config.yaml", ctx.demo)
        if meta:
            ExperimentLayout(exp).write_meta()
        if board is not None:
            task_dir = exp / "subtype"
            task_dir.mkdir()
            board.assign(path=str(task_dir / "train_fn_gone")).to_parquet(task_dir / "leaderboard.parquet")
    return make


BOARD = pd.DataFrame({"rank": [1, 2], "trial_id": ["aaaa0001", "aaaa0002"], "status": ["TERMINATED"] * 2,
                      "config/model": ["lr", "mlp"], "epoch": [3, 3], "best_epoch": [2, 1],
                      "best_valid_auc": [0.9, 0.8]})


def model_copy(name: str, change: Callable[[Path, Path], None]):
    def make(tmp, ctx):
        change(ctx.model, tmp / name)
    return make


def _without_metadata(source: Path, path: Path):
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), str(path))


def _metadata_without(key: str):
    def change(source: Path, path: Path):
        import torch

        module = torch.jit.load(str(source), _extra_files=(files := {"raygex.json": ""}))
        metadata = json.loads(files["raygex.json"])
        del metadata[key]
        torch.jit.save(module, str(path), _extra_files={"raygex.json": json.dumps(metadata)})
    return change


def samples_table(name: str, genes: list[str], bad: tuple[int, int, str] | None = None):
    """A samples × genes TSV of 4 samples over ``genes``; ``bad`` = (row, column, text) puts a bad value in."""
    def make(tmp, ctx):
        values = np.arange(4 * len(genes), dtype=float).reshape(4, len(genes)) / 10
        frame = pd.DataFrame(values, columns=genes, index=pd.Index([f"S{i}" for i in range(4)], name="sample_id"))
        if bad is not None:
            frame = frame.astype(object)
            frame.iloc[bad[0], bad[1]] = bad[2]
        frame.to_csv(tmp / name, sep="\t")
    return make


DEMO_GENES = [f"G{i:04d}" for i in range(1, 151)]  # the demo names its genes G0001..G0150


# ---------------------------------------------------------------------------------------------- command makers
def data_import(*args: str) -> tuple[str, ...]:
    return ("data", "import", *args, "-o", "{tmp}/out.parquet")


def graph_import(*args: str) -> tuple[str, ...]:
    return ("graph", "import", *args, "-o", "{tmp}/out.parquet", "--name", "x")


def train(*args: str, cfg: str = "{tmp}/bad.yaml") -> tuple[str, ...]:
    return ("train", cfg, *args, "-p", "max_epochs=1", "--export", "{tmp}/model.pt")


def search(*args: str, cfg: str = "{tmp}/bad.yaml") -> tuple[str, ...]:
    return ("search", cfg, *args)


def predict(model: str, source: str) -> tuple[str, ...]:
    return ("predict", model, source, "-o", "{tmp}/pred.csv")


# ------------------------------------------------------------------------------------------------- the table
CASES = [
    # --- data import -----------------------------------------------------------------------------------------
    Case("import-empty-file", text("empty.tsv", ""), data_import("{tmp}/empty.tsv"),
         ("empty.tsv", "empty"), "out.parquet", debug=True),
    Case("import-unknown-format", raw_bytes("expr.xlsx", b"PK\x03\x04junk"), data_import("{tmp}/expr.xlsx"),
         ("expr.xlsx", "unknown format '.xlsx'"), "out.parquet"),
    Case("import-missing-file", nothing, data_import("{tmp}/nope.tsv"), ("nope.tsv", "not found"), "out.parquet"),
    Case("import-non-numeric-names-gene", text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\nS2\tbrain\t1.5\tabc\n"),
         data_import("{tmp}/expr.tsv", "--labels", "tissue"), ("expr.tsv", "'abc'", "'EGFR'"), "out.parquet"),
    Case("import-non-numeric-xena-names-sample", text("HiSeqV2", "sample\tS1\tS2\nTP53\t1.0\toops\n"),
         data_import("{tmp}/HiSeqV2"), ("HiSeqV2", "'oops'", "'S2'"), "out.parquet"),
    Case("import-missing-value", text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\nS2\tbrain\tNA\t4.0\n"),
         data_import("{tmp}/expr.tsv", "--labels", "tissue"), ("expr.tsv", "'S2'", "'TP53'", "--fill"),
         "out.parquet"),
    Case("import-infinite-value", text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\nS2\tbrain\t1.0\t-inf\n"),
         data_import("{tmp}/expr.tsv", "--labels", "tissue"), ("expr.tsv", "'S2'", "'EGFR'", "--fill"),
         "out.parquet"),
    Case("import-duplicate-sample", text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\nS1\tbrain\t1.5\t2.5\n"),
         data_import("{tmp}/expr.tsv", "--labels", "tissue"), ("expr.tsv", "duplicate sample id 'S1'"),
         "out.parquet"),
    Case("import-duplicate-sample-xena", text("HiSeqV2", "sample\tS1\tS1\nTP53\t1.0\t2.0\n"),
         data_import("{tmp}/HiSeqV2"), ("HiSeqV2", "duplicate sample id 'S1'"), "out.parquet"),
    Case("import-duplicate-gene-column", text("expr.tsv", "sample_id\tTP53\tTP53\nS1\t1.0\t2.0\n"),
         data_import("{tmp}/expr.tsv"), ("expr.tsv", "duplicate column 'TP53'"), "out.parquet"),
    Case("import-label-column-missing", text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\n"),
         data_import("{tmp}/expr.tsv", "--labels", "subtype"), ("expr.tsv", "label column 'subtype' not found"),
         "out.parquet"),
    Case("import-clinical-label-missing",
         both(text("HiSeqV2", "sample\tS1\tS2\nTP53\t1.0\t2.0\n"), text("clin", "sampleID\tgender\nS1\tMALE\n")),
         data_import("{tmp}/HiSeqV2", "--clinical", "{tmp}/clin", "--labels", "stage"),
         ("clin", "label column 'stage' not found"), "out.parquet"),
    Case("import-clinical-without-sampleid",
         both(text("HiSeqV2", "sample\tS1\tS2\nTP53\t1.0\t2.0\n"), text("clin", "patient\tgender\nS1\tMALE\n")),
         data_import("{tmp}/HiSeqV2", "--clinical", "{tmp}/clin"), ("clin", "'sampleID'", "'patient'"),
         "out.parquet"),
    Case("import-h5ad-obs-column-missing", h5ad(), data_import("{tmp}/cells.h5ad", "--labels", "bulk_labels"),
         ("cells.h5ad", "label column 'bulk_labels' not found in .obs", "cell_type"), "out.parquet", debug=True),
    Case("import-h5ad-layer-missing", h5ad(), data_import("{tmp}/cells.h5ad", "--layer", "counts"),
         ("cells.h5ad", "layer 'counts' not found"), "out.parquet"),
    Case("import-h5ad-no-raw", h5ad(), data_import("{tmp}/cells.h5ad", "--raw"),
         ("cells.h5ad", "no .raw matrix"), "out.parquet"),
    Case("import-corrupt-h5ad", raw_bytes("cells.h5ad", b"\x89HDF\r\n\x1a\n garbage"),
         data_import("{tmp}/cells.h5ad"), ("cells.h5ad", "not a readable .h5ad"), "out.parquet"),
    Case("import-header-without-rows", text("expr.tsv", TABLE), data_import("{tmp}/expr.tsv", "--labels", "tissue"),
         ("expr.tsv", "no samples"), "out.parquet"),
    Case("import-parquet-without-metadata", foreign_parquet(), data_import("{tmp}/wide.parquet"),
         ("wide.parquet", "no raygex gene order", "raygex data import"), "out.parquet"),
    Case("import-corrupt-parquet", raw_bytes("broken.parquet", b"PAR1 this is not parquet PAR1"),
         data_import("{tmp}/broken.parquet"), ("broken.parquet", "not a readable Parquet file"), "out.parquet"),
    Case("import-truncated-parquet", truncated_copy("{demo}/expression.parquet", "half.parquet"),
         data_import("{tmp}/half.parquet"), ("half.parquet", "not a readable Parquet file"), "out.parquet"),
    Case("import-labels-on-parquet", nothing, data_import("{demo}/expression.parquet", "--labels", "subtype"),
         ("expression.parquet", "--labels does not apply to Parquet"), "out.parquet"),
    Case("import-symbol-map-missing", text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\n"),
         data_import("{tmp}/expr.tsv", "--labels", "tissue", "--symbol-map", "{tmp}/hgnc.txt"),
         ("hgnc.txt", "mapping table not found"), "out.parquet"),
    Case("import-truncated-gzip", gzipped("expr.tsv.gz", LONG_TABLE, truncate=True), data_import("{tmp}/expr.tsv.gz"),
         ("expr.tsv.gz", "truncated or damaged"), "out.parquet"),
    Case("import-ragged-row", text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\nS2\tbrain\t1.5\n"),
         data_import("{tmp}/expr.tsv", "--labels", "tissue"), ("expr.tsv", "cannot parse", "Expected 4 columns"),
         "out.parquet"),
    Case("import-single-column", text("ids.tsv", "sample_id\nS1\nS2\n"), data_import("{tmp}/ids.tsv"),
         ("ids.tsv", "header has a single column"), "out.parquet"),
    Case("import-binary-as-text", raw_bytes("expr.tsv", b"\x7fELF\x02\x01\x01\x00\xf0\xff\xfe" * 20),
         data_import("{tmp}/expr.tsv"), ("expr.tsv", "cannot read as text"), "out.parquet"),
    Case("import-folder-without-parquet", folder("tables", "expr.tsv"), data_import("{tmp}/tables"),
         ("tables", "holds no .parquet files"), "out.parquet", keeps=("tables/expr.tsv",)),
    Case("import-clinical-file-missing", text("HiSeqV2", "sample\tS1\tS2\nTP53\t1.0\t2.0\n"),
         data_import("{tmp}/HiSeqV2", "--clinical", "{tmp}/clin"), ("clin", "clinical matrix not found"),
         "out.parquet"),
    Case("import-output-under-a-file", both(text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\n"), text("afile", "")),
         ("data", "import", "{tmp}/expr.tsv", "--labels", "tissue", "-o", "{tmp}/afile/out.parquet"),
         ("afile/out.parquet", "-o", "is a file, not a folder"), "afile/out.parquet"),
    Case("import-output-is-a-foreign-folder",
         both(text("expr.tsv", TABLE + "S1\tliver\t1.0\t2.0\n"), folder("results", "notes.txt")),
         ("data", "import", "{tmp}/expr.tsv", "--labels", "tissue", "-o", "{tmp}/results"),
         ("results", "-o names a folder that is not a raygex dataset", "refusing to replace it"),
         keeps=("results/notes.txt",)),
    Case("info-parquet-without-metadata", foreign_parquet(), ("data", "info", "{tmp}/wide.parquet"),
         ("wide.parquet", "no raygex gene order")),
    Case("info-empty-parquet-folder", lambda tmp, ctx: (tmp / "parts").mkdir(), ("data", "info", "{tmp}/parts"),
         ("parts", "holds no .parquet files")),

    # --- graph import and graph commands ---------------------------------------------------------------------
    Case("graph-empty-adjlist", text("empty.adjlist", ""), graph_import("{tmp}/empty.adjlist"),
         ("empty.adjlist", "empty"), "out.parquet"),
    Case("graph-unknown-format", text("graph.json", "A B\n"), graph_import("{tmp}/graph.json"),
         ("graph.json", "unknown graph format"), "out.parquet"),
    Case("graph-only-comments", text("only.tsv", "# x\n"), graph_import("{tmp}/only.tsv"),
         ("only.tsv", "no rows outside '#' comments"), "out.parquet"),
    Case("graph-missing-file", nothing, graph_import("{tmp}/nope.tsv"), ("nope.tsv", "graph file not found"),
         "out.parquet"),
    Case("graph-mapping-table-without-id-column",
         both(text("ids.tsv", "symbol\tuniprot\nTP53\tP04637\n"), text("e.tsv", "7157\t672\n")),
         graph_import("{tmp}/e.tsv", "--id-type", "entrez", "--map", "{tmp}/ids.tsv"),
         ("ids.tsv", "no entrez id column"), "out.parquet"),
    Case("graph-entrez-unknown-to-the-shipped-table", text("e.tsv", "999999991\t999999992\n"),
         graph_import("{tmp}/e.tsv", "--id-type", "entrez"),
         ("e.tsv", "no edges left", "2 of 2 node ids did not map", "hgnc_map.tsv.gz"), "out.parquet"),
    Case("graph-ids-that-do-not-map",
         both(text("ids.tsv", "symbol\tentrez\nTP53\t7157\n"), text("e.tsv", "11\t12\n12\t13\n")),
         graph_import("{tmp}/e.tsv", "--id-type", "entrez", "--map", "{tmp}/ids.tsv"),
         ("e.tsv", "no edges left", "3 of 3 node ids did not map"), "out.parquet"),
    Case("graph-non-numeric-weight", text("e.tsv", "a\tb\tscore\nTP53\tEGFR\thigh\n"),
         graph_import("{tmp}/e.tsv", "--weight-column", "score"),
         ("e.tsv", "weight column 'score' is not numeric", "'high'"), "out.parquet"),
    Case("graph-weight-column-missing", text("e.tsv", "a\tb\tscore\nTP53\tEGFR\t0.5\n"),
         graph_import("{tmp}/e.tsv", "--weight-column", "weight"), ("e.tsv", "no weight column 'weight'"),
         "out.parquet"),
    Case("graph-only-self-loops", text("loops.tsv", "TP53\tTP53\nEGFR\tEGFR\n"), graph_import("{tmp}/loops.tsv"),
         ("loops.tsv", "every edge left is a self-loop"), "out.parquet"),
    Case("graph-truncated-gzip", gzipped("g.adjlist.gz", "".join(f"A{i} B{i}\n" for i in range(3000)), truncate=True),
         graph_import("{tmp}/g.adjlist.gz"), ("g.adjlist.gz", "cannot decompress"), "out.parquet"),
    Case("graph-info-missing-file", nothing, ("graph", "info", "{tmp}/missing.parquet"),
         ("missing.parquet", "graph file not found")),
    Case("graph-info-dataset-not-graph", nothing, ("graph", "info", "{demo}/expression.parquet"),
         ("expression.parquet", "a raygex expression dataset, not a gene graph")),
    Case("graph-info-corrupt-parquet", raw_bytes("g.parquet", b"PAR1 junk"), ("graph", "info", "{tmp}/g.parquet"),
         ("g.parquet", "not a readable Parquet graph")),
    Case("graph-control-missing-file", nothing,
         ("graph", "control", "{tmp}/missing.parquet", "--kind", "random", "-o", "{tmp}/ctl.parquet"),
         ("missing.parquet", "graph file not found"), "ctl.parquet"),
    Case("graph-control-output-under-a-file", text("afile", ""),
         ("graph", "control", "{demo}/graph_true.parquet", "--kind", "empty", "-o", "{tmp}/afile/ctl.parquet"),
         ("afile/ctl.parquet", "is a file, not a folder"), "afile/ctl.parquet"),
    Case("graph-coverage-no-shared-genes", DISJOINT_GRAPH,
         ("graph", "coverage", "{tmp}/other.parquet", "{demo}/expression.parquet"),
         ("expression.parquet", "graph 'other' shares no genes with the dataset (150 genes)")),

    # --- configs ---------------------------------------------------------------------------------------------
    Case("config-missing-file", nothing, train(cfg="{tmp}/nope.yaml"), ("nope.yaml", "config file not found"),
         "model.pt"),
    Case("config-bad-yaml", text("bad.yaml", "name: [unclosed\n"), train(), ("bad.yaml", "not valid YAML"),
         "model.pt"),
    Case("config-not-a-mapping", text("bad.yaml", "- a\n- b\n"), train(), ("bad.yaml", "must be a mapping"),
         "model.pt"),
    Case("config-unknown-key", config(), train("--set", "foo=1"), ("bad.yaml", "foo: unknown key"), "model.pt",
         debug=True),
    Case("config-set-without-value", config(), train("--set", "search.num_samples"),
         ("--set needs key.path=value", "'search.num_samples'"), "model.pt"),
    Case("config-wrong-type", config(search={"num_samples": "many"}), train(),
         ("bad.yaml", "search.num_samples", "valid integer"), "model.pt"),
    Case("config-unknown-control", config(controls=["shuffled"]), train(), ("bad.yaml", "controls.0"), "model.pt"),
    Case("config-controls-without-graphs", config(graphs={}), train(),
         ("bad.yaml", "controls are compared with the configured graphs"), "model.pt"),
    Case("config-graph-named-like-a-control", config(graphs={"random": "{demo}/graph_true.parquet"}), train(),
         ("bad.yaml", "graphs", "reserved for controls"), "model.pt"),
    Case("config-duplicate-task-names",
         config(tasks=[{"name": "t", "kind": "classify", "label": "subtype"},
                       {"name": "t", "kind": "classify", "label": "response"}]), train(),
         ("bad.yaml", "task names must be unique"), "model.pt"),
    Case("config-bfs-without-size",
         config(tasks=[{"name": "sgi", "kind": "single_gene", "gene": "G0001",
                        "inputs": {"mode": "bfs", "graph": "true"}}]), train(),
         ("bad.yaml", "inputs.size", "required for mode 'bfs'"), "model.pt"),
    Case("config-dataset-missing", config(data={"expression": "{tmp}/nowhere.parquet"}), train(),
         ("nowhere.parquet", "data.expression: file not found"), "model.pt"),
    Case("config-dataset-without-metadata", both(foreign_parquet(), config(data={"expression": "{tmp}/wide.parquet"})),
         train(), ("wide.parquet", "no raygex gene order"), "model.pt"),
    Case("config-dataset-is-a-graph", config(data={"expression": "{demo}/graph_true.parquet"}), train(),
         ("graph_true.parquet", "a raygex gene graph, not an expression dataset"), "model.pt"),
    Case("config-graph-is-a-dataset", config(graphs={"true": "{demo}/expression.parquet"}), train(),
         ("expression.parquet", "a raygex expression dataset, not a gene graph"), "model.pt"),
    Case("config-graph-file-missing", config(graphs={"true": "{tmp}/nowhere.parquet"}), train(),
         ("nowhere.parquet", "graphs.true: file not found"), "model.pt"),

    # --- tasks, splits and graphs of one trial (raygex train) ------------------------------------------------
    Case("task-unknown", config(), train("--task", "nope"), ("task 'nope' is not in the config", "subtype"),
         "model.pt"),
    Case("task-label-column-missing", config(tasks=[{"name": "x", "kind": "classify", "label": "stage"}]), train(),
         ("task 'x'", "label column 'stage' not found", "subtype"), "model.pt"),
    Case("task-where-column-missing",
         config(tasks=[{"name": "x", "kind": "classify", "label": "subtype", "where": {"cohort": "LGG"}}]), train(),
         ("task 'x'", "where column 'cohort'"), "model.pt"),
    Case("task-one-class",
         both(dataset("one_class.parquet", with_label("tissue", "liver")),
              config(data={"expression": "{tmp}/one_class.parquet"},
                     tasks=[{"name": "tissue", "kind": "classify", "label": "tissue"}])), train(),
         ("task 'tissue'", "label 'tissue' has 1 class(es)", "needs 2", "'liver': 200"), "model.pt"),
    Case("task-gene-not-in-dataset",
         config(tasks=[{"name": "sgi", "kind": "single_gene", "gene": "TP53"}]), train(),
         ("task 'sgi'", "gene 'TP53' is not in the dataset"), "model.pt"),
    Case("task-gene-constant",
         both(dataset("flat.parquet", constant_gene("G0001")),
              config(data={"expression": "{tmp}/flat.parquet"},
                     tasks=[{"name": "sgi", "kind": "single_gene", "gene": "G0001"}])), train(),
         ("task 'sgi'", "gene 'G0001' is constant"), "model.pt"),
    Case("task-gene-without-neighbours",
         both(NO_G0001_GRAPH, config(graphs={"partial": "{tmp}/partial.parquet"}, controls=[],
                                     tasks=[{"name": "sgi", "kind": "single_gene", "gene": "G0001",
                                             "inputs": {"mode": "neighbors", "graph": "partial"}}])), train(),
         ("task 'sgi'", "gene 'G0001' has no neighbours in graph 'partial'"), "model.pt"),
    Case("task-input-graph-not-configured",
         config(tasks=[{"name": "sgi", "kind": "single_gene", "gene": "G0001",
                        "inputs": {"mode": "bfs", "size": 10, "graph": "string"}}]), train(),
         ("task 'sgi'", "inputs.graph 'string' is not a configured graph"), "model.pt"),
    Case("task-input-graph-shares-no-genes",
         both(DISJOINT_GRAPH, config(graphs={"other": "{tmp}/other.parquet"}, controls=[],
                                     tasks=[{"name": "sgi", "kind": "single_gene", "gene": "G0001",
                                             "inputs": {"mode": "bfs", "size": 10, "graph": "other"}}])), train(),
         ("task 'sgi'", "graph 'other'", "shares no genes with the dataset"), "model.pt"),
    Case("task-landmark-file-missing",
         config(tasks=[{"name": "sgi", "kind": "single_gene", "gene": "G0001",
                        "inputs": {"mode": "landmark", "landmark_file": "{tmp}/l1000.txt"}}]), train(),
         ("l1000.txt", "gene list not found"), "model.pt"),
    Case("task-landmarks-not-in-dataset",
         both(text("l1000.txt", "TP53\nEGFR\n"),
              config(tasks=[{"name": "sgi", "kind": "single_gene", "gene": "G0001",
                             "inputs": {"mode": "landmark", "landmark_file": "{tmp}/l1000.txt"}}])), train(),
         ("task 'sgi'", "none of the landmark genes is in the dataset"), "model.pt"),
    Case("split-train-larger-than-dataset", config(split={"train": 100000, "seeds": [0, 1]}), train(),
         ("split sizes train=100000", "but the task has 200"), "model.pt", debug=True),
    Case("split-fraction-above-one", config(split={"train": 1.5, "seeds": [0, 1]}), train(),
         ("split.train", "count or a fraction", "1.5"), "model.pt"),
    Case("split-too-small-for-classes", config(split={"train": 2, "valid": 50, "seeds": [0, 1]}), train(),
         ("split.train must hold at least one sample per class (3 classes)", "but got 2"), "model.pt"),
    Case("train-gcn-graph-shares-no-genes",
         both(DISJOINT_GRAPH, config(graphs={"other": "{tmp}/other.parquet"}, controls=[])),
         train("-p", "model=gcn", "-p", "graph=other"),
         ("expression.parquet", "graph 'other' shares no genes with the dataset (150 genes)"), "model.pt"),
    Case("train-unknown-graph", config(), train("-p", "model=gcn", "-p", "graph=string"),
         ("graph 'string' is not a graph choice", "decoy"), "model.pt"),
    Case("train-gcn-without-graphs",
         config(graphs={}, controls=[], tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}]),
         train("-p", "model=gcn"), ("a GCN trial needs a graph", "'graphs'"), "model.pt"),

    Case("train-unknown-model", config(), train("-p", "model=svm"), ("-p model must be one of", "'svm'"), "model.pt"),
    Case("train-unknown-hyperparameter", config(), train("-p", "model=mlp", "-p", "depht=3"),
         ("-p depht", "not a known hyperparameter"), "model.pt"),
    Case("train-non-integer-hyperparameter", config(), train("-p", "model=gcn", "-p", "channels=abc"),
         ("-p channels must be an integer", "'abc'"), "model.pt"),
    Case("train-negative-learning-rate", config(), train("-p", "model=lr", "-p", "lr=-0.1"),
         ("-p lr must be > 0", "-0.1"), "model.pt"),
    Case("train-model-cannot-be-built", config(), train("-p", "model=gcn", "-p", "depth=0"),
         ("-p", "gcn model cannot be built", "depth must be at least 1, but got 0"), "model.pt"),
    Case("train-bad-device", config(), train("-p", "model=lr", "--device", "gpu0"),
         ("--device must be a torch device", "'gpu0'"), "model.pt"),
    Case("train-export-under-a-file", both(config(), text("afile", "")),
         ("train", "{tmp}/bad.yaml", "-p", "model=lr", "--export", "{tmp}/afile/model.pt"),
         ("afile/model.pt", "--export", "is a file, not a folder"), "afile/model.pt"),

    # --- search: config errors caught before Ray starts ------------------------------------------------------
    Case("search-num-samples-zero", config(search={"num_samples": 0}), search(),
         ("bad.yaml", "search.num_samples", "greater than or equal to 1"), "results/tiny"),
    Case("search-space-unknown-parameter",
         config(search={"num_samples": 2, "space": {"model": ["gcn"], "depthh": {"int": [1, 2]}}}), search(),
         ("search.space.depthh is not a known hyperparameter",), "results/tiny", debug=True),
    Case("search-space-gcn-only-without-graphs",  # the space is empty once `graph` has no choice left
         config(graphs={}, controls=[], tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                search={"num_samples": 2, "space": {"model": ["gcn"], "depth": {"int": [1, 2]}}}), search(),
         ("search.space.model includes gcn but the config has no graphs",), "results/tiny"),
    Case("search-space-graph-all-without-graphs",
         config(graphs={}, controls=[], tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                search={"num_samples": 2, "space": {"model": ["gcn", "mlp"], "graph": "all"}}), search(),
         ("search.space.graph is 'all' but the config has no graphs",), "results/tiny"),
    Case("search-space-empty-model-list", config(search={"num_samples": 2, "space": {"model": []}}), search(),
         ("search.space.model is an empty list",), "results/tiny"),
    Case("search-space-unknown-model", config(search={"num_samples": 2, "space": {"model": ["svm"]}}), search(),
         ("search.space.model must be among", "'svm'"), "results/tiny"),
    Case("search-space-graph-not-configured",
         config(search={"num_samples": 2, "space": {"model": ["gcn"], "graph": ["string"]}}), search(),
         ("search.space.graph 'string' is not a configured graph",), "results/tiny"),
    Case("search-space-bad-log-range",
         config(search={"num_samples": 2, "space": {"model": ["lr"], "lr": {"loguniform": [0, 0.1]}}}), search(),
         ("search.space.lr.loguniform", "low > 0", "[0, 0.1]"), "results/tiny"),
    Case("search-space-unknown-distribution",
         config(search={"num_samples": 2, "space": {"model": ["mlp"], "dropout": {"normal": [0, 1]}}}), search(),
         ("search.space.dropout must be a list, a scalar or one of", "'normal'"), "results/tiny"),
    Case("search-unknown-metric", config(search={"num_samples": 2, "metric": "valid_f1"}), search(),
         ("search.metric must be one of", "'valid_f1'"), "results/tiny"),
    Case("search-unknown-selection-rule", config(search={"num_samples": 2, "select": "luckiest"}), search(),
         ("bad.yaml", "search.select: Input should be 'one_se' or 'best'"), "results/tiny"),
    Case("search-metric-disagrees-with-train-metric",
         config(train={"max_epochs": 1, "patience": 1, "metric": "loss"}, search={"num_samples": 2, "metric": "valid_auc"}),
         search(), ("bad.yaml", "search.metric must be 'valid_loss'", "but got 'valid_auc'"), "results/tiny"),
    Case("search-num-samples-below-choices",
         config(search={"num_samples": 3, "space": {"model": ["gcn", "mlp", "lr"], "graph": "all"}}), search(),
         ("search.num_samples must be at least the number of start trials (7:", "gcn/decoy:random", "but got 3"),
         "results/tiny"),
    Case("search-unknown-start-trials", config(search={"num_samples": 8, "start_trials": "graphs"}), search(),
         ("bad.yaml", "search.start_trials: Input should be 'choices' or 'families'"), "results/tiny"),
    Case("config-coexpression-control-too-few-training-samples",
         config(controls=["random", "coexpression"], split={"train": 2, "valid": 10, "test": 10, "seeds": [0, 1]}),
         search(), ("bad.yaml", "controls: coexpression needs at least 3 training samples per split",
                    "split.train is 2"), "results/tiny"),
    Case("config-verdict-needs-two-split-seeds",
         config(split={"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0]}), search(),
         ("bad.yaml", "split.seeds must hold at least 2 seeds for a graph-vs-control verdict", "[0]"), "results/tiny"),
    Case("config-test-zero-with-controls",
         config(split={"train": 0.5, "valid": 0.25, "test": 0, "seeds": [0, 1]}), search(),
         ("bad.yaml", "split.test must be positive", "but got 0", "test set that selection never sees"),
         "results/tiny"),
    Case("config-test-zero-one-seed-no-controls",
         config(controls=[], split={"train": 0.5, "valid": 0.25, "test": 0.0, "seeds": [0]}), search(),
         ("bad.yaml", "split.test must be positive", "but got 0.0"), "results/tiny"),
    Case("config-folds-below-two",
         config(split={"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0, 1], "folds": 1}), search(),
         ("bad.yaml", "split.folds must be at least 2", "but got 1"), "results/tiny"),
    Case("config-valid-zero-without-folds",
         config(split={"train": 0.5, "valid": 0, "test": 0.25, "seeds": [0, 1], "folds": None}), search(),
         ("bad.yaml", "split.valid is 0 and split.folds is null"), "results/tiny"),
    Case("search-more-folds-than-the-rarest-class",
         config(split={"train": 6, "valid": 3, "test": 30, "seeds": [0, 1], "folds": 5}), search(),
         ("task 'subtype'", "split.folds is 5, but class", "labelled (non-test) samples"), "results/tiny"),
    Case("config-graph-name-with-colon", config(graphs={"a:b": "{demo}/graph_true.parquet"}), search(),
         ("bad.yaml", "graph names must not contain ':'", "'a:b'"), "results/tiny"),
    Case("search-graph-file-missing", config(graphs={"true": "/nowhere/graph.parquet"}), search(),
         ("graph.parquet", "graphs.true: file not found"), "results/tiny"),
    Case("search-dataset-missing", config(data={"expression": "{tmp}/nowhere.parquet"}), search(),
         ("nowhere.parquet", "data.expression: file not found", "raygex data demo"), "results/tiny"),
    Case("search-task-label-missing", config(tasks=[{"name": "x", "kind": "classify", "label": "stage"}]), search(),
         ("task 'x'", "label column 'stage' not found"), "results/tiny"),
    Case("search-graph-shares-no-genes", both(DISJOINT_GRAPH, config(graphs={"true": "{tmp}/other.parquet"})),
         search(), ("other.parquet", "graphs.true", "shares no genes with the dataset"), "results/tiny"),
    Case("search-experiment-exists", both(config(), experiment("results/tiny")), search(),
         ("tiny", "already exists", "raygex resume")),

    # --- export / report / status on experiment folders ------------------------------------------------------
    Case("export-not-an-experiment", lambda tmp, ctx: (tmp / "exp").mkdir(),
         ("export", "{tmp}/exp", "-o", "{tmp}/models"), ("exp", "not a raygex experiment folder (no config.yaml)"),
         "models"),
    Case("export-experiment-from-older-raygex", experiment(meta=False),
         ("export", "{tmp}/exp", "-o", "{tmp}/models"), ("exp", "older raygex", "raygex.json"), "models"),
    Case("report-experiment-from-older-raygex", experiment(meta=False), ("report", "{tmp}/exp"),
         ("exp", "older raygex", "raygex.json"), "exp/report.html"),
    Case("status-experiment-from-older-raygex", experiment(meta=False), ("status", "{tmp}/exp"),
         ("exp", "older raygex", "raygex.json")),
    Case("export-no-finished-sweep", experiment(), ("export", "{tmp}/exp", "-o", "{tmp}/models"),
         ("exp", "no task has a leaderboard yet"), "models"),
    Case("export-unknown-task", experiment(), ("export", "{tmp}/exp", "--task", "nope", "-o", "{tmp}/models"),
         ("task 'nope' is not in the config",), "models"),
    Case("export-task-without-leaderboard", experiment(),
         ("export", "{tmp}/exp", "--task", "subtype", "-o", "{tmp}/models"),
         ("exp", "task 'subtype' has no leaderboard yet"), "models"),
    Case("export-trial-without-task", experiment(), ("export", "{tmp}/exp", "--trial", "aaaa0001"),
         ("--trial needs --task",), "exp/models"),
    Case("export-unknown-trial", experiment(board=BOARD),
         ("export", "{tmp}/exp", "--task", "subtype", "--trial", "nope", "-o", "{tmp}/models"),
         ("--trial 'nope' is not in the leaderboard", "aaaa0001"), "models"),
    Case("export-trial-folder-gone", experiment(board=BOARD),
         ("export", "{tmp}/exp", "--task", "subtype", "-o", "{tmp}/models"),
         ("train_fn_gone", "trial aaaa0001", "no params.json"), "models"),
    Case("export-out-is-a-file", both(experiment(), text("models", "")),
         ("export", "{tmp}/exp", "-o", "{tmp}/models"), ("models", "-o/--out must be a folder", "existing file"),
         keeps=("models",)),
    Case("export-corrupt-leaderboard",
         both(experiment(), lambda tmp, ctx: ((tmp / "exp/subtype").mkdir(),
                                             (tmp / "exp/subtype/leaderboard.parquet").write_bytes(b"PAR1 junk"))),
         ("export", "{tmp}/exp", "--task", "subtype", "-o", "{tmp}/models"),
         ("leaderboard.parquet", "not a readable leaderboard"), "models"),

    # --- predict ---------------------------------------------------------------------------------------------
    Case("predict-model-missing", samples_table("x.tsv", DEMO_GENES), predict("{tmp}/nope.pt", "{tmp}/x.tsv"),
         ("nope.pt", "model file not found"), "pred.csv"),
    Case("predict-model-not-torchscript",
         both(raw_bytes("bad.pt", b"not a model at all"), samples_table("x.tsv", DEMO_GENES)),
         predict("{tmp}/bad.pt", "{tmp}/x.tsv"), ("bad.pt", "not a TorchScript model file"), "pred.csv", debug=True),
    Case("predict-model-truncated",
         both(truncated_copy("{model}", "half.pt"), samples_table("x.tsv", DEMO_GENES)),
         predict("{tmp}/half.pt", "{tmp}/x.tsv"), ("half.pt", "not a TorchScript model file"), "pred.csv"),
    Case("predict-torchscript-not-raygex",
         both(model_copy("plain.pt", _without_metadata), samples_table("x.tsv", DEMO_GENES)),
         predict("{tmp}/plain.pt", "{tmp}/x.tsv"), ("plain.pt", "not a raygex model"), "pred.csv"),
    Case("predict-model-metadata-incomplete",
         both(model_copy("old.pt", _metadata_without("classes")), samples_table("x.tsv", DEMO_GENES)),
         predict("{tmp}/old.pt", "{tmp}/x.tsv"), ("old.pt", "missing field(s) ['classes']"), "pred.csv"),
    Case("predict-model-of-another-task",  # the input is a panel of other genes: the model's are all missing
         samples_table("panel.tsv", ["TP53", "EGFR", "MYC", "G0001", "G0002"]), predict("{model}", "{tmp}/panel.tsv"),
         ("subtype.pt", "panel.tsv", "148 of the model's 150 genes are missing", "G0003", "--allow-missing"),
         "pred.csv", debug=True),
    Case("predict-input-non-numeric", samples_table("x.tsv", DEMO_GENES, bad=(2, 5, "high")),
         predict("{model}", "{tmp}/x.tsv"), ("x.tsv", "non-numeric expression value 'high'", "'G0006'"), "pred.csv"),
    Case("predict-input-missing-value", samples_table("x.tsv", DEMO_GENES, bad=(2, 5, "NA")),
         predict("{model}", "{tmp}/x.tsv"), ("x.tsv", "sample 'S2'", "gene 'G0006'", "non-finite"), "pred.csv"),
    Case("predict-input-missing", nothing, predict("{model}", "{tmp}/nope.tsv"), ("nope.tsv", "not found"),
         "pred.csv"),
    Case("predict-input-parquet-without-metadata", foreign_parquet(), predict("{model}", "{tmp}/wide.parquet"),
         ("wide.parquet", "no raygex gene order"), "pred.csv"),
    Case("predict-input-empty-folder", folder("parts"), predict("{model}", "{tmp}/parts"),
         ("parts", "holds no .parquet files"), "pred.csv"),
    Case("predict-output-is-a-folder", both(samples_table("x.tsv", DEMO_GENES), folder("pred.csv", "keep.txt")),
         predict("{model}", "{tmp}/x.tsv"), ("pred.csv", "-o/--out names an existing folder"),
         keeps=("pred.csv/keep.txt",)),
    Case("predict-input-corrupt-h5ad", raw_bytes("cells.h5ad", b"\x89HDF\r\n\x1a\n garbage"),
         predict("{model}", "{tmp}/cells.h5ad"), ("cells.h5ad", "not a readable .h5ad"), "pred.csv"),
]


# -------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> Ctx:
    """A 200 × 150 demo cohort with its graphs, and a logistic-regression model of its subtype task."""
    from raygex.data.demo import make_demo_cohort
    from raygex.export.winner import write_model
    from tests.export.conftest import trained

    demo = tmp_path_factory.mktemp("bad_input_demo")
    data, true, decoy = make_demo_cohort(0, n_samples=200, n_genes=150)
    write_dataset(data, demo / "expression.parquet")
    write_graph(true, demo / "graph_true.parquet")
    write_graph(decoy, demo / "graph_decoy.parquet")
    config_path = write_config(demo / "demo.yaml", demo)
    config, trial, result, hparams = trained(config_path, "subtype", {"model": "lr", "max_epochs": 1})
    model = demo / "models" / "subtype.pt"
    write_model(config, "subtype", result.model, trial, hparams, model)
    return Ctx(demo, model)


def _ray_running() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def _leftovers(tmp: Path, output: str) -> list[Path]:
    """The output, or a temporary sibling of it (``.<name>.*.tmp`` from atomic writes)."""
    out = tmp / output
    if not out.parent.exists():
        return []
    return ([out] if out.exists() else []) + list(out.parent.glob(f".{out.name}.*"))


# ----------------------------------------------------------------------------------------------------- tests
def test_the_catalogue_covers_every_stage():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(CASES) >= 30
    stages = {case.args[0] if case.args[0] not in ("data", "graph") else " ".join(case.args[:2]) for case in CASES}
    assert {"data import", "graph import", "train", "search", "export", "predict"} <= stages, stages


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, ctx: Ctx, tmp_path, run_cli):
    case.make(tmp_path, ctx)
    ray_was_running = _ray_running()
    code, out, err = run_cli(*(_fmt(a, tmp_path, ctx) for a in case.args))
    assert code == case.code, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raygex: error: "), err
    for word in case.words:
        assert _fmt(word, tmp_path, ctx) in lines[0], f"{word!r} not in: {lines[0]}"
    assert "Traceback" not in out + err
    if case.output is not None:
        assert not _leftovers(tmp_path, case.output), f"partial output left: {_leftovers(tmp_path, case.output)}"
    for kept in case.keeps:
        assert (tmp_path / kept).exists(), f"{kept} was removed"
    assert ray_was_running or not _ray_running(), "bad input must be refused before Ray starts"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.debug])
def test_debug_shows_the_traceback(case: Case, ctx: Ctx, tmp_path, monkeypatch):
    from raygex.cli import main

    monkeypatch.delenv("RAYGEX_DEBUG", raising=False)
    case.make(tmp_path, ctx)
    with pytest.raises(RaygexError) as info:
        main(["--debug", *(_fmt(a, tmp_path, ctx) for a in case.args)])
    assert info.value.__traceback__ is not None
    if case.output is not None:
        assert not _leftovers(tmp_path, case.output)


SCHEMA_CHECKED = ("task-label-column-missing", "task-where-column-missing", "task-gene-not-in-dataset",
                  "task-input-graph-not-configured", "task-landmark-file-missing")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.id in SCHEMA_CHECKED])
def test_check_tasks_finds_task_errors_from_the_schema_alone(case: Case, ctx: Ctx, tmp_path, monkeypatch):
    """What `raygex search` can check before Ray starts: the same one-line errors as building the task."""
    from raygex import prepare as experiment
    from raygex.config import load_config
    from raygex.errors import ConfigError, InputFormatError

    case.make(tmp_path, ctx)
    monkeypatch.setattr(experiment, "read_dataset", lambda *a: pytest.fail("check_tasks read the expression"))
    with pytest.raises((ConfigError, InputFormatError)) as info:
        experiment.check_tasks(load_config(tmp_path / "bad.yaml"))
    for word in case.words:
        assert _fmt(word, tmp_path, ctx) in str(info.value)


def test_check_tasks_accepts_a_good_config(ctx: Ctx, tmp_path):
    from raygex.config import load_config
    from raygex.data.prepare import check_tasks

    check_tasks(load_config(write_config(tmp_path / "good.yaml", ctx.demo)))


def test_check_graphs_finds_a_graph_without_dataset_genes(ctx: Ctx, tmp_path):
    from raygex.config import load_config
    from raygex.errors import ConfigError
    from raygex.data.prepare import check_graphs

    check_graphs(load_config(write_config(tmp_path / "good.yaml", ctx.demo)))
    DISJOINT_GRAPH(tmp_path, ctx)
    bad = write_config(tmp_path / "bad.yaml", ctx.demo, graphs={"true": str(tmp_path / "other.parquet")})
    with pytest.raises(ConfigError, match=r"other.parquet: graphs.true: graph shares no genes with the dataset .*"
                                          r"\(150 genes, e.g. \['G0001'"):
        check_graphs(load_config(bad))


def test_shared_inputs_are_left_untouched(ctx: Ctx):
    """Rows read the shared demo and model; none may have changed them (a failed command writes nothing)."""
    assert sorted(p.name for p in ctx.demo.iterdir()) == ["demo.yaml", "expression.parquet", "graph_decoy.parquet",
                                                          "graph_true.parquet", "models"]
    assert read_dataset(ctx.demo / "expression.parquet").n_samples == 200
    assert [p.name for p in (ctx.demo / "models").iterdir() if not p.name.startswith("subtype.")] == []
