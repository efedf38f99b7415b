"""`raygex search CONFIG --resume` against the experiment's snapshot: a change to what is trained or how the winner
is chosen is refused in one line naming the keys (exit 2, before Ray starts); a change to where and how fast the
sweep runs is accepted (:mod:`raygex.config.resume`). `raygex resume` reruns the snapshot: nothing to refuse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from raygex.config import load_config
from raygex.config.resume import RESUMABLE_KEYS, changed_keys, may_change, refused_changes
from raygex.experiment.layout import ExperimentLayout
from tests.search.conftest import write_config

ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
       "WANDB_MODE": "disabled"}


def tiny(tiny_demo, tmp_path):
    """One task, two trials of two epochs, MLP and LR only: the smallest sweep that finishes every stage."""
    return write_config(tmp_path / "tiny.yaml", tiny_demo,
                        tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                        split={"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0, 1]},
                        train={"max_epochs": 2, "patience": 2, "batch_size": 32},
                        search={"num_samples": 2, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                "space": {"model": ["mlp", "lr"], "hidden": 16}})


def dumped(path, *overrides):
    return json.loads(load_config(path, list(overrides)).model_dump_json())


def test_which_keys_a_resume_may_change(tiny_demo, tmp_path):
    path = tiny(tiny_demo, tmp_path)
    base = dumped(path)
    allowed = ["search.max_concurrent=5", "search.max_concurrent_per_study=2", "search.studies_at_once=1",
               "resources.cpu=2", "resources.gpu=0.5", "resources.memory_mb=512", "storage=s3://bucket/results",
               "name=other", "wandb.mode=online", "wandb.project=p", "search.checkpoint_every=2",
               "search.max_failures=0", "data.read_in_driver_mb=0"]
    for override in allowed:
        assert changed_keys(base, dumped(path, override)), override
        assert refused_changes(base, dumped(path, override)) == {}, override
    refused = {"train.max_epochs=3": "train.max_epochs", "search.num_samples=4": "search.num_samples",
               "search.space.hidden=32": "search.space.hidden", "split.seeds=[0,1,2]": "split.seeds",
               "search.select=best": "search.select",
               "tasks.0.min_samples_per_class=5": "tasks.0.min_samples_per_class",
               "controls=[empty]": "controls", "graphs.true=elsewhere.parquet": "graphs.true",
               "data.expression=other.parquet": "data.expression", "search.seed=1": "search.seed",
               "search.scheduler.kind=asha": "search.scheduler.kind",
               "data.in_memory_budget_mb=1": "data.in_memory_budget_mb",
               "search.optuna_storage=sqlite:///x.db": "search.optuna_storage",
               "search.space.depth={int: [1, 3]}": "search.space.depth"}
    for override, key in refused.items():
        assert list(refused_changes(base, dumped(path, override))) == [key], override
    both = refused_changes(base, dumped(path, "search.max_concurrent=5", "train.patience=1", "train.max_epochs=4"))
    assert list(both) == ["train.max_epochs", "train.patience"]  # the allowed change is not named
    assert may_change("resources.gpu") and not may_change("resourcesx") and "search.max_concurrent" in RESUMABLE_KEYS


def run_cli(*args) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "raygex", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def test_a_changed_config_is_refused_before_ray(tiny_demo, tmp_path):
    """An experiment folder as a sweep creates it (snapshot and raygex.json): a resume with another max_epochs is
    one line naming the key with both values, exit 2, and no Ray, lock or trial."""
    path = tiny(tiny_demo, tmp_path)
    layout = ExperimentLayout.for_config(load_config(path))
    layout.create()
    before = sorted(p.name for p in layout.root.iterdir())
    code, out, err = run_cli("search", path, "--resume", "--set", "train.max_epochs=5",
                             "--set", "search.max_concurrent=3")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"raygex: error: {layout.root}: "), err
    assert "train.max_epochs (2 -> 5)" in lines[0] and "search.max_concurrent (" not in lines[0]
    assert "raygex resume" in lines[0] and "--name" in lines[0] and "Traceback" not in err
    assert sorted(p.name for p in layout.root.iterdir()) == before  # no lock, log or study folder


@pytest.mark.slow
def test_resume_accepts_where_and_how_fast_and_refuses_what_is_trained(tiny_demo, tmp_path):
    path = tiny(tiny_demo, tmp_path)
    code, _, err = run_cli("search", path)
    assert code == 0, err[-3000:]
    layout = ExperimentLayout.open(tmp_path / "results" / "tiny")
    snapshot, journal = layout.snapshot_path.read_text(), layout.journal()

    # where and how fast: accepted (the experiment is finished: nothing runs)
    code, out, err = run_cli("search", path, "--resume", "--set", "search.max_concurrent=3",
                             "--set", "resources.cpu=0.5")
    assert code == 0, err[-3000:]
    assert "nothing to run" in out

    # what is trained: refused, nothing run or rewritten
    code, out, err = run_cli("search", path, "--resume", "--set", "train.max_epochs=3")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "train.max_epochs (2 -> 3)" in err
    code, out, err = run_cli("search", path, "--resume", "--num-samples", "3")
    assert code == 2 and "search.num_samples (2 -> 3)" in err, err

    # `raygex resume` reruns the snapshot itself
    code, out, err = run_cli("resume", layout.root)
    assert code == 0 and "nothing to run" in out, err[-3000:]
    assert layout.snapshot_path.read_text() == snapshot and layout.journal() == journal
