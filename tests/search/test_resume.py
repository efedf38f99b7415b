"""Kill the driver (SIGKILL) at three points of a sweep, `raygex resume`, and check nothing was lost or run twice.

Kill points: during the first trial, in the middle (two studies side by side, the first with two trials
finished), mid-fold, and right after the leaderboard was written (while the winner is exported). Each prints its figures: trials finished before the kill, trials after
the resume, configurations run twice.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import numpy as np
import pytest

from tests.search.conftest import write_config

pytestmark = pytest.mark.slow
MAX_EPOCHS = 6
NUM_SAMPLES = 8
SPACE = {"model": ["gcn", "mlp", "lr"], "graph": "all", "depth": {"int": [1, 2]},
         "channels": {"choice": [4, 8]}, "embedding": {"choice": [1, 4]}, "hidden": {"choice": [16, 32]},
         "dropout": {"float": [0.0, 0.3]}, "lr": {"loguniform": ["1e-3", "1e-2"]}}
ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
       "WANDB_MODE": "disabled"}


def finished_trials(task_dir: Path) -> dict[str, dict]:
    """trial id → last reported result, for trials whose last result says they are done."""
    done = {}
    for result_file in task_dir.glob("*/result.json"):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if lines and (lines[-1].get("done") or lines[-1].get("epoch") == MAX_EPOCHS):
            done[lines[-1]["trial_id"]] = lines[-1]
    return done


def any_result(task_dir: Path) -> bool:
    return any(path.stat().st_size > 0 for path in task_dir.glob("*/result.json"))


def kill_tree(process: subprocess.Popen, children: list[psutil.Process]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    for child in children:  # the local Ray the driver started: raylet, GCS, workers
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=30)


TWO_TASKS = [{"name": "subtype", "kind": "classify", "label": "subtype"},
             {"name": "sgi", "kind": "single_gene", "gene": "G0001", "inputs": {"mode": "bfs", "size": 40,
                                                                                "graph": "true"}}]


def sweep_config(tiny_demo, tmp_path, folds: int | None = None, tasks: list | None = None) -> Path:
    return write_config(tmp_path / "tiny.yaml", tiny_demo,
                        tasks=tasks or TWO_TASKS[:1],
                        split={"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0, 1], "folds": folds},
                        train={"max_epochs": MAX_EPOCHS, "patience": MAX_EPOCHS, "batch_size": 32},
                        # checkpoint_min_s 0: trials checkpoint partway (epoch 5 of 6), as the kill points need
                        search={"num_samples": NUM_SAMPLES, "max_concurrent": 2, "checkpoint_min_s": 0,
                                "scheduler": {"kind": "fifo"}, "space": SPACE})


def run_until(config: Path, condition, timeout: float = 300) -> None:
    """Start `raygex search CONFIG` in a child process and SIGKILL it (and its Ray) once ``condition()``."""
    log = config.parent / "driver.log"
    driver = subprocess.Popen([sys.executable, "-m", "raygex", "search", str(config)], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = psutil.Process(driver.pid).children(recursive=True) or children
            if condition() or driver.poll() is not None:
                break
            time.sleep(0.2)
        assert driver.poll() is None, f"the sweep ended before it could be interrupted: {log.read_text()[-3000:]}"
        children = psutil.Process(driver.pid).children(recursive=True)
    finally:
        kill_tree(driver, children)


def searcher_study(task_dir: Path):
    """The Optuna study inside Tune's saved searcher state."""
    state = pickle.loads(sorted(task_dir.glob("searcher-state-*.pkl"))[-1].read_bytes())
    return state["_ot_study"]


