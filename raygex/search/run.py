"""`raygex search` / `raygex resume`: one Ray Tune experiment per task, Optuna TPE + ASHA, leaderboards.

Data path: the canonical dataset is read once with Ray Data on the driver, each task's split arrays are
standardised once with training statistics, and each task's payload (arrays + every aligned graph choice) goes
into the object store once through ``tune.with_parameters``: trials read it zero-copy and never touch files.
Tasks run one after another, each with ``max_concurrent`` trials side by side.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from raygex.config import ExperimentConfig, load_config
from raygex.errors import ConfigError, SweepInterrupted
from raygex.search import leaderboard
from raygex.search.lock import ExperimentLock
from raygex.search.space import choice_points, define_by_run, parse_space

CONFIG_SNAPSHOT = "config.yaml"
METRIC_MODES = {"auc": "max", "accuracy": "max", "balanced_accuracy": "max", "loss": "min"}


def tune_metric(config: ExperimentConfig) -> tuple[str, str]:
    """The metric Tune optimises: the best-so-far validation metric of each trial, and its direction."""
    name = config.search.metric
    if not name.startswith("valid_") or name[len("valid_"):] not in METRIC_MODES:
        raise ConfigError(f"search.metric must be one of {['valid_' + m for m in METRIC_MODES]}, but got {name!r}")
    return f"best_{name}", METRIC_MODES[name[len('valid_'):]]


def experiment_dir(config: ExperimentConfig, storage: str | None = None, name: str | None = None) -> Path:
    return Path(storage or config.storage).expanduser().resolve() / (name or config.name)


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Connect to a running cluster (``--address`` or ``RAY_ADDRESS``) or start a local Ray."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Checkpointing every few epochs is deliberate (ASHA pauses, resume); Tune's warning about it is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")


def check_resources(config: ExperimentConfig) -> None:
    import ray

    total = ray.cluster_resources()
    for key, wanted in (("CPU", config.resources.cpu), ("GPU", config.resources.gpu)):
        if wanted > total.get(key, 0):
            raise ConfigError(f"resources.{key.lower()} = {wanted} per trial, but the cluster has "
                              f"{total.get(key, 0):g} {key}s: no trial could ever start")


def task_payload(config: ExperimentConfig, task_name: str, dataset, graphs: dict, seed: int) -> dict:
    """The arrays and graphs one task's trials share (stored once in the object store)."""
    from raygex.experiment import trial_data
    from raygex.graphs.align import align_graph

    data = trial_data(config, task_name, dataset, graphs, seed=seed, graph=None).standardised()
    aligned = {name: align_graph(graph, data.genes) for name, graph in graphs.items()}
    fixed = {"train": {**config.train.model_dump(), "seed": seed},
             "cpus_per_trial": config.resources.cpu,
             "checkpoint_every": config.search.checkpoint_every}
    return {"data": data, "graphs": aligned, "fixed": fixed}


