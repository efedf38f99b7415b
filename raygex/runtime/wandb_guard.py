"""W&B for sweeps, the switch: whether an experiment logs to W&B, and the one warning when it stops.

The runs themselves: one per trial (:mod:`raygex.search.wandb_trials`, written by a background thread of the driver) and one
summary run per study (:mod:`raygex.report.wandb_summary`).

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

import os
import sys
from pathlib import Path

WARNING = "raygex: warning: W&B logging is off: "

_off: dict[str, str] = {}  # experiment folder -> why W&B is off for it (said once)
_ready: set[str] = set()  # experiment folders whose W&B checks passed


def wandb_mode(config) -> str:
    """``WANDB_MODE`` when set (wandb's own switch), else the config's ``wandb.mode``."""
    return os.environ.get("WANDB_MODE", "").strip().lower() or config.wandb.mode


def _key(exp_dir) -> str:
    return os.path.abspath(os.path.expanduser(str(exp_dir)))


def describe(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def turn_off(exp_dir, reason: str) -> None:
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


def is_off(exp_dir) -> bool:
    return _key(exp_dir) in _off


def run_group(exp_dir, task: str) -> str:
    return f"{Path(exp_dir).name}/{task}"


def run_tags(exp_dir, task: str) -> list[str]:
    return [tag[:64] for tag in dict.fromkeys((Path(exp_dir).name, task)) if tag]  # W&B tags: 1 to 64 characters


def _check(config, exp_dir, task: str) -> str | None:
    """Why W&B cannot log for this experiment, or None when it can (checked without creating any run)."""
    mode = wandb_mode(config)
    try:
        import wandb
    except Exception as err:  # ImportError, or an install broken some other way
        return f"wandb cannot be imported ({describe(err)})"
    try:
        wandb.Settings(mode=mode, project=config.wandb.project, run_group=run_group(exp_dir, task),
                       run_tags=tuple(run_tags(exp_dir, task)), run_job_type="trial")
    except Exception as err:
        return f"invalid W&B settings ({describe(err)})"
    if mode == "online":  # offline runs need no server and no key
        try:
            if not wandb.login(prompt=False, verify=True):
                return ("mode is online but no W&B API key is configured (run 'wandb login' or set WANDB_API_KEY; "
                        "or use mode offline and 'wandb sync' later)")
        except Exception as err:
            return f"cannot log in to the W&B server ({describe(err)})"
    return None


def active(config, exp_dir, task: str) -> bool:
    """True when this experiment logs to W&B: not disabled, not turned off, and the checks passed (once)."""
    if wandb_mode(config) == "disabled" or is_off(exp_dir):
        return False
    key = _key(exp_dir)
    if key not in _ready:
        reason = _check(config, exp_dir, task)
        if reason:
            turn_off(exp_dir, reason)
            return False
        _ready.add(key)
    return True
