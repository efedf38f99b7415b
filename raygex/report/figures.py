"""Figures a person decides from: graphs against baselines and controls, hyperparameters, learning curves.

Each study's figures are PNG files in the layout's figures folder (``<experiment>/report/<study>/``) (the HTML report inlines them; the W&B
summary run uploads them). Matplotlib's Agg backend: no display, no server.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from raygex.analysis.choices import best_per_choice, choice_kind
from raygex.experiment.layout import ExperimentLayout
from raygex.config import metric_name, selection_mode
from raygex.report.statistics import gains_over_controls, size_table

DPI = 90
HYPERPARAMETERS = ("depth", "embedding", "channels", "dropout", "lr", "weight_decay", "hidden")


class _Figures:
    """What the figures need of pyplot, without pyplot's global state: figures made as ``Figure`` objects (saved
    with Agg), so a report made inside a notebook or an application leaves its matplotlib backend alone."""

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kwargs):
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(nrows, ncols, **kwargs)

    @staticmethod
    def close(fig) -> None:
        fig.clear()

    @staticmethod
    def Rectangle(*args, **kwargs):  # noqa: N802 - pyplot's name
        from matplotlib.patches import Rectangle

        return Rectangle(*args, **kwargs)


def _pyplot() -> type[_Figures]:
    return _Figures


COLOURS = {"graph": "#2b6cb0", "control": "#a0aec0", "baseline": "#dd6b20"}


def stopped_by_scheduler(row, config) -> bool:
    """True for a trial ASHA stopped: fewer epochs than allowed, and not by its own early stopping."""
    epochs, best = row.get("epoch"), row.get("best_epoch")
    if epochs is None or epochs != epochs:
        return False
    max_epochs = config.search.scheduler.max_epochs or config.train.max_epochs
    patience_hit = best is not None and best == best and epochs - best >= config.train.patience
    return epochs < max_epochs and not patience_hit


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def choices_figure(board: pd.DataFrame, seeds: pd.DataFrame | None, metric: str, path: Path) -> Path:
    """Best validation and test metric per choice; bars are means over split seeds, whiskers their sd."""
    plt = _pyplot()
    if seeds is not None and len(seeds):
        stats = seeds.groupby("choice").agg(valid=(f"valid_{metric}", "mean"), valid_sd=(f"valid_{metric}", "std"),
                                            test=(f"test_{metric}", "mean"), test_sd=(f"test_{metric}", "std"),
                                            n=("seed", "nunique"))
        subtitle = f"best configuration per choice, mean ± sd over {int(stats['n'].max())} split seed(s)"
    else:
        best = best_per_choice(board)
        stats = pd.DataFrame({"valid": best[f"best_valid_{metric}"].to_numpy(),
                              "test": best[f"best_test_{metric}"].to_numpy()}, index=best["choice"])
        stats["valid_sd"] = stats["test_sd"] = np.nan
        subtitle = "best trial per choice (one split)"
    stats = stats.sort_values("valid", ascending=False)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(stats)), 4))
    x = np.arange(len(stats))
    colours = [COLOURS[choice_kind(c)] for c in stats.index]
    ax.bar(x - 0.2, stats["valid"], 0.4, yerr=stats["valid_sd"].fillna(0), color=colours, alpha=0.55,
           capsize=3, label="validation")
    ax.bar(x + 0.2, stats["test"], 0.4, yerr=stats["test_sd"].fillna(0), color=colours, capsize=3, label="test",
           edgecolor="black", linewidth=0.6)
    ax.set_xticks(x, stats.index, rotation=30, ha="right")
    low = np.nanmin(stats[["valid", "test"]].to_numpy())
    ax.set_ylim(max(0.0, low - 0.1), 1.0 if metric in ("auc", "accuracy", "balanced_accuracy") else None)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per graph choice and baseline (light: validation, dark: test)\n{subtitle}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[k]) for k in ("graph", "control", "baseline")]
    ax.legend(handles + ax.get_legend_handles_labels()[0][:0], ["real graph", "control graph", "no graph"],
              loc="lower left", fontsize=8)
    return _save(fig, path)


def hyperparameter_figure(board: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """Validation metric against each searched hyperparameter (GCN trials for GCN-only ones)."""
    column = f"best_valid_{metric}"
    shown = [h for h in HYPERPARAMETERS if f"config/{h}" in board and pd.to_numeric(board[f"config/{h}"],
                                                                                    errors="coerce").nunique() > 1]
    if not shown:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3), squeeze=False)
    for ax, name in zip(axes[0], shown):
        values = pd.to_numeric(board[f"config/{name}"], errors="coerce")
        keep = values.notna()
        colours = [COLOURS[choice_kind(f"gcn/{g}" if m == "gcn" else str(m))]
                   for m, g in zip(board["config/model"][keep], board.get("config/graph", pd.Series(
                       [None] * len(board)))[keep])]
        ax.scatter(values[keep], board[column][keep], c=colours, s=18)
        if name in ("lr", "weight_decay"):
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(f"valid {metric}")
    fig.suptitle("validation metric against hyperparameters (blue: real graph, grey: control, orange: no graph)",
                 fontsize=9)
    return _save(fig, path)


def importance_figure(board: pd.DataFrame, metric: str, mode: str, path: Path) -> Path | None:
    """Optuna's parameter importances (fANOVA) over the parameters every finished trial has."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    column = f"best_valid_{metric}"
    finished = board[board[column].notna()]
    params = [c for c in finished.columns if c.startswith("config/") and finished[c].notna().all()]
    if len(finished) < 4 or not params:
        return None
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for _, row in finished.iterrows():
        values, dists = {}, {}
        for column_name in params:
            name, value = column_name.removeprefix("config/"), row[column_name]
            number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
            if number == number and not isinstance(value, (bool, np.bool_)):
                values[name] = float(number)
                low, high = pd.to_numeric(finished[column_name]).min(), pd.to_numeric(finished[column_name]).max()
                dists[name] = optuna.distributions.FloatDistribution(float(low), float(max(high, low + 1e-12)))
            else:
                choices = tuple(sorted({str(v) for v in finished[column_name]}))
                values[name], dists[name] = str(value), optuna.distributions.CategoricalDistribution(choices)
        study.add_trial(optuna.trial.create_trial(params=values, distributions=dists, value=float(row[column])))
    try:
        importances = optuna.importance.get_param_importances(study)
    except Exception:  # too few or degenerate trials: no figure rather than a failed report
        return None
    if not importances:
        return None
    plt = _pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(names) + 1))
    ax.barh(names, [importances[n] for n in names], color="#4a5568")
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title(f"parameter importances for valid {metric}", fontsize=10)
    return _save(fig, path)


