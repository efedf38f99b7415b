"""Both task kinds: label handling, gene selection by graph, masking, and training-only thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from raygex.data.canonical import ExpressionDataset
from raygex.errors import ConfigError
from raygex.graphs.store import Graph
from raygex.config.tasks import ClassifyTask, GeneInputs, SingleGeneTask, TaskSpec
from raygex.data.tasks import build_task

GENES = ["A", "B", "C", "D", "E", "F"]


def make_dataset(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(GENES))).astype(np.float32)
    subtype = np.array(["luminal"] * 50 + ["basal"] * 40 + ["her2"] * 25 + ["rare"] * 5, dtype=object)[:n]
    subtype[3] = None
    cohort = np.array(["BRCA", "LGG"] * (n // 2), dtype=object)
    return ExpressionDataset([f"S{i}" for i in range(n)], x, GENES,
                             pd.DataFrame({"subtype": subtype, "cohort": cohort}))


# A path A - B - C - D, plus E - F apart: BFS from A reaches B, C, D in that order.
GRAPH = Graph.from_edges("g", ["A", "B", "C", "E"], ["B", "C", "D", "F"])


def test_classify_drops_missing_and_rare_classes():
    task = build_task(ClassifyTask(name="t", label="subtype"), make_dataset())
    assert task.classes == ["basal", "her2", "luminal"]
    assert len(task.y) == 114  # 120 - 1 missing - 5 rare
    assert task.info["dropped_rare_classes"] == {"rare": 5}
    assert task.x.shape == (114, 6) and task.genes == GENES


def test_classify_where_filters_samples():
    task = build_task(ClassifyTask(name="t", label="subtype", where={"cohort": "BRCA"}), make_dataset())
    assert set(task.sample_ids) <= {f"S{i}" for i in range(0, 120, 2)}


def test_classify_needs_two_classes():
    with pytest.raises(ConfigError, match="needs 2"):
        build_task(ClassifyTask(name="t", label="subtype", min_samples_per_class=45), make_dataset())


def test_classify_unknown_label_column_is_named():
    with pytest.raises(ConfigError, match="label column 'stage' not found"):
        build_task(ClassifyTask(name="t", label="stage"), make_dataset())


@pytest.mark.parametrize("mode,size,expected", [
    ("neighbors", None, ["A", "B"]),
    ("bfs", 3, ["A", "B", "C"]),
    ("bfs", 10, ["A", "B", "C", "D"]),
    ("all", None, GENES),
])
def test_single_gene_inputs(mode, size, expected):
    spec = SingleGeneTask(name="sgi", gene="A", inputs=GeneInputs(mode=mode, size=size,
                                                                   graph="g" if mode != "all" else None))
    dataset = make_dataset()
    task = build_task(spec, dataset, {"g": GRAPH})
    assert task.genes == expected
    assert (task.x[:, 0] == 0).all(), "the target's own input must be masked"
    np.testing.assert_array_equal(task.x[:, 1], dataset.expression[:, GENES.index(expected[1])])


def test_single_gene_landmark_inputs(tmp_path):
    landmarks = tmp_path / "landmarks.txt"
    landmarks.write_text("C\nE\nZZZ\n")
    task = build_task(SingleGeneTask(name="sgi", gene="A", inputs={"mode": "landmark", "landmark_file": str(landmarks)}),
                      make_dataset())
    assert task.genes == ["A", "C", "E"]


def test_single_gene_threshold_comes_from_training_samples_only():
    dataset = make_dataset()
    task = build_task(SingleGeneTask(name="sgi", gene="B"), dataset)
    split, labels = task.split(train=40, valid=20, seed=0)
    target = dataset.expression[:, 1].astype(np.float64)
    np.testing.assert_array_equal(labels, (target > target[split.train].mean()).astype(int))


def test_single_gene_errors():
    with pytest.raises(ConfigError, match="gene 'ZZZ' is not in the dataset"):
        build_task(SingleGeneTask(name="s", gene="ZZZ"), make_dataset())
    with pytest.raises(ConfigError, match="not a configured graph"):
        build_task(SingleGeneTask(name="s", gene="A", inputs={"mode": "bfs", "size": 3, "graph": "h"}),
                   make_dataset(), {"g": GRAPH})


def test_specs_validate_with_field_names():
    adapter = TypeAdapter(TaskSpec)
    assert isinstance(adapter.validate_python({"name": "x", "kind": "classify", "label": "y"}), ClassifyTask)
    with pytest.raises(ValidationError, match="inputs.size"):
        adapter.validate_python({"name": "x", "kind": "single_gene", "gene": "A",
                                 "inputs": {"mode": "bfs", "graph": "g"}})
    with pytest.raises(ValidationError, match="lable"):
        adapter.validate_python({"name": "x", "kind": "classify", "label": "y", "lable": "typo"})
