"""`raygex search`, `raygex resume`, `raygex export`, `raygex report`: the stages of :mod:`raygex.pipeline.stages`
run from different starting points.

A run plans first: for each study, which stages are not done. Nothing to do means no lock work beyond a check,
no Ray, no data read: a resume of a finished experiment returns in about a second. Otherwise the inputs are
checked (before Ray starts), the experiment lock is taken, and each study's missing stages run in order, each
recorded in the layout's journal (``stages.jsonl``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from raygex.config import ExperimentConfig
from raygex.config.resume import describe_refusal, describe_resumable, refused_changes
from raygex.errors import ConfigError
from raygex.experiment.layout import ExperimentLayout, load_snapshot, saved_before_family_shares
from raygex.files.names import CONFIG_SNAPSHOT
from raygex.files.remote_files import localize_inputs, put_file
from raygex.files.storage import is_uri, join, open_remote, split
from raygex.pipeline.context import SweepContext
from raygex.pipeline.stages import STUDY_STAGES, SWEEP, run_export, run_report, run_retrainings, run_sweeps
from raygex.runtime.console import chatter_to

logger = logging.getLogger(__name__)


def plan(layout: ExperimentLayout) -> dict[str, list[str]]:
    """Study → names of its stages that are not done yet (in order)."""
    ctx = SweepContext(layout)
    return {study.name: [s.name for s in STUDY_STAGES if not s.done(ctx, study.name)]
            for study in layout.config.studies()}


def check_inputs(config: ExperimentConfig) -> None:
    """Everything that can be checked before Ray starts: the space, the budget, the input files, the tasks."""
    from raygex.data.prepare import check_folds, check_graphs, check_input_files, check_tasks
    from raygex.search.space import choice_points, parse_space

    choice_points(parse_space(config.search.space, config.graph_choices()), config.search.num_samples,
                  config.search.start_trials)
    check_input_files(config)
    check_tasks(config)  # labels, genes and graph overlap, read from schemas and graphs only: before any folder
    check_graphs(config)
    check_folds(config)  # reads the label columns only


def check_resumable(layout: ExperimentLayout, config: ExperimentConfig) -> None:
    """Refuse to resume the experiment with a config that differs from its snapshot in a key a resume may not
    change (what is trained or how the winner is chosen: :mod:`raygex.config.resume` says which keys may change
    and why), naming the keys in one line. ``raygex resume`` passes the snapshot itself: nothing to refuse."""
    snapshot, given = load_snapshot(layout.snapshot_path), json.loads(config.model_dump_json())
    if saved_before_family_shares(layout.snapshot_path) and "family_budget" not in config.search.model_fields_set:
        given["search"]["family_budget"] = snapshot.search.family_budget  # an older sweep, resumed with its config
    refused = refused_changes(json.loads(snapshot.model_dump_json()), given)
    if refused:
        raise ConfigError(f"the config differs from the one this experiment was started with ({CONFIG_SNAPSHOT}) "
                          f"in {describe_refusal(refused)}: a resume may change only {describe_resumable()}; "
                          f"resume it as it was ('raygex resume {layout.where}') or run the changed config under "
                          "another --name", path=layout.where)


def run_search(config: ExperimentConfig, *, address: str | None = None, storage: str | None = None,
               name: str | None = None, resume: bool = False, timings: dict | None = None,
               verbose: bool = False) -> Path:
    """Run (or, with ``resume``, continue) every study's stages; returns the experiment folder.

    Ray's, Tune's and Python warnings' messages go to the experiment's ``logs/driver.log`` (and to the console
    too when ``verbose``); each study's progress and results are ``logging`` records of the ``raygex`` logger,
    which the CLI prints (:func:`raygex.runtime.console.show_messages`).

    ``timings``, when given, receives the seconds spent starting/connecting Ray (``ray_s``), reading and
    preparing the shared data (``data_s``) and running trials (``trials_s``, summed over studies).
    """
    layout = ExperimentLayout.for_config(config, storage, name)
    if layout.exists() and not resume:
        raise ConfigError(f"experiment {layout.name!r} already exists: continue it with 'raygex resume "
                          f"{layout.where}' (or --resume), or choose another --name", path=layout.where)
    if layout.exists():
        layout.read_meta()
        check_resumable(layout, config)
    todo = plan(layout) if layout.exists() else {s.name: [st.name for st in STUDY_STAGES] for s in config.studies()}
    if not any(todo.values()) and layout.report_path.exists():
        logger.info(f"experiment {layout.where}: every stage of every task is done; nothing to run")
        return layout.root

    local = localize_inputs(config)  # inputs given as s3:// / gs:// URIs, fetched once (the snapshot keeps URIs)
    check_inputs(local)
    layout.check_writable()
    with layout.lock() as lock:
        if lock.stale:
            logger.info(f"note: took over the lock of a driver that is gone (pid {lock.stale.get('pid')})")
        if not layout.exists():
            layout.create()
        layout.use_config(local)
        with chatter_to(layout.driver_log, verbose):
            ctx = SweepContext(layout, address=address, timings=timings)
            ran = _run_studies(ctx)
            logger.info(f"\nexperiment: {layout.where}" + (f" (working copy {layout.root})" if layout.mirror else ""))
            for study in config.studies():
                model = layout.model_path(study.name)
                logger.info(f"  {study.name}: leaderboard {layout.shown(layout.leaderboard_path(study.name))}"
                     + (f"\n  {' ' * len(study.name)}  model       {layout.shown(model)}" if model.exists() else ""))
            logger.info(f"  trials: {layout.where}/<task>/<trial>/ (result.json, progress.csv, checkpoints)")
            logger.info(f"  logs: {layout.driver_log} (Ray, Tune and warnings; -v shows them here)")
            if ran or not layout.report_path.exists():
                _timed(layout, None, "report", lambda: run_report(ctx))
            else:
                logger.info(f"  report: {layout.report_path}")
    return layout.root


def _run_studies(ctx: SweepContext) -> int:
    """Every study's missing stages; returns how many stages ran.

    The sweeps come first, side by side (:func:`raygex.pipeline.stages.run_sweeps`: one budget of trial slots for
    the experiment keeps a cluster busy), then each study's leaderboard and export, then every study's later-stage
    trainings from that same budget (:func:`raygex.pipeline.stages.run_retrainings`), then each study's later
    stages in order (which find their trainings recorded).
    """
    ran = 0
    studies = [study.name for study in ctx.config.studies()]
    pending = {name: [stage for stage in STUDY_STAGES if not stage.done(ctx, name)] for name in studies}
    for name, missing in pending.items():
        if not missing:
            logger.info(f"task {name}: already finished, kept")
        elif len(missing) < len(STUDY_STAGES):
            logger.info(f"task {name}: running the stages not done yet: {', '.join(s.name for s in missing)}")
    sweeping = [name for name, missing in pending.items() if SWEEP in missing]
    if sweeping:
        for name, seconds in run_sweeps(ctx, sweeping).items():
            ctx.layout.pull(name)  # on an object store: Tune's results, for the stages after it (no-op for a folder)
            ctx.layout.record_stage(name, "sweep", seconds)
        ran += len(sweeping)
    evaluation = [stage.name for stage in STUDY_STAGES].index("evaluation")
    ran += _run_stages(ctx, studies, STUDY_STAGES[:evaluation])
    started = time.perf_counter()
    if run_retrainings(ctx, studies):  # every study's later-stage trainings at once, from the one slot budget
        ctx.layout.record_stage(None, "retrainings", time.perf_counter() - started)
        ran += 1
    return ran + _run_stages(ctx, studies, STUDY_STAGES[evaluation:])


def _run_stages(ctx: SweepContext, studies: list[str], stages) -> int:
    """Each study's ``stages`` that are not done, study by study; returns how many ran."""
    ran = 0
    for name in studies:
        for stage in stages:
            if stage.done(ctx, name):  # asked again: an earlier stage may have been the one missing
                continue
            _timed(ctx.layout, name, stage.name, lambda: stage.run(ctx, name))
            ran += 1
    return ran


