"""The Python API through its public names only: ``raygex.run`` → ``raygex.open`` → leaderboard, verdicts, winner,
seeds, swap, Optuna study → ``load_model`` → ``predict``; ``raygex.resume`` of a finished experiment runs nothing;
a bad config is one ``RaygexError``; the docstrings' examples run as doctests."""

from __future__ import annotations

import doctest
import logging

import numpy as np
import pandas as pd
import pytest

import raygex
import raygex.api
from raygex.data.canonical import write_dataset
from raygex.data.demo import make_demo_cohort
from raygex.graphs.store import write_graph


def tiny_config(folder) -> dict:
    dataset, true, decoy = make_demo_cohort(0, n_samples=160, n_genes=150)
    write_dataset(dataset, folder / "expression.parquet")
    write_graph(true, folder / "graph_true.parquet")
    return {"name": "api", "data": {"expression": str(folder / "expression.parquet")},
            "graphs": {"true": str(folder / "graph_true.parquet")}, "controls": ["random", "empty"],
            "tasks": [{"name": "subtype", "kind": "classify", "label": "subtype"}],
            "split": {"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0, 1], "folds": None},
            "train": {"max_epochs": 2, "patience": 2, "batch_size": 32},
            "search": {"num_samples": 5, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                       "space": {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": 1, "channels": 4,
                                 "embedding": 1, "hidden": 16, "dropout": 0.0, "lr": 0.01}},
            "resources": {"cpu": 1, "gpu": 0}}


def test_run_open_read_and_predict_through_the_public_api(tmp_path, caplog):
    config = tiny_config(tmp_path)
    with caplog.at_level(logging.INFO, logger="raygex"):
        exp = raygex.run(config, storage=tmp_path / "results", overrides={"train.max_epochs": 3})
    assert isinstance(exp, raygex.Experiment)
    assert any("leaderboard" in r.getMessage() for r in caplog.records)  # progress reaches the caller's logging
    assert exp.name == "api" and exp.studies == ["subtype"] and exp.config.train.max_epochs == 3

    opened = raygex.open(tmp_path / "results" / "api")
    board = opened.leaderboard("subtype")
    assert len(board) == 5 and "best_valid_auc" in board and not [c for c in board if "test" in c]
    assert "best_test_auc" in opened.leaderboard("subtype", show_test=True)
    assert board["best_valid_auc"].is_monotonic_decreasing or opened.config.search.select == "one_se"
    verdicts = opened.verdicts()  # one study: the name may be left out
    assert set(zip(verdicts["graph"], verdicts["control"])) == {("true", "true:random"), ("true", "empty")}
    assert set(verdicts["verdict"]) <= {"helps", "hurts", "inconclusive"}
    winner = opened.winner("subtype")
    assert winner["trial_id"] in set(board["trial_id"]) and winner["hyperparameters"]["model"] in ("gcn", "mlp", "lr")
    assert winner["reason"]
    seeds, swap = opened.seeds("subtype"), opened.swap("subtype")
    assert set(seeds["seed"]) == {0, 1} and {"mlp", "lr", "gcn/true"} <= set(seeds["choice"])
    assert set(swap["graph"]) == {"true", "true:random", "empty"}
    assert len(opened.optuna_study("subtype").trials) == 5
    assert opened.report_path and opened.report_path.endswith("report.html")
    assert opened.status()["tasks"]["subtype"]["counts"]["finished"] == 5

    model = opened.load_model("subtype")
    assert model.path == raygex.load_model(opened.model_path("subtype")).path
    dataset = make_demo_cohort(0, n_samples=160, n_genes=150)[0]
    samples = pd.DataFrame(dataset.expression[:5], index=dataset.sample_ids[:5], columns=dataset.genes)
    proba = model.predict_proba(samples)
    assert proba.shape == (5, len(model.classes))
    assert list(model.predict(samples)) == [model.classes[i] for i in np.asarray(proba).argmax(axis=1)]

    again = raygex.resume(opened.uri)  # finished: nothing to run, the same results
    assert again.leaderboard("subtype").equals(board)


def test_bad_configs_and_names_are_one_raygex_error(tmp_path):
    config = tiny_config(tmp_path)
    with pytest.raises(raygex.RaygexError, match=r"config: search.num_samples: Input should be greater"):
        raygex.run(config, storage=tmp_path / "results", overrides={"search.num_samples": 0})
    with pytest.raises(raygex.RaygexError, match="config file not found"):
        raygex.run(tmp_path / "missing.yaml")
    with pytest.raises(raygex.RaygexError, match="not a raygex experiment folder"):
        raygex.open(tmp_path)
    with pytest.raises(raygex.RaygexError, match="a config is a YAML path, a dict or an ExperimentConfig"):
        raygex.api.as_config(42)
    assert not (tmp_path / "results").exists()  # refused before anything was written


def test_config_from_a_path_a_dict_and_a_config_agree(tmp_path):
    import yaml

    config = tiny_config(tmp_path)
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(config))
    from_path = raygex.api.as_config(path, {"train.max_epochs": 7})
    from_dict = raygex.api.as_config(config, {"train.max_epochs": 7})
    from_config = raygex.api.as_config(raygex.api.as_config(config), {"train.max_epochs": 7})
    assert from_path == from_dict == from_config and from_path.train.max_epochs == 7


@pytest.mark.parametrize("module", [raygex, raygex.api])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, extraglobs={"raygex": raygex}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
