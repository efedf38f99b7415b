"""W&B for sweeps: one run per trial (Ray Tune's WandbLoggerCallback) and one summary run per task.

Every run of a task shares the group ``<experiment>/<task>`` (trials: job type ``trial``; the task's summary:
job type ``summary``, named ``<task>-summary``) and the tags ``<experiment>`` and ``<task>``. Runs land under
``<experiment>/wandb/``, so ``wandb sync <experiment>/wandb/offline-run-*`` uploads offline ones later.

The mode is ``WANDB_MODE`` when set, else the config's ``wandb.mode``; ``disabled`` means no callback and no
summary run. W&B is a convenience, never a reason for a sweep to fail: when wandb is missing, its settings are
invalid, online mode has no (valid) API key or no server, a trial's logger cannot start, or the summary run
fails, one line says so (``raygex: warning: W&B logging is off: <reason>``, once per experiment), W&B stays off
for the rest of that experiment, and the sweep goes on. raygex never passes, stores or prints the API key:
wandb reads it from its own environment variable or netrc.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from pathlib import Path

WARNING = "raygex: warning: W&B logging is off: "
UPLOAD_TIMEOUT_S = 120  # at the end of a task, how long to wait for trial loggers still writing or uploading

_off: dict[str, str] = {}  # experiment folder -> why W&B is off for it (said once)
_ready: set[str] = set()  # experiment folders whose W&B checks passed


def wandb_mode(config) -> str:
    """``WANDB_MODE`` when set (wandb's own switch), else the config's ``wandb.mode``."""
    return os.environ.get("WANDB_MODE", "").strip().lower() or config.wandb.mode


def _key(exp_dir) -> str:
    return str(Path(exp_dir).expanduser().resolve())


def _describe(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _turn_off(exp_dir, reason: str) -> None:
    """Switch W&B off for this experiment, saying why once (one line on stderr)."""
    key = _key(exp_dir)
    if key in _off:
        return
    _off[key] = reason
    text = " ".join(str(reason).split())[:400]
    secret = os.environ.get("WANDB_API_KEY")
    if secret:  # wandb's messages should never hold it; make sure ours never do
        text = text.replace(secret, "***")
    print(WARNING + text, file=sys.stderr, flush=True)


def _is_off(exp_dir) -> bool:
    return _key(exp_dir) in _off


def _group(exp_dir, task: str) -> str:
    return f"{Path(exp_dir).name}/{task}"


def _tags(exp_dir, task: str) -> list[str]:
    return [tag[:64] for tag in dict.fromkeys((Path(exp_dir).name, task)) if tag]  # W&B tags: 1 to 64 characters


def _check(config, exp_dir, task: str) -> str | None:
    """Why W&B cannot log for this experiment, or None when it can (checked without creating any run)."""
    mode = wandb_mode(config)
    try:
        import wandb
        from ray.air.integrations.wandb import WandbLoggerCallback  # noqa: F401
    except Exception as err:  # ImportError, or an install broken some other way
        return f"wandb cannot be imported ({_describe(err)})"
    try:
        wandb.Settings(mode=mode, project=config.wandb.project, run_group=_group(exp_dir, task),
                       run_tags=tuple(_tags(exp_dir, task)), run_job_type="trial")
    except Exception as err:
        return f"invalid W&B settings ({_describe(err)})"
    if mode == "online":  # offline runs need no server and no key
        try:
            if not wandb.login(prompt=False, verify=True):
                return ("mode is online but no W&B API key is configured (run 'wandb login' or set WANDB_API_KEY; "
                        "or use mode offline and 'wandb sync' later)")
        except Exception as err:
            return f"cannot log in to the W&B server ({_describe(err)})"
    return None


def _active(config, exp_dir, task: str) -> bool:
    """True when this experiment logs to W&B: not disabled, not turned off, and the checks passed (once)."""
    if wandb_mode(config) == "disabled" or _is_off(exp_dir):
        return False
    key = _key(exp_dir)
    if key not in _ready:
        reason = _check(config, exp_dir, task)
        if reason:
            _turn_off(exp_dir, reason)
            return False
        _ready.add(key)
    return True


def _guarded(method):
    """A Tune callback hook that never raises: a W&B failure turns W&B off for the experiment instead."""

    @functools.wraps(method)
    def hook(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            _turn_off(self._exp_dir, f"trial logging failed ({_describe(err)})")
            return None

    return hook


@functools.cache
def _classes():
    """The logger actor and callback (built on first use: importing this module needs neither Ray nor wandb)."""
    import ray
    from ray.air.integrations.wandb import WandbLoggerCallback, _WandbLoggingActor

    class TrialLoggerActor(_WandbLoggingActor):
        """Ray's per-trial logging actor, returning why it failed instead of raising (wandb.init or a log call)."""

        def run(self):
            try:
                super().run()
            except Exception as err:
                try:
                    self._wandb.finish(exit_code=1)
                except Exception:
                    pass
                return _describe(err)
            return None

    class TrialLogger(WandbLoggerCallback):
        """One W&B run per trial, named ``<task>-<trial id>``; a logger that fails turns W&B off, never the sweep."""

        _logger_actor_cls = TrialLoggerActor

        def __init__(self, exp_dir: Path, task: str, extra_config: dict, **kwargs):
            super().__init__(upload_timeout=UPLOAD_TIMEOUT_S, **kwargs)
            self._exp_dir = str(exp_dir)
            self._task = task
            self._extra_config = extra_config

        def setup(self, *args, **kwargs):
            # Ray's setup looks for an API key itself and raises without one (even where the mode needs none);
            # wandb finds its own key, and the project is always given.
            pass

        def _start_logging_actor(self, trial, exclude_results, **wandb_init_kwargs):
            if self._remote_logger_class is None:
                # Ray's options, less two. No restarts: a logger that dies stays dead and is reported, rather than
                # restarted forever. No runtime_env carrying WANDB_API_KEY: Ray writes a runtime_env, key and all,
                # into its session logs (runtime_env_agent.log). The logger runs on the driver's node, whose workers
                # inherit the driver's environment when raygex starts Ray; on a cluster started by `ray start`,
                # wandb there needs its own key (WANDB_API_KEY where Ray was started, or `wandb login`).
                from ray.air.util.node import _force_on_current_node

                self._remote_logger_class = ray.remote(num_cpus=0, max_restarts=0, **_force_on_current_node())(
                    self._logger_actor_cls)
            wandb_init_kwargs["name"] = f"{self._task}-{trial.trial_id}"
            wandb_init_kwargs["config"] = {**wandb_init_kwargs.get("config", {}), **self._extra_config}
            super()._start_logging_actor(trial, exclude_results, **wandb_init_kwargs)

        @_guarded
        def log_trial_start(self, trial):
            if not _is_off(self._exp_dir):
                super().log_trial_start(trial)

        @_guarded
        def log_trial_result(self, iteration, trial, result):
            if trial in self._trial_logging_actors or not _is_off(self._exp_dir):
                super().log_trial_result(iteration, trial, result)

        @_guarded
        def log_trial_save(self, trial):
            if trial in self._trial_queues:
                super().log_trial_save(trial)

        @_guarded
        def log_trial_end(self, trial, failed: bool = False):
            if trial in self._trial_queues:
                self._signal_logging_actor_stop(trial=trial)
            self._cleanup_logging_actors()

        @_guarded
        def on_experiment_end(self, trials, **info):
            super().on_experiment_end(trials, **info)

        def __del__(self):
            try:  # Ray's stops the loggers, but fails noisily when the interpreter is already shutting down
                super().__del__()
            except Exception:
                pass

        def _cleanup_logging_actors(self, timeout: int = 0, kill_on_timeout: bool = False):
            # Ray's version, plus reading what each finished logger returned: the reason it failed, if it did.
            futures = list(self._trial_logging_futures.values())
            done, remaining = ray.wait(futures, num_returns=len(futures), timeout=timeout)
            for future in done:
                trial = self._logging_future_to_trial.pop(future)
                try:
                    reason = ray.get(future)
                except Exception as err:  # the actor itself died (no wandb on that node, say)
                    reason = _describe(err)
                if reason:
                    _turn_off(self._exp_dir, f"the W&B logger of trial {trial.trial_id} failed ({reason})")
                self._cleanup_logging_actor(trial)
            if kill_on_timeout:
                for future in remaining:
                    self._cleanup_logging_actor(self._logging_future_to_trial.pop(future))

    return TrialLoggerActor, TrialLogger


def trial_callbacks(config, exp_dir: Path, task: str) -> list:
    """``[callback]`` logging each of the task's trials to W&B, or ``[]`` when W&B is disabled or unusable."""
    try:
        if not _active(config, exp_dir, task):
            return []
        mode = wandb_mode(config)
        _, logger = _classes()
        extra = {"task": task, "experiment": Path(exp_dir).name, "train": config.train.model_dump()}
        return [logger(Path(exp_dir), task, extra, project=config.wandb.project, group=_group(exp_dir, task),
                       mode=mode, dir=str(exp_dir), job_type="trial", tags=_tags(exp_dir, task),
                       reinit="finish_previous", settings={"silent": True, "console": "off"})]
    except Exception as err:
        _turn_off(exp_dir, _describe(err))
        return []


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
    if board is None or not len(board):
        return {"n_trials": 0}
    winner = board.iloc[0]
    summary = {"n_trials": int(len(board)), "winner/trial_id": str(winner["trial_id"])}
    if "status" in board:
        summary["n_errored"] = int((board["status"] == "ERROR").sum())
    for column, value in winner.items():
        if str(column).startswith(("best_", "config/")) and _plain(value) is not None:
            summary[f"winner/{column}"] = _plain(value)
    return summary


def _model_metadata(model: Path) -> dict:
    """The exported model's metadata for the artifact, the gene lists replaced by their lengths."""
    import raygex

    meta = dict(raygex.load_model(model).metadata)
    for key in ("genes", "masked_genes"):
        if isinstance(meta.get(key), list):
            meta[f"n_{key}"] = len(meta.pop(key))
    return json.loads(json.dumps(meta, default=str))


def _artifact_name(exp_dir, task: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{Path(exp_dir).name}-{task}-model")[:128]


def log_task_summary(config, exp_dir: Path, task: str, board, model: Path | None, figures: dict) -> None:
    """The task's summary run: the leaderboard as a table, its figures as images, the exported model as an
    artifact (with the model's metadata). Never raises: a failure turns W&B off with one warning."""
    try:
        if not _active(config, exp_dir, task):
            return
        _summary_run(config, Path(exp_dir), task, board, model, figures or {})
    except Exception as err:
        _turn_off(exp_dir, f"the summary run of task {task} failed ({_describe(err)})")


def _summary_run(config, exp_dir: Path, task: str, board, model: Path | None, figures: dict) -> None:
    import wandb

    run = wandb.init(project=config.wandb.project, group=_group(exp_dir, task), job_type="summary",
                     name=f"{task}-summary", tags=_tags(exp_dir, task), mode=wandb_mode(config), dir=str(exp_dir),
                     config={**json.loads(config.model_dump_json()), "task": task}, reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off"))
    try:
        logged = {f"figures/{name}": wandb.Image(str(path)) for name, path in figures.items()
                  if path is not None and Path(path).is_file()}
        if board is not None:
            logged["leaderboard"] = wandb.Table(dataframe=_table_frame(board))
        run.log(logged)
        run.summary.update(_winner_summary(board))
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