def _tuner_for_task(config: ExperimentConfig, task_dir: Path, payload: dict, resume: bool, echo):
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter
    from raygex.search.progress import TrialProgress
    from raygex.search.searcher import ResumableOptunaSearch
    from raygex.search.trainable import train_fn
    from raygex.search.wandb_logging import trial_callbacks

    trainable = tune.with_resources(tune.with_parameters(train_fn, payload=payload),
                                    {"cpu": config.resources.cpu, "gpu": config.resources.gpu})
    metric, mode = tune_metric(config)
    progress = TrialProgress(task_dir.name, config.search.num_samples, metric, mode, echo)
    if resume and tune.Tuner.can_restore(str(task_dir)):
        _repair_tuner_state(task_dir)
        tuner = tune.Tuner.restore(str(task_dir), trainable, resume_unfinished=True, resume_errored=False,
                                   restart_errored=True)
        _back_up_tuner_state(task_dir)
        return tuner
    parsed = parse_space(config.search.space, config.graph_choices())
    searcher = ResumableOptunaSearch(space=define_by_run(parsed), metric=metric, mode=mode,
                            points_to_evaluate=choice_points(parsed, config.search.num_samples),
                            sampler=TPESampler(seed=config.search.seed, n_startup_trials=min(
                                10, max(2, config.search.num_samples // 3))))
    searcher = ConcurrencyLimiter(searcher, max_concurrent=config.search.max_concurrent)
    max_t = config.search.scheduler.max_epochs or config.train.max_epochs
    scheduler = (ASHAScheduler(time_attr="epoch", metric=metric, mode=mode, max_t=max_t,
                               grace_period=min(config.search.scheduler.grace_period, max_t))
                 if config.search.scheduler.kind == "asha" else FIFOScheduler())
    tuner = tune.Tuner(
        trainable,
        # reuse_actors: a finished trial's worker process (torch imported, payload mapped) takes the next trial,
        # which saves seconds of process start per trial on small machines.
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=config.search.num_samples,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=task_dir.name, storage_path=str(task_dir.parent), verbose=0,
                                  callbacks=[progress, *trial_callbacks(config, task_dir.parent, task_dir.name)],
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  failure_config=tune.FailureConfig(max_failures=1)))
    _back_up_tuner_state(task_dir)
    return tuner


TUNER_STATE, TUNER_BACKUP = "tuner.pkl", ".raygex-tuner.pkl"


def _loadable(path: Path) -> bool:
    import pickle

    try:
        pickle.loads(path.read_bytes())
    except Exception:  # empty, truncated, or unreadable: any of them breaks Tuner.restore
        return False
    return True


def _back_up_tuner_state(task_dir: Path) -> None:
    """Keep a good copy of Tune's ``tuner.pkl``: Tune rewrites it in place, so a kill mid-write truncates it."""
    from raygex.fileio import atomic_path

    state = task_dir / TUNER_STATE
    if state.exists() and _loadable(state):
        with atomic_path(task_dir / TUNER_BACKUP) as tmp:
            Path(tmp).write_bytes(state.read_bytes())


def _repair_tuner_state(task_dir: Path) -> None:
    """Put the last good ``tuner.pkl`` back when a killed driver left it truncated (found by bench soak)."""
    state, backup = task_dir / TUNER_STATE, task_dir / TUNER_BACKUP
    if not _loadable(state) and backup.exists() and _loadable(backup):
        state.write_bytes(backup.read_bytes())


def run_search(config: ExperimentConfig, *, address: str | None = None, storage: str | None = None,
               name: str | None = None, resume: bool = False, echo=print, timings: dict | None = None) -> Path:
    """Run (or resume) every task's sweep; returns the experiment folder.

    ``timings``, when given, receives the seconds spent starting/connecting Ray (``ray_s``), reading and
    preparing the shared data (``data_s``) and running each task's trials (``trials_s``, summed over tasks).
    """
    import time

    timings = {} if timings is None else timings
    clock = time.perf_counter()
    from raygex.data.ray_io import collect
    from raygex.experiment import check_graphs, check_input_files, check_tasks, load_graphs

    metric, mode = tune_metric(config)
    parse_space(config.search.space, config.graph_choices())  # fail on a bad space before Ray starts
    exp_dir = experiment_dir(config, storage, name)
    check_input_files(config)
    check_tasks(config)  # labels, genes and graph overlap, read from schemas and graphs only: before any folder
    check_graphs(config)
    snapshot = exp_dir / CONFIG_SNAPSHOT
    if snapshot.exists() and not resume:
        raise ConfigError(f"experiment {exp_dir.name!r} already exists: continue it with 'raygex resume {exp_dir}' "
                          f"(or --resume), or choose another --name", path=exp_dir)
    check_writable(exp_dir)
    with ExperimentLock(exp_dir) as lock:
        if lock.stale:
            echo(f"note: took over the lock of a driver that is gone (pid {lock.stale.get('pid')})")
        if not snapshot.exists():
            write_experiment_snapshot(config, exp_dir)
        connect(address)
        check_resources(config)
        timings["ray_s"], clock = time.perf_counter() - clock, time.perf_counter()
        seed = config.split.seeds[0]
        dataset = collect(config.data.expression)  # through Ray Data
        graphs = load_graphs(config, seed=seed)
        studies = [study.name for study in config.studies()]
        payloads = {name: task_payload(config, name, dataset, graphs, seed) for name in studies}
        timings["data_s"], timings["trials_s"] = time.perf_counter() - clock, 0.0
        for task in studies:
            task_dir = exp_dir / task
            board = leaderboard.read(task_dir) if resume else None
            if board is not None:
                echo(f"task {task}: already finished, kept")
            else:
                echo(f"task {task}: {config.search.num_samples} trials, {config.search.max_concurrent} at a time")
                tuner = _tuner_for_task(config, task_dir, payloads.pop(task), resume, echo)
                clock = time.perf_counter()
                results = _fit(tuner, config, exp_dir)
                timings["trials_s"] += time.perf_counter() - clock
                board = leaderboard.from_results(results, metric, mode)
                leaderboard.write(board, task_dir)
                echo(f"\n== {task}: leaderboard ({len(board)} trials; winner first) ==")
                echo(leaderboard.format_table(board))
            model = exp_dir / "models" / f"{task}.pt"
            if not model.exists():  # a fresh sweep, or a resume after a kill between leaderboard and export
                model = _export_winner(config, exp_dir, task, board, dataset, graphs, echo)
            _summarise_task(config, exp_dir, task, board, model, dataset, graphs, echo)
        echo(f"\nexperiment: {exp_dir}")
        for task in studies:
            model = exp_dir / "models" / f"{task}.pt"
            echo(f"  {task}: leaderboard {exp_dir / task / leaderboard.LEADERBOARD_FILE}"
                 + (f"\n  {' ' * len(task)}  model       {model}" if model.exists() else ""))
        echo(f"  logs: {exp_dir}/<task>/<trial>/ (result.json, progress.csv, checkpoints)")
        from raygex.report.html import write_report

        echo(f"  report: {write_report(exp_dir)}")
    return exp_dir


def write_experiment_snapshot(config: ExperimentConfig, exp_dir: Path) -> None:
    """The validated config (what `raygex resume` reruns) and the raygex version that made the experiment."""
    from raygex.experiment_meta import write_experiment_meta
    from raygex.fileio import atomic_path

    with atomic_path(exp_dir / CONFIG_SNAPSHOT) as tmp:
        Path(tmp).write_text(yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False))
    write_experiment_meta(exp_dir)


def check_writable(exp_dir: Path) -> None:
    """Fail before anything starts when the experiment folder cannot be created or written (permissions, full disk)."""
    probe = exp_dir / ".raygex-write-test"
    try:
        exp_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"\0" * 65536)
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"storage is not writable: {err.strerror or err}", path=exp_dir) from None


