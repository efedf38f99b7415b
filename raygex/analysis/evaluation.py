"""Is a choice's score real? Each choice retrained on every split seed.

A sweep selects on one split, so its leaderboard flatters whichever choice got lucky there. After a study's
sweep, the best configuration of each baseline family and the best GCN configuration with every graph and
control swapped in (one configuration: only the graph differs, as in the graph swap) are trained again on every
seed in ``split.seeds``: new split, same hyperparameters (:mod:`raygex.analysis.retrain` plans these trainings,
shared with the swap, each run once). The report plots the mean and spread of these runs and the gain of each
real graph over its controls, paired by seed.
"""

from __future__ import annotations

import pandas as pd

from raygex.analysis.retrain import plan, run_missing, seeds_table
from raygex.experiment.layout import ExperimentLayout


def evaluate_seeds(layout: ExperimentLayout, study: str, board: pd.DataFrame, dataset, graphs) -> pd.DataFrame:
    """Every later-stage training of the study (:func:`raygex.analysis.retrain.plan`: the baselines' best
    configurations, the best GCN configuration with every graph, the winner), each run once and recorded as it
    ends; write the seed-run table. The graph swap reads the same trainings."""
    rows, trainings = plan(layout, study, board)
    results = run_missing(layout, study, rows, trainings, dataset, graphs)
    table = seeds_table(layout, rows, results)
    layout.write_seeds(study, table)
    return table