def curves_figure(layout: ExperimentLayout, study: str, board: pd.DataFrame, metric: str, path: Path,
                  top: int = 8) -> Path | None:
    """Validation curves of the top trials; dashed lines mark trials ASHA stopped."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for _, row in board.head(top).iterrows():
        history = layout.trial_history(study, row)
        if history.empty or f"valid_{metric}" not in history:
            continue
        stopped = stopped_by_scheduler(row, layout.config)
        label = f"#{row['rank']} {row['trial_id']} {row.get('config/model')}" + (
            f"/{row.get('config/graph')}" if row.get("config/model") == "gcn" else "") + (" (ASHA stop)" if stopped
                                                                                          else "")
        ax.plot(history["epoch"], history[f"valid_{metric}"], linestyle="--" if stopped else "-", marker=".",
                label=label)
        drawn += 1
    if not drawn:
        _pyplot().close(fig)
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"valid {metric}")
    ax.set_title(f"learning curves of the top {drawn} trials (dashed: stopped early by ASHA)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def task_figures(layout: ExperimentLayout, study: str) -> dict[str, Path]:
    """Write every figure of ``study`` as PNG; returns figure name → path (missing figures are left out)."""
    board = layout.read_leaderboard(study)
    if board is None or board.empty:
        return {}
    config = layout.config
    metric = metric_name(config)
    folder = layout.figures_dir(study)
    figures = {
        "choices": choices_figure(board, layout.read_seeds(study), metric, folder / "choices.png"),
        "hyperparameters": hyperparameter_figure(board, metric, folder / "hyperparameters.png"),
        "importances": importance_figure(board, metric, selection_mode(config), folder / "importances.png"),
        "curves": curves_figure(layout, study, board, metric, folder / "curves.png"),
    }
    return {name: path for name, path in figures.items() if path is not None}


def gains_table(layout: ExperimentLayout, study: str) -> pd.DataFrame:
    """Gain of each real graph over each control on the test metric, paired by seed (empty without seeds)."""
    seeds = layout.read_seeds(study)
    if seeds is None or seeds.empty:
        return pd.DataFrame()
    gains = gains_over_controls(seeds, f"test_{metric_name(layout.config)}")
    return gains.drop(columns=["low", "high"], errors="ignore")


def size_figure(layout: ExperimentLayout, task: str, path: Path) -> Path | None:
    """Test metric against training-set size per model family and graph (mean ± sd over seeds)."""
    table = size_table(layout, task)
    if table.empty or table["train"].nunique() < 2:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for choice, group in table.groupby("choice"):
        group = group.sort_values("train")
        kind = choice_kind(choice)
        ax.errorbar(group["train"], group["mean"], yerr=group["sd"].fillna(0), marker="o", capsize=3,
                    label=choice, linestyle="-" if kind == "graph" else "--" if kind == "control" else ":",
                    color=None if kind == "graph" else COLOURS[kind] if kind == "control" else None)
    ax.set_xscale("log")
    ax.set_xlabel("training samples")
    ax.set_ylabel(f"test {metric_name(layout.config)}")
    ax.set_title(f"{task}: best configuration per choice, mean ± sd over split seeds", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)
