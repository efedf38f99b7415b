"""One W&B summary run per study: the leaderboard as a table, its figures as images, the exported model as an
artifact. Never fails a sweep: a failure turns W&B off for the experiment with one warning."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from raygex.runtime.wandb_guard import active, describe, run_group, run_tags, turn_off, wandb_mode


def _plain(value):
    """A JSON-friendly scalar: numpy scalars unwrapped, NaN to None."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _table_frame(board):
    """The leaderboard with every text-like column as plain strings (W&B tables want one type per column)."""
    frame = board.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: None if _plain(v) is None else
                                              (v if isinstance(v, str) else json.dumps(_plain(v), default=str)))
    return frame


def _winner_summary(board) -> dict:
    from raygex.analysis.leaderboard import winner as winner_row

    if board is None or not len(board):
        return {"n_trials": 0}
    winner = winner_row(board)
    if winner is None:
        return {"n_trials": int(len(board))}
    summary = {"n_trials": int(len(board)), "winner/trial_id": str(winner["trial_id"])}
    if "status" in board:
        summary["n_errored"] = int((board["status"] == "ERROR").sum())
    for column, value in winner.items():
        if str(column).startswith(("best_", "config/")) and _plain(value) is not None:
            summary[f"winner/{column}"] = _plain(value)
    return summary


def _model_metadata(model: Path) -> dict:
    """The exported model's metadata for the artifact, the gene lists replaced by their lengths."""
    from raygex.export.predict import load_model  # torch

    meta = dict(load_model(model).metadata)
    for key in ("genes", "masked_genes"):
        if isinstance(meta.get(key), list):
            meta[f"n_{key}"] = len(meta.pop(key))
    return json.loads(json.dumps(meta, default=str))


def _artifact_name(exp_dir, task: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{Path(exp_dir).name}-{task}-model")[:128]


def log_task_summary(config, exp_dir: Path, task: str, board, model: Path | None, figures: dict,
                     verdicts=None) -> None:
    """The task's summary run: the leaderboard as a table, its figures as images, the exported model as an
    artifact (with the model's metadata). Never raises: a failure turns W&B off with one warning."""
    try:
        if not active(config, exp_dir, task):
            return
        _summary_run(config, Path(exp_dir), task, board, model, figures or {}, verdicts)
    except Exception as err:
        turn_off(exp_dir, f"the summary run of task {task} failed ({describe(err)})")


def _summary_run(config, exp_dir: Path, task: str, board, model: Path | None, figures: dict, verdicts=None) -> None:
    import wandb

    run = wandb.init(project=config.wandb.project, group=run_group(exp_dir, task), job_type="summary",
                     name=f"{task}-summary", tags=run_tags(exp_dir, task), mode=wandb_mode(config), dir=str(exp_dir),
                     config={**json.loads(config.model_dump_json()), "task": task}, reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off"))
    try:
        logged = {f"figures/{name}": wandb.Image(str(path)) for name, path in figures.items()
                  if path is not None and Path(path).is_file()}
        if board is not None:
            from raygex.analysis.leaderboard import hide_test

            # test metrics for the winner only, as everywhere a person reads the board
            logged["leaderboard"] = wandb.Table(dataframe=_table_frame(hide_test(board)))
        if verdicts is not None and len(verdicts):
            logged["verdicts"] = wandb.Table(dataframe=_table_frame(verdicts))
        run.log(logged)
        run.summary.update(_winner_summary(board))
        if verdicts is not None:
            run.summary.update({f"verdict/{row['graph']}/{row['control']}": row["verdict"]
                                for _, row in verdicts.iterrows()})
        if model is not None and Path(model).is_file():
            try:
                metadata = _model_metadata(Path(model))
            except Exception:  # the artifact is still worth having without its metadata
                metadata = {}
            artifact = wandb.Artifact(_artifact_name(exp_dir, task), type="model", metadata=metadata)
            artifact.add_file(str(model))
            run.log_artifact(artifact)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
