"""A killed driver's Tune state made to agree before a restore (``raygex.search.tune_compat.saved_state``), on Tune's own
files: the search state, the Optuna study and the trials are made by Tune's ``SearchGenerator`` around raygex's
searcher and saved with Tune's own ``save_to_dir``; the experiment state is written from Tune's own trials as its
controller writes it. Each case is a mix a kill mid-upload leaves on an object store (every file is uploaded on
its own), checked locally and on a real S3-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
STAMP = "2026-12-02_03-00-00"


def search_generator(budget: int = 3, slots_key: str | None = None, created: int = 0, trainable: str = "fn",
                     space=None, queued: list | None = None):
    """Tune's SearchGenerator around raygex's searcher (``space``: default one log-uniform ``lr``; ``queued``:
    ``points_to_evaluate``)."""
    from ray import tune
    from ray.tune.search import SearchGenerator

    from raygex.search.tune_compat.optuna_searcher import ResumableOptunaSearch
    from raygex.search.slots import SlotLimiter

    tune.register_trainable(trainable, lambda config: None)
    searcher = ResumableOptunaSearch(space=space or {"lr": tune.loguniform(1e-3, 1e-2)}, metric="valid_auc",
                                     mode="max", seed=0, points_to_evaluate=queued)
    generator = SearchGenerator(SlotLimiter(searcher, 2, study="s", slots_key=slots_key, budget=budget,
                                            created=created))
    generator.add_configurations({"s": {"run": trainable, "num_samples": budget, "config": {}}})
    return generator


def experiment_state(trials) -> str:
    """What Tune's controller saves: each trial's (state JSON, run metadata JSON)."""
    return json.dumps({"trial_data": [list(t.get_json_state()) for t in trials], "runner_data": {}, "stats": {}})


def finish(trial, value: float) -> None:
    from ray.tune.experiment import Trial

    trial._state_json = None  # Tune caches a trial's JSON until its status changes
    trial.set_status(Trial.TERMINATED)
    trial.run_metadata.last_result = {"epoch": 5, "valid_auc": value, "config": dict(trial.config)}


def trial_folder(study: Path, trial) -> str:
    name = f"{trial._generate_dirname()}_{STAMP}"
    (study / name).mkdir()
    (study / name / "params.json").write_text(json.dumps(trial.config))
    (study / name / "result.json").write_text(json.dumps({"epoch": 1}) + "\n")
    return name


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path):
    """(the study's folder to write Tune's files into, a function that runs the repairs and returns the folder
    as they left it)."""
    from raygex.files.storage import local_folder
    from raygex.search.tune_compat.saved_state import repair_before_restore

    study = tmp_path / "study"
    study.mkdir()
    if request.param == "local":
        return study, lambda: (repair_before_restore(local_folder(study)), study)
    server, bucket = request.getfixturevalue("s3_server"), request.getfixturevalue("bucket")
    from raygex.files.storage import open_remote
    from tests.storage.test_s3_sweep import upload

    uploaded = []

    def on_the_store():
        if not uploaded:  # the files as the killed driver left them; later calls see the repaired store
            upload(server, bucket, study, "exp/study")
            uploaded.append(True)
        remote = open_remote(f"s3://{bucket}/exp/study")
        notes = repair_before_restore(remote)
        back = tmp_path / "back"
        for rel in remote.files():
            remote.download(rel, back / rel)
        return notes, back
    return study, on_the_store


@pytest.mark.parametrize("trainable", ["fn", "train_fn_tp53_20240301_12_genes"])
def test_a_search_state_ahead_of_the_experiment_state_is_set_back(where, trainable):
    """The S3 flake ("5 of 6 trials finished" after a resume): the search state counts a third trial that the
    experiment state (saved earlier) never recorded, whose folder reached the store. Unrepaired, Tune's restored
    counter says the budget is spent and the sweep ends one trial short. (A study named like a trial id and
    number, ``tp53_20240301_12_genes``, must not make its trials' folders look like phantoms.)"""
    import ray.cloudpickle as cloudpickle

    study, repair = where
    generator = search_generator(trainable=trainable)
    first, second = generator.next_trial(), generator.next_trial()
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first, second]))  # saved at time A
    generator.on_trial_complete(first.trial_id, {"valid_auc": 0.7})
    phantom = generator.next_trial()  # then a third trial, and the search state saved at time B
    generator.save_to_dir(str(study), STAMP)
    kept, gone = trial_folder(study, first), trial_folder(study, phantom)
    (study / "models").mkdir()
    (study / "models" / "params.json").write_text("{}")  # not a trial folder: never touched

    notes, after = repair()
    assert any("trial counter 3 set to the 2 trials" in n for n in notes), notes
    assert (after / kept / "result.json").is_file() and not (after / gone).exists()
    assert any(gone in n for n in notes) and not any(kept in n for n in notes)
    assert (after / "models" / "params.json").is_file()
    state = cloudpickle.loads((after / f"search_gen_state-{STAMP}.json").read_bytes())
    assert (state["counter"], state["finished"]) == (2, False)
    assert state["name:SlotLimiter"]["live_trials"] == {first.trial_id, second.trial_id}  # the unfinished ones

    restored = search_generator(trainable=trainable)
    restored.restore_from_dir(str(after))
    assert not restored.is_finished(), "the restored search would end the sweep a trial short"
    restored.on_trial_complete(first.trial_id, {"valid_auc": 0.7})  # Tune resumes the first trial; it ends
    third = restored.next_trial()
    assert third is not None and third.config != phantom.config  # the phantom's configuration is not repeated
    assert restored.next_trial() is None and restored.is_finished()  # the budget: 3 trials, no more
    notes, _ = repair()
    assert not [n for n in notes if "counter" in n], "nothing left to set back"


