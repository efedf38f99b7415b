"""One W&B run per trial: Ray Tune's WandbLoggerCallback, guarded so that a failing logger turns W&B off for the
experiment (one warning, :mod:`raygex.wandb_guard`) instead of failing the sweep."""

from __future__ import annotations

import functools
from pathlib import Path

from raygex.wandb_guard import active, describe, is_off, run_group, run_tags, turn_off, wandb_mode

UPLOAD_TIMEOUT_S = 120  # at the end of a study, how long to wait for trial loggers still writing or uploading


def _guarded(method):
    """A Tune callback hook that never raises: a W&B failure turns W&B off for the experiment instead."""

    @functools.wraps(method)
    def hook(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            turn_off(self._exp_dir, f"trial logging failed ({describe(err)})")
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
                return describe(err)
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
            if not is_off(self._exp_dir):
                super().log_trial_start(trial)

        @_guarded
        def log_trial_result(self, iteration, trial, result):
            if trial in self._trial_logging_actors or not is_off(self._exp_dir):
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
                    reason = describe(err)
                if reason:
                    turn_off(self._exp_dir, f"the W&B logger of trial {trial.trial_id} failed ({reason})")
                self._cleanup_logging_actor(trial)
            if kill_on_timeout:
                for future in remaining:
                    self._cleanup_logging_actor(self._logging_future_to_trial.pop(future))

    return TrialLoggerActor, TrialLogger


def trial_callbacks(config, exp_dir: Path, task: str) -> list:
    """``[callback]`` logging each of the task's trials to W&B, or ``[]`` when W&B is disabled or unusable."""
    try:
        if not active(config, exp_dir, task):
            return []
        mode = wandb_mode(config)
        _, logger = _classes()
        extra = {"task": task, "experiment": Path(exp_dir).name, "train": config.train.model_dump()}
        return [logger(Path(exp_dir), task, extra, project=config.wandb.project, group=run_group(exp_dir, task),
                       mode=mode, dir=str(exp_dir), job_type="trial", tags=run_tags(exp_dir, task),
                       reinit="finish_previous", settings={"silent": True, "console": "off"})]
    except Exception as err:
        turn_off(exp_dir, describe(err))
        return []
