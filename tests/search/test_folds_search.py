"""Cross-validated selection end to end, through `raygex search`, `raygex status`, the exported model and
`raygex train`: every trial reports a mean ± SE over the study's folds, a control never wins, the winner is
exported as its fold ensemble (the leaderboard's test metric), test numbers are shown for the winner only, and the evaluation and the graph
swap ran on the same folds."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from raygex.analysis.choices import choice_of

from tests.pipeline.test_stages import run_cli
from tests.search.conftest import write_config

pytestmark = pytest.mark.slow
FOLDS = 3
SPLIT = {"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0, 1], "folds": FOLDS}


@pytest.fixture(scope="module")
def folded_sweep(tiny_demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("folds")
    config = write_config(folder / "tiny.yaml", tiny_demo, split=SPLIT,
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          train={"max_epochs": 4, "patience": 4, "batch_size": 32},
                          search={"num_samples": 7, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": 1,
                                            "channels": 4, "embedding": 1, "hidden": 16, "lr": 0.01}})
    code, out, err = run_cli("search", config)
    assert code == 0, err[-3000:]
    return folder / "results" / "tiny", config


def test_every_trial_reports_its_mean_and_standard_error_over_folds(folded_sweep):
    experiment, _ = folded_sweep
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    finished = board[board["status"] == "TERMINATED"]
    assert len(finished) == 7 and finished["best_valid_auc_se"].notna().all()
    assert (finished["best_valid_auc_se"] > 0).any()
    won = board[board["winner"]]
    assert len(won) == 1 and won["config/graph"].iloc[0] not in ("true:random", "decoy:random", "empty")
    # each trial's history: the per-epoch mean and its SE, what ASHA and TPE saw
    trial = next(p for p in (experiment / "subtype").glob("train_fn_*") if (p / "result.json").exists())
    first = json.loads((trial / "result.json").read_text().splitlines()[0])
    assert "valid_auc" in first and "valid_auc_se" in first


def test_status_says_why_the_winner_won_and_hides_other_test_metrics(folded_sweep):
    experiment, _ = folded_sweep
    code, out, err = run_cli("status", experiment, "--json")
    assert code == 0, err
    entry = json.loads(out)["tasks"]["subtype"]
    assert entry["selection"]["rule"] == "one_se" and entry["selection"]["cross_validated"] is True
    assert entry["selection"]["reason"].startswith(f"winner {entry['winner']['hyperparameters']['model']}")
    trials = entry["trials"]
    assert len(trials) == 7 and all(t["valid_se"] is not None for t in trials)
    assert [t["winner"] for t in trials].count(True) == 1
    for t in trials:
        assert ("best_test_auc" in t) == t["winner"], t  # test numbers for the winner only
    code, out, _ = run_cli("status", experiment, "--json", "--show-test")
    assert all("best_test_auc" in t for t in json.loads(out)["tasks"]["subtype"]["trials"])
    code, out, _ = run_cli("status", experiment)
    assert "  winner " in out and "(rule one_se)" in out and "best_valid_auc_se" in out


def test_the_winner_is_exported_as_its_fold_ensemble_and_records_its_selection(folded_sweep):
    import raygex

    experiment, _ = folded_sweep
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    won = board[board["winner"]].iloc[0]
    meta = raygex.load_model(experiment / "models" / "subtype.pt").metadata
    assert meta["trial_id"] == won["trial_id"] and meta["weights"] == "fold-ensemble (checkpoint)"
    # the exported file reproduces the leaderboard's test metric: the same fold networks at the same epoch
    assert meta["metrics"]["test"]["auc"] == pytest.approx(won["best_test_auc"], abs=1e-5)
    selection = meta["selection"]
    assert selection["folds"] == FOLDS and selection["rule"] == "one_se" and selection["control"] is False
    assert selection["validation_mean"] == pytest.approx(won["best_valid_auc"])
    assert selection["validation_se"] == pytest.approx(won["best_valid_auc_se"])
    assert meta["dataset"]["n_samples_train"] == 120  # train + valid of 160 samples: every labelled sample
    assert meta["metrics"]["test"]["auc"] > 0.5


def test_evaluation_and_swap_ran_on_the_folds(folded_sweep):
    experiment, _ = folded_sweep
    seeds = pd.read_parquet(experiment / "subtype" / "seeds.parquet")
    swap = pd.read_parquet(experiment / "subtype" / "swap.parquet")
    assert set(seeds["seed"]) == set(swap["seed"]) == {0, 1}
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    winner = board[board["winner"]].iloc[0]
    assert str(winner["trial_id"]) in set(seeds["trial_id"].astype(str))  # the winner is re-evaluated
    # seed 0 is the search's own split and folds: the retrained configuration reproduces its leaderboard row
    again = seeds[(seeds["trial_id"].astype(str) == str(winner["trial_id"])) & (seeds["seed"] == 0)
                  & (seeds["choice"] == choice_of(winner))]
    assert len(again) == 1
    assert again["valid_auc"].iloc[0] == pytest.approx(winner["best_valid_auc"], abs=1e-6)


def test_a_cross_validated_logistic_regression_is_exported_as_its_folds_never_refitted(folded_sweep, tmp_path):
    import raygex

    experiment, _ = folded_sweep
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    lr = board[board["config/model"] == "lr"].iloc[0]
    assert str(lr["refitted_on_valid"]) == "False"  # each fold keeps its own fit (the column may be text)
    code, _, err = run_cli("export", experiment, "--task", "subtype", "--trial", lr["trial_id"], "-o", tmp_path)
    assert code == 0, err
    meta = raygex.load_model(tmp_path / "subtype.pt").metadata
    assert meta["dataset"]["refitted_on_valid"] is False and "auc" not in meta["metrics"]["valid"]  # no valid rows


def test_raygex_train_runs_the_same_folds(folded_sweep, tmp_path):
    _, config = folded_sweep
    code, out, err = run_cli("train", config, "--task", "subtype", "-p", "model=lr", "-p", "max_epochs=3", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["folds"] == FOLDS and summary["samples"]["valid"] == 0 and "auc_se" in summary["valid"]
    code, out, err = run_cli("train", config, "--task", "subtype", "-p", "model=lr", "-p", "max_epochs=3",
                             "--export", tmp_path / "lr.pt")
    assert code == 0, err
    assert f"mean over {FOLDS} cross-validation folds" in out and "± " in out
    import raygex

    assert raygex.load_model(tmp_path / "lr.pt").metadata["selection"]["folds"] == FOLDS


def test_bench_baselines_sets_the_winner_beside_sklearn_on_the_same_samples(folded_sweep):
    import numpy as np
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import raygex
    from raygex.config import load_config
    from raygex.data.prepare import load_dataset, load_graphs, trial_data

    experiment, config_path = folded_sweep
    code, out, err = run_cli("bench", "baselines", experiment, "--json")
    assert code == 0, err
    [row] = json.loads(out.strip().splitlines()[-1])["studies"]
    meta = raygex.load_model(experiment / "models" / "subtype.pt").metadata
    assert row["labelled"] == 120 and row["test"] == 40
    assert row["winner_auc"] == pytest.approx(meta["metrics"]["test"]["auc"], abs=1e-6)  # the exported file
    # scikit-learn's LR-CV, rebuilt here from the same samples
    config = load_config(experiment / "config.yaml")
    data = trial_data(config, "subtype", load_dataset(config), load_graphs(config), seed=0, graph=None)
    lr = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 4, 17), max_iter=5000,
                                                              cv=StratifiedKFold(5, shuffle=True, random_state=0),
                                                              scoring="roc_auc_ovr"))
    lr.fit(data.x_train, data.y_train)
    from sklearn.metrics import roc_auc_score

    proba = lr.predict_proba(data.x_test)
    auc = np.mean([roc_auc_score(data.y_test == c, proba[:, c]) for c in range(proba.shape[1])])
    assert row["sklearn_lr_auc"] == pytest.approx(auc, abs=1e-9)
    assert row["gap_to_sklearn_lr"] == pytest.approx(row["winner_auc"] - auc)


def test_a_fold_ensemble_whose_checkpoints_are_gone_is_retrained_to_the_same_result(folded_sweep, tmp_path):
    import shutil

    experiment, _ = folded_sweep
    copy = tmp_path / "tiny"
    shutil.copytree(experiment, copy)
    board = pd.read_parquet(copy / "subtype" / "leaderboard.parquet")
    won = board[board["winner"]].iloc[0]
    for checkpoint in next((copy / "subtype").glob(f"*{won['trial_id']}*")).glob("checkpoint_*"):
        shutil.rmtree(checkpoint)
    code, out, err = run_cli("export", copy, "--task", "subtype", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["weights"] == "fold-ensemble (retrained)"
    assert summary["test"]["auc"] == pytest.approx(won["best_test_auc"], abs=1e-5)
