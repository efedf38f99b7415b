"""An experiment saved before the package moved into rooms still resumes: Tune's pickles name the old module
paths (``raygex.space``), which :mod:`raygex.search.tune_compat.moved_modules` keeps importable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.search.conftest import write_demo
from tests.search.test_resume import ENV, finished_trials

pytestmark = pytest.mark.slow
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "saved_before_rooms"
SAVED_UNDER = "/tmp/legacy"  # where the folder and its demo were when it was saved
NUM_SAMPLES = 10


def test_a_folder_saved_before_the_move_resumes(tmp_path):
    experiment = tmp_path / "results" / "tiny"
    shutil.copytree(FIXTURE, experiment, ignore=shutil.ignore_patterns("README.md"))
    (tmp_path / "demo").mkdir()
    write_demo(tmp_path / "demo")
    config = experiment / "config.yaml"
    config.write_text(config.read_text().replace(SAVED_UNDER, str(tmp_path)))
    assert b"raygex.space" in (experiment / "subtype" / "tuner.pkl").read_bytes()  # an old module path
    before = finished_trials(experiment / "subtype")
    assert len(before) == 2

    resumed = subprocess.run([sys.executable, "-m", "raygex", "resume", str(experiment)], env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    assert len(board) == NUM_SAMPLES and (board["status"] == "TERMINATED").all()
    for trial_id, result in before.items():  # kept as they were, not run again
        row = board[board["trial_id"] == trial_id]
        assert row["best_valid_auc"].iloc[0] == pytest.approx(result["best_valid_auc"])
    assert board.filter(like="config/").astype(str).apply(tuple, axis=1).is_unique
    assert (experiment / "models" / "subtype.pt").exists()
    # every trial, resumed or new, kept its files in the folder it was resumed from, not where it was saved
    trials = [p for p in (experiment / "subtype").iterdir() if p.is_dir()]
    assert len(trials) == NUM_SAMPLES and all(any(t.glob("checkpoint_*/trial_state.pt")) for t in trials)
    assert "set to" in resumed.stdout and "(the study was moved)" in resumed.stdout


def test_a_folder_saved_before_family_shares_says_it_sweeps_with_one_tpe(tmp_path):
    """Its pickled searcher is one TPE over the study: status and resume read ``search.family_budget: tpe``, not
    today's default; a config saved with the key keeps its own value."""
    from raygex.experiment.layout import ExperimentLayout

    experiment = tmp_path / "tiny"
    shutil.copytree(FIXTURE, experiment, ignore=shutil.ignore_patterns("README.md", "subtype"))
    assert "family_budget" not in (experiment / "config.yaml").read_text()
    assert ExperimentLayout.open(experiment).config.search.family_budget == "tpe"
    text = (experiment / "config.yaml").read_text().replace("  num_samples: 10\n",
                                                              "  num_samples: 10\n  family_budget: equal\n")
    (experiment / "config.yaml").write_text(text)
    assert ExperimentLayout.open(experiment).config.search.family_budget == "equal"


def test_an_older_sweep_resumed_with_its_own_config_is_not_refused(tmp_path):
    """`raygex search CONFIG --resume` with the config it was started from (no family_budget key, as then): the
    sweep's own sampler goes on, nothing is refused; naming another family_budget is a changed config."""
    from raygex.config import load_config
    from raygex.errors import ConfigError
    from raygex.experiment.layout import ExperimentLayout
    from raygex.pipeline.run import check_resumable

    experiment = tmp_path / "tiny"
    shutil.copytree(FIXTURE, experiment, ignore=shutil.ignore_patterns("README.md", "subtype"))
    layout = ExperimentLayout.open(experiment)
    check_resumable(layout, load_config(experiment / "config.yaml"))
    with pytest.raises(ConfigError, match="search.family_budget"):
        check_resumable(layout, load_config(experiment / "config.yaml", ["search.family_budget=equal"]))
