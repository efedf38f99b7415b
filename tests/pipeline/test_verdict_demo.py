"""The verdict end to end on the demo, through `raygex search` and `raygex status --json`: the true graph helps
against its own randomisation; the decoy (itself a rewiring of the true graph) gets no such verdict. Fixed seeds
throughout (splits, initialisation, rewiring, bootstrap), so the outcome is deterministic."""

from __future__ import annotations

import json

import pytest

from raygex.data.canonical import write_dataset
from raygex.data.demo import make_demo_cohort
from raygex.graphs.store import write_graph
from tests.pipeline.test_stages import run_cli
from tests.search.conftest import write_config

pytestmark = pytest.mark.slow


def test_true_graph_helps_and_decoy_does_not(tmp_path):
    dataset, true, decoy = make_demo_cohort(0, n_samples=400, n_genes=300)
    write_dataset(dataset, tmp_path / "expression.parquet")
    write_graph(true, tmp_path / "graph_true.parquet")
    write_graph(decoy, tmp_path / "graph_decoy.parquet")
    config = write_config(tmp_path / "verdict.yaml", tmp_path,
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          split={"train": 0.5, "valid": 0.2, "test": 0.3, "seeds": [0, 1, 2, 3, 4]},
                          train={"max_epochs": 20, "patience": 5, "batch_size": 32},
                          search={"num_samples": 5, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {"model": ["gcn"], "graph": "all", "depth": 1, "channels": 8,
                                            "embedding": 1, "dropout": 0.0, "lr": 0.01}})
    code, out, err = run_cli("search", config)
    assert code == 0, err[-3000:]
    code, out, err = run_cli("status", tmp_path / "results" / "tiny", "--json")
    assert code == 0, err
    verdicts = {(v["graph"], v["control"]): v for v in json.loads(out)["tasks"]["subtype"]["verdicts"]}
    for key, v in sorted(verdicts.items()):
        print(f"\n{key}: {v['verdict']} gain {v['gain']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}] "
              f"p_adj {v['p_adjusted']:.3g} edges {v['edges_graph']:.0f}/{v['edges_control']:.0f}")
    assert set(verdicts) == {("true", "true:random"), ("true", "empty"), ("decoy", "decoy:random"),
                             ("decoy", "empty")}
    assert verdicts[("true", "true:random")]["verdict"] == "helps"
    assert verdicts[("decoy", "decoy:random")]["verdict"] in ("inconclusive", "hurts")
    code, out, err = run_cli("status", tmp_path / "results" / "tiny")
    assert code == 0 and "  true vs true:random: helps (auc +" in out, out[-2000:]
    for v in verdicts.values():
        assert v["seeds"] == 5 and v["metric"] == "auc"
        if v["control"].endswith(":random"):
            assert v["edges_control"] == v["edges_graph"] > 0
