"""Contract tests: every private name and saved-state format of Ray Tune and Optuna that raygex's seam
(:mod:`raygex.search.tune_compat`) relies on, checked against the installed versions.

A real Tune run (two trials of a trivial trainable under Optuna behind a concurrency limiter, a checkpoint each)
writes the study folder; the seam's readers must understand every file of it, and a restored Tuner must keep the
searcher and run config where the seam looks. A failure names the library, its version and the format that
changed, which is what a maintainer raising the upper bound in ``pyproject.toml`` needs to know.
"""

from __future__ import annotations

import json
import pickle
import re
import tempfile
import tomllib
from pathlib import Path

import optuna
import pytest
import ray
import ray.cloudpickle as cloudpickle

from raygex.search.tune_compat import versions
from raygex.search.tune_compat.checkpoint_repair import TUNER_STATE, checkpoint_references
from raygex.search.tune_compat.optuna_repair import _rebuild
from raygex.search.tune_compat.saved_state import saved_trials
from raygex.search.tune_compat.tune_files import newest_searcher_state, trial_states
from raygex.search.tune_compat.tuner_state import restored_searcher, restored_trainable_name, use_callbacks

REPO = Path(__file__).resolve().parents[2]
RAY = f"Ray {ray.__version__}"
OPTUNA = f"Optuna {optuna.__version__}"


def contract(ok: bool, library: str, what: str) -> None:
    if not ok:
        pytest.fail(f"{library}: {what} changed; raygex.search.tune_compat must follow it before the version range "
                    f"in pyproject.toml admits this version", pytrace=False)


