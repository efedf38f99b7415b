"""One study's Ray Tune experiment: Optuna TPE behind a concurrency limit, ASHA (or FIFO), the trainable with
the study's shared payload, and the care Tune's own state files need to survive a killed driver.

The study's folder is Tune's experiment folder (``storage_path`` = the experiment, ``name`` = the study).
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path, PurePosixPath

from raygex.errors import SweepInterrupted

TUNER_STATE, TUNER_BACKUP = "tuner.pkl", ".raygex-tuner.pkl"
TERMINAL_STATES = ("TERMINATED", "ERROR")


def build_tuner(config, study_dir: Path, payload: dict, *, resume: bool, echo, callbacks: list,
                finished_before: int = 0, unfinished: tuple = (), board=None, slots_key: str | None = None):
    """A fresh Tuner for the study, or the restored one when ``resume`` and Tune's state is there
    (``finished_before``: its trials that had finished, which the progress display counts as done;
    ``unfinished``: the ids of its other trials, running, pending or errored, which Tune restores and runs).

    ``board``: the progress display shared with the studies sweeping at the same time; ``slots_key``: the
    experiment's pool of trial slots (:mod:`raygex.search.slots`) this study draws from.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from raygex.layout import selection_column, selection_mode
    from raygex.search.progress import StudyProgress
    from raygex.search.sampling import tpe_sampler
    from raygex.search.searcher import ResumableOptunaSearch
    from raygex.search.slots import SlotLimiter, slots_for
    from raygex.space import choice_points, define_by_run, parse_space, study_budget
    from raygex.search.trainable import train_fn

    study = study_dir.name
    metric, mode = selection_column(config), selection_mode(config)
    budget = study_budget(config)[0]
    progress = StudyProgress(study, budget, metric, mode, echo, ended_before=(finished_before, 0), board=board)
    run_callbacks = [progress, *result_files(), *callbacks]
    # On an object store (raygex.storage) Tune reads and writes the study on the store itself: S3 writes are
    # whole-object, so tuner.pkl cannot be left truncated there; missing checkpoints are put back on the store.
    remote = _remote_study(study_dir)
    where = {"storage_filesystem": remote.fs} if remote else {}
    tune_path = remote.path if remote else str(study_dir)
    restoring = resume and tune.Tuner.can_restore(tune_path, **where)
    if restoring:
        if remote:
            repair_missing_remote_checkpoints(remote)
            if reconcile_searcher_state([f for f in remote.files() if "/" not in f], remote.read_bytes,
                                        remote.write_bytes):
                echo(f"note: task {study}: Tune's search state was ahead of its experiment state (a kill "
                     f"mid-upload); set back to the trials the experiment recorded")
        else:
            repair_tuner_state(study_dir)
            repair_missing_checkpoints(study_dir)
            reconcile_searcher_state([p.name for p in study_dir.iterdir()], lambda n: (study_dir / n).read_bytes(),
                                     lambda n, b: _write_atomically(study_dir / n, b))
    # Registered under a name of the study's own (studies sweep side by side in one driver, and Tune's registry
    # is not safe to write from several threads): a restored study keeps the name its state was saved with.
    saved_state = (remote.read_bytes(TUNER_STATE) if remote else _read(study_dir / TUNER_STATE)) if restoring else None
    name = restored_trainable_name(saved_state) or f"train_fn_{study}"
    tune.register_trainable(name, tune.with_resources(tune.with_parameters(train_fn, payload=payload),
                                                      {"cpu": config.resources.cpu, "gpu": config.resources.gpu}))
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
        if not remote:
            back_up_tuner_state(study_dir)
        return tuner
    parsed = parse_space(config.search.space, config.graph_choices())
    searcher = ResumableOptunaSearch(space=define_by_run(parsed), metric=metric, mode=mode,
                                     points_to_evaluate=choice_points(parsed, budget),
                                     sampler=tpe_sampler(config.search.seed, budget))
    searcher = SlotLimiter(searcher, config.search.max_concurrent_per_study or config.search.max_concurrent,
                           study=study, slots_key=slots_key, budget=budget)
    max_t = config.search.scheduler.max_epochs or config.train.max_epochs
    scheduler = (ASHAScheduler(time_attr="epoch", metric=metric, mode=mode, max_t=max_t,
                               grace_period=min(config.search.scheduler.grace_period, max_t))
                 if config.search.scheduler.kind == "asha" else FIFOScheduler())
    tuner = tune.Tuner(
        name,
        # reuse_actors: a finished trial's worker process (torch imported, payload mapped) takes the next trial,
        # which saves seconds of process start per trial on small machines.
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=budget,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=study, verbose=0,
                                  storage_path=str(PurePosixPath(remote.path).parent if remote else study_dir.parent),
                                  # the experiment state reaches the store every few seconds, not every 5 minutes
                                  sync_config=tune.SyncConfig(sync_period=2) if remote else None, **where,
                                  callbacks=run_callbacks,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  failure_config=tune.FailureConfig(max_failures=1)))
    if not remote:
        back_up_tuner_state(study_dir)
    return tuner


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def restored_trainable_name(saved_state: bytes | None) -> str | None:
    """The trainable name the study's saved Tune state (``tuner.pkl``) was made with (Tune refuses another on
    restore)."""
    try:
        return pickle.loads(saved_state).get("__trainable_name")
    except Exception:
        return None