@pytest.mark.parametrize("kill_point", ["first_trial", "export", "mid_fold", "two_tasks"])
def test_sigkilled_sweep_resumes_without_losing_or_repeating_trials(tiny_demo, tmp_path, kill_point):
    """``mid_fold``: a cross-validated sweep (3 folds in lockstep) killed once a trial has checkpointed partway:
    its checkpoint holds every fold, so no fold is lost or trained twice. ``two_tasks``: the middle of a sweep,
    two studies sweeping side by side (one budget of trial slots), killed once the first has finished two trials
    and the second one (it was a kill point of its own, ``middle``, on one study before studies ran side by side)."""
    tasks = TWO_TASKS if kill_point == "two_tasks" else TWO_TASKS[:1]
    config = sweep_config(tiny_demo, tmp_path, folds=3 if kill_point == "mid_fold" else None, tasks=tasks)
    experiment = tmp_path / "results" / "tiny"
    task_dir = experiment / "subtype"
    condition = {"first_trial": lambda: any_result(task_dir),
                 "export": lambda: (task_dir / "leaderboard.parquet").exists(),
                 "mid_fold": lambda: any(task_dir.glob("*/checkpoint_*/trial_state.pt")),
                 "two_tasks": lambda: (len(finished_trials(task_dir)) >= 2
                                       and all(finished_trials(experiment / t["name"]) for t in tasks))}[kill_point]
    run_until(config, condition)
    before = {t["name"]: finished_trials(experiment / t["name"]) for t in tasks}
    board_before = pd.read_parquet(task_dir / "leaderboard.parquet") if kill_point == "export" else None
    if kill_point == "first_trial":  # as a kill during Tune's in-place rewrite of tuner.pkl leaves it
        (task_dir / "tuner.pkl").write_bytes(b"")

    from raygex.experiment.layout import ExperimentLayout

    layout = ExperimentLayout.open(experiment)
    ended = {t["name"]: list(layout.trial_states(t["name"]).values()).count("TERMINATED") for t in tasks}
    resumed = subprocess.run([sys.executable, "-m", "raygex", "resume", str(experiment)], env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for task in tasks:
        check_resumed(experiment, task["name"], before[task["name"]], board_before, kill_point)
        counts = re.findall(rf"\[{task['name']} (\d+)/{NUM_SAMPLES}\]", resumed.stdout)
        if kill_point != "export" and ended[task["name"]] < NUM_SAMPLES:  # it counts on from Tune's finished trials
            assert counts and int(counts[0]) == ended[task["name"]] + 1, (ended, resumed.stdout[:2000])
    if kill_point == "export":
        optuna_behind_after_a_finished_sweep(experiment, task_dir)


def optuna_behind_after_a_finished_sweep(experiment: Path, task_dir: Path) -> None:
    """A sweep that ended under a driver killed before its leaderboard, whose Optuna file is older than the
    experiment state (on a store each file is uploaded on its own: seen on S3): the last trial is still running
    in Optuna. The resume does not restore the finished sweep, so the leaderboard stage repairs the Optuna file
    before it copies the study to optuna.db, which then holds every trial."""
    import optuna

    saved = sorted(task_dir.glob("searcher-state-*.pkl"))[-1]
    state = pickle.loads(saved.read_bytes())
    study = state["_ot_study"]
    last = max(t.number for t in study.trials if t.state.name == "COMPLETE")
    trial_id = next(tid for tid, handle in state["_ot_trials"].items() if handle.number == last)
    older = optuna.create_study(directions=study.directions)
    copied = {}
    for trial in study.trials:  # the same trials, the last finished one set back to running
        number = trial.number
        if number == last:
            trial = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=trial.params,
                                              distributions=trial.distributions)
        copied[number] = older._storage.create_new_trial(older._study_id, template_trial=trial)
    state["_ot_study"] = older
    state["_ot_trials"] = {tid: optuna.trial.Trial(older, copied[h.number]) for tid, h in state["_ot_trials"].items()}
    state["_completed_trials"].discard(trial_id)
    saved.write_bytes(pickle.dumps(state))
    (task_dir / "leaderboard.parquet").unlink()
    resumed = subprocess.run([sys.executable, "-m", "raygex", "resume", str(experiment)], env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"note: task subtype: trial {trial_id}'s end told to the Optuna study" in resumed.stdout, resumed.stdout
    from raygex.experiment.layout import ExperimentLayout

    layout = ExperimentLayout.open(experiment)
    copy = optuna.load_study(study_name=f"{layout.name}/subtype", storage=layout.optuna_storage("subtype"))
    assert len([t for t in copy.trials if t.state.name == "COMPLETE"]) == NUM_SAMPLES


def check_resumed(experiment: Path, task: str, before: dict, board_before, kill_point: str) -> None:
    """The task's sweep after the resume: every trial of the budget once, each finished before the kill kept as
    it was, no configuration twice, the winner exported, Optuna's history whole."""
    task_dir = experiment / task
    board = pd.read_parquet(task_dir / "leaderboard.parquet")
    configs = board.filter(like="config/").astype(str).apply(tuple, axis=1)
    print(f"\n[{kill_point}] {task}: trials finished before the kill: {len(before)}; after resume: "
          f"{int((board['status'] == 'TERMINATED').sum())}/{NUM_SAMPLES}; configurations run twice: "
          f"{int(configs.duplicated().sum())}")
    assert len(board) == NUM_SAMPLES, board[["trial_id", "status"]]
    assert (board["status"] == "TERMINATED").all()
    for trial_id, result in before.items():
        row = board[board["trial_id"] == trial_id]
        assert len(row) == 1, f"finished trial {trial_id} lost"
        assert row["best_valid_auc"].iloc[0] == pytest.approx(result["best_valid_auc"])
    assert configs.is_unique, "a hyperparameter configuration was run twice"
    if kill_point == "mid_fold":  # every trial's checkpoint holds all three folds; the board their mean ± SE
        import torch

        for saved in task_dir.glob("*/checkpoint_*/trial_state.pt"):
            assert len(torch.load(saved, weights_only=True)["folds"]) == 3
        assert board["best_valid_auc_se"].notna().all()
    if board_before is not None:  # killed after the leaderboard: it is kept as it was, the export is finished
        pd.testing.assert_frame_equal(board, board_before)
    import raygex

    model = raygex.load_model(experiment / "models" / f"{task}.pt")
    won = board[board["winner"]].iloc[0]
    assert model.metadata["trial_id"] == won["trial_id"]
    if kill_point == "mid_fold":  # a fold ensemble: the CV metric is in the selection record
        assert model.metadata["selection"]["validation_mean"] == pytest.approx(won["best_valid_auc"], abs=1e-9)
    else:
        assert model.metadata["metrics"]["valid"]["auc"] == pytest.approx(won["best_valid_auc"], abs=1e-5)

    # Optuna's history survived the kill: every trial is in the study once, its best value is the leaderboard's.
    study = searcher_study(task_dir)
    complete = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]  # run to its end, or by ASHA
    print(f"[{kill_point}] {task}: Optuna study after resume: {len(complete)} finished trials, "
          f"best {study.best_value:.4f}")
    assert len(complete) == NUM_SAMPLES, [(t.state.name, t.params) for t in study.trials]
    assert study.best_value == pytest.approx(board["best_valid_auc"].max())


