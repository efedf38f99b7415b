"""What a sweep has done so far: per task, trial counts by state and the current winner."""

from __future__ import annotations

import pandas as pd

from raygex.analysis import leaderboard
from raygex.experiment.layout import ExperimentLayout
from raygex.config import selection_column, selection_mode
from raygex.search.space import study_budget


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


def trial_records(board: pd.DataFrame | None, metric: str, show_test: bool) -> list[dict]:
    """Every finished trial's choice, whether it may win, its validation metric and (cross-validated) standard
    error; test metrics only for the winner unless ``show_test``."""
    if board is None or board.empty:
        return []
    from raygex.analysis.choices import choice_kind, choice_of

    shown = board if show_test else leaderboard.hide_test(board)
    records = []
    for _, row in shown[shown["status"] != "ERROR"].iterrows():
        choice = choice_of(row)
        record = {"trial_id": str(row["trial_id"]), "choice": choice, "kind": choice_kind(choice),
                  "winner": bool(row.get(leaderboard.WINNER_COLUMN, False)),
                  "valid": _number(row.get(metric)), "valid_se": _number(row.get(f"{metric}_se"))}
        record.update({k: _number(v) for k, v in row.items() if str(k).startswith("best_test_") and not pd.isna(v)})
        records.append(record)
    return records


def _number(value):
    return None if value is None or pd.isna(value) else float(value)


def experiment_status(experiment, show_test: bool = False) -> tuple[dict, dict[str, str]]:
    """Per study: trial counts by state (finished, running, errored, pending), the winner and why the selection
    rule chose it, every finished trial's validation mean (± SE under cross-validation) and the verdicts. Test
    metrics are shown for the winner only, unless ``show_test``."""
    layout = ExperimentLayout.open(experiment)
    config = layout.config
    metric = selection_column(config)
    mode = selection_mode(config)
    budget = study_budget(config)[0]
    summary = {"experiment": layout.where, "tasks": {}}
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
        counts["pending"] += max(0, budget - sum(counts.values()))
        winner = None
        top = leaderboard.winner(board)
        if top is not None:
            winner = {"trial_id": top["trial_id"],
                      "hyperparameters": {k[len("config/"):]: v for k, v in top.items()
                                          if k.startswith("config/") and not pd.isna(v)},
                      "metrics": {k: v for k, v in top.items() if k.startswith("best_") and not pd.isna(v)}}
        selection = {"rule": config.search.select, "cross_validated": _cross_validated(board, metric),
                     "reason": leaderboard.selection_reason(board, metric, mode, config.search.select)
                     if board is not None and not board.empty else None}
        summary["tasks"][task.name] = {"counts": counts, "metric": metric, "winner": winner, "selection": selection,
                                       "trials": trial_records(board, metric, show_test),
                                       "verdicts": verdict_records(layout.read_verdicts(task.name))}
        tables[task.name] = (leaderboard.format_table(board, show_test=show_test) if board is not None
                             else "(running or not started)")
    return summary, tables


def _cross_validated(board: pd.DataFrame | None, metric: str) -> bool | None:
    """Whether the study's trials were cross-validated (they report a standard error), None before any trial."""
    if board is None or board.empty:
        return None
    return f"{metric}_se" in board and bool(board[f"{metric}_se"].notna().any())