def restored_searcher(tuner):
    """The searcher a restored Tuner unpickled from the study's state (Ray 2.x keeps it in its TuneConfig)."""
    tune_config = getattr(getattr(tuner, "_local_tuner", None), "_tune_config", None)
    return getattr(tune_config, "search_alg", None)


def use_callbacks(tuner, callbacks: list) -> None:
    """Give a restored Tuner this run's callbacks. ``Tuner.restore`` brings back the ones pickled with the
    study's state (a progress display counting from zero, the first driver's W&B writer); Tune has no public
    way to replace them, so the run config it restored is updated in place when it is where Ray 2.x keeps it."""
    internal = getattr(tuner, "_local_tuner", None)
    run_config = getattr(internal, "_run_config", None)
    if run_config is not None and hasattr(run_config, "callbacks"):
        run_config.callbacks = callbacks


def _remote_study(study_dir: Path):
    """The study's location on the object store when ``study_dir`` is in a working copy, else None."""
    from raygex.storage import mirror_of

    found = mirror_of(study_dir)
    return found.remote.child(found.relative(study_dir)) if found else None


def result_files() -> list:
    """Tune's per-trial ``result.json`` and ``progress.csv`` writers (what the leaderboard reads), without the
    TensorBoard writer Tune adds by default (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS`` is set by
    :func:`raygex.ray_session.connect`): every logger runs in the driver's result loop."""
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


def _loadable(path: Path) -> bool:
    try:
        pickle.loads(path.read_bytes())
    except Exception:  # empty, truncated, or unreadable: any of them breaks Tuner.restore
        return False
    return True


def back_up_tuner_state(study_dir: Path) -> None:
    """Keep a good copy of Tune's ``tuner.pkl``: Tune rewrites it in place, so a kill mid-write truncates it."""
    from raygex.fileio import atomic_path

    state = study_dir / TUNER_STATE
    if state.exists() and _loadable(state):
        with atomic_path(study_dir / TUNER_BACKUP) as tmp:
            Path(tmp).write_bytes(state.read_bytes())


def repair_tuner_state(study_dir: Path) -> None:
    """Put the last good ``tuner.pkl`` back when a killed driver left it truncated (found by bench soak)."""
    state, backup = study_dir / TUNER_STATE, study_dir / TUNER_BACKUP
    if not _loadable(state) and backup.exists() and _loadable(backup):
        state.write_bytes(backup.read_bytes())


CHECKPOINT_REF = re.compile(rb"([^/\\\"\x00-\x1f]+)/(checkpoint_\d{6})")
HEX_BLOB = re.compile(r"[0-9a-f]{64,}")


def checkpoint_references(state_text: str) -> set[tuple[str, str]]:
    """(trial folder, checkpoint folder) pairs an experiment state names.

    Tune writes a trial's checkpoint manager as a hex-encoded cloudpickle inside the JSON (its
    ``CLOUDPICKLE_FALLBACK``), so the paths are looked for in the plain text and in every decoded hex blob;
    nothing is unpickled.
    """
    found = set(CHECKPOINT_REF.findall(state_text.encode()))
    for blob in HEX_BLOB.findall(state_text):
        if len(blob) % 2 == 0:
            found.update(CHECKPOINT_REF.findall(bytes.fromhex(blob)))
    return {(trial.decode(errors="replace"), name.decode()) for trial, name in found}


