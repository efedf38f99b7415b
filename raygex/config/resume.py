"""Which keys a resumed sweep may change: ``raygex search CONFIG --resume`` against the experiment's snapshot.

An experiment keeps the config it was started with (``<experiment>/config.yaml``, the *snapshot*); ``raygex
resume`` reruns exactly that. ``raygex search CONFIG --resume`` (with ``--set``, ``--num-samples``...) may differ
from it only in keys that say *where and how fast this driver runs* the sweep, never in keys that say *what is
trained or how the winner is chosen*: the trials already finished were trained under the snapshot, and the
leaderboard, the evaluation, the graph swap, the verdict and the report read the snapshot. A changed key of the
second kind would mix two experiments under one name, so it is refused (one line naming the keys).

A resume may change (:data:`RESUMABLE_KEYS`, each key and everything under it):

* ``name``, ``storage``: where the experiment is (it is found by them; ``--name``/``--storage`` override them);
* ``search.max_concurrent``, ``search.max_concurrent_per_study``, ``search.studies_at_once``: how many trials and
  studies run at once (not which; a study restored from Tune's state keeps its own per-study cap);
* ``search.checkpoint_every``, ``search.checkpoint_min_s``, ``search.max_failures``: how often a trial saves its
  state and how often a failed one is retried (a restored trial trains the same epochs);
* ``resources.*``: what each trial asks of a node (CPUs, GPU share, memory), e.g. to resume on another cluster;
* ``data.read_in_driver_mb``: whether the driver or Ray Data's tasks read the matrix (the same rows either way);
* ``wandb.*``: where the W&B runs are logged.

Everything else may not: the data and graphs, ``controls``, ``tasks``, ``split``, ``train``, the search space,
``search.num_samples`` (Tune keeps the budget it was started with), ``search.seed``, ``search.scheduler``,
``search.metric``, ``search.select``, ``search.start_trials``, ``search.optuna_storage`` (read later from the
snapshot), ``data.in_memory_budget_mb`` (a study that streams its batches sees another batch order), ``reference``
(the report's). To run a changed config, give it another ``--name``.
"""

from __future__ import annotations

import json
from typing import Any

RESUMABLE_KEYS = ("name", "storage", "search.max_concurrent", "search.max_concurrent_per_study",
                  "search.studies_at_once", "search.checkpoint_every", "search.checkpoint_min_s",
                  "search.max_failures", "resources", "data.read_in_driver_mb", "wandb")
SHOWN = 4  # changed keys named with their values in the one-line error; the rest are counted
_ABSENT = object()  # a key one side does not have


def _opened(old: Any, new: Any, prefix: str) -> tuple[dict, dict]:
    """Both sides flattened; lists of mappings of one length (``tasks``) compared entry by entry."""
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and old \
            and all(isinstance(v, dict) for v in old + new):
        pairs = [_opened(a, b, f"{prefix}.{i}") for i, (a, b) in enumerate(zip(old, new))]
        return ({k: v for a, _ in pairs for k, v in a.items()}, {k: v for _, b in pairs for k, v in b.items()})
    if isinstance(old, dict) and isinstance(new, dict):
        left, right = {}, {}
        for key in list(old) + [k for k in new if k not in old]:
            a, b = _opened(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{prefix}.{key}" if prefix else str(key))
            left.update(a)
            right.update(b)
        return left, right
    return {prefix: old}, {prefix: new}


def changed_keys(snapshot: dict, config: dict) -> dict[str, tuple[Any, Any]]:
    """Every dotted key whose value differs between two configs (JSON data): key → (snapshot's, config's)."""
    old, new = _opened(snapshot, config, "")
    return {key: (old.get(key), new.get(key)) for key in old if _canonical(old.get(key)) != _canonical(new.get(key))}


def _canonical(value: Any) -> str:
    return "<absent>" if value is _ABSENT else json.dumps(value, sort_keys=True, default=str)


def may_change(key: str) -> bool:
    """Whether a resume may change ``key`` (it is, or is under, one of :data:`RESUMABLE_KEYS`)."""
    return any(key == allowed or key.startswith(allowed + ".") for allowed in RESUMABLE_KEYS)


def refused_changes(snapshot: dict, config: dict) -> dict[str, tuple[Any, Any]]:
    """The changed keys a resume may not change (empty: the config may resume the experiment)."""
    return {key: values for key, values in changed_keys(snapshot, config).items() if not may_change(key)}


def _shown(value: Any) -> str:
    text = "absent" if value is _ABSENT else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_resumable() -> str:
    """The keys a resume may change, as a user writes them (a section as ``resources.*``)."""
    return ", ".join(f"{key}.*" if key in ("resources", "wandb") else key for key in RESUMABLE_KEYS)


def describe_refusal(refused: dict[str, tuple[Any, Any]]) -> str:
    """One line: the refused keys with both values (the first few), for the error of a refused resume."""
    parts = [f"{key} ({_shown(old)} -> {_shown(new)})" for key, (old, new) in list(refused.items())[:SHOWN]]
    more = f" and {len(refused) - SHOWN} more" if len(refused) > SHOWN else ""
    return ", ".join(parts) + more
