"""raygex's Adam against torch.optim.Adam: the same parameters bit for bit, and checkpoints that move both ways."""

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from raygex.graphs.align import AlignedGraph
from raygex.training.optimiser import Adam
from raygex.training.loop import build_model

N_GENES = 24


def models():
    ring = np.array([[i, (i + 1) % N_GENES] for i in range(N_GENES)] + [[(i + 1) % N_GENES, i] for i in range(N_GENES)])
    graph = AlignedGraph(N_GENES, ring.T.astype(np.int64), None, [f"G{i}" for i in range(N_GENES)], "ring")
    return {"mlp": lambda: build_model({"model": "mlp", "hidden": 16, "dropout": 0.3}, N_GENES, 3, None),
            "gcn": lambda: build_model({"model": "gcn", "depth": 2, "channels": 4, "embedding": 3}, N_GENES, 3, graph),
            "lr": lambda: build_model({"model": "lr"}, N_GENES, 3, None)}


def train(model, optimiser, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, N_GENES, generator=generator)
        y = torch.randint(0, 3, (8,), generator=generator)
        optimiser.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()


def twins(family: str):
    torch.manual_seed(0)
    ours = models()[family]()
    theirs = copy.deepcopy(ours)
    return ours, theirs


def assert_same_parameters(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("family", ["mlp", "gcn", "lr"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_steps_equal_torch_adams_bit_for_bit(family, weight_decay):
    ours, theirs = twins(family)
    mine = Adam(ours.parameters(), lr=3e-3, weight_decay=weight_decay)
    reference = torch.optim.Adam(theirs.parameters(), lr=3e-3, weight_decay=weight_decay)
    for chunk in range(4):  # dropout draws from the global generator: both models see the same draws
        torch.manual_seed(100 + chunk)
        train(ours, mine, 10, seed=chunk)
        torch.manual_seed(100 + chunk)
        train(theirs, reference, 10, seed=chunk)
        assert_same_parameters(ours, theirs)
    ours_state, their_state = mine.state_dict(), reference.state_dict()
    assert ours_state["param_groups"] == their_state["param_groups"]
    assert ours_state["state"].keys() == their_state["state"].keys()
    for index, state in their_state["state"].items():
        for key, value in state.items():
            assert torch.equal(ours_state["state"][index][key], value), (index, key)
            assert ours_state["state"][index][key].dtype == value.dtype


@pytest.mark.parametrize("direction", ["torch to raygex", "raygex to torch"])
def test_a_saved_state_continues_in_the_other(direction):
    ours, theirs = twins("gcn")
    mine = Adam(ours.parameters(), lr=1e-2, weight_decay=1e-3)
    reference = torch.optim.Adam(theirs.parameters(), lr=1e-2, weight_decay=1e-3)
    torch.manual_seed(1)
    train(ours, mine, 7, seed=0)
    torch.manual_seed(1)
    train(theirs, reference, 7, seed=0)
    source, target = (reference, mine) if direction == "torch to raygex" else (mine, reference)
    continued = models()["gcn"]()
    continued.load_state_dict((theirs if source is reference else ours).state_dict())
    saved = copy.deepcopy(source.state_dict())
    resumed = (Adam(continued.parameters(), lr=0.5) if target is mine
               else torch.optim.Adam(continued.parameters(), lr=0.5))  # lr comes back from the saved state
    resumed.load_state_dict(saved)
    for model, optimiser in ((ours, mine), (continued, resumed)):
        torch.manual_seed(2)
        train(model, optimiser, 5, seed=1)
    assert_same_parameters(continued, ours)


def test_state_dict_is_a_copy_and_bad_states_are_refused():
    ours, _ = twins("mlp")
    mine = Adam(ours.parameters(), lr=1e-2)
    train(ours, mine, 2, seed=0)
    saved = mine.state_dict()
    train(ours, mine, 1, seed=1)
    assert not torch.equal(saved["state"][0]["exp_avg"], mine.state[0]["exp_avg"])
    assert float(saved["state"][0]["step"]) == 2.0
    other = Adam(list(ours.parameters())[:-1], lr=1e-2)
    with pytest.raises(ValueError, match="for 6 parameters in 1 group, but this model has 5 in one"):
        other.load_state_dict(saved)
    saved["param_groups"][0]["amsgrad"] = True
    with pytest.raises(ValueError, match="amsgrad"):
        Adam(ours.parameters(), lr=1e-2).load_state_dict(saved)


def test_training_a_trial_does_not_import_dynamo_or_scikit_learn():
    """What raygex's Adam and numpy metrics are for: a fresh trial process never imports torch._dynamo (~1.5 s)
    or scikit-learn (~1 s)."""
    code = """
import sys
import numpy as np
from raygex.training.loop import TrialData, run_trial
rng = np.random.default_rng(0)
x = rng.normal(size=(60, 12)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64)
data = TrialData(x[:40], y[:40], x[40:50], y[40:50], x[50:], y[50:], [f"G{i}" for i in range(12)], ["a", "b"])
run_trial({"model": "mlp", "hidden": 8, "max_epochs": 2, "patience": 2, "seed": 0}, data)
print(sorted(m for m in ("torch._dynamo", "sklearn", "scipy.stats") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