def _timed(layout: ExperimentLayout, study: str | None, name: str, action) -> None:
    started = time.perf_counter()
    action()
    layout.record_stage(study, name, time.perf_counter() - started)


def resume_experiment(experiment: str | Path, *, address: str | None = None,
                      verbose: bool = False) -> Path:
    """Continue an interrupted sweep from its folder (``<storage>/<name>``): only the stages not done run."""
    layout = ExperimentLayout.open(experiment)
    storage, name = split(layout.where)
    return run_search(layout.config, address=address, storage=storage, name=name, resume=True,
                      verbose=verbose)


def export_experiment(experiment: str | Path, *, task: str | None = None, trial_id: str | None = None,
                      out_dir: str | Path | None = None) -> list[dict]:
    """`raygex export`: the export stage run alone, for the winner (or ``trial_id``) of every finished study (or
    of ``task``), into the experiment's models folder (or ``out_dir``)."""
    layout = ExperimentLayout.open(experiment)
    config = layout.config
    names = [task] if task else [study.name for study in config.studies()]
    if task:
        config.task(task)  # a clear error for an unknown task
    if trial_id and not task and len(names) > 1:
        raise ConfigError("--trial needs --task when the experiment has several tasks")
    boards = {name: layout.read_leaderboard(name) for name in names}
    missing = [name for name, board in boards.items() if board is None or board.empty]
    if task and missing:
        raise ConfigError(f"task {task!r} has no leaderboard yet (its sweep has not finished)", path=layout.where)
    if len(missing) == len(names):
        raise ConfigError(f"no task has a leaderboard yet (no sweep has finished; tasks: {names}); continue it "
                          f"with 'raygex resume {layout.where}'", path=layout.where)

    layout.use_config(localize_inputs(config))
    ctx = SweepContext(layout)
    exported = [name for name in names if name not in missing]
    if out_dir is None or not is_uri(out_dir):
        return [_export_one(ctx, layout, name, trial_id, out_dir) for name in exported]
    # -o on an object store: each model is written to a private local folder, then uploaded
    target = str(out_dir).rstrip("/")
    open_remote(target).probe()  # unsupported, unreachable or unwritable: one line before any model is made
    summaries = []
    with tempfile.TemporaryDirectory(prefix="raygex-export-") as local:
        for name in exported:
            summary = _export_one(ctx, layout, name, trial_id, Path(local))
            for key in ("model", "pt2"):
                if summary and summary.get(key):
                    uri = join(target, Path(summary[key]).name)
                    put_file(Path(summary[key]), uri)
                    summary[key] = uri
            summaries.append(summary)
    return summaries


def _export_one(ctx: SweepContext, layout: ExperimentLayout, name: str, trial_id, out_dir) -> dict:
    """One study's export into ``out_dir`` (None: the experiment's models folder, recorded as its stage)."""
    started = time.perf_counter()
    summary = run_export(ctx, name, trial_id=trial_id, out_dir=out_dir or layout.models_dir)
    if summary and out_dir is None:  # on an object store: the URIs the models are pushed to just below
        summary.update({k: layout.shown(summary[k]) for k in ("model", "pt2") if summary.get(k)})
    if out_dir is None:
        layout.record_stage(name, "export", time.perf_counter() - started)
    return summary


def report_experiment(experiment: str | Path) -> Path:
    """`raygex report`: the report stage run alone (figures the summary stage did not draw are drawn now)."""
    from raygex.report.html import write_report

    layout = ExperimentLayout.open(experiment)
    started = time.perf_counter()
    path = write_report(layout)
    layout.record_stage(None, "report", time.perf_counter() - started)  # on an object store: pushes the report
    return layout.shown(path)  # on an object store: its URI
