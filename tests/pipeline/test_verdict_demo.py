"""The verdict end to end on the demo, through `raygex search` and `raygex status --json`, on both of the demo
config's tasks (the subtype classification and the single-gene task on G0001 over all genes, as in
`configs/demo.yaml`): the true graph helps against its own randomisation and beats the decoy and its random
control by a margin; the decoy (itself a rewiring of the true graph) gets no such verdict. Fixed seeds throughout
(splits, initialisation, rewiring, bootstrap), so the outcome is deterministic."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from raygex.data.canonical import write_dataset
from raygex.data.demo import make_demo_cohort
from raygex.graphs.store import write_graph
from tests.pipeline.test_stages import run_cli
from tests.search.conftest import write_config

pytestmark = pytest.mark.slow


MARGIN = 0.02  # mean test-AUC gain of the true graph over the decoy and over its random control, five seeds
GCN = {"model": ["gcn"], "graph": "all", "depth": 1, "embedding": 1, "dropout": 0.0}
# task spec, demo cohort size (samples, genes), split, fixed GCN settings: the subtype task on a small cohort; the
# single-gene task as configs/demo.yaml has it (all 2,000 genes as inputs, 60/20/20 split).
STUDIES = {
    "subtype": ({"name": "subtype", "kind": "classify", "label": "subtype"}, (400, 300),
                {"train": 0.5, "valid": 0.2, "test": 0.3}, {"channels": 8, "lr": 0.01}, {"max_epochs": 20, "patience": 5}),
    "sgi_G0001": ({"name": "sgi_G0001", "kind": "single_gene", "gene": "G0001", "inputs": {"mode": "all"}},
                  (600, 2000), {"train": 0.6, "valid": 0.2, "test": 0.2}, {"channels": 16, "lr": 0.003},
                  {"max_epochs": 30, "patience": 6}),
}


@pytest.mark.parametrize("task", sorted(STUDIES))
def test_true_graph_helps_and_decoy_does_not(tmp_path, task):
    spec, (n_samples, n_genes), split, gcn, train = STUDIES[task]
    dataset, true, decoy = make_demo_cohort(0, n_samples=n_samples, n_genes=n_genes)
    write_dataset(dataset, tmp_path / "expression.parquet")
    write_graph(true, tmp_path / "graph_true.parquet")
    write_graph(decoy, tmp_path / "graph_decoy.parquet")
    config = write_config(tmp_path / "verdict.yaml", tmp_path,
                          tasks=[spec], split={**split, "seeds": [0, 1, 2, 3, 4]},
                          train={**train, "batch_size": 32},
                          search={"num_samples": 5, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {**GCN, **gcn}})
    code, out, err = run_cli("search", config)
    assert code == 0, err[-3000:]
    code, out, err = run_cli("status", tmp_path / "results" / "tiny", "--json")
    assert code == 0, err
    verdicts = {(v["graph"], v["control"]): v for v in json.loads(out)["tasks"][task]["verdicts"]}
    for key, v in sorted(verdicts.items()):
        print(f"\n{key}: {v['verdict']} gain {v['gain']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}] "
              f"p_adj {v['p_adjusted']:.3g} edges {v['edges_graph']:.0f}/{v['edges_control']:.0f}")
    assert set(verdicts) == {("true", "true:random"), ("true", "empty"), ("decoy", "decoy:random"),
                             ("decoy", "empty")}
    assert verdicts[("true", "true:random")]["verdict"] == "helps"
    assert verdicts[("decoy", "decoy:random")]["verdict"] in ("inconclusive", "hurts")
    swap = pd.read_parquet(tmp_path / "results" / "tiny" / task / "swap.parquet")
    mean_auc = swap.groupby("graph")["test_auc"].mean()
    print(f"[{task}] mean test AUC over seeds: " + ", ".join(f"{g} {a:.3f}" for g, a in mean_auc.items()))
    assert mean_auc["true"] >= mean_auc["decoy"] + MARGIN
    assert mean_auc["true"] >= mean_auc["true:random"] + MARGIN
    code, out, err = run_cli("status", tmp_path / "results" / "tiny")
    assert code == 0, err[-2000:]
    assert "  true vs true:random: helps (auc +" in out, out[-2000:]
    for v in verdicts.values():
        assert v["seeds"] == 5 and v["metric"] == "auc"
        if v["control"].endswith(":random"):
            assert v["edges_control"] == v["edges_graph"] > 0