def repair_missing_checkpoints(study_dir: Path) -> list[Path]:
    """Put back checkpoints that Tune's saved state still points at but that are gone (found by test_resume).

    Tune keeps one checkpoint per trial: when a trial saves checkpoint N+1 it deletes N, and the experiment state
    that records N+1 is written a moment later. A driver killed in between leaves a state pointing at a deleted
    checkpoint, and Tune's restore then fails the trial ("Could not recover from checkpoint"). Each missing one is
    replaced by a copy of the newest checkpoint left in that trial's folder: the trainable's own state inside it
    (its epoch, weights, optimiser, shuffling) says where training really is, so nothing is lost or repeated.
    Returns the checkpoints put back.
    """
    import shutil

    states = sorted(study_dir.glob("experiment_state-*.json"))
    if not states:
        return []
    restored = []
    for trial, name in sorted(checkpoint_references(states[-1].read_text(errors="replace"))):
        folder = study_dir / trial
        missing = folder / name
        if not folder.is_dir() or missing.exists():
            continue
        left = sorted(p for p in folder.glob("checkpoint_*") if p.is_dir())
        if left:
            shutil.copytree(left[-1], missing)
            restored.append(missing)
    return restored


def repair_missing_remote_checkpoints(remote) -> list[str]:
    """:func:`repair_missing_checkpoints` on an object store (``remote``: the study's :class:`Remote`): the same
    race exists there (Tune deletes checkpoint N on the store before its synced state names N+1)."""
    files = remote.files()
    states = sorted(f for f in files if "/" not in f and f.startswith("experiment_state-") and f.endswith(".json"))
    if not states:
        return []
    text = (remote.read_bytes(states[-1]) or b"").decode(errors="replace")
    restored = []
    for trial, name in sorted(checkpoint_references(text)):
        mine = [f for f in files if f.startswith(f"{trial}/")]
        if not mine or any(f.startswith(f"{trial}/{name}/") for f in mine):
            continue
        left = sorted({f.split("/")[1] for f in mine if f.split("/")[1].startswith("checkpoint_")
                       and f.count("/") >= 2})
        if not left:
            continue
        for f in mine:
            if f.startswith(f"{trial}/{left[-1]}/"):
                remote.fs.copy_file(remote.key(f), remote.key(f.replace(f"/{left[-1]}/", f"/{name}/", 1)))
        restored.append(f"{trial}/{name}")
    return restored


def _write_atomically(path: Path, data: bytes) -> None:
    from raygex.fileio import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def _state_trial_ids(state_text: str) -> set[str]:
    ids = set()
    for entry in json.loads(state_text).get("trial_data", []):
        meta = entry[0] if isinstance(entry, list) and entry else entry
        meta = json.loads(meta) if isinstance(meta, str) else meta
        if isinstance(meta, dict) and "trial_id" in meta:
            ids.add(str(meta["trial_id"]))
    return ids


def reconcile_searcher_state(names: list[str], read, write) -> bool:
    """Make Tune's saved search state agree with its saved experiment state (``names``: the study folder's file
    names; ``read(name)``/``write(name, bytes)`` its files, local or on a store). Returns whether it changed.

    Tune saves the two separately, and on an object store it uploads them in no fixed order: a driver killed
    mid-upload can leave a search state that counts a trial the experiment state never recorded (found by
    tests/storage: "5 of 6 trials finished" after resume). Tune would then create one trial too few (its trial
    counter says the budget was reached) and the concurrency limiter would keep a slot for a trial that never
    ends. The counter is set back to the trials the experiment knows and the phantom leaves the limiter; the
    phantom's configuration stays in the Optuna study as running, so it is not suggested again.
    """
    import ray.cloudpickle as cloudpickle

    searchers = sorted(n for n in names if n.startswith("searcher-state-") and n.endswith(".pkl"))
    states = sorted(n for n in names if n.startswith("experiment_state-") and n.endswith(".json"))
    if not searchers or not states:
        return False
    try:
        known = _state_trial_ids(read(states[-1]).decode())
        search = cloudpickle.loads(read(searchers[-1]))
    except Exception:  # unreadable: Tune's own restore reports it
        return False
    changed = False
    if isinstance(search, dict) and isinstance(search.get("counter"), int) and search["counter"] > len(known):
        search["counter"], search["finished"] = len(known), False
        changed = True
    # Tune keys each wrapper's state by its class name: "name:SlotLimiter" for ours (a ConcurrencyLimiter
    # subclass), "name:ConcurrencyLimiter" for a study saved before studies swept side by side
    limiters = [v for k, v in search.items() if str(k).startswith("name:") and isinstance(v, dict)
                and isinstance(v.get("live_trials"), set)] if isinstance(search, dict) else []
    for limiter in limiters:
        phantoms = {t for t in limiter["live_trials"] if str(t) not in known}
        if phantoms:
            limiter["live_trials"] = limiter["live_trials"] - phantoms
            limiter["num_unfinished_live_trials"] = max(0, limiter.get("num_unfinished_live_trials", 0)
                                                        - len(phantoms))
            changed = True
    if changed:
        write(searchers[-1], cloudpickle.dumps(search))
    return changed
