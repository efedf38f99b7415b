"""Exported files give the in-memory model's probabilities, also in a Python without raygex or PyG."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from raygex.export.winner import write_model
from tests.export.conftest import trained

FAMILIES = {
    "gcn": {"model": "gcn", "graph": "true", "depth": 2, "channels": 8, "embedding": 2},
    "gcn_coarsened": {"model": "gcn", "graph": "true", "depth": 2, "channels": 8, "embedding": 2, "coarsen": True},
    "mlp": {"model": "mlp", "hidden": 16},
    "lr": {"model": "lr"},
}

FRESH_PYTHON = textwrap.dedent("""
    import importlib.abc, json, sys
    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("raygex", "torch_geometric"):
                raise ImportError(f"{name} must not be needed to run an exported model")
    sys.meta_path.insert(0, Refuse())
    import numpy as np, torch
    model_path, x_path, out_path = sys.argv[1:4]
    module = torch.jit.load(model_path)
    with torch.no_grad():
        proba = module(torch.from_numpy(np.load(x_path))).numpy()
    np.save(out_path, proba)
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("raygex", "torch_geometric"))))
""")


def in_memory_proba(result, data) -> np.ndarray:
    standard = data.standardised()
    x = (data.x_test - standard.mean) / standard.std
    result.model.eval()
    with torch.no_grad():
        return torch.softmax(result.model(torch.from_numpy(x.astype(np.float32))), dim=1).numpy()


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("task", ["subtype", "sgi"])
def test_exported_probabilities_equal_the_in_memory_model(export_demo, tmp_path, family, task):
    config_path, _ = export_demo
    config, data, result, hparams = trained(config_path, task, FAMILIES[family])
    summary = write_model(config, task, result.model, data, hparams, tmp_path / f"{task}.pt")
    expected = in_memory_proba(result, data)

    import raygex

    model = raygex.load_model(summary["model"])
    assert model.classes == list(data.classes) and model.genes == list(data.genes)
    np.testing.assert_allclose(model.predict_proba(data.x_test), expected, atol=1e-5, rtol=0)
    # The metadata's test metric is computed through the exported module: it is the trial's own test metric.
    assert model.metadata["metrics"]["test"]["auc"] == pytest.approx(result.test["auc"], abs=1e-6)
    if task == "sgi":
        assert model.metadata["masked_genes"] == ["G0001"]

    np.save(tmp_path / "x.npy", data.x_test.astype(np.float32))
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PYTHON)
    run = subprocess.run([sys.executable, "-I", str(script), summary["model"], str(tmp_path / "x.npy"),
                          str(tmp_path / "p.npy")], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-5, rtol=0)

    if summary["pt2"]:  # torch.export twin: same probabilities
        program = torch.export.load(summary["pt2"])
        with torch.no_grad():
            got = program.module()(torch.from_numpy(data.x_test.astype(np.float32))).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    elif family in ("mlp", "lr"):
        pytest.fail(f"dense models must export with torch.export too: {summary['pt2_error']}")