def test_a_checkpoint_the_saved_state_still_names_is_put_back(tmp_path):
    """A kill between Tune deleting checkpoint N and recording N+1 leaves the state naming a deleted checkpoint:
    it is replaced by the trial's newest one before Tune restores (found when this test's middle kill failed)."""
    from raygex.search.tune_compat.checkpoint_repair import repair_missing_checkpoints

    study = tmp_path / "subtype"
    trial = study / "train_fn_51f3cb5d_3_channels=4,depth=2,lr=0.0034,model=gcn_2026-12-01_12-29-06"
    (trial / "checkpoint_000001").mkdir(parents=True)
    (trial / "checkpoint_000001" / "trial_state.pt").write_bytes(b"epoch 6")
    # as Tune writes it: the checkpoint manager is a hex cloudpickle inside the JSON (TuneFunctionEncoder's
    # CLOUDPICKLE_FALLBACK), so the path is not in the file's text (found by CI: first_trial kill)
    from ray.train import Checkpoint
    from ray.tune.utils.serialization import TuneFunctionEncoder

    run_metadata = json.dumps({"checkpoint_manager": Checkpoint(str(trial / "checkpoint_000000"))},
                              cls=TuneFunctionEncoder)
    assert "checkpoint_000000" not in run_metadata
    state = {"trial_data": [[json.dumps({"trial_id": "51f3cb5d", "status": "RUNNING"}), run_metadata]]}
    (study / "experiment_state-2026-12-01_12-29-17.json").write_text(json.dumps(state))
    from raygex.files.storage import local_folder

    assert repair_missing_checkpoints(local_folder(study)) == [f"{trial.name}/checkpoint_000000"]
    assert (trial / "checkpoint_000000" / "trial_state.pt").read_bytes() == b"epoch 6"
    assert repair_missing_checkpoints(local_folder(study)) == []  # nothing left to put back


