"""Leaderboards: one row per trial with every hyperparameter and its best metrics, ranked on validation, and the
selection rule's winner marked.

The table itself (ranking, the winner, storage types, printing); the layout reads and writes the file, and
:mod:`raygex.search.results` turns Ray Tune's results into rows.

The winner is never a control: trials on a randomised, empty or co-expression graph are there to be compared
with, not deployed (a GCN on a rewired graph that tops a noisy validation split is luck, not a model). Among the
real choices (real graphs, MLP, logistic regression) the rule (``search.select``) picks:

* ``one_se`` (default): the simplest configuration whose validation metric is within one standard error of the
  best (Breiman et al. 1984; Hastie, Tibshirani & Friedman, *ESL* §7.10): logistic regression before the MLP
  before the GCN, then fewer parameters, then the better metric. The standard error is the trial's own across
  cross-validation folds (column ``<metric>_se``); a study on one validation split has none, and the rule is then
  plain best;
* ``best``: the best validation metric (ties: fewer parameters).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SELECTION_RULES = ("one_se", "best")
SIMPLICITY = {"lr": 0, "mlp": 1, "gcn": 2}  # the one-SE rule's order of families, simplest first
WINNER_COLUMN = "winner"


def ranked(rows: list[dict], metric: str, mode: str, rule: str = "one_se") -> pd.DataFrame:
    """A leaderboard from one row per trial: sorted on ``metric`` (ties: fewer parameters first), ranked from 1,
    with a boolean ``winner`` column marking the ``rule``'s choice (see the module docstring)."""
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
    board[WINNER_COLUMN] = False
    index = winner_index(board, metric, mode, rule)
    if index is not None:
        board.loc[index, WINNER_COLUMN] = True
    return board


def eligible(board: pd.DataFrame) -> pd.Series:
    """Finished trials of a real choice (a real graph, MLP or logistic regression): those that may win."""
    from raygex.analysis.choices import choice_kind, choice_of

    real = pd.Series([choice_kind(choice_of(row)) != "control" for _, row in board.iterrows()], index=board.index,
                     dtype=bool)
    if "status" in board:
        real &= board["status"] != "ERROR"
    return real


def winner_index(board: pd.DataFrame, metric: str, mode: str, rule: str = "one_se"):
    """The index of the ``rule``'s winner among :func:`eligible` trials with a metric, or None when there is none."""
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; expected one of {list(SELECTION_RULES)}")
    pool = board[eligible(board) & board[metric].notna()]
    if pool.empty:
        return None
    sign = 1.0 if mode == "max" else -1.0
    score = sign * pool[metric].astype(float)
    best = score.idxmax()
    if rule == "best":
        return best
    se_column = f"{metric}_se"
    se = float(pool.loc[best, se_column]) if se_column in pool and pd.notna(pool.loc[best, se_column]) else 0.0
    near = pool[score >= score[best] - se]
    family = near["config/model"].astype(str).map(lambda m: SIMPLICITY.get(m, len(SIMPLICITY)))
    params = near["n_params"].astype(float).fillna(np.inf)
    order = pd.DataFrame({"family": family, "params": params, "score": -score[near.index]})
    return order.sort_values(["family", "params", "score"], kind="stable").index[0]


def winner(board: pd.DataFrame):
    """The winner's row: the one marked by :func:`ranked`, else (a board written before the mark existed) the
    best eligible trial; None when no trial may win."""
    if board is None or board.empty:
        return None
    if WINNER_COLUMN in board and board[WINNER_COLUMN].astype(bool).any():
        return board[board[WINNER_COLUMN].astype(bool)].iloc[0]
    pool = board[eligible(board)]
    return None if pool.empty else pool.iloc[0]


def finished(board: pd.DataFrame) -> pd.DataFrame:
    """The trials that did not error, in rank order."""
    return board[board["status"] != "ERROR"]


def selection_reason(board: pd.DataFrame, metric: str, mode: str, rule: str) -> str:
    """One sentence: which trial the rule chose and why (the best real choice, and the band of one SE)."""
    chosen = winner(board)
    if chosen is None:
        return "no winner: no finished trial of a real choice (controls are never winners)"
    from raygex.analysis.choices import choice_of

    def described(row) -> str:
        se = row.get(f"{metric}_se")
        spread = f" ± {float(se):.4f}" if se is not None and se == se else ""
        return f"{choice_of(row)} trial {row['trial_id']} ({metric} {float(row[metric]):.4f}{spread})"

    best_index = winner_index(board, metric, mode, "best")
    best = chosen if best_index is None else board.loc[best_index]
    tops = board[board[metric].notna()]
    control_note = ""
    if len(tops) and not bool(eligible(board).loc[tops.index[0]]):
        control_note = f"; the top of the ranking, {described(tops.iloc[0])}, is a control and never wins"
    if rule == "best" or str(best["trial_id"]) == str(chosen["trial_id"]):
        why = "the best validation metric among real choices"
        if rule == "one_se":
            why += " and the simplest within one standard error of it" if f"{metric}_se" in board else \
                " (one split: no standard error, so the one-SE rule is plain best)"
        return f"winner {described(chosen)}: {why}{control_note}"
    return (f"winner {described(chosen)}: the simplest configuration (logistic regression, then MLP, then GCN, "
            f"then fewer parameters) within one standard error of the best real choice, {described(best)}"
            f"{control_note}")


def shown_metrics(board: pd.DataFrame) -> list[str]:
    """The metric columns a printed leaderboard shows: validation (with its SE under cross-validation), then test."""
    columns = []
    for name in ("auc", "accuracy"):
        columns += [f"best_valid_{name}", f"best_valid_{name}_se", f"best_test_{name}"]
    return [c for c in columns if c in board]


def hide_test(board: pd.DataFrame) -> pd.DataFrame:
    """The board with every test metric blanked except the winner's: nobody should pick a trial on test."""
    board = board.copy()
    keep = board[WINNER_COLUMN].astype(bool) if WINNER_COLUMN in board else pd.Series(False, index=board.index)
    for column in [c for c in board.columns if str(c).startswith("best_test_")]:
        board[column] = board[column].where(keep)
    return board


def top_rows(board: pd.DataFrame, top: int) -> pd.DataFrame:
    """The first ``top`` rows, and the winner's row after them when it ranked lower."""
    head = board.head(top)
    if WINNER_COLUMN in board and not head[WINNER_COLUMN].astype(bool).any():
        head = pd.concat([head, board[board[WINNER_COLUMN].astype(bool)]])
    return head


def format_table(board: pd.DataFrame, top: int = 10, show_test: bool = False) -> str:
    """A compact printed table: rank, the winner's mark, model, graph, key hyperparameters and metrics (test
    metrics only for the winner unless ``show_test``)."""
    if board is None or board.empty:
        return "(no trials)"
    if not show_test:
        board = hide_test(board)
    columns = ["rank", WINNER_COLUMN, "trial_id", "config/model", "config/graph", "config/depth", "config/channels",
               "config/embedding", "config/dropout", "config/lr", *shown_metrics(board), "epoch"]
    shown = top_rows(board[[c for c in columns if c in board]], top).copy()
    if WINNER_COLUMN in shown:
        shown[WINNER_COLUMN] = shown[WINNER_COLUMN].map(lambda w: "*" if bool(w) else "")
    shown.columns = [c.replace("config/", "") for c in shown.columns]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