def test_a_search_state_behind_the_experiment_state_learns_the_finished_trials(where):
    """The other order: the experiment state (saved later) has a trial finished that the saved Optuna study still
    has running, and one the search state never created. Optuna is told both results; the counter counts both."""
    import ray.cloudpickle as cloudpickle

    study, repair = where
    generator = search_generator()
    first, second = generator.next_trial(), generator.next_trial()
    generator.save_to_dir(str(study), STAMP)  # saved at time A: two trials, both running
    generator.on_trial_complete(first.trial_id, {"valid_auc": 0.7})
    third = generator.next_trial()
    finish(first, 0.7)
    finish(third, 0.8)
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first, second, third]))  # time B

    notes, after = repair()
    state = cloudpickle.loads((after / f"search_gen_state-{STAMP}.json").read_bytes())
    assert state["counter"] == 3 and state["name:SlotLimiter"]["live_trials"] == {second.trial_id}
    searcher = cloudpickle.loads((after / f"searcher-state-{STAMP}.pkl").read_bytes())
    done = sorted(t.value for t in searcher["_ot_study"].trials if t.state.name == "COMPLETE")
    assert done == [0.7, 0.8], notes
    assert {first.trial_id, third.trial_id} <= searcher["_completed_trials"]
    restored = search_generator()
    restored.restore_from_dir(str(after))
    assert restored.is_finished() and restored.next_trial() is None  # unrepaired (counter 2): a 4th trial


def test_a_trial_remade_for_an_errored_one_replaces_it_in_the_optuna_study(where):
    """Tune re-makes an errored trial on resume (restart_errored: a new id, the old number), and the experiment
    state saved after that resume records only the re-made one. At the next resume the Optuna study holds the
    configuration once, with the re-made trial's result (the errored original leaves it), and the limiter does
    not count the re-made trial, which has finished."""
    import ray.cloudpickle as cloudpickle

    study, repair = where
    generator = search_generator()
    first, second = generator.next_trial(), generator.next_trial()
    generator.on_trial_complete(second.trial_id, None, error=True)
    generator.save_to_dir(str(study), STAMP)
    remade = second.reset()
    finish(remade, 0.9)
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first, remade]))

    notes, after = repair()
    state = cloudpickle.loads((after / f"search_gen_state-{STAMP}.json").read_bytes())
    assert state["counter"] == 2 and state["name:SlotLimiter"]["live_trials"] == {first.trial_id}
    searcher = cloudpickle.loads((after / f"searcher-state-{STAMP}.pkl").read_bytes())
    held = [(t.state.name, t.value, t.params) for t in searcher["_ot_study"].trials]
    assert held == [("RUNNING", None, first.config), ("COMPLETE", 0.9, second.config)], notes
    assert set(searcher["_ot_trials"]) == {first.trial_id} and remade.trial_id in searcher["_completed_trials"]


def test_a_phantom_the_optuna_study_finished_leaves_it(where):
    """The Optuna study (saved after the experiment state) has a third trial that was created and finished in
    between; the experiment state never recorded it, its folder is removed and its run discarded. The study then
    holds the recorded trials only (as the leaderboard will), and a resumed
    search still works through the searcher's handles."""
    import ray.cloudpickle as cloudpickle

    study, repair = where
    generator = search_generator()
    first, second = generator.next_trial(), generator.next_trial()
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first, second]))  # time A
    generator.on_trial_complete(first.trial_id, {"valid_auc": 0.7})
    phantom = generator.next_trial()
    generator.on_trial_complete(phantom.trial_id, {"valid_auc": 0.95})
    generator.save_to_dir(str(study), STAMP)  # time B: the phantom finished in Optuna

    notes, after = repair()
    searcher = cloudpickle.loads((after / f"searcher-state-{STAMP}.pkl").read_bytes())
    assert [t.value for t in searcher["_ot_study"].trials] == [0.7, None], notes
    assert set(searcher["_ot_trials"]) == {first.trial_id, second.trial_id}
    restored = search_generator()
    restored.restore_from_dir(str(after))
    restored.on_trial_complete(second.trial_id, {"valid_auc": 0.6})
    assert restored.next_trial() is not None and restored.next_trial() is None  # 3 trials in all
    values = sorted(t.value for t in restored.searcher.searcher._ot_study.trials if t.value is not None)
    assert values == [0.6, 0.7]


