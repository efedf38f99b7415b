"""Leaderboards: one row per trial with every hyperparameter and its best metrics; the winner first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from raygex.fileio import atomic_path

LEADERBOARD_FILE = "leaderboard.parquet"
SHOWN_METRICS = ("best_valid_auc", "best_test_auc", "best_valid_accuracy", "best_test_accuracy")


def _reason(error: BaseException) -> str:
    """The root cause's last line (Tune wraps a trial's exception in its own error types)."""
    text = str(getattr(error, "cause", None) or error).strip().splitlines()
    reasons = [line for line in text if "Error" in line or "error" in line] or text or [type(error).__name__]
    return reasons[-1][:300]


def from_results(results, metric: str, mode: str) -> pd.DataFrame:
    """A leaderboard from a Tune ResultGrid; ties on the metric go to the model with fewer parameters."""
    rows = []
    for result in results:
        config = dict(result.config or {})
        last = dict(result.metrics or {})
        row = {"trial_id": last.get("trial_id") or (result.path and Path(result.path).name),
               "status": "ERROR" if result.error else "TERMINATED",
               "error": _reason(result.error) if result.error else None}
        row.update({f"config/{k}": v for k, v in config.items()})
        for key in ("epoch", "best_epoch", "n_params", "time_total_s", "node_id", "device", "gpu_ids", "private_mb",
                    "private_epoch1_mb", "shares_memory", "worker_trial"):
            row[key] = last.get(key)
        for key, value in last.items():
            if key.startswith(("best_valid_", "best_test_")):
                row[key] = value
        row["path"] = str(result.path) if result.path else None
        rows.append(row)
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    if metric not in board:
        board[metric] = np.nan
    ascending = mode == "min"
    board = board.sort_values([metric, "n_params"], ascending=[ascending, True], na_position="last",
                              kind="stable").reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board


def write(board: pd.DataFrame, folder: Path) -> Path:
    path = Path(folder) / LEADERBOARD_FILE
    board = board.copy()
    for column in board.columns:
        if board[column].dtype == object:  # mixed config values (None, numbers, names): store as text
            board[column] = board[column].map(lambda v: None if v is None or v != v else str(v))
    table = pa.Table.from_pandas(board, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read(folder: Path) -> pd.DataFrame | None:
    path = Path(folder) / LEADERBOARD_FILE
    return pd.read_parquet(path) if path.exists() else None


def format_table(board: pd.DataFrame, top: int = 10) -> str:
    """A compact printed table: rank, model, graph, key hyperparameters and metrics."""
    if board is None or board.empty:
        return "(no trials)"
    columns = ["rank", "trial_id", "config/model", "config/graph", "config/depth", "config/channels",
               "config/embedding", "config/dropout", "config/lr", *SHOWN_METRICS, "epoch"]
    shown = board[[c for c in columns if c in board]].head(top).copy()
    shown.columns = [c.replace("config/", "") for c in shown.columns]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
