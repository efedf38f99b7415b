"""Where an export whose checkpoint is gone trains the trial again: the trial's kind of device when this process
has it, else the CPU, and the provenance says so when they differ."""

from __future__ import annotations

import pytest
import torch

from raygex.export.winner import retrain_device


def test_a_cpu_trial_retrains_on_the_cpu():
    assert retrain_device("cpu") == "cpu"
    assert retrain_device(None) == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the CUDA case is the next test's")
def test_a_cuda_trial_retrains_on_the_cpu_where_there_is_no_cuda():
    assert retrain_device("cuda:0") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_trial_retrains_on_cuda():
    assert retrain_device("cuda:0") == "cuda"


class _NoCheckpoint:
    """An experiment folder whose trial kept no checkpoint (the case that retrains)."""

    def latest_checkpoint(self, folder):
        return None


def _data():
    import numpy as np

    from raygex.data.trial_data import TrialData

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return TrialData(x[:40], y[:40], x[40:50], y[40:50], x[50:], y[50:], [f"G{i}" for i in range(8)],
                     ["a", "b"]).standardised()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the trial's device is available")
def test_the_provenance_says_a_cuda_trial_was_retrained_on_the_cpu(tmp_path):
    from raygex.export.winner import restore_network
    from raygex.training.loop import with_defaults

    hparams = with_defaults({"model": "mlp", "hidden": 8, "max_epochs": 2, "seed": 0})
    network, how = restore_network(_NoCheckpoint(), hparams, _data(), tmp_path, 2, None, trial_device="cuda:0")
    assert how == "retrained on cpu (the trial ran on cuda:0)"
    assert all(p.device.type == "cpu" for p in network.parameters())
    _, how = restore_network(_NoCheckpoint(), hparams, _data(), tmp_path, 2, None, trial_device="cpu")
    assert how == "retrained"
