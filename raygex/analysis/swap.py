"""The graph swap: the equal-budget comparison behind every verdict.

A sweep gives each graph a different number of trials (TPE piles them onto whatever looks best), so comparing
each graph's best trial flatters the graph that got the most. Here the study's best GCN configuration (chosen on
validation, on the search split) is retrained with exactly the same hyperparameters with every graph and every
control swapped in, on every split seed; for one seed, the split and the initialisation seed are the same for
every graph, so only the graph differs. Every run is scored on the study's fixed test set, and its test-set
probabilities are kept, so :mod:`raygex.analysis.verdict` can resample test samples as well as seeds.

Outputs (through the layout): the swap table (seed, graph, validation and test metric, epochs, aligned edge count)
and the test predictions (seed, graph, test row, label, class probabilities).
"""

from __future__ import annotations

import pandas as pd

from raygex.analysis.retrain import plan, run_missing, swap_tables
from raygex.experiment.layout import ExperimentLayout


def swap_graphs(layout: ExperimentLayout, study: str, board: pd.DataFrame, dataset, graphs) -> pd.DataFrame:
    """The best GCN configuration with every graph choice on every split seed: the trainings the evaluation
    recorded (any still missing run now, as Ray tasks); write the swap table and its test predictions (both
    empty when the study has no finished GCN trial)."""
    rows, trainings = plan(layout, study, board)
    swap_rows = [run for run in rows if run.role == "best" and run.graph is not None]
    results = run_missing(layout, study, swap_rows, {run.key: trainings[run.key] for run in swap_rows}, dataset,
                          graphs)
    table, predictions = swap_tables(layout, swap_rows, results)
    layout.write_swap(study, table, predictions)
    return table
