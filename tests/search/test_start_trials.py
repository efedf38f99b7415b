"""`search.start_trials`: what a sweep tries before TPE samples. `families` spends one start trial per model family
instead of one per choice, and the report and the verdict still hold every baseline, graph and control (the
graphs' and controls' figures from the equal-budget graph swap). The sweep runs ASHA with rungs per family and
`search.family_budget: equal` (as many trials per family)."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd

import raygex

from raygex.search.space import parse_space, start_points
from tests.pipeline.test_stages import run_cli
from tests.search.conftest import write_config

SPACE = {"model": ["gcn", "mlp", "lr"], "graph": "all"}
GRAPHS = ["true", "decoy", "true:random", "decoy:random", "empty"]


def test_start_points_one_per_choice_or_one_per_family():
    parsed = parse_space(SPACE, GRAPHS)
    assert start_points(parsed, "choices") == [{"model": "mlp"}, {"model": "lr"}] + [
        {"model": "gcn", "graph": g} for g in GRAPHS]
    assert start_points(parsed, "families") == [{"model": "mlp"}, {"model": "lr"}, {"model": "gcn", "graph": "true"}]


def test_a_sweep_started_by_family_keeps_every_baseline_graph_and_control_in_the_verdict(tiny_demo, tmp_path):
    config = write_config(
        tmp_path / "families.yaml", tiny_demo, graphs={"true": str(tiny_demo / "graph_true.parquet")}, tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
        train={"max_epochs": 2, "patience": 2, "batch_size": 32}, resources={"cpu": 1, "gpu": 0, "memory_mb": 300},
        search={"num_samples": 6, "max_concurrent": 2, "start_trials": "families", "family_budget": "equal",
                "scheduler": {"kind": "asha", "grace_period": 1, "rungs": "family"},
                "space": {**SPACE, "depth": 1, "channels": 4, "embedding": 1, "hidden": 16,
                          "dropout": {"float": [0.0, 0.3]}, "lr": 0.01, "C": {"loguniform": [0.01, 100]}}})
    code, out, err = run_cli("search", config)
    assert code == 0, err[-3000:]
    experiment = tmp_path / "results" / "tiny"
    trials = [t.params for t in raygex.open(experiment).optuna_study("subtype").trials if t.state.name == "COMPLETE"]
    started = sorted(f"{p['model']}/{p['graph']}" if p["model"] == "gcn" else p["model"] for p in trials[:3])
    assert started == ["gcn/true", "lr", "mlp"]  # one trial per family, the GCN's on the first graph; no control
    assert Counter(p["model"] for p in trials) == {"gcn": 2, "mlp": 2, "lr": 2}  # then as many trials per family
    board = raygex.open(experiment).leaderboard("subtype")
    assert (board["reserved_memory_mb"] == 300).all(), board["reserved_memory_mb"]  # a fixed memory_mb, reserved
    code, out, err = run_cli("status", experiment, "--json")
    assert code == 0, err[-2000:]
    verdicts = {(v["graph"], v["control"]) for v in json.loads(out)["tasks"]["subtype"]["verdicts"]}
    assert verdicts == {("true", "true:random"), ("true", "empty")}
    seeds = pd.read_parquet(experiment / "subtype" / "seeds.parquet")
    assert {"mlp", "lr", "gcn/true", "gcn/true:random", "gcn/empty"} <= set(seeds["choice"]), sorted(set(seeds["choice"]))
    report = (experiment / "report.html").read_text()
    assert "true:random" in report and "empty" in report and "mlp" in report
