"""The leaderboard's winner: never a control, never an errored trial; the one-standard-error rule takes the
simplest configuration within one SE of the best (planted ties), `best` takes the best."""

from __future__ import annotations

import pytest

from raygex.analysis import leaderboard
from raygex.export.winner import pick_trial
from raygex.errors import ConfigError

METRIC = "best_valid_auc"


def row(trial, model, graph, value, n_params, se=None, status="TERMINATED"):
    out = {"trial_id": trial, "status": status, "config/model": model,
           "config/graph": graph if model == "gcn" else None, METRIC: value, "n_params": n_params}
    if se is not None:
        out[f"{METRIC}_se"] = se
    return out


def winner_of(rows, rule="one_se"):
    board = leaderboard.ranked(rows, METRIC, "max", rule)
    assert board[METRIC].is_monotonic_decreasing  # ranked on validation, whatever the rule picks
    return board, board.loc[board["winner"], "trial_id"].tolist()


@pytest.mark.parametrize("control", ["true:random", "empty", "coexpression"])
@pytest.mark.parametrize("rule", ["best", "one_se"])
def test_a_control_never_wins_even_when_it_tops_validation(control, rule):
    board, won = winner_of([row("c", "gcn", control, 0.95, 100), row("g", "gcn", "true", 0.90, 100),
                            row("m", "mlp", None, 0.85, 50)], rule)
    assert board["trial_id"].iloc[0] == "c" and won == ["g"]
    assert pick_trial(board, None)["trial_id"] == "g"


def test_an_errored_trial_never_wins():
    _, won = winner_of([row("e", "gcn", "true", 0.99, 10, status="ERROR"), row("l", "lr", None, 0.80, 10)])
    assert won == ["l"]


def test_one_se_takes_the_simplest_configuration_within_one_standard_error():
    rows = [row("gcn", "gcn", "true", 0.900, 5000, se=0.030), row("mlp", "mlp", None, 0.880, 3000, se=0.020),
            row("lr", "lr", None, 0.875, 200, se=0.025), row("lr_far", "lr", None, 0.860, 200, se=0.010)]
    assert winner_of(rows, "one_se")[1] == ["lr"]  # 0.875 >= 0.900 - 0.030; lr_far (0.860) is outside
    assert winner_of(rows, "best")[1] == ["gcn"]
    # among GCNs inside the band, fewer parameters first
    rows = [row("big", "gcn", "true", 0.90, 9000, se=0.02), row("small", "gcn", "decoy", 0.89, 900, se=0.02),
            row("ctl", "gcn", "empty", 0.91, 10, se=0.02)]
    assert winner_of(rows, "one_se")[1] == ["small"]


def test_one_se_is_plain_best_without_a_standard_error():
    rows = [row("gcn", "gcn", "true", 0.90, 5000), row("lr", "lr", None, 0.89, 200)]
    assert winner_of(rows, "one_se")[1] == ["gcn"]


def test_a_loss_metric_is_minimised():
    rows = [{**row("a", "gcn", "true", None, 10), "best_valid_loss": 0.30, "best_valid_loss_se": 0.05},
            {**row("b", "lr", None, None, 10), "best_valid_loss": 0.33, "best_valid_loss_se": 0.05}]
    board = leaderboard.ranked(rows, "best_valid_loss", "min", "one_se")
    assert board.loc[board["winner"], "trial_id"].tolist() == ["b"]
    assert leaderboard.ranked(rows, "best_valid_loss", "min", "best").query("winner")["trial_id"].tolist() == ["a"]


def test_a_study_of_controls_only_has_no_winner_and_says_so():
    board, won = winner_of([row("c", "gcn", "empty", 0.9, 10), row("d", "gcn", "true:random", 0.8, 10)])
    assert won == [] and leaderboard.winner(board) is None
    with pytest.raises(ConfigError, match="controls are never exported as winners"):
        pick_trial(board, None)