def test_a_restored_limiter_keeps_this_drivers_pool_and_trial_count(tmp_path):
    """Tune restores the limiter's saved state after raygex set up the resuming driver's side of it: the pool's
    key (on an object store each process has its own working copy, so the saved key names a folder of the killed
    driver) and the trials that exist now must stay this driver's."""
    generator = search_generator(slots_key="/tmp/raygex-killed/tiny")
    generator.next_trial(), generator.next_trial()
    generator.save_to_dir(str(tmp_path), STAMP)
    restored = search_generator(slots_key="/tmp/raygex-resumed/tiny", created=2)
    restored.restore_from_dir(str(tmp_path))
    limiter = restored.searcher
    assert (limiter.slots_key, limiter.created) == ("/tmp/raygex-resumed/tiny", 2)
    assert len(limiter.live_trials) == 2  # the saved state itself is restored


def test_a_history_shorter_than_its_checkpoint_gets_the_missing_epochs(where):
    """The experiment state (uploaded last) has the first trial finished after 5 epochs, its checkpoint names the
    final one, but the trial's result.json on the store is the copy from three epochs before: nothing would run
    that trial again, so its history would stay 1-3 of 5 for ever (seen once in tests/storage/test_s3_sweep.py).
    The missing epochs come back from the checkpoint's own history, marked as such; a whole history is left."""
    import torch
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult

    study, repair = where
    generator = search_generator()
    first, second = generator.next_trial(), generator.next_trial()
    generator.on_trial_complete(first.trial_id, {"valid_auc": 0.7})
    generator.save_to_dir(str(study), STAMP)
    folder, other = trial_folder(study, first), trial_folder(study, second)
    history = [{"epoch": e, "valid_auc": 0.5 + e / 20} for e in range(1, 6)]
    (study / folder / "checkpoint_000000").mkdir()
    torch.save({"history": history, "epoch": 5}, study / folder / "checkpoint_000000" / "trial_state.pt")
    (study / folder / "result.json").write_text("".join(json.dumps({**row, "trial_id": first.trial_id}) + "\n"
                                                        for row in history[:3]))
    first.run_metadata.checkpoint_manager.register_checkpoint(
        _TrainingResult(checkpoint=Checkpoint(str(study / folder / "checkpoint_000000")), metrics=history[-1]))
    finish(first, 0.75)
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first, second]))

    notes, after = repair()
    rows = [json.loads(line) for line in (after / folder / "result.json").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4, 5], notes
    assert [row.get("restored_from_checkpoint") for row in rows] == [None] * 3 + ["checkpoint_000000"] * 2
    assert rows[4]["valid_auc"] == history[4]["valid_auc"] and rows[4]["trial_id"] == first.trial_id
    assert (after / other / "result.json").read_text() == json.dumps({"epoch": 1}) + "\n"  # no checkpoint: as was
    notes, _ = repair()
    assert not [n for n in notes if "history" in n], "nothing left to put back"


def test_a_configuration_handed_out_after_the_optuna_study_was_saved_is_not_handed_out_again(where):
    """Optuna hands out queued configurations (``points_to_evaluate``) first. The saved study (older than the
    experiment state) still has the second one queued although a recorded, running trial got it: unrepaired, the
    resumed search hands it out again (found by tests/storage/test_s3_sweep.py: one configuration run twice)."""

    def queued_generator():
        return search_generator(queued=[{"lr": 0.005}, {"lr": 0.002}])

    study, repair = where
    generator = queued_generator()
    first = generator.next_trial()
    generator.save_to_dir(str(study), STAMP)  # time A: one trial; 0.002 still queued
    second = generator.next_trial()
    assert (first.config["lr"], second.config["lr"]) == (0.005, 0.002)
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first, second]))  # time B

    notes, after = repair()
    restored = queued_generator()
    restored.restore_from_dir(str(after))
    assert second.trial_id in restored.searcher.live_trials  # it counts against the study's cap
    restored.on_trial_complete(first.trial_id, {"valid_auc": 0.7})
    restored.on_trial_complete(second.trial_id, {"valid_auc": 0.8})  # told once, to the trial added for it
    third = restored.next_trial()
    assert third is not None and third.config["lr"] not in (0.005, 0.002), notes
    ot_study = restored.searcher.searcher._ot_study
    assert sorted(t.value for t in ot_study.trials if t.state.name == "COMPLETE") == [0.7, 0.8]


