"""resources.memory_mb: auto — each configuration's memory estimate, checked against the peak its training
measured, and what Ray is asked for."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from raygex.search.memory_estimate import (MARGIN, STEP_MB, TRIAL_MB, WORKER_MB, StudyShape, reservation_mb,
                                          trial_memory_mb)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory from /proc")


def test_every_configuration_measured_stays_below_its_estimate_and_the_estimate_is_not_far_above():
    from raygex.bench.memory_estimates import CONFIGS, run_estimates_benchmark

    demo = [c for c in CONFIGS if c[0] == "demo"]
    demo = [demo[0], demo[1], demo[3]]  # logistic regression, an MLP, a deep and wide GCN
    for row in run_estimates_benchmark(demo, epochs=1):
        measured, estimated = row["measured_trial_mb"], row["estimated_trial_mb"]
        assert measured <= estimated, row  # Ray reserves at least what the trial takes
        assert estimated <= 3 * measured + 100, row  # and not so much that nodes sit idle


def _aligned_graph(n_genes: int):
    from raygex.data.demo import make_demo_cohort
    from raygex.graphs.align import align_graph

    dataset, true, _ = make_demo_cohort(0, n_samples=40, n_genes=n_genes)
    return align_graph(true, dataset.genes)


def test_the_estimate_grows_with_the_network_and_the_genes():
    small = StudyShape(2000, 3, {"train": 360, "valid": 120, "test": 120})
    large = StudyShape(16_000, 3, {"train": 360, "valid": 120, "test": 120})
    graph = _aligned_graph(2000)
    lr = trial_memory_mb({"model": "lr", "C": 1.0}, small)
    gcn = {"model": "gcn", "depth": 3, "channels": 32, "embedding": 1, "batch_size": 32}
    assert trial_memory_mb({**gcn, "channels": 8}, small, graph) < trial_memory_mb(gcn, small, graph)
    assert trial_memory_mb({"model": "mlp", "hidden": 256}, small) < trial_memory_mb({"model": "mlp", "hidden": 256},
                                                                                     large)
    rows = {"train": 360, "valid": 120, "test": 120}
    one, sequential, batched = (trial_memory_mb(gcn, StudyShape(2000, 3, rows, folds=k, batched_folds=b), graph)
                                for k, b in ((1, False), (5, False), (5, True)))
    fixed = WORKER_MB + MARGIN * TRIAL_MB
    assert one < sequential < batched  # k networks kept; k working sets only when they train at once
    assert batched - fixed == pytest.approx(5 * (one - fixed), rel=0.05)
    streamed = StudyShape(2000, 3, rows, streaming=True)  # logistic regression by minibatch Adam: no float64 rows
    assert trial_memory_mb({"model": "lr", "C": 1.0}, streamed) < lr


def test_a_reservation_is_whole_steps_and_no_more_than_the_largest_node():
    shape = StudyShape(16_000, 3, {"train": 360, "valid": 120, "test": 120})
    mlp = {"model": "mlp", "hidden": 512, "mlp_layers": 2}
    mb = reservation_mb(mlp, shape)
    assert mb % STEP_MB == 0 and mb >= trial_memory_mb(mlp, shape)
    assert reservation_mb(mlp, shape, largest_node_mb=300.0) == 300.0  # else it would wait for a node forever


def test_tune_is_asked_for_each_configurations_own_memory(tiny_demo):
    from raygex.config import ExperimentConfig
    from raygex.search.payload import TrialPayload, TrialSettings
    from raygex.search.tuner import trial_resources

    def config(memory_mb):
        return ExperimentConfig.model_validate({
            "name": "x", "data": {"expression": str(tiny_demo / "expression.parquet")},
            "tasks": [{"name": "t", "kind": "classify", "label": "subtype"}], "resources": {"memory_mb": memory_mb}})

    import ray

    started = not ray.is_initialized()  # the request holds the study's graphs in Ray's store: Ray starts
    shape = StudyShape(16_000, 3, {"train": 360, "valid": 120, "test": 120})
    payload = TrialPayload(data=None, settings=TrialSettings(train={"batch_size": 32}), shape=shape)
    assert trial_resources(config(None), payload) == {"cpu": 1.0, "gpu": 0.0}
    assert trial_resources(config(700), payload) == {"cpu": 1.0, "gpu": 0.0, "memory": 700 * 2**20}
    request = trial_resources(config("auto"), payload)
    small, large = (request({"model": "mlp", "hidden": h}).required_resources["memory"] for h in (16, 4096))
    assert small < large
    assert large == reservation_mb({"batch_size": 32, "model": "mlp", "hidden": 4096}, shape) * 2**20
    assert np.isclose(request({"model": "lr", "C": 1.0}).required_resources["CPU"], 1.0)
    if started:
        ray.shutdown()


class _Expand(__import__("torch").nn.Module):
    """A family raygex has no arithmetic for: each gene's value spread over ``width`` channels by plain tensor
    operations (few parameters, large intermediate results: what a hook on modules' outputs would miss)."""

    def __init__(self, n_genes: int, n_classes: int, width: int):
        import torch

        super().__init__()
        self.spread = torch.nn.Parameter(torch.randn(n_genes, width) * 0.1)
        self.scale = torch.nn.Parameter(torch.ones(width))
        self.out = torch.nn.Linear(width, n_classes)

    @classmethod
    def from_hparams(cls, hparams, n_genes, n_classes, graph):
        return cls(n_genes, n_classes, int(hparams["width"]))

    def forward(self, x):
        h = (x.unsqueeze(-1) * self.spread).relu()
        return self.out((h * self.scale).relu().mean(dim=1))


def _expand_trial_growth() -> dict:
    """In a fresh process: register the family, estimate a trial of it, then measure the trial's peak growth (a
    process that ran other tests first holds freed memory a trial would reuse unseen)."""
    from raygex.bench.folds import _status_kib
    from raygex.data.trial_data import TrialData
    from raygex.models import registry
    from raygex.training.loop import run_trial

    registry.register_model("expand_test", hyperparameters={"width": 64})(_Expand)
    rng = np.random.default_rng(0)
    genes = 2000
    x = rng.standard_normal((320, genes)).astype(np.float32)
    y = rng.integers(0, 3, 320)
    data = TrialData(x[:200], y[:200], x[200:260], y[200:260], x[260:], y[260:], [f"G{i}" for i in range(genes)],
                     ["a", "b", "c"])
    hparams = {"model": "expand_test", "width": 64, "batch_size": 32, "max_epochs": 1, "patience": 1}
    estimated = trial_memory_mb(hparams, StudyShape(genes, 3, {"train": 200, "valid": 60, "test": 60})) - WORKER_MB
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS:")
    run_trial(hparams, data)
    return {"measured": (_status_kib("VmHWM:") - before) / 1024, "estimated": estimated}


def test_a_family_registered_elsewhere_is_estimated_from_what_autograd_keeps_of_a_step():
    import json
    import subprocess
    from pathlib import Path

    code = ("import json; from tests.search.test_memory_estimate import _expand_trial_growth; "
            "print(json.dumps(_expand_trial_growth()))")
    child = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    measured, estimated = figures["measured"], figures["estimated"]
    print(f"expand family: measured {measured:.0f} MB, estimated {estimated:.0f} MB")
    assert measured > 50, "the test needs a working set that matters"
    assert measured <= estimated <= 3 * measured + 100, (measured, estimated)


class _Mixing(__import__("torch").nn.Module):
    """Genes mixed by a dense (genes × genes) buffer that autograd saves whatever the batch: not a per-row cost."""

    def __init__(self, n_genes: int, n_classes: int, fails_below: int = 0):
        import torch

        super().__init__()
        self.register_buffer("mixing", torch.eye(n_genes))
        self.out = torch.nn.Linear(n_genes, n_classes)
        self.fails_below = fails_below

    @classmethod
    def from_hparams(cls, hparams, n_genes, n_classes, graph):
        return cls(n_genes, n_classes, int(hparams["fails_below"]))

    def forward(self, x):
        if len(x) < self.fails_below:
            raise RuntimeError(f"needs at least {self.fails_below} rows")
        return self.out(x @ self.mixing)


def test_what_does_not_grow_with_the_rows_is_not_counted_per_row_and_a_family_that_cannot_be_measured_warns(caplog):
    from raygex.models import registry
    from raygex.search.memory_estimate import _saved_floats_per_row

    registry.register_model("mixing_test", hyperparameters={"fails_below": 0})(_Mixing)
    try:
        shape = StudyShape(3000, 3, {"train": 200, "valid": 60, "test": 60})
        per_row = _saved_floats_per_row({"model": "mixing_test", "fails_below": 0}, shape, None)
        assert per_row == pytest.approx(3000, rel=0.01), "the input row is saved; the 3000 × 3000 buffer is not"
        with caplog.at_level("WARNING"):
            estimate = trial_memory_mb({"model": "mixing_test", "fails_below": 64}, shape)
        assert estimate > WORKER_MB and "could not be measured" in caplog.text and "mixing_test" in caplog.text
    finally:
        for table in (registry.FAMILIES, registry.MODELS, registry.BUILDERS):
            table.pop("mixing_test", None)
