"""The stages of a study, in order: sweep → leaderboard → export → evaluation → swap → verdict → summary; then
the experiment's report.

Each stage is a function from what earlier stages wrote (read through the layout) to its own output, and is done
when that output exists: the layout writes every output atomically, so an existing file is a complete one.

=============  ==============================================  ===================================================
stage          output (done when it exists)                    what it runs
=============  ==============================================  ===================================================
sweep          Tune state: every trial ended (or leaderboard)   Ray Tune + Optuna + ASHA (``raygex.search``)
leaderboard    ``<study>/leaderboard.parquet``                 reads Tune's results from the study folder
export         ``models/<study>.pt``                            the winner as TorchScript (``raygex.export``)
evaluation     ``<study>/seeds.parquet``                        each choice's best config on every split seed
swap           ``<study>/swap.parquet``                         best GCN config × every graph × every split seed
verdict        ``<study>/verdicts.parquet``                     graph vs control: gain, interval, Holm p, word
summary        ``report/<study>/summary.json``                  figures, and the study's W&B summary run
report         ``report.html`` (rebuilt when any stage ran)      the HTML report (``raygex.report``)
=============  ==============================================  ===================================================
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable

from raygex.config import selection_column, selection_mode
from raygex.errors import RaygexError, SweepInterrupted
from raygex.pipeline.context import SweepContext
from raygex.report.wandb_summary import log_task_summary
from raygex.runtime.wandb_guard import is_off, wandb_mode
from raygex.search.results import read_results, result_rows
from raygex.search.tune_compat.optuna_store import save_optuna_study
from raygex.search.tune_compat.saved_state import repair_saved_study
from raygex.search.tuner import build_tuner, fit, sweep_finished

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One step of a study: ``done(ctx, study)`` says whether its output is complete, ``run(ctx, study)`` makes it."""

    name: str
    done: Callable[[SweepContext, str], bool]
    run: Callable[[SweepContext, str], None]


def _sweep_done(ctx: SweepContext, study: str) -> bool:
    from raygex.search.space import study_budget

    return (ctx.layout.leaderboard_path(study).exists()
            or sweep_finished(ctx.layout.trial_states(study), study_budget(ctx.config)[0]))


def run_sweep(ctx: SweepContext, study: str) -> None:
    """Run (or continue) the study's Tune experiment until every trial has ended."""
    run_sweeps(ctx, [study])


def run_sweeps(ctx: SweepContext, studies: list[str]) -> dict[str, float]:
    """Run (or continue) the sweeps of ``studies`` side by side until every trial of each has ended; returns
    each study's sweep time (its Tuner made and run).

    Each study is its own Tune run (own searcher, scheduler and state: it resumes exactly as one study alone);
    they run on threads of this driver, ``search.studies_at_once`` at a time (default: all), and every study's
    searcher draws from the experiment's one pool of ``search.max_concurrent`` trial slots
    (:mod:`raygex.search.slots`). One study runs on the main thread, where Tune handles Ctrl-C itself (it stops
    its trials and saves its state); with several, Ctrl-C stops every sweep at its next step, as a killed driver
    would, and ``raygex resume`` continues each from its saved state.
    """

    from raygex.search.progress import ProgressBoard
    from raygex.search.slots import open_slots

    config = ctx.config
    ctx.ray()
    search = config.search
    at_once = min(len(studies), search.studies_at_once or len(studies))
    cap = f", at most {search.max_concurrent_per_study} per task" if search.max_concurrent_per_study else ""
    if len(studies) > 1:
        logger.info(f"sweeping {len(studies)} tasks ({', '.join(studies)}), {at_once} at a time: "
                 f"{search.max_concurrent} trials at a time in all{cap}")
    board, stop, build_lock = ProgressBoard(), threading.Event(), threading.Lock()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with open_slots(str(ctx.layout.root), search.max_concurrent):
        if at_once == 1 and len(studies) == 1:
            _sweep_study(ctx, studies[0], board, None, build_lock, seconds)
        elif at_once == len(studies):  # every study at once: all Tuners made first, so all start together
            tuners = {study: _study_tuner(ctx, study, board, stop) for study in studies}
            with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="sweep") as pool:
                futures = [pool.submit(_fit_study, ctx, study, *tuners[study], seconds, time.perf_counter())
                           for study in studies]
                _wait_for(ctx, futures, stop)
        else:
            with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="sweep") as pool:
                futures = [pool.submit(_sweep_study, ctx, study, board, stop, build_lock, seconds)
                           for study in studies]
                _wait_for(ctx, futures, stop)
    ctx.timings["trials_s"] += time.perf_counter() - started
    return seconds


