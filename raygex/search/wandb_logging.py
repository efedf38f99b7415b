"""W&B for sweeps: one run per trial (Ray Tune's WandbLoggerCallback) and one summary run per task.

Runs land under ``<experiment>/wandb/`` (``wandb sync`` uploads offline ones later). The mode is ``WANDB_MODE``
when set, else the config's ``wandb.mode``. W&B is a convenience, never a reason for a sweep to fail: if it is
missing or cannot start, one warning says so and the sweep goes on without it. raygex never passes or writes the
API key: wandb reads it from its own environment variable or netrc.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_state: dict = {"checked": {}, "warned": False}


def _warn_once(reason: str) -> None:
    if not _state["warned"]:
        _state["warned"] = True
        print(f"raygex: warning: W&B logging is off: {reason}", file=sys.stderr)


def wandb_mode(config) -> str:
    return os.environ.get("WANDB_MODE") or config.wandb.mode


def wandb_usable(config) -> bool:
    """True when W&B can start in the chosen mode (checked once per process by starting a throwaway run)."""
    mode = wandb_mode(config)
    if mode == "disabled":
        return False
    if mode in _state["checked"]:
        return _state["checked"][mode]
    ok = False
    try:
        import wandb

        with tempfile.TemporaryDirectory() as folder:
            run = wandb.init(project=config.wandb.project, mode=mode, dir=folder, job_type="check",
                             settings=wandb.Settings(silent=True, init_timeout=30, console="off"))
            run.finish()
        ok = True
    except Exception as err:  # ImportError, auth, network, a broken install: all mean "no W&B this time"
        _warn_once(f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
    _state["checked"][mode] = ok
    return ok


def trial_callbacks(config, exp_dir: Path, task: str) -> list:
    """``[WandbLoggerCallback]`` for a task's Tuner, or ``[]`` when W&B is disabled or unusable."""
    if not wandb_usable(config):
        return []
    from ray.air.integrations.wandb import WandbLoggerCallback

    return [WandbLoggerCallback(project=config.wandb.project, group=f"{config.name}/{task}",
                                mode=wandb_mode(config), dir=str(exp_dir), job_type="trial",
                                tags=[config.name, task])]


def log_task_summary(config, exp_dir: Path, task: str, board, model: Path | None, figures: dict) -> None:
    """The task's summary run: leaderboard table, figures, and the exported model as an artifact. Never raises."""
    if not wandb_usable(config):
        return
    try:
        import wandb

        run = wandb.init(project=config.wandb.project, group=f"{config.name}/{task}", name=f"{task}-summary",
                         job_type="summary", mode=wandb_mode(config), dir=str(exp_dir), tags=[config.name, task],
                         reinit="finish_previous", settings=wandb.Settings(silent=True, console="off"))
        table = board.copy()
        for column in table.columns:
            if table[column].dtype == object:
                table[column] = table[column].map(lambda v: None if v is None else str(v))
        run.log({"leaderboard": wandb.Table(dataframe=table),
                 **{f"figures/{name}": wandb.Image(str(path)) for name, path in figures.items()}})
        if len(board):
            run.summary["winner_trial_id"] = str(board["trial_id"].iloc[0])
        if model is not None and Path(model).exists():
            from raygex.inference import load_model

            meta = load_model(model).metadata
            artifact = wandb.Artifact(f"{config.name}-{task}".replace("/", "-"), type="model",
                                      metadata={k: meta[k] for k in ("task", "classes", "hyperparameters",
                                                                     "metrics", "graph") if k in meta})
            artifact.add_file(str(model))
            run.log_artifact(artifact)
        run.finish()
    except Exception as err:
        _warn_once(f"summary run for task {task} failed: {type(err).__name__}: {err}")
