"""`raygex config new`: a commented starter config that `raygex search` accepts as written.

Which label columns make tasks (and why the others do not), the written file validated with ``load_config`` and
checked as `raygex search` checks a config before Ray starts, every bad input as one line and exit 2 with no
output left behind, and (slow) one search of a starter config end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from raygex.config import load_config, standard_space
from raygex.config.starter import LabelColumn, choose_tasks, skip_reason
from raygex.data.canonical import ExpressionDataset, write_dataset
from raygex.graphs.store import Graph, write_graph
from tests.search.conftest import write_demo


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """The search tests' tiny demo cohort (160 samples x 150 genes, labels subtype, response, batch; two graphs)."""
    return write_demo(tmp_path_factory.mktemp("demo"))


def odd_dataset(path: Path, n: int = 120) -> Path:
    """Label columns of every kind: ids, measurements, a constant, rare classes, gaps, a name with a space."""
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({
        "patient_id": [f"P{i // 2}" for i in range(n)],  # repeats, but named like an id
        "barcode_x": [f"B{i}" for i in range(n)],  # unique
        "age": rng.normal(60, 10, n),  # a measurement
        "stage": pd.array([1, 2, 3, None] * (n // 4), dtype="Int64").astype(float),  # integers with gaps
        "grade": rng.integers(1, 4, n),
        "count": rng.integers(0, 1000, n),
        "one": ["x"] * n,
        "tissue type": (["lung", "liver", "brain"] * n)[:n],
        "rare": ["a"] * (n - 12) + ["b"] * 5 + ["c"] * 7,
        "flag": rng.random(n) < 0.5,
        "empty": [None] * n,
        "two\nlines": [f"v{i}" for i in range(n)],  # a line break in a name must not end a comment
    })
    genes = [f"G{i:04d}" for i in range(30)]
    write_dataset(ExpressionDataset([f"S{i}" for i in range(n)], rng.random((n, 30)), genes, obs), path)
    return path


def test_label_columns_make_tasks_or_say_why_not():
    def column(name, kind="text", counts=None, present=None, integral=True):
        counts = counts or {}
        return LabelColumn(name, kind, sum(counts.values()) if present is None else present, counts, integral)

    two = {"A": 30, "B": 20}
    assert skip_reason(column("subtype", counts=two)) is None
    assert skip_reason(column("sample_type", counts=two)) is None  # a word, not an id
    assert skip_reason(column("patient_id", counts=two)) == "named like an id"
    assert skip_reason(column("sampleID", counts=two)) == "named like an id"
    assert "near-unique" in skip_reason(column("code", counts={f"c{i}": 1 for i in range(50)}))
    assert "numeric" in skip_reason(column("age", "float", {"61.5": 10, "40.2": 10}, integral=False))
    assert skip_reason(column("stage", "float", {"1.0": 10, "2.0": 10})) is None  # integers with gaps
    assert "numeric" in skip_reason(column("count", "integer", {str(i): 10 for i in range(20)}))
    assert "1 class(es) with at least 10" in skip_reason(column("rare", counts={"a": 50, "b": 9}))
    assert skip_reason(column("none", present=0)) == "no values"
    tasks, skipped = choose_tasks([column("a b", counts={"x": 12, "y": 10, "z": 3}), column("a_b", counts=two)])
    assert [t.name for t in tasks] == ["a_b", "a_b_2"] and not skipped  # names fit folders, and stay unique
    assert tasks[0].classes == {"x": 12, "y": 10} and tasks[0].rare == {"z": 3} and tasks[0].samples == 22


def _sections(text: str) -> dict[str, bool]:
    """Each top-level key of the YAML text → whether a comment line comes right before it."""
    lines = text.splitlines()
    return {line.split(":")[0]: i > 0 and lines[i - 1].startswith("#")
            for i, line in enumerate(lines) if line and not line[0].isspace() and not line.startswith("#")}


def test_starter_for_the_tiny_demo_loads_and_is_commented(tiny_demo, tmp_path, run_cli):
    out = tmp_path / "configs" / "starter.yaml"
    code, stdout, err = run_cli("config", "new", tiny_demo / "expression.parquet",
                                "--graph", f"true={tiny_demo / 'graph_true.parquet'}",
                                "--graph", f"decoy={tiny_demo / 'graph_decoy.parquet'}", "-o", out)
    assert code == 0, err
    assert f"wrote {out}" in stdout and f"raygex search {out}" in stdout
    config = load_config(out)
    assert [(t.name, t.label) for t in config.tasks] == [("subtype", "subtype"), ("response", "response"),
                                                         ("batch", "batch")]
    assert config.graphs == {"true": str(tiny_demo / "graph_true.parquet"),
                             "decoy": str(tiny_demo / "graph_decoy.parquet")}
    assert config.controls == ["random", "empty"]
    assert config.graph_choices() == ["true", "decoy", "true:random", "decoy:random", "empty"]
    assert config.split.folds == "auto" and len(config.split.seeds) >= 2
    assert config.search.space == standard_space(True)
    assert config.search.num_samples >= 7  # every start trial (mlp, lr, the GCN on 5 graph choices) fits
    text = out.read_text()
    sections = _sections(text)
    assert set(sections) == {"name", "data", "graphs", "controls", "tasks", "split", "train", "search", "resources",
                             "storage", "wandb"}
    assert all(sections.values()), f"sections without a comment: {[k for k, v in sections.items() if not v]}"
    assert "`random` gives each graph its own degree-preserving" in text
    assert max(len(line) for line in text.splitlines() if "#" in line) <= 120  # paths may be long, comments not
    assert not list(out.parent.glob(".*.tmp"))  # written atomically: no temporary sibling left


def test_starter_says_which_columns_it_left_out_and_prints_without_output(tmp_path, run_cli):
    dataset = odd_dataset(tmp_path / "odd.parquet")
    code, stdout, err = run_cli("config", "new", dataset)
    assert code == 0, err
    raw = yaml.safe_load(stdout)  # printed: the config itself
    assert [t["label"] for t in raw["tasks"]] == ["stage", "grade", "tissue type", "flag"]
    assert [t["name"] for t in raw["tasks"]] == ["stage", "grade", "tissue_type", "flag"]
    assert "graphs" not in raw and "controls" not in raw
    assert raw["search"]["space"]["model"] == ["mlp", "lr"]
    for line in ("#   patient_id: named like an id", "#   barcode_x: near-unique", "#   age: numeric",
                 "#   count: numeric", "#   one: 1 class(es)", "#   rare: 1 class(es)", "#   empty: no values",
                 "#   two lines: near-unique",
                 "30 samples without a label"):
        assert line in stdout, line
    config_path = tmp_path / "printed.yaml"
    config_path.write_text(stdout)
    assert load_config(config_path).split.train == 0.5  # a small cohort keeps 30 % for its test set


def _no_labels(tmp: Path) -> None:
    rng = np.random.default_rng(1)
    obs = pd.DataFrame({"donor": ["d1", "d2"] * 20, "value": rng.random(40)})
    write_dataset(ExpressionDataset([f"S{i}" for i in range(40)], rng.random((40, 5)), list("ABCDE"), obs),
                  tmp / "nolabels.parquet")


def _text(tmp: Path) -> None:
    (tmp / "table.csv").write_text("sample,gene\nS1,1.0\n")
    (tmp / "exists.yaml").write_text("keep me\n")
    write_graph(Graph.from_edges("far", np.array(["X1", "X2"]), np.array(["X2", "X3"])), tmp / "far.parquet")


BAD = [  # (id, args after `config new`, words the error names)
    ("missing-dataset", ["{tmp}/nope.parquet", "-o", "{tmp}/out.yaml"], ["nope.parquet", "file not found"]),
    ("not-parquet", ["{tmp}/table.csv", "-o", "{tmp}/out.yaml"], ["table.csv", "not a readable Parquet"]),
    ("graph-as-dataset", ["{demo}/graph_true.parquet", "-o", "{tmp}/out.yaml"],
     ["graph_true.parquet", "a raygex gene graph, not an expression dataset"]),
    ("no-label-column", ["{tmp}/nolabels.parquet", "-o", "{tmp}/out.yaml"],
     ["nolabels.parquet", "no label column makes a classification task", "donor: named like an id"]),
    ("graph-without-name", ["{demo}/expression.parquet", "--graph", "{demo}/graph_true.parquet", "-o",
                            "{tmp}/out.yaml"], ["--graph", "must be NAME=PATH"]),
    ("graph-missing", ["{demo}/expression.parquet", "--graph", "g={tmp}/nope.parquet", "-o", "{tmp}/out.yaml"],
     ["--graph g=", "nope.parquet", "file not found"]),
    ("graph-reserved-name", ["{demo}/expression.parquet", "--graph", "empty={demo}/graph_true.parquet", "-o",
                             "{tmp}/out.yaml"], ["--graph empty=", "reserved for a control"]),
    ("graph-bad-name", ["{demo}/expression.parquet", "--graph", "a:b={demo}/graph_true.parquet", "-o",
                        "{tmp}/out.yaml"], ["--graph a:b=", "the name must be"]),
    ("graph-twice", ["{demo}/expression.parquet", "--graph", "g={demo}/graph_true.parquet", "--graph",
                     "g={demo}/graph_decoy.parquet", "-o", "{tmp}/out.yaml"], ["--graph g=", "given twice"]),
    ("graph-is-dataset", ["{demo}/expression.parquet", "--graph", "g={demo}/expression.parquet", "-o",
                          "{tmp}/out.yaml"], ["--graph g=", "not a gene graph"]),
    ("graph-shares-no-gene", ["{demo}/expression.parquet", "--graph", "far={tmp}/far.parquet", "-o",
                              "{tmp}/out.yaml"], ["--graph far=", "shares no gene with the dataset"]),
    ("output-exists", ["{demo}/expression.parquet", "-o", "{tmp}/exists.yaml"],
     ["exists.yaml", "-o", "exists", "--force"]),
    ("output-is-folder", ["{demo}/expression.parquet", "-o", "{tmp}"], ["-o", "existing folder"]),
    ("bad-experiment-name", ["{demo}/expression.parquet", "--name", "a/b", "-o", "{tmp}/out.yaml"],
     ["--name", "'a/b'"]),
]


@pytest.mark.parametrize("args,words", [pytest.param(a, w, id=i) for i, a, w in BAD])
def test_bad_input_is_one_line_naming_it(tiny_demo, tmp_path, run_cli, args, words):
    _no_labels(tmp_path)
    _text(tmp_path)
    code, stdout, err = run_cli("config", "new", *[a.format(tmp=tmp_path, demo=tiny_demo) for a in args])
    assert code == 2, (stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raygex: error: "), err
    assert "Traceback" not in err + stdout
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "out.yaml").exists() and not list(tmp_path.glob(".out.yaml.*"))
    assert (tmp_path / "exists.yaml").read_text() == "keep me\n"


def test_force_replaces_an_existing_output(tiny_demo, tmp_path, run_cli):
    out = tmp_path / "exists.yaml"
    out.write_text("old\n")
    code, _, err = run_cli("config", "new", tiny_demo / "expression.parquet", "-o", out, "--force",
                           "--name", "mine")
    assert code == 0, err
    assert load_config(out).name == "mine"


@pytest.mark.slow
def test_a_starter_config_searches_end_to_end(tmp_path):
    """`raygex search` runs a starter config as written; only its size is cut with --set (one graph, a 120-sample
    cohort, 5 trials of 2 epochs, 2 split seeds, one split)."""
    rng = np.random.default_rng(0)
    n, genes = 120, [f"G{i:04d}" for i in range(40)]
    y = np.array(["A", "B"] * (n // 2))
    obs = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "subtype": y, "age": rng.normal(50, 5, n)})
    x = rng.random((n, len(genes))) + (y == "A")[:, None] * 0.5
    write_dataset(ExpressionDataset([f"S{i}" for i in range(n)], x, genes, obs), tmp_path / "small.parquet")
    write_graph(Graph.from_edges("chain", np.array(genes[:-1]), np.array(genes[1:])), tmp_path / "chain.parquet")
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
           "WANDB_MODE": "disabled"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "raygex", *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    made = cli("config", "new", "small.parquet", "--graph", "chain=chain.parquet", "-o", "small.yaml")
    assert made.returncode == 0, made.stderr
    ran = cli("search", "small.yaml", "--set", "search.num_samples=5", "--set", "train.max_epochs=2",
              "--set", "split.seeds=[0,1]", "--set", "split.folds=null")
    assert ran.returncode == 0, ran.stderr[-3000:]
    experiment = tmp_path / "results" / "small"
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    assert len(board) == 5 and (board["status"] != "ERROR").all()
    assert (experiment / "report.html").is_file() and (experiment / "models" / "subtype.pt").is_file()
