"""Real data: PBMC cells over GeneMANIA, search → export → `raygex predict` on the held-out cells.

The predictions of the exported file, scored against the cells' labels, must reproduce the leaderboard's test
metric for the winner: the file is the model the sweep selected, with its preprocessing inside.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from raygex.data.canonical import read_dataset
from raygex.metrics import classification_metrics

pytestmark = pytest.mark.shared


def test_pbmc_search_export_predict_reproduces_the_test_metric(shared_data, tmp_path, run_cli):
    import ray

    from raygex.config import load_config
    from raygex.data.tasks import build_task

    pbmc, genemania = tmp_path / "pbmc.parquet", tmp_path / "genemania.parquet"
    code, _, err = run_cli("data", "import", shared_data / "expression" / "pbmc68k_reduced.h5ad", "--raw",
                           "--labels", "bulk_labels", "--symbol-map",
                           shared_data / "graphs" / "hgnc_symbol_map_Feb2019.txt", "-o", pbmc)
    assert code == 0, err
    code, _, err = run_cli("graph", "import", shared_data / "graphs" / "genemania.adjlist.gz", "-o", genemania,
                           "--name", "genemania")
    assert code == 0, err
    config = {
        "name": "pbmc", "data": {"expression": str(pbmc)}, "graphs": {"genemania": str(genemania)},
        "tasks": [{"name": "cell_type", "kind": "classify", "label": "bulk_labels", "min_samples_per_class": 10}],
        "split": {"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [0], "folds": None},
        "train": {"max_epochs": 8, "patience": 8, "batch_size": 32},
        "search": {"num_samples": 3, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                   "space": {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": 1, "channels": 8,
                             "embedding": 1, "hidden": 32, "lr": 3.0e-3}},
        "storage": str(tmp_path / "results"),
    }
    (tmp_path / "pbmc.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli("search", tmp_path / "pbmc.yaml")
    ray.shutdown()
    assert code == 0, err

    experiment = tmp_path / "results" / "pbmc"
    board = pd.read_parquet(experiment / "cell_type" / "leaderboard.parquet")
    loaded = load_config(experiment / "config.yaml")
    dataset = read_dataset(pbmc)
    task = build_task(loaded.task("cell_type"), dataset, {})
    split, labels = task.split(train=0.6, valid=0.2, test=0.2, seed=0)
    held_out = pd.DataFrame(task.x[split.test], columns=task.genes,
                            index=pd.Index(task.sample_ids[split.test], name="sample_id"))
    held_out = held_out[held_out.columns[::-1]]  # gene order of the file does not matter
    held_out.to_csv(tmp_path / "held_out.csv")

    out = tmp_path / "predictions.csv"
    code, _, err = run_cli("predict", experiment / "models" / "cell_type.pt", tmp_path / "held_out.csv", "-o", out)
    assert code == 0, err
    predictions = pd.read_csv(out)
    assert list(predictions["sample_id"]) == list(held_out.index)
    proba = predictions[[f"p_{c}" for c in task.classes]].to_numpy()
    metrics = classification_metrics(np.asarray(labels[split.test]), proba, len(task.classes))
    won = board[board["winner"]].iloc[0]
    print("PBMC winner:", won[["trial_id", "config/model", "best_valid_auc", "best_test_auc"]].to_dict(),
          "predict AUC:", metrics["auc"])
    assert metrics["auc"] == pytest.approx(won["best_test_auc"], abs=1e-4)
    assert metrics["accuracy"] == pytest.approx(won["best_test_accuracy"], abs=1e-9)