def _trainable(config):
    from ray import tune
    from ray.tune import Checkpoint

    for step in (1, 2):
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "state.json").write_text(json.dumps({"step": step}))
            tune.report({"score": config["x"] * step, "epoch": step}, checkpoint=Checkpoint.from_directory(folder))


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    """A finished two-trial Tune study with Optuna behind a ConcurrencyLimiter, saved in a folder."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    storage = tmp_path_factory.mktemp("tune")
    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        searcher = ConcurrencyLimiter(OptunaSearch(space={"x": tune.uniform(0.0, 1.0)}, metric="score", mode="max",
                                                   sampler=optuna.samplers.RandomSampler(seed=0)), max_concurrent=1)
        tuner = tune.Tuner(_trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=2),
                           run_config=tune.RunConfig(name="study", storage_path=str(storage), verbose=0,
                                                     checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
        results = tuner.fit()
        assert results.num_terminated == 2
        folder = storage / "study"
        restored = tune.Tuner.restore(str(folder), _trainable)
        yield folder, restored
    finally:
        ray.shutdown()


def test_experiment_state_lists_the_trials_as_the_seam_reads_them(study_folder):
    folder, _ = study_folder
    states = sorted(folder.glob("experiment_state-*.json"))
    contract(bool(states), RAY, "the experiment state's file name (experiment_state-*.json)")
    text = states[-1].read_text()
    trials = saved_trials(text)
    contract(len(trials) == 2, RAY, "the experiment state's trial_data layout ([trial JSON, run JSON] per trial, "
             "experiment_tag '<N>_...', trial_id, status, trainable_name, last_result, config)")
    contract(sorted(t.number for t in trials) == [1, 2], RAY, "the trial counter in experiment_tag")
    contract(all(t.status == "TERMINATED" and "x" in t.config and t.last_result.get("epoch") == 2 for t in trials),
             RAY, "a trial's status, config or last_result in the experiment state")
    contract(set(trial_states(folder).values()) == {"TERMINATED"}, RAY, "the experiment state's status field")
    folders = {p.name for p in folder.iterdir() if p.is_dir()}
    contract(all(any(f.startswith(t.folder_prefix) for f in folders) for t in trials), RAY,
             "a trial folder's name (<trainable>_<trial id>_<N>_...)")
    references = checkpoint_references(text)
    contract(len(references) == 2 and all((folder / f / c).is_dir() for f, c in references), RAY,
             "the checkpoint paths recorded in the experiment state")


def test_search_state_holds_the_trial_counter_and_the_limiters_live_trials(study_folder):
    folder, _ = study_folder
    states = sorted(folder.glob("search_gen_state-*.json"))
    contract(bool(states), RAY, "the search state's file name (search_gen_state-*.json)")
    search = cloudpickle.loads(states[-1].read_bytes())
    contract(isinstance(search, dict) and search.get("counter") == 2 and "finished" in search, RAY,
             "the SearchGenerator state (a cloudpickled dict with 'counter' and 'finished')")
    limiter = search.get("name:ConcurrencyLimiter")
    contract(isinstance(limiter, dict) and isinstance(limiter.get("live_trials"), set)
             and "num_unfinished_live_trials" in limiter, RAY,
             "a searcher wrapper's state under 'name:<class>' (ConcurrencyLimiter's live_trials set)")


def test_searcher_state_is_a_pickled_dict_holding_the_optuna_study(study_folder):
    folder, _ = study_folder
    path = newest_searcher_state(folder)
    contract(path is not None, RAY, "the searcher state's file name (searcher-state-*.pkl)")
    saved = pickle.loads(path.read_bytes())
    contract(isinstance(saved, dict) and isinstance(saved.get("_ot_study"), optuna.Study), RAY,
             "OptunaSearch's saved state (a pickled __dict__ with _ot_study)")
    contract(isinstance(saved.get("_ot_trials"), dict) and isinstance(saved.get("_completed_trials"), set), RAY,
             "OptunaSearch's _ot_trials (trial id -> optuna Trial) and _completed_trials (a set)")
    contract(len(saved["_completed_trials"]) == 2 and len(saved["_ot_study"].trials) == 2, RAY,
             "OptunaSearch's bookkeeping of completed trials")


def test_tuner_state_names_the_trainable(study_folder):
    folder, _ = study_folder
    contract(restored_trainable_name((folder / TUNER_STATE).read_bytes()) is not None, RAY,
             "tuner.pkl (a pickled dict with '__trainable_name')")


def test_a_restored_tuner_keeps_the_searcher_and_run_config_where_the_seam_looks(study_folder):
    from ray.tune.search import ConcurrencyLimiter

    _, restored = study_folder
    contract(isinstance(restored_searcher(restored), ConcurrencyLimiter), RAY,
             "Tuner._local_tuner._tune_config.search_alg (the restored searcher)")
    marker = [object()]
    use_callbacks(restored, marker)
    contract(restored._local_tuner._run_config.callbacks is marker, RAY,
             "Tuner._local_tuner._run_config.callbacks (a restored run's callbacks)")


def test_optuna_study_storage_internals_copy_a_study():
    """What :func:`raygex.search.tune_compat.optuna_repair._rebuild` uses: Study._storage, Study._study_id,
    get_study_system_attrs / set_study_system_attr and create_new_trial(template_trial=...)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("experiment", "e")
    study._storage.set_study_system_attr(study._study_id, "raygex_contract", 1)
    handles = {}
    for i in range(3):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(trial, float(i))
        handles[f"t{i}"] = optuna.trial.Trial(study, trial._trial_id)
    study.enqueue_trial({"x": 0.5})
    searcher = {"_ot_study": study, "_ot_trials": handles, "_completed_trials": set(handles)}
    notes: list[str] = []
    _rebuild(searcher, {1}, [{"x": 0.25}], notes)
    fresh = searcher["_ot_study"]
    contract(fresh is not study and [t.value for t in fresh.trials if t.state.is_finished()] == [0.0, 2.0], OPTUNA,
             "Study._storage.create_new_trial(study_id, template_trial=...)")
    contract(fresh._storage.get_study_system_attrs(fresh._study_id).get("raygex_contract") == 1, OPTUNA,
             "Study._storage.get_study_system_attrs / set_study_system_attr")
    waiting = [t.system_attrs.get("fixed_params") for t in fresh.trials if t.state == optuna.trial.TrialState.WAITING]
    contract(waiting == [{"x": 0.5}, {"x": 0.25}], OPTUNA, "enqueued trials (WAITING) kept by a copied study")
    contract(set(searcher["_ot_trials"]) == {"t0", "t2"} and searcher["_completed_trials"] == {"t0", "t2"}, OPTUNA,
             "trial handles (optuna.trial.Trial(study, trial_id))")