def _wait_for(ctx: SweepContext, futures: list, stop) -> None:
    """Wait for the sweeps on their threads; Ctrl-C stops them all; the first failure is raised."""
    try:
        while not all(f.done() for f in futures):
            wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
    except KeyboardInterrupt:
        stop.set()
        for future in futures:
            future.cancel()
        wait(futures)
        raise SweepInterrupted(f"the sweeps stopped; continue them with 'raygex resume {ctx.layout.where}'") from None
    failed = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    if failed:
        raise failed[0]


def _sweep_study(ctx: SweepContext, study: str, board, stop, build_lock, seconds: dict) -> None:
    """One study's sweep: its Tuner is made under ``build_lock`` (the shared data, Tune's registry), then run."""
    started = time.perf_counter()
    with build_lock:
        if stop is not None and stop.is_set():
            return
        tuner, budget = _study_tuner(ctx, study, board, stop)
    _fit_study(ctx, study, tuner, budget, seconds, started)


def _fit_study(ctx: SweepContext, study: str, tuner, budget: int, seconds: dict, started: float) -> None:
    ctx.timings.setdefault("fit_started_at", time.time())  # wall clock, beside the trials' own (bench search)
    ctx.results[study] = fit(tuner, budget, ctx.layout.where)
    seconds[study] = time.perf_counter() - started


def _study_tuner(ctx: SweepContext, study: str, board, stop):
    """The study's Tuner (fresh or restored) and its trial budget; announces it above the progress lines."""
    from raygex.search.slots import StopOnEvent
    from raygex.search.space import study_budget
    from raygex.search.wandb_trials import trial_callbacks

    config, layout = ctx.config, ctx.layout
    budget, capped = study_budget(config)
    per_study = config.search.max_concurrent_per_study or config.search.max_concurrent
    for line in ([capped] if capped else []) + [
            f"task {study}: {budget} trials, up to {min(per_study, config.search.max_concurrent)} at a time"]:
        board.print_above(line)
    states = layout.trial_states(study)
    extra = [StopOnEvent(stop)] if stop is not None else []
    tuner = build_tuner(config, layout.study_dir(study), ctx.payload(study), resume=True,
                        callbacks=[*trial_callbacks(config, layout.root, study), *extra],
                        finished_before=list(states.values()).count("TERMINATED"),
                        unfinished=[t for t, s in states.items() if s != "TERMINATED"],
                        board=board, slots_key=str(layout.root))
    return tuner, budget


def run_leaderboard(ctx: SweepContext, study: str) -> None:
    """The study's leaderboard: every trial ranked on validation, the winner marked. From the sweep's results when it ran in this
    process (Tune's in-memory trial states are the final ones), else from the Tune state saved in the study folder
    (a driver that stopped after its sweep finished)."""
    from raygex.analysis import leaderboard

    results = ctx.results.pop(study, None)
    if results is None:  # the sweep ended under a driver that was then killed: its saved files may disagree

        repair_saved_study(ctx.layout.study_dir(study), study)
    rows = result_rows(results if results is not None else read_results(ctx.layout.study_dir(study)))
    board = leaderboard.ranked(rows, selection_column(ctx.config), selection_mode(ctx.config),
                               ctx.config.search.select)
    save_optuna_study(ctx.layout, study)  # before the board, whose presence marks the stage done
    ctx.layout.write_leaderboard(study, board)
    logger.info(f"\n== {study}: leaderboard ({len(board)} trials, ranked on validation; * = the winner, "
             f"rule {ctx.config.search.select}, never a control) ==")
    logger.info(leaderboard.format_table(board))


def run_export(ctx: SweepContext, study: str, *, trial_id: str | None = None, out_dir=None) -> dict | None:
    """Export the winner (or ``trial_id``); a failed export warns and leaves the stage to be retried."""
    from raygex.config import metric_name
    from raygex.export.winner import export_trial

    layout = ctx.layout
    board = layout.read_leaderboard(study)
    try:
        summary = export_trial(layout, study, board, trial_id=trial_id, out_dir=out_dir, dataset=ctx.dataset,
                               graphs=ctx.graphs, dataset_sha256=ctx.dataset_sha256)
    except RaygexError as err:
        if trial_id is not None or out_dir is not None:
            raise
        logger.warning(f"warning: task {study}: the winner was not exported: {err} (run 'raygex export {layout.root}' "
                 f"or 'raygex resume {layout.root}' to retry)")
        return None
    metric = metric_name(ctx.config)
    test = summary["test"].get(metric)
    logger.info(f"{study}: winner {summary['trial_id']} exported to {summary['model']} ({summary['weights']}; "
             f"test {metric} {test:.4g})" if test is not None else
             f"{study}: winner {summary['trial_id']} exported to {summary['model']}")
    return summary


