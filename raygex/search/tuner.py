"""One study's Ray Tune experiment: Optuna TPE behind a concurrency limit, ASHA (or FIFO), the trainable with
the study's shared payload, and the care Tune's own state files need to survive a killed driver.

The study's folder is Tune's experiment folder (``storage_path`` = the experiment, ``name`` = the study).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from raygex.errors import SweepInterrupted
from raygex.files.storage import StoreFolder, folder_of
from raygex.runtime.ray_session import largest_node_memory_mb
from raygex.search.memory_estimate import reservation_mb
from raygex.search.payload import TrialPayload
from raygex.search.sampling import family_sampler
from raygex.search.scheduler import build_scheduler
from raygex.search.tune_compat.checkpoint_repair import TUNER_STATE, back_up_tuner_state
from raygex.search.tune_compat.saved_state import repair_saved_study
from raygex.search.tune_compat.tune_files import TERMINAL_STATES
from raygex.search.tune_compat.tuner_state import restored_searcher, restored_trainable_name, use_callbacks


def build_tuner(config, study_dir: Path, payload: TrialPayload, *, resume: bool, callbacks: list,
                finished_before: int = 0, unfinished: tuple = (), board=None, slots_key: str | None = None):
    """A fresh Tuner for the study, or the restored one when ``resume`` and Tune's state is there
    (``finished_before``: its trials that had finished, which the progress display counts as done;
    ``unfinished``: the ids of its other trials, running, pending or errored, which Tune restores and runs).

    ``board``: the progress display shared with the studies sweeping at the same time; ``slots_key``: the
    experiment's pool of trial slots (:mod:`raygex.search.slots`) this study draws from.
    """
    from ray import tune

    from raygex.config import selection_column, selection_mode
    from raygex.search.progress import StudyProgress
    from raygex.search.slots import SlotLimiter, slots_for
    from raygex.search.space import (choice_points, define_by_run, family_dimensions, family_sizes, parse_space,
                                     study_budget)
    from raygex.search.trainable import train_fn
    from raygex.search.tune_compat.optuna_searcher import ResumableOptunaSearch

    study = study_dir.name
    metric, mode = selection_column(config), selection_mode(config)
    budget = study_budget(config)[0]
    progress = StudyProgress(study, budget, metric, mode, ended_before=(finished_before, 0), board=board)
    run_callbacks = [progress, *result_files(), *callbacks]
    # On an object store (raygex.files.storage) Tune reads and writes the study on the store itself; the repairs of a
    # killed driver's state (raygex.search.tune_compat.saved_state) are made there too, by the same code.
    folder = folder_of(study_dir)
    where, tune_path = tune_storage(folder)
    restoring = resume and tune.Tuner.can_restore(tune_path, **where)
    if restoring:
        repair_saved_study(study_dir, study)
    # Registered under a name of the study's own (studies sweep side by side in one driver, and Tune's registry
    # is not safe to write from several threads): a restored study keeps the name its state was saved with.
    name = (restored_trainable_name(folder.read_bytes(TUNER_STATE)) if restoring else None) or f"train_fn_{study}"
    tune.register_trainable(name, tune.with_resources(tune.with_parameters(train_fn, payload=payload),
                                                      trial_resources(config, payload)))
    if restoring:
        tuner = tune.Tuner.restore(tune_path, name, resume_unfinished=True, resume_errored=False,
                                   restart_errored=True, **where)
        use_callbacks(tuner, run_callbacks)
        limiter = restored_searcher(tuner)
        if isinstance(limiter, SlotLimiter):  # unpickled as it was made: it learns which trials exist now
            limiter.created = finished_before + len(unfinished)
        pool = slots_for(slots_key)
        if pool is not None:  # trials Tune restores run without a suggestion: their slots are held for them
            pool.hold(study, unfinished)
        back_up_tuner_state(folder)
        return tuner
    parsed = parse_space(config.search.space, config.graph_choices())
    searcher = ResumableOptunaSearch(space=define_by_run(parsed), metric=metric, mode=mode,
                                     points_to_evaluate=choice_points(parsed, budget, config.search.start_trials),
                                     sampler=family_sampler(config.search.family_budget, family_dimensions(parsed),
                                                            family_sizes(parsed), config.search.seed, budget))
    searcher = SlotLimiter(searcher, config.search.max_concurrent_per_study or config.search.max_concurrent,
                           study=study, slots_key=slots_key, budget=budget)
    scheduler = build_scheduler(config, metric, mode)
    tuner = tune.Tuner(
        name,
        # reuse_actors: a finished trial's worker process (torch imported, payload mapped) takes the next trial,
        # which saves seconds of process start per trial on small machines.
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=budget,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=study, verbose=0,
                                  storage_path=str(PurePosixPath(tune_path).parent),
                                  # the experiment state reaches a store every few seconds, not every 5 minutes
                                  sync_config=tune.SyncConfig(sync_period=2) if where else None, **where,
                                  callbacks=run_callbacks,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  failure_config=tune.FailureConfig(max_failures=config.search.max_failures)))
    back_up_tuner_state(folder)
    return tuner


def trial_resources(config, payload: TrialPayload):
    """What Tune asks Ray for per trial: the config's fixed request, or with ``resources.memory_mb: auto`` a
    function of the trial's configuration that adds its memory estimate
    (:func:`raygex.search.memory_estimate.reservation_mb`). Tune pickles that function into the trial's
    definition, so it holds the study's graphs by reference (one object in Ray's store), never by value."""
    fixed = config.resources.ray_resources()
    if config.resources.memory_mb != "auto":
        return fixed
    import ray
    from ray import tune

    largest = largest_node_memory_mb()
    graphs, shape, train = ray.put(payload.graphs), payload.shape, dict(payload.settings.train)

    def request(trial_config: dict):
        hparams = {**train, **trial_config}
        graph = study_graph(graphs, hparams.get("graph")) if hparams.get("model") == "gcn" else None
        memory = reservation_mb(hparams, shape, graph, largest)
        bundle = {"CPU": fixed["cpu"], "GPU": fixed["gpu"], "memory": int(memory * 2**20)}
        return tune.PlacementGroupFactory([{k: v for k, v in bundle.items() if v}])

    return request


_study_graphs: dict[str, dict] = {}  # ObjectRef (hex) -> the study's aligned graphs, fetched once per driver


def study_graph(graphs, name: str | None):
    """The aligned graph ``name`` of a study's graphs held in Ray's object store (``graphs``: their ObjectRef)."""
    import ray

    key = graphs.hex()
    if key not in _study_graphs:
        _study_graphs[key] = ray.get(graphs)
    return _study_graphs[key].get(name)


def tune_storage(folder: StoreFolder) -> tuple[dict, str]:
    """What Tune needs to find the study: extra ``RunConfig``/``restore`` arguments and the study's path. Tune
    keeps a local study in place; one on a store it stages locally and syncs (``storage_filesystem``)."""
    return ({} if folder.is_local else {"storage_filesystem": folder.fs}), folder.path


def result_files() -> list:
    """Tune's per-trial ``result.json`` and ``progress.csv`` writers (what the leaderboard reads), without the
    TensorBoard writer Tune adds by default (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS`` is set by
    :func:`raygex.runtime.ray_session.connect`): every logger runs in the driver's result loop."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [CSVLoggerCallback(), JsonLoggerCallback()]


def fit(tuner, num_samples: int, experiment: Path):
    """``tuner.fit()``, turning Ctrl-C (Tune stops and saves its state first) into a clean, resumable stop."""
    hint = f"the sweep's state is saved; continue it with 'raygex resume {experiment}'"
    try:
        results = tuner.fit()
    except KeyboardInterrupt:
        raise SweepInterrupted(hint) from None
    done = results.num_terminated + results.num_errors
    if done < num_samples:
        raise SweepInterrupted(f"{done} of {num_samples} trials finished; {hint}")
    return results


def sweep_finished(trial_states: dict[str, str], num_samples: int) -> bool:
    """Whether Tune's saved state shows every one of the study's trials ended (finished or errored)."""
    return len(trial_states) >= num_samples and all(s in TERMINAL_STATES for s in trial_states.values())
