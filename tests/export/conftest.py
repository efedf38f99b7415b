"""A small demo dataset and config for exporting models without running a sweep."""

from __future__ import annotations

import pytest

from tests.search.conftest import write_config, write_demo


@pytest.fixture(scope="session")
def export_demo(tmp_path_factory):
    """(config path, folder): a 160 × 150 demo cohort with its true and decoy graphs."""
    folder = write_demo(tmp_path_factory.mktemp("export_demo"), seed=1)
    return write_config(folder / "demo.yaml", folder), folder


def trained(config_path, task: str, hparams: dict):
    """Train one model in process: (config, raw TrialData, TrialResult, hyperparameters)."""
    from raygex.config import load_config
    from raygex.data.prepare import load_dataset, load_graphs, trial_data
    from raygex.training.loop import run_trial

    config = load_config(config_path)
    graphs = load_graphs(config)
    graph = hparams.get("graph") if hparams["model"] == "gcn" else None
    data = trial_data(config, task, load_dataset(config), graphs, seed=0, graph=graph)
    hparams = {"max_epochs": 3, "patience": 3, "batch_size": 32, **hparams}
    return config, data, run_trial(hparams, data), hparams