def test_a_study_in_a_working_copy_is_repaired_on_the_store_and_pulled(tmp_path, s3_server, bucket,
                                                                       raygex_messages):
    """What `raygex resume` runs before Tune's restore and before a leaderboard read from a sweep that ended
    under a killed driver: on an object store the store is repaired (Tune restores from it) and the driver's
    working copy pulled, so the leaderboard stage's Optuna copy (optuna.db) holds every trial."""
    import pickle

    from raygex.search.tune_compat.saved_state import repair_saved_study
    from raygex.files.storage import mirror
    from tests.storage.test_s3_sweep import upload

    study = tmp_path / "study"
    study.mkdir()
    generator = search_generator()
    first, second = generator.next_trial(), generator.next_trial()
    generator.on_trial_complete(first.trial_id, {"valid_auc": 0.7})
    generator.save_to_dir(str(study), STAMP)  # the Optuna study has the second trial running
    finish(first, 0.7)
    finish(second, 0.8)  # the experiment state (newer) has both finished: the sweep is over
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first, second]))
    upload(s3_server, bucket, study, "exp/tiny/subtype")

    copy = mirror(f"s3://{bucket}/exp/tiny")
    said = raygex_messages
    notes = repair_saved_study(copy.root / "subtype", "subtype")
    assert notes and said == [f"note: task subtype: {n} (Tune's saved state, left disagreeing by a kill mid-save)"
                              for n in notes]
    for where in (copy.root / "subtype", None):
        data = (where / f"searcher-state-{STAMP}.pkl").read_bytes() if where else \
            copy.remote.read_bytes(f"subtype/searcher-state-{STAMP}.pkl")
        assert sorted(t.value for t in pickle.loads(data)["_ot_study"].trials) == [0.7, 0.8]


def lr_and_hidden(trial) -> None:
    """A define-by-run space, as raygex's (queued points may then pin some parameters only)."""
    trial.suggest_float("lr", 1e-3, 1e-2, log=True)
    trial.suggest_categorical("hidden", [16, 32])


def partly_queued_generator():
    """raygex's queued points pin some parameters (a model family, a graph) and leave the rest to TPE."""
    return search_generator(budget=4, space=lr_and_hidden, queued=[{"hidden": 16}, {"hidden": 32}])


def queue(generator) -> list[dict]:
    """The fixed parameters of the configurations the restored Optuna study still has queued."""
    study = generator.searcher.searcher._ot_study
    return [t.system_attrs["fixed_params"] for t in study.trials if t.state.name == "WAITING"]


def test_a_partly_queued_point_taken_after_the_save_leaves_the_queue(where):
    """The second queued point (hidden = 32, lr sampled) went to a recorded trial after the Optuna study was
    saved: it leaves the queue (unrepaired, hidden = 32 would be handed out again, with another lr)."""
    study, repair = where
    generator = partly_queued_generator()
    first = generator.next_trial()
    generator.save_to_dir(str(study), STAMP)
    second = generator.next_trial()
    assert (first.config["hidden"], second.config["hidden"]) == (16, 32)
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first, second]))

    notes, after = repair()
    restored = partly_queued_generator()
    restored.restore_from_dir(str(after))
    assert queue(restored) == [], notes
    assert sorted(t.params["hidden"] for t in restored.searcher.searcher._ot_study.trials) == [16, 32]


def test_a_phantoms_queued_point_is_queued_again(where):
    """A phantom (never recorded, its run discarded) had taken the second queued point: the point goes back in
    the queue, so that choice is still tried."""
    study, repair = where
    generator = partly_queued_generator()
    first = generator.next_trial()
    (study / f"experiment_state-{STAMP}.json").write_text(experiment_state([first]))
    phantom = generator.next_trial()
    assert phantom.config["hidden"] == 32
    generator.save_to_dir(str(study), STAMP)

    notes, after = repair()
    restored = partly_queued_generator()
    restored.restore_from_dir(str(after))
    assert queue(restored) == [{"hidden": 32}], notes
    assert restored.next_trial().config["hidden"] == 32


def test_a_search_state_cut_off_by_the_kill_is_one_line_not_a_hang(where):
    """Tune copies its search-algorithm state into the study folder in place; a SIGKILL mid-copy left it empty (seen
    in test_resume's mid_fold kill point), and Tune's restore then logged the failure and waited forever. The
    resume stops with one line naming the file instead."""
    from raygex.errors import SweepInterrupted

    study, repair = where
    (study / "search_gen_state-2026-12-07_04-18-22.json").write_bytes(b"")
    with pytest.raises(SweepInterrupted, match="search_gen_state-2026-12-07_04-18-22.json: Tune's search state was "
                                               "cut off by the kill"):
        repair()
