"""What a sweep has done so far: per task, trial counts by state and the current winner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from raygex.search import leaderboard
from raygex.search.run import open_experiment, tune_metric


def _trial_states(task_dir: Path) -> dict[str, str]:
    """Trial id → Tune status, read from the experiment state Tune writes (works while it runs)."""
    states: dict[str, str] = {}
    for path in sorted(task_dir.glob("experiment_state-*.json"))[-1:]:
        try:
            blob = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for entry in blob.get("trial_data", []):
            meta = entry[1] if isinstance(entry, list) and len(entry) > 1 else entry
            meta = json.loads(meta) if isinstance(meta, str) else meta
            if isinstance(meta, dict) and "status" in meta:
                states[str(meta.get("trial_id", len(states)))] = meta["status"]
    return states


def experiment_status(exp_dir: Path) -> tuple[dict, dict[str, str]]:
    exp_dir, config = open_experiment(exp_dir)
    metric, _ = tune_metric(config)
    summary = {"experiment": str(exp_dir), "tasks": {}}
    tables = {}
    for task in config.studies():
        task_dir = exp_dir / task.name
        board = leaderboard.read(task_dir)
        states = _trial_states(task_dir) if task_dir.exists() else {}
        counts = {"finished": 0, "running": 0, "errored": 0, "pending": 0}
        if board is not None:
            counts["finished"] = int((board["status"] == "TERMINATED").sum())
            counts["errored"] = int((board["status"] == "ERROR").sum())
        elif states:
            for state in states.values():
                key = {"TERMINATED": "finished", "RUNNING": "running", "ERROR": "errored"}.get(state, "pending")
                counts[key] += 1
        counts["pending"] += max(0, config.search.num_samples - sum(counts.values()))
        winner = None
        if board is not None and not board.empty:
            top = board.iloc[0]
            winner = {"trial_id": top["trial_id"],
                      "hyperparameters": {k[len("config/"):]: v for k, v in top.items()
                                          if k.startswith("config/") and not pd.isna(v)},
                      "metrics": {k: v for k, v in top.items() if k.startswith("best_") and not pd.isna(v)}}
        summary["tasks"][task.name] = {"counts": counts, "metric": metric, "winner": winner}
        tables[task.name] = leaderboard.format_table(board) if board is not None else "(running or not started)"
    return summary, tables