def test_a_trial_resumed_after_its_last_epoch_reports_its_final_metrics_again():
    from raygex.data.demo import make_demo_cohort
    from raygex.config.tasks import ClassifyTask
    from raygex.data.tasks import build_task
    from raygex.training.loop import TrialData, run_trial

    dataset, _, _ = make_demo_cohort(0, 120, 100)
    task = build_task(ClassifyTask(name="s", kind="classify", label="subtype"), dataset)
    split, labels = task.split(train=0.5, valid=0.25, seed=0)
    data = TrialData.from_task(task, split, labels)
    saved, reported = {}, []
    first = run_trial({"model": "lr", "max_epochs": 3, "patience": 3}, data,
                      lambda row, state: saved.update(checkpoint=state.checkpoint()))
    run_trial({"model": "lr", "max_epochs": 3, "patience": 3}, data, lambda row, state: reported.append(row),
              resume_from=saved["checkpoint"])
    assert len(reported) == 1 and reported[0] == first.history[-1]


def test_a_kill_during_the_evaluation_loses_only_the_trainings_then_running(tiny_demo, tmp_path):
    """SIGKILL the driver once the evaluation has recorded some of its trainings (each is recorded as it ends):
    `raygex resume` keeps those records as they are, runs only the missing trainings, and the evaluation and the
    graph swap then read every planned training (the swap's runs are the evaluation's: none twice)."""
    config = sweep_config(tiny_demo, tmp_path)
    experiment = tmp_path / "results" / "tiny"
    records = experiment / "retrainings" / "subtype"
    run_until(config, lambda: len(list(records.glob("*.json"))) >= 2
              and not (experiment / "subtype" / "seeds.parquet").exists())
    kept = {path.name: path.stat().st_mtime_ns for path in records.glob("*.json")}
    resumed = subprocess.run([sys.executable, "-m", "raygex", "resume", str(experiment)], env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = {path.name: path.stat().st_mtime_ns for path in records.glob("*.json")}
    assert {name: after[name] for name in kept} == kept, "a recorded training was run again"

    from raygex.analysis.retrain import best_gcn_row, plan
    from raygex.experiment.layout import ExperimentLayout

    layout = ExperimentLayout.open(experiment)
    rows, trainings = plan(layout, "subtype", layout.read_leaderboard("subtype"))
    assert set(after) == {f"{key}.json" for key in trainings}, "every planned training recorded, nothing else"
    if len(kept) < len(trainings):
        assert f"{len(kept)} of {len(trainings)} trainings already recorded" in resumed.stdout, resumed.stdout[-2000:]
    recorded = {path.stem: json.loads(path.read_text()) for path in records.glob("*.json")}
    first = [run for run in rows if run.seed == 0 and run.graph is None]  # the baselines' bests on seed 0
    assert first and all(recorded[run.key].get("from_trial") == run.trial_id for run in first), \
        "a sweep trial that ran to its end (FIFO, every trial to max_epochs) is seed 0's run, not trained again"
    swap = [run for run in rows if run.graph is not None and run.role == "best"]
    own = layout.trial_params("subtype", best_gcn_row(layout.read_leaderboard("subtype")))["graph"]
    # the swap's run of the best GCN on its own graph on seed 0 is its sweep trial (test probabilities from its last
    # checkpoint); every other graph choice and seed is a training of its own
    assert [(run.seed, run.graph) for run in swap if "from_trial" in recorded[run.key]] == [(0, own)]
    assert all(len(recorded[run.key]["proba"]) == len(recorded[run.key]["y_test"]) > 0 for run in swap)
    from raygex.metrics import classification_metrics

    for record in (recorded[run.key] for run in swap if "from_trial" in recorded[run.key]):
        proba = np.asarray(record["proba"])  # row for row the split's test samples: they give the trial's test AUC
        assert classification_metrics(np.asarray(record["y_test"]), proba, proba.shape[1])["auc"] == \
            pytest.approx(record["test"]["auc"], abs=1e-9)
    seeds = layout.read_seeds("subtype", winner_rows=True)
    swap, _ = layout.read_swap("subtype")
    assert len(seeds) == len(rows) and set(swap["graph"]) == set(layout.config.graph_choices())
    # the swap's run of the best GCN on its own graph is the evaluation's: one training per (config, graph, seed)
    assert len(trainings) == len({(r.trial_id if r.graph is None else "gcn", r.graph, r.seed) for r in rows})
