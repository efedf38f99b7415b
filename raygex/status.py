"""What a sweep has done so far: per task, trial counts by state and the current winner."""

from __future__ import annotations

import pandas as pd

from raygex import leaderboard
from raygex.layout import ExperimentLayout, selection_column


VERDICT_FIELDS = ("graph", "control", "metric", "gain", "low", "high", "p_adjusted", "verdict", "seeds",
                  "edges_graph", "edges_control", "reason")


def verdict_records(table: pd.DataFrame | None) -> list[dict]:
    """The verdict table as JSON-ready objects (NaN → None); [] before the verdict stage ran."""
    if table is None:
        return []
    records = []
    for _, row in table.iterrows():
        record = {}
        for key in VERDICT_FIELDS:
            value = row.get(key)
            value = value.item() if hasattr(value, "item") else value
            record[key] = None if isinstance(value, float) and value != value else value
        records.append(record)
    return records


def verdict_line(record: dict) -> str:
    """One printed line per verdict record (see :func:`verdict_records`)."""
    if record["reason"]:
        return f"  {record['graph']} vs {record['control']}: inconclusive ({record['reason']})"
    return (f"  {record['graph']} vs {record['control']}: {record['verdict']} ({record['metric']} "
            f"{record['gain']:+.3f}, [{record['low']:+.3f}, {record['high']:+.3f}], p_adj {record['p_adjusted']:.3g})")


def experiment_status(experiment) -> tuple[dict, dict[str, str]]:
    """Per study: trial counts by state (finished, running, errored, pending) and the current winner."""
    layout = ExperimentLayout.open(experiment)
    config = layout.config
    metric = selection_column(config)
    summary = {"experiment": str(layout.root), "tasks": {}}
    tables = {}
    for task in config.studies():
        board = layout.read_leaderboard(task.name)
        states = layout.trial_states(task.name)
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
        summary["tasks"][task.name] = {"counts": counts, "metric": metric, "winner": winner,
                                       "verdicts": verdict_records(layout.read_verdicts(task.name))}
        tables[task.name] = leaderboard.format_table(board) if board is not None else "(running or not started)"
    return summary, tables
