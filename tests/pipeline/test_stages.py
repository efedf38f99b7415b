"""The sweep pipeline is idempotent: a resume of a finished experiment runs nothing, a resume after a driver died
between stages runs only the missing stages, and `raygex export` / `raygex report` are those stages run alone.

Evidence is counted outside the pipeline's own journal too: trial folders on disk, W&B offline run folders, file
modification times, and whether Ray was started at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from raygex.experiment.layout import ExperimentLayout
from tests.search.conftest import write_config

pytestmark = pytest.mark.slow


def snapshot(layout: ExperimentLayout, study: str) -> dict:
    return {"trials": [p.name for p in layout.trial_dirs(study)],
            "model_mtime": layout.model_path(study).stat().st_mtime_ns,
            "leaderboard_mtime": layout.leaderboard_path(study).stat().st_mtime_ns,
            "wandb_runs": sorted(p.name for p in layout.wandb_dir.glob("offline-run-*")),
            "journal": len(layout.journal())}


# W&B on (offline), so that a rerun summary would show as a new run; in child processes, since wandb keeps
# process-wide state that would leak into later tests.
ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
       "WANDB_MODE": "offline"}
RAY_SESSION = Path(tempfile.gettempdir()) / "ray" / "session_latest"


def run_cli(*args) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "raygex", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def ray_session() -> str | None:
    return os.readlink(RAY_SESSION) if RAY_SESSION.is_symlink() else None


def test_resume_redoes_nothing_finished_and_runs_only_missing_stages(tiny_demo, tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny_demo,
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          split={"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0, 1]},
                          train={"max_epochs": 2, "patience": 2, "batch_size": 32},
                          search={"num_samples": 2, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {"model": ["mlp", "lr"], "hidden": 16}})
    code, out, err = run_cli("search", config)
    assert code == 0, err
    layout = ExperimentLayout.open(tmp_path / "results" / "tiny")
    first = snapshot(layout, "subtype")
    assert len(first["trials"]) == 2 and len(first["wandb_runs"]) == 3  # two trial runs and the summary run
    assert [e["stage"] for e in layout.journal()] == ["sweep", "leaderboard", "export", "retrainings", "evaluation",
                                                      "swap", "verdict", "summary", "report"]
    assert all(e["driver_peak_mb"] > 0 for e in layout.journal())

    # 1. A finished experiment: no trial, no retraining, no export, no W&B run, and Ray never starts.
    session = ray_session()
    started = time.perf_counter()
    code, out, err = run_cli("resume", layout.root)
    seconds = time.perf_counter() - started
    print(f"\nresume of a finished experiment: {seconds:.2f} s")
    assert code == 0, err
    assert "nothing to run" in out
    assert ray_session() == session, "a Ray session was started"
    assert snapshot(layout, "subtype") == first
    assert layout.seeds_path("subtype").exists() and layout.report_path.exists()

    # 2. A driver killed after the evaluation's trainings ended (the seed table, summary and report were never
    # written): only those stages run, from the recorded trainings (no "retrainings" stage: nothing is trained).
    layout.seeds_path("subtype").unlink()
    layout.summary_path("subtype").unlink()
    layout.report_path.unlink()
    code, out, err = run_cli("resume", layout.root)
    assert code == 0, err
    after = snapshot(layout, "subtype")
    assert after["trials"] == first["trials"], "a trial ran again"
    assert after["model_mtime"] == first["model_mtime"], "the model was exported again"
    assert after["leaderboard_mtime"] == first["leaderboard_mtime"]
    assert len(after["wandb_runs"]) == len(first["wandb_runs"]) + 1  # the summary run, once
    assert [e["stage"] for e in layout.journal()[first["journal"]:]] == ["evaluation", "summary", "report"]
    assert "running the stages not done yet: evaluation, summary" in out
    seeds = layout.read_seeds("subtype")
    assert sorted(seeds["seed"].unique()) == [0, 1] and set(seeds["choice"]) == {"mlp", "lr"}

    # 3. `raygex export` and `raygex report` are the export and report stages run alone.
    count = len(layout.journal())
    code, out, err = run_cli("export", layout.root)
    assert code == 0, err
    code, out, err = run_cli("report", layout.root)
    assert code == 0, err
    assert [e["stage"] for e in layout.journal()[count:]] == ["export", "report"]
    assert layout.model_path("subtype").stat().st_mtime_ns > first["model_mtime"]
    assert snapshot(layout, "subtype")["trials"] == first["trials"]
