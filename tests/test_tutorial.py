"""The tutorial notebook (docs/tutorial.ipynb) runs top to bottom, as a user runs it, so it cannot rot: a search on
the demo through the Python API, the leaderboard, the verdicts, a per-graph figure, the exported model's
predictions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_the_tutorial_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    (tmp_path / "configs").symlink_to(REPO / "configs")  # the notebook runs from a checkout's root
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # `!raygex ...`
    monkeypatch.setenv("WANDB_MODE", "offline")
    notebook = nbformat.read(REPO / "docs" / "tutorial.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = {i: cell.get("outputs", []) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for cells in outputs.values() for o in cells)
    assert "Experiment(" in text and any(v in text for v in ("helps", "hurts", "inconclusive")), text[-3000:]
    assert any("image/png" in o.get("data", {}) for cells in outputs.values() for o in cells), "the figure"
    assert (tmp_path / "tutorial-run" / "predictions.csv").stat().st_size > 1000
    assert (tmp_path / "tutorial-run" / "results" / "demo" / "report.html").exists()
