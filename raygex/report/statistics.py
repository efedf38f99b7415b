"""The honest numbers: the validation-chosen winner's test metric over seeds, each family's validation-chosen
configuration beside published numbers, per-choice gains over controls (secondary to :mod:`raygex.analysis.verdict`), and
metric against training-set size (the seed paper's low-data question).

Everything here reads the seed-run table (each choice's best configuration retrained on every split seed) and the
leaderboard, through the experiment's layout. The winner is the leaderboard's marked winner, chosen on validation only; its reported test metric
is the mean over seeds of that configuration, never the best test metric over trials.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raygex.analysis.choices import choice_kind, choice_of, controls_of, graph_of
from raygex.experiment.layout import ExperimentLayout
from raygex.config import metric_name
from raygex.metrics import MODE


def interval(values) -> tuple[float, float, float, float]:
    """(mean, sd, low, high): the mean with its two-sided 95 % Student-t interval (NaN bounds for one value)."""
    from scipy import stats

    values = np.asarray([v for v in values if v == v], dtype=float)
    if len(values) == 0:
        return (float("nan"),) * 4
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan"), float("nan")
    sd = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(values) - 1) * sd / np.sqrt(len(values)))
    return mean, sd, mean - half, mean + half


def winner_test(layout: ExperimentLayout, study: str) -> dict | None:
    """The validation-chosen winner and its test metric re-evaluated over every split seed."""
    board = layout.read_leaderboard(study)
    seeds = layout.read_seeds(study, winner_rows=True)
    if board is None or board.empty or seeds is None:
        return None
    metric = metric_name(layout.config)
    from raygex.analysis.leaderboard import winner as winner_row

    winner = winner_row(board)
    if winner is None:
        return None
    # the winner's own runs: its trial's configuration on its own choice (the best GCN's configuration is also
    # trained with every other graph, under the same trial id)
    rows = seeds[(seeds["trial_id"] == str(winner["trial_id"])) & (seeds["choice"] == choice_of(winner))]
    mean, sd, low, high = interval(rows[f"test_{metric}"])
    return {"study": study, "trial_id": str(winner["trial_id"]), "model": winner.get("config/model"),
            "graph": winner.get("config/graph") if winner.get("config/model") == "gcn" else None,
            "metric": metric, "test_mean": mean, "test_sd": sd, "test_low": low, "test_high": high,
            "seeds": int(rows["seed"].nunique()), "valid_on_search_split": float(winner[f"best_valid_{metric}"])}


def gains_over_controls(seeds: pd.DataFrame, metric_column: str) -> pd.DataFrame:
    """Per real graph and each of its controls: graph − control on ``metric_column``, paired by seed, each side
    the best configuration of its own choice (mean, sd, 95 % interval). A secondary view: the verdict
    (:mod:`raygex.analysis.verdict`) compares equal hyperparameters instead."""
    wide = seeds.pivot_table(index="seed", columns="choice", values=metric_column)
    graphs = [graph_of(c) for c in wide.columns if choice_kind(c) != "baseline"]
    rows = []
    for choice in wide.columns:
        if choice_kind(choice) != "graph":
            continue
        for control in controls_of(graph_of(choice), graphs):
            diff = (wide[choice] - wide[f"gcn/{control}"]).dropna()
            if len(diff):
                mean, sd, low, high = interval(diff)
                rows.append({"graph": graph_of(choice), "control": control, "gain_mean": mean,
                             "gain_sd": sd, "seeds": len(diff), "low": low, "high": high})
    return pd.DataFrame(rows)


def choice_means(layout: ExperimentLayout, study: str) -> dict[str, float]:
    """Per model family, the test metric over seeds of the choice with the best *validation* metric over seeds
    (controls excluded), to set beside published numbers: never the best on test."""
    seeds = layout.read_seeds(study)
    if seeds is None or seeds.empty:
        return {}
    metric = metric_name(layout.config)
    means = seeds.groupby("choice")[[f"valid_{metric}", f"test_{metric}"]].mean()
    better = MODE[metric] == "max"
    families: dict[str, tuple[float, float]] = {}
    for choice, row in means.iterrows():
        if choice_kind(choice) == "control":
            continue
        family = choice.split("/", 1)[0]
        valid = float(row[f"valid_{metric}"])
        held = families.get(family)
        if held is None or (valid > held[0] if better else valid < held[0]):
            families[family] = (valid, float(row[f"test_{metric}"]))
    return {family: test for family, (_, test) in families.items()}


def size_table(layout: ExperimentLayout, task: str) -> pd.DataFrame:
    """Per train size and choice: test metric mean, sd and 95 % interval over seeds."""
    metric = metric_name(layout.config)
    rows = []
    for study in layout.config.studies():
        if study.task.name != task:
            continue
        seeds = layout.read_seeds(study.name)
        if seeds is None:
            continue
        for choice, group in seeds.groupby("choice"):
            mean, sd, low, high = interval(group[f"test_{metric}"])
            rows.append({"train": study.train, "choice": choice, "mean": mean, "sd": sd, "low": low, "high": high,
                         "seeds": int(group["seed"].nunique())})
    return pd.DataFrame(rows)