def test_rays_node_stats_report_the_object_store():
    from raygex.search.tune_compat.ray_internals import object_store_stats

    ray.init(address="local", num_cpus=1, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        node = ray.nodes()[0]
        stats = object_store_stats(node["NodeManagerAddress"], node["NodeManagerPort"])
        contract(all(hasattr(stats, field) for field in ("object_store_bytes_used", "object_store_bytes_primary_copy",
                                                         "spilled_bytes_total")), RAY,
                 "ray._private.internal_api.node_stats(...).store_stats")
    finally:
        ray.shutdown()


def test_asha_brackets_are_built_and_read_as_the_family_scheduler_does():
    import inspect

    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.schedulers.async_hyperband import _Bracket

    params = list(inspect.signature(_Bracket).parameters)
    contract(params[:4] == ["min_t", "max_t", "reduction_factor", "s"] and "stop_last_trials" in params, RAY,
             "ray.tune.schedulers.async_hyperband._Bracket(min_t, max_t, reduction_factor, s, stop_last_trials)")
    bracket = _Bracket(2, 32, 4, 0)
    contract([m for m, _ in bracket._rungs] == [32, 8, 2] and all(r == {} for _, r in bracket._rungs), RAY,
             "_Bracket._rungs: [(milestone, {trial_id: value}), ...] in descending order")
    scheduler = ASHAScheduler(time_attr="epoch", metric="m", mode="max", max_t=8, grace_period=2)
    contract(isinstance(getattr(scheduler, "_trial_info", None), dict), RAY,
             "AsyncHyperBandScheduler._trial_info (trial_id -> bracket)")


# -- the version range ---------------------------------------------------------------------------------------------

def declared_range(name: str) -> tuple[str, str]:
    """(lower, upper) of ``name``'s requirement in pyproject.toml (``>=L,<U``)."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in dependencies if re.match(rf"{name}(\[|>|<|=|$)", d))
    lower, upper = re.search(r">=([\d.]+)", spec), re.search(r"<([\d.]+)", spec)
    assert lower and upper, f"pyproject.toml must bound {name} on both sides (the tested range): {spec}"
    return lower.group(1), upper.group(1)


@pytest.mark.parametrize("name", sorted(versions.TESTED))
def test_pyproject_the_seam_and_the_cluster_pins_agree_on_the_range(name):
    assert declared_range(name) == versions.TESTED[name], (name, declared_range(name), versions.TESTED[name])
    pins = dict(re.sub(r"\[.*\]", "", line.split("#")[0].strip()).split("==")
                for line in (REPO / "cluster" / "requirements.txt").read_text().splitlines()
                if line.split("#")[0].strip())
    assert versions.in_range(pins[name], *versions.TESTED[name]), f"cluster/requirements.txt pins {name} {pins[name]}"


@pytest.mark.parametrize("name", sorted(versions.TESTED))
def test_the_installed_version_is_inside_the_range_these_tests_passed_on(name):
    installed = {"ray": ray.__version__, "optuna": optuna.__version__}[name]
    assert versions.in_range(installed, *versions.TESTED[name]), (
        f"{name} {installed} is installed, outside {versions.TESTED[name]}: these contract tests ran on it, so "
        f"either widen the range (they passed) or pin {name} back")


def test_untested_versions_are_one_line_each():
    assert versions.untested_versions({"ray": "2.60.0", "optuna": "5.1.0"}) == []
    lines = versions.untested_versions({"ray": "2.61.0", "optuna": "4.9.1"})
    assert len(lines) == 2 and lines[0].startswith("ray 2.61.0 is outside") and "optuna 4.9.1" in lines[1]
    assert all("\n" not in line for line in lines)
