"""The product's point, end to end with the real training loop: on the demo cohort, a GCN on the true gene graph
beats the same GCN on the decoy graph (same degrees, random neighbours) and on no graph, with few training samples.

The demo's labels follow the mean activity of gene modules that are dense neighbourhoods of the true graph, and
each gene carries only a weak share of it (see raygex/data/demo.py); a GCN that averages neighbours there sees
the module signal, while on the decoy its averages mix unrelated genes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raygex.data.demo import make_demo_cohort
from raygex.graphs.align import align_graph
from raygex.graphs.controls import empty_control
from raygex.config.tasks import ClassifyTask
from raygex.data.tasks import build_task
from raygex.training.loop import TrialData, run_trial

N_GENES, N_SAMPLES, N_TRAIN, N_VALID = 400, 400, 90, 150  # the rest (160) is the test split
SEEDS = (0, 1, 2)  # each seed: its own cohort, split and weight initialisation
# embedding=1: the first layer averages the raw values of each gene's neighbours. A learned gene embedding
# (embedding > 1) starts from random per-gene vectors, which mix neighbours with random signs, and on this
# cohort it loses the true graph's advantage (measured, mean valid AUC over seeds 0-2: embedding 4 true 0.722,
# decoy 0.723, empty 0.721; embedding 8 / channels 16: 0.747, 0.743, 0.732). readout='mean' averages the genes
# away and sits near chance (0.53 / 0.53 / 0.55), so the seed paper's flatten readout is used. depth=1 also
# works (0.817 / 0.740 / 0.748); depth=2 reaches a little further into each module.
GCN = {"model": "gcn", "depth": 2, "channels": 8, "embedding": 1, "dropout": 0.1, "readout": "flatten",
       "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 32, "max_epochs": 30, "patience": 6}
GRAPHS = ("true", "decoy", "empty")


def valid_aucs(seed: int, models=GRAPHS) -> dict[str, tuple[float, float]]:
    """(valid AUC, test AUC) of the subtype task for each of ``models``: a graph name (GCN on that graph) or a
    baseline family ('mlp', 'lr')."""
    dataset, true, decoy = make_demo_cohort(seed, N_SAMPLES, N_GENES)
    graphs = {"true": true, "decoy": decoy, "empty": empty_control(true)}
    task = build_task(ClassifyTask(name="subtype", label="subtype"), dataset)
    split, labels = task.split(train=N_TRAIN, valid=N_VALID, seed=seed)
    out = {}
    for name in models:
        if name in graphs:
            data = TrialData.from_task(task, split, labels, align_graph(graphs[name], task.genes))
            result = run_trial({**GCN, "seed": seed}, data)
        else:
            data = TrialData.from_task(task, split, labels)
            result = run_trial({"model": name, "lr": 1e-3, "max_epochs": 30, "patience": 6, "seed": seed}, data)
        out[name] = (float(result.best_valid["auc"]), float(result.test["auc"]))
    return out


@pytest.fixture
def one_thread():
    """Tiny sparse products run ~10x slower with two contending threads than with one on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_true_graph_beats_decoy_and_empty_graph(one_thread):
    # Measured valid AUCs (true / decoy / empty; mlp, lr for reference), seeds 0-2 as run here:
    #   seed 0: 0.847 / 0.743 / 0.746 (mlp 0.760, lr 0.716): margin over the best control 0.101
    #   seed 1: 0.855 / 0.748 / 0.763 (mlp 0.790, lr 0.776): margin 0.092
    #   seed 2: 0.810 / 0.714 / 0.726 (mlp 0.740, lr 0.731): margin 0.083
    # Seeds 3-9 give margins 0.057, 0.068, 0.072, 0.073, 0.064, 0.017, 0.081 (mean over 0-9: 0.071); the true
    # graph wins on every one of the 10 seeds, and beats mlp and lr on all 10 too. The previous demo generator
    # (diffused noise, programs on hub neighbourhoods) fails here: true 0.855 / 0.799 / 0.894 against decoy
    # 0.860 / 0.814 / 0.889 and empty 0.868 / 0.815 / 0.895 on seeds 0-2.
    aucs = {seed: valid_aucs(seed) for seed in SEEDS}
    margins = []
    for seed, row in aucs.items():
        true = row["true"][0]
        best_control = max(row["decoy"][0], row["empty"][0])
        assert true > best_control + 0.03, (seed, row)
        margins.append(true - best_control)
    assert np.mean(margins) >= 0.05, (margins, aucs)
