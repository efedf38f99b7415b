"""Leaderboards: one row per trial with every hyperparameter and its best metrics; the winner first.

The table itself (ranking, storage types, printing); the layout reads and writes the file, and
:mod:`raygex.search.results` turns Ray Tune's results into rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

SHOWN_METRICS = ("best_valid_auc", "best_test_auc", "best_valid_accuracy", "best_test_accuracy")


def ranked(rows: list[dict], metric: str, mode: str) -> pd.DataFrame:
    """A leaderboard from one row per trial: sorted on ``metric`` (ties: fewer parameters first), ranked from 1."""
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    if metric not in board:
        board[metric] = np.nan
    if "n_params" not in board:
        board["n_params"] = np.nan
    ascending = mode == "min"
    board = board.sort_values([metric, "n_params"], ascending=[ascending, True], na_position="last",
                              kind="stable").reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board


def to_arrow(board: pd.DataFrame) -> pa.Table:
    """The board as an Arrow table; mixed config values (None, numbers, names) are stored as text."""
    board = board.copy()
    for column in board.columns:
        if board[column].dtype == object:
            board[column] = board[column].map(lambda v: None if v is None or v != v else str(v))
    return pa.Table.from_pandas(board, preserve_index=False)


def finished(board: pd.DataFrame) -> pd.DataFrame:
    """The trials that did not error, winner first."""
    return board[board["status"] != "ERROR"]


def format_table(board: pd.DataFrame, top: int = 10) -> str:
    """A compact printed table: rank, model, graph, key hyperparameters and metrics."""
    if board is None or board.empty:
        return "(no trials)"
    columns = ["rank", "trial_id", "config/model", "config/graph", "config/depth", "config/channels",
               "config/embedding", "config/dropout", "config/lr", *SHOWN_METRICS, "epoch"]
    shown = board[[c for c in columns if c in board]].head(top).copy()
    shown.columns = [c.replace("config/", "") for c in shown.columns]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
