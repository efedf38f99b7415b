"""`raygex report --wandb-report`: the same panels as a W&B Report, where a W&B server is reachable.

Without a server (offline or disabled mode, no login, no network) this is a clear error, never a half-made
report: the local `report.html` is always written first.
"""

from __future__ import annotations

import os
from pathlib import Path

from raygex.errors import ConfigError


def build_wandb_report(experiment: str | Path) -> str:
    """Create a W&B Report for the experiment's runs; returns its URL."""
    from raygex.experiment.layout import ExperimentLayout

    layout = ExperimentLayout.open(experiment)
    exp_dir, config = layout.root, layout.config
    mode = os.environ.get("WANDB_MODE") or config.wandb.mode
    if mode in ("offline", "disabled", "dryrun"):
        raise ConfigError(f"--wandb-report needs a reachable W&B server, but W&B is in {mode!r} mode here (upload "
                          f"the runs with 'wandb sync {exp_dir / 'wandb'}', then run with WANDB_MODE=online)")
    try:
        import wandb
        import wandb_workspaces.reports.v2 as wr
    except ImportError as err:
        raise ConfigError(f"--wandb-report needs wandb and wandb-workspaces installed ({err})") from None
    try:
        entity = wandb.Api(timeout=15).default_entity
    except Exception as err:  # no login, no network, server down: all mean "no report"
        raise ConfigError(f"--wandb-report: no reachable W&B server ({type(err).__name__}: {err})") from None
    blocks = [wr.H1(f"raygex: {config.name}")]
    for task in config.studies():
        group = f"{exp_dir.name}/{task.name}"  # the trial and summary runs' group (the folder may differ from name)
        runset = wr.Runset(entity=entity, project=config.wandb.project, name=group,
                           filters=f"Metric('group') == '{group}'")
        blocks += [wr.H2(f"Task {task.name}"), wr.PanelGrid(runsets=[runset], panels=[
            wr.LinePlot(x="epoch", y=[config.search.metric]),
            wr.BarPlot(metrics=[f"best_{config.search.metric}"], groupby="model"),
            wr.ParallelCoordinatesPlot(columns=[wr.ParallelCoordinatesPlotColumn(metric=f"c::{name}")
                                                for name in ("depth", "embedding", "dropout", "lr")]),
        ])]
    report = wr.Report(entity=entity, project=config.wandb.project, title=f"raygex: {config.name}", blocks=blocks)
    report.save()
    return report.url
