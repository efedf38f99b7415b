"""`raygex search` end to end on a tiny demo: leaderboards, status, and bad configs failing before any trial."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.search.conftest import write_config


@pytest.fixture(scope="module")
def finished_sweep(tiny_demo, tmp_path_factory):
    import ray

    from raygex.cli import main

    folder = tmp_path_factory.mktemp("sweep")
    config = write_config(folder / "tiny.yaml", tiny_demo, resources={"cpu": 1, "gpu": 0, "memory_mb": "auto"})
    with pytest.raises(SystemExit) as exit_info:
        main(["search", str(config)])
    ray.shutdown()
    assert exit_info.value.code == 0
    return folder / "results" / "tiny"


def test_every_trial_ran_with_the_memory_its_configuration_needs(finished_sweep):
    """resources.memory_mb: auto is a Ray resource per configuration: Ray reserved each trial's estimate (a worker
    and the tiny demo's networks: one step of 256 MiB above the worker's 500)."""
    from raygex.search.memory_estimate import STEP_MB, WORKER_MB

    for task in ("subtype", "sgi"):
        board = pd.read_parquet(finished_sweep / task / "leaderboard.parquet")
        reserved = board["reserved_memory_mb"]
        assert (reserved > WORKER_MB).all() and (reserved % STEP_MB == 0).all(), reserved


def test_every_task_has_a_complete_leaderboard(finished_sweep):
    for task in ("subtype", "sgi"):
        board = pd.read_parquet(finished_sweep / task / "leaderboard.parquet")
        assert len(board) == 7
        assert (board["status"] == "TERMINATED").all()
        assert board["trial_id"].is_unique
        assert board["best_valid_auc"].iloc[0] == board["best_valid_auc"].max()  # ranked on validation
        won = board[board["winner"]]
        assert len(won) == 1 and won["config/graph"].iloc[0] not in ("true:random", "decoy:random", "empty"), \
            "a control is never the winner"
        assert set(board["config/model"]) <= {"gcn", "mlp", "lr"}
        # Which families TPE samples depends on the results; the columns exist only for sampled families.
        gcn = board[board["config/model"] == "gcn"]
        if len(gcn):
            assert gcn["config/graph"].isin(["true", "decoy", "true:random", "decoy:random", "empty"]).all()
            assert gcn["config/depth"].notna().all()
            assert board.loc[board["config/model"] != "gcn", "config/depth"].isna().all(), "only GCNs have depth"
        if (board["config/model"] == "lr").any():
            lr_rows = board[board["config/model"] == "lr"]
            assert lr_rows.filter(items=["config/hidden", "config/dropout"]).isna().all().all()
        assert board["best_test_auc"].notna().all()
        # Every study contains its controls and baselines: one enqueued trial per choice (7 here = num_samples).
        choices = {f"gcn/{g}" if m == "gcn" else m for m, g in zip(board["config/model"], board["config/graph"])}
        assert choices == {"mlp", "lr", "gcn/true", "gcn/decoy", "gcn/true:random", "gcn/decoy:random", "gcn/empty"}


def test_status_json_reports_counts_and_winner(finished_sweep, run_cli):
    code, out, err = run_cli("status", finished_sweep, "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    for task in ("subtype", "sgi"):
        entry = summary["tasks"][task]
        assert entry["counts"] == {"finished": 7, "running": 0, "errored": 0, "pending": 0}
        board = pd.read_parquet(finished_sweep / task / "leaderboard.parquet")
        won = board[board["winner"]].iloc[0]
        assert entry["winner"]["trial_id"] == won["trial_id"]
        assert entry["winner"]["metrics"]["best_valid_auc"] == pytest.approx(won["best_valid_auc"])


@pytest.mark.parametrize("changes,message", [
    ({"search": {"num_samples": 0}}, "search.num_samples"),
    ({"search": {"num_samples": 2, "space": {}}}, "search.num_samples must be at least the number of start trials"),
    ({"search": {"num_samples": 2, "space": {"model": ["gcn"], "depthh": {"int": [1, 2]}}}},
     "search.space.depthh is not a known hyperparameter"),
    ({"graphs": {"true": "/nowhere/graph.parquet"}}, "graphs.true: file not found"),
    ({"tasks": [{"name": "x", "kind": "classify", "label": "stage"}]}, "label column 'stage' not found"),
    ({"resources": {"cpu": 64, "gpu": 0}}, "resources.cpu = 64"),
    ({"resources": {"cpu": 1, "gpu": 0, "memory_mb": 10_000_000}}, "resources.memory_mb = 1e+07 per trial"),
])
def test_bad_configs_fail_before_any_trial(tiny_demo, tmp_path, run_cli, changes, message):
    import ray

    config = write_config(tmp_path / "bad.yaml", tiny_demo, **changes)
    code, _, err = run_cli("search", config)
    ray.shutdown()
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    results = tmp_path / "results" / "tiny"
    assert not any(results.glob("*/experiment_state-*.json")), "no trial may have started"


def test_each_task_winner_is_exported_with_its_leaderboard_metrics(finished_sweep):
    import raygex

    for task in ("subtype", "sgi"):
        board = pd.read_parquet(finished_sweep / task / "leaderboard.parquet")
        model = raygex.load_model(finished_sweep / "models" / f"{task}.pt")
        won = board[board["winner"]].iloc[0]
        assert model.metadata["trial_id"] == won["trial_id"]
        # Restored (or reproduced) best weights: the exported module's test AUC is the leaderboard's.
        assert model.metadata["metrics"]["test"]["auc"] == pytest.approx(won["best_test_auc"], abs=1e-5)
        assert model.metadata["metrics"]["valid"]["auc"] == pytest.approx(won["best_valid_auc"], abs=1e-5)


def test_export_cli_writes_a_chosen_trial(finished_sweep, tmp_path, run_cli):
    board = pd.read_parquet(finished_sweep / "subtype" / "leaderboard.parquet")
    second = board["trial_id"].iloc[1]
    code, out, err = run_cli("export", finished_sweep, "--task", "subtype", "--trial", second, "-o", tmp_path,
                             "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["trial_id"] == second and (tmp_path / "subtype.pt").exists()
    assert summary["test"]["auc"] == pytest.approx(board["best_test_auc"].iloc[1], abs=1e-5)
    code, _, err = run_cli("export", finished_sweep, "--task", "subtype", "--trial", "nope", "-o", tmp_path)
    assert code == 2 and "'nope' is not in the leaderboard" in err


def test_an_exported_logistic_regression_is_its_refit_with_the_validation_scores_taken_before_it(
        finished_sweep, tmp_path, run_cli):
    import raygex

    board = pd.read_parquet(finished_sweep / "subtype" / "leaderboard.parquet")
    lr = board[board["config/model"] == "lr"].iloc[0]
    assert str(lr["refitted_on_valid"]) == "True", "a one-split logistic regression trial refits on train + valid"
    assert board[board["config/model"] != "lr"]["refitted_on_valid"].isna().all()
    code, _, err = run_cli("export", finished_sweep, "--task", "subtype", "--trial", lr["trial_id"], "-o", tmp_path)
    assert code == 0, err
    meta = raygex.load_model(tmp_path / "subtype.pt").metadata
    assert meta["dataset"]["refitted_on_valid"]
    assert meta["metrics"]["test"]["auc"] == pytest.approx(lr["best_test_auc"], abs=1e-5)  # the refit's
    assert meta["metrics"]["valid"]["auc"] == pytest.approx(lr["best_valid_auc"], abs=1e-9)  # from before it
    assert {"auc", "accuracy", "loss"} <= set(meta["metrics"]["valid"])


def test_a_winner_without_its_best_checkpoint_is_retrained_to_the_same_metrics(finished_sweep, tmp_path, run_cli):
    import shutil

    copy = tmp_path / "tiny"
    shutil.copytree(finished_sweep, copy)
    board = pd.read_parquet(copy / "subtype" / "leaderboard.parquet")
    won = board[board["winner"]].iloc[0]
    trial_dir = next((copy / "subtype").glob(f"*{won['trial_id']}*"))
    for checkpoint in trial_dir.glob("checkpoint_*"):
        shutil.rmtree(checkpoint)  # as if ASHA had stopped it between checkpoints
    code, out, err = run_cli("export", copy, "--task", "subtype", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["weights"] == "retrained"
    assert summary["test"]["auc"] == pytest.approx(won["best_test_auc"], abs=1e-5)
    assert summary["valid"]["auc"] == pytest.approx(won["best_valid_auc"], abs=1e-5)


def test_each_study_s_optuna_study_is_saved_where_optuna_reads_it(finished_sweep):
    import optuna

    for task in ("subtype", "sgi"):
        board = pd.read_parquet(finished_sweep / task / "leaderboard.parquet")
        study = optuna.load_study(study_name=f"tiny/{task}", storage=f"sqlite:///{finished_sweep / task / 'optuna.db'}")
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(complete) == len(board) == 7
        assert sorted(t.value for t in complete) == pytest.approx(sorted(board["best_valid_auc"]))
        assert study.best_value == pytest.approx(board["best_valid_auc"].max())


def test_every_epoch_reaches_the_histories_and_optuna_though_reports_carry_several(finished_sweep):
    """Trials report epochs in batches (raygex.search.epoch_reports): each trial's history still has one row per
    epoch, ASHA stopped trials only at its rung (grace 1, max_t 3: epoch 1), and Optuna's intermediate values
    are by epoch."""
    import optuna

    from raygex.experiment.layout import ExperimentLayout

    layout = ExperimentLayout.open(finished_sweep)
    carried = 0
    for task in ("subtype", "sgi"):
        for _, row in layout.read_leaderboard(task).iterrows():
            history = layout.trial_history(task, row)
            assert list(history["epoch"]) == list(range(1, int(row["epoch"]) + 1)), (task, row["trial_id"])
            assert (history["trial_id"] == row["trial_id"]).all()
            assert int(row["epoch"]) in (1, 3), "ASHA stops a trial only at a rung"
            lines = [json.loads(line) for line in
                     (layout.trial_dir(task, row) / "result.json").read_text().splitlines() if line.strip()]
            carried += sum(len(line["earlier_epochs"]) for line in lines)
        study = optuna.load_study(study_name=f"tiny/{task}", storage=f"sqlite:///{finished_sweep / task / 'optuna.db'}")
        ended = sorted(int(e) for e in layout.read_leaderboard(task)["epoch"])
        # every trial's every epoch, the last one included (the report a scheduler stops on reaches Optuna too)
        assert sorted(max(t.intermediate_values) for t in study.trials) == ended
        for trial in study.trials:
            assert sorted(trial.intermediate_values) == list(range(1, max(trial.intermediate_values) + 1))
    assert carried > 0, "no report carried an earlier epoch"