def _fit(tuner, config: ExperimentConfig, exp_dir: Path):
    """``tuner.fit()``, turning Ctrl-C (Tune stops and saves its state first) into a clean, resumable stop."""
    hint = f"the sweep's state is saved; continue it with 'raygex resume {exp_dir}'"
    try:
        results = tuner.fit()
    except KeyboardInterrupt:
        raise SweepInterrupted(hint) from None
    done = results.num_terminated + results.num_errors
    if done < config.search.num_samples:
        raise SweepInterrupted(f"{done} of {config.search.num_samples} trials finished; {hint}")
    return results


def _export_winner(config, exp_dir: Path, task: str, board, dataset, graphs, echo) -> None:
    """Write the task's winner to ``<exp_dir>/models/<task>.pt``; a failed export warns, the sweep's results stay."""
    from raygex.errors import RaygexError
    from raygex.export import export_trial

    try:
        summary = export_trial(config, exp_dir, task, board, dataset=dataset, graphs=graphs)
    except RaygexError as err:
        echo(f"warning: task {task}: the winner was not exported: {err} (run 'raygex export {exp_dir}' to retry)")
        return None
    test = summary["test"].get(config.search.metric.removeprefix("valid_"))
    echo(f"{task}: winner {summary['trial_id']} exported to {summary['model']} ({summary['weights']}; "
         f"test {config.search.metric.removeprefix('valid_')} {test:.4g})" if test is not None else
         f"{task}: winner {summary['trial_id']} exported to {summary['model']}")
    return Path(summary["model"])


def _summarise_task(config, exp_dir: Path, task: str, board, model: Path | None, dataset, graphs, echo) -> None:
    """Seed runs of each choice's best configuration, the task's figures and its W&B summary run."""
    from raygex.report.figures import task_figures
    from raygex.search.seeds import evaluate_seeds
    from raygex.search.wandb_logging import log_task_summary

    echo(f"{task}: retraining the best configuration of each choice on split seeds {config.split.seeds}")
    evaluate_seeds(config, exp_dir, task, board, dataset, graphs)
    figures = task_figures(exp_dir, task, config)
    log_task_summary(config, exp_dir, task, board, model, figures)


def open_experiment(experiment: str | Path) -> tuple[Path, ExperimentConfig]:
    """An experiment folder and its config, checked: a raygex experiment, made by a raygex that can read it."""
    from raygex.experiment_meta import read_experiment_meta

    exp_dir = Path(experiment).expanduser().resolve()
    snapshot = exp_dir / CONFIG_SNAPSHOT
    if not snapshot.is_file():
        raise ConfigError(f"not a raygex experiment folder (no {CONFIG_SNAPSHOT})", path=exp_dir)
    read_experiment_meta(exp_dir)
    return exp_dir, load_config(snapshot)


def resume_experiment(experiment: str | Path, *, address: str | None = None, echo=print) -> Path:
    """Continue an interrupted sweep from its folder (``<storage>/<name>``)."""
    exp_dir, config = open_experiment(experiment)
    return run_search(config, address=address, storage=str(exp_dir.parent), name=exp_dir.name, resume=True,
                      echo=echo)
