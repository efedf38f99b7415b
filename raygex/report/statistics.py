"""The honest numbers: the validation-chosen winner's test metric over seeds, graph-vs-control gains with 95 %
intervals, and metric against training-set size (the seed paper's low-data question).

Everything here reads the seed-run table (each choice's best configuration retrained on every split seed) and the
leaderboard, through the experiment's layout. The winner is the leaderboard's rank 1, chosen on validation only; its reported test metric
is the mean over seeds of that configuration, never the best test metric over trials.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raygex.choices import choice_kind, graph_of
from raygex.graphs.controls import CONTROL_KINDS
from raygex.layout import ExperimentLayout, metric_name


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
    seeds = layout.read_seeds(study)
    if board is None or board.empty or seeds is None:
        return None
    metric = metric_name(layout.config)
    winner = board[board["status"] != "ERROR"].iloc[0]
    rows = seeds[seeds["trial_id"] == str(winner["trial_id"])]
    mean, sd, low, high = interval(rows[f"test_{metric}"])
    return {"study": study, "trial_id": str(winner["trial_id"]), "model": winner.get("config/model"),
            "graph": winner.get("config/graph") if winner.get("config/model") == "gcn" else None,
            "metric": metric, "test_mean": mean, "test_sd": sd, "test_low": low, "test_high": high,
            "seeds": int(rows["seed"].nunique()), "valid_on_search_split": float(winner[f"best_valid_{metric}"])}


def gains_over_controls(seeds: pd.DataFrame, metric_column: str) -> pd.DataFrame:
    """Per real graph and control: graph − control on ``metric_column``, paired by seed (mean, sd, 95 % interval)."""
    wide = seeds.pivot_table(index="seed", columns="choice", values=metric_column)
    rows = []
    for choice in wide.columns:
        if choice_kind(choice) != "graph":
            continue
        for control in CONTROL_KINDS:
            other = f"gcn/{control}"
            if other in wide:
                diff = (wide[choice] - wide[other]).dropna()
                if len(diff):
                    mean, sd, low, high = interval(diff)
                    rows.append({"graph": graph_of(choice), "control": control, "gain_mean": mean,
                                 "gain_sd": sd, "seeds": len(diff), "low": low, "high": high})
    return pd.DataFrame(rows)


def choice_means(layout: ExperimentLayout, study: str) -> dict[str, float]:
    """Per model family, the best choice's test metric averaged over seeds (to set beside published numbers)."""
    seeds = layout.read_seeds(study)
    if seeds is None or seeds.empty:
        return {}
    metric = metric_name(layout.config)
    means = seeds.groupby("choice")[f"test_{metric}"].mean()
    families: dict[str, float] = {}
    for choice, value in means.items():
        family = choice.split("/", 1)[0]
        if choice_kind(choice) == "control":
            continue  # a control is not the family's result
        families[family] = max(families.get(family, float("-inf")), float(value))
    return families


def headlines(layout: ExperimentLayout, study: str) -> list[str]:
    """One sentence per real graph: does it beat its randomised control on test, with a 95 % interval?"""
    seeds = layout.read_seeds(study)
    if seeds is None or seeds.empty:
        return []
    metric = metric_name(layout.config)
    size = layout.config.train_size(study)
    gains = gains_over_controls(seeds, f"test_{metric}")
    against_random = {} if gains.empty else {row.graph: row for row in gains[gains["control"] == "random"].itertuples()}
    sentences = []
    for choice in sorted(set(seeds["choice"])):
        if choice_kind(choice) != "graph":
            continue
        graph = graph_of(choice)
        if graph not in against_random:
            sentences.append(f"graph {graph}: no randomised control in this study, so no claim about the graph")
            continue
        gain = against_random[graph]
        mean, low, high, n = gain.gain_mean, gain.low, gain.high, gain.seeds
        if n < 2:
            sentences.append(f"graph {graph} vs its randomised control at n = {size:g}: {mean:+.3f} {metric} on one "
                             f"split seed — not enough seeds for an interval")
        elif low > 0:
            sentences.append(f"graph {graph} improves {metric} by {mean:.3f} (95% CI [{low:.3f}, {high:.3f}]) over "
                             f"its randomised control at n = {size:g}")
        else:
            sentences.append(f"graph {graph} does not improve {metric} over its randomised control at n = {size:g}: "
                             f"{mean:+.3f} (95% CI [{low:.3f}, {high:.3f}], {n} seeds)")
    return sentences


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