def run_retrainings(ctx: SweepContext, studies: list[str]) -> int:
    """The evaluation's and the swap's trainings of every study that still needs them, side by side, at most
    ``search.max_concurrent`` at a time; returns how many were recorded now (0: nothing to do)."""
    from raygex.analysis.retrain import plan, run_studies_missing

    wanted = {study: plan(ctx.layout, study, ctx.layout.read_leaderboard(study)) for study in studies
              if ctx.layout.leaderboard_path(study).exists()
              and not (ctx.layout.seeds_path(study).exists() and ctx.layout.swap_path(study).exists())}
    if not wanted:
        return 0
    return run_studies_missing(ctx.layout, wanted, ctx.dataset, ctx.graphs, connect=ctx.ray)[1]


def run_evaluation(ctx: SweepContext, study: str) -> None:
    """The seed-run table from the study's recorded trainings (any still missing run now)."""
    from raygex.analysis.evaluation import evaluate_seeds

    ctx.ray()
    logger.info(f"{study}: evaluation over split seeds {ctx.config.split.seeds}")
    evaluate_seeds(ctx.layout, study, ctx.layout.read_leaderboard(study), ctx.dataset, ctx.graphs)


def run_swap(ctx: SweepContext, study: str) -> None:
    """The graph swap: the best GCN configuration with every graph and control, on every split seed."""
    from raygex.analysis.swap import swap_graphs

    ctx.ray()
    logger.info(f"{study}: the best GCN configuration with each of {len(ctx.config.graph_choices())} graphs swapped in, "
             f"on split seeds {ctx.config.split.seeds}")
    swap_graphs(ctx.layout, study, ctx.layout.read_leaderboard(study), ctx.dataset, ctx.graphs)


def run_verdict(ctx: SweepContext, study: str) -> None:
    """Each real graph against each of its controls: paired gains, intervals, Holm-adjusted p-values, words."""
    from raygex.analysis.verdict import sentence, study_verdicts

    table = study_verdicts(ctx.layout, study)
    ctx.layout.write_verdicts(study, table)
    size = ctx.config.train_size(study)
    for _, row in table.iterrows():
        logger.info(f"{study}: " + sentence(row, size if isinstance(size, int) else None))


def run_summary(ctx: SweepContext, study: str) -> None:
    """The study's figures and its W&B summary run; ``summary.json`` records both."""
    from raygex.report.figures import task_figures

    layout = ctx.layout
    figures = task_figures(layout, study)
    model = layout.model_path(study)
    log_task_summary(ctx.config, layout.root, study, layout.read_leaderboard(study),
                     model if model.exists() else None, figures, layout.read_verdicts(study))
    mode = wandb_mode(ctx.config)
    layout.write_summary(study, {"figures": {name: str(path) for name, path in figures.items()},
                                 "wandb": {"mode": mode, "logged": mode != "disabled" and not is_off(layout.root)},
                                 "model": str(model) if model.exists() else None})


def run_report(ctx: SweepContext) -> None:
    from raygex.report.html import write_report

    logger.info(f"  report: {write_report(ctx.layout)}")


SWEEP = Stage("sweep", _sweep_done, run_sweep)
STUDY_STAGES = (
    SWEEP,
    Stage("leaderboard", lambda ctx, study: ctx.layout.leaderboard_path(study).exists(), run_leaderboard),
    Stage("export", lambda ctx, study: ctx.layout.model_path(study).exists(), run_export),
    Stage("evaluation", lambda ctx, study: ctx.layout.seeds_path(study).exists(), run_evaluation),
    Stage("swap", lambda ctx, study: ctx.layout.swap_path(study).exists(), run_swap),
    Stage("verdict", lambda ctx, study: ctx.layout.verdicts_path(study).exists(), run_verdict),
    Stage("summary", lambda ctx, study: ctx.layout.summary_path(study).exists(), run_summary),
)
