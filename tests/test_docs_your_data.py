"""The "your own data" guide (docs/your-data.md), run as written: its first command block, line by line, on real
TCGA expression in Xena's layout with its clinical matrix and the real GeneMANIA graph, named as the guide names
them; then the figures the guide quotes are the ones the commands print."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def guide_commands(block: int = 0) -> list[str]:
    """The ``raygex`` lines of the guide's ``block``-th bash block."""
    text = (REPO / "docs" / "your-data.md").read_text()
    code = text.split("```bash")[block + 1].split("```", 1)[0]
    return [line for line in code.strip().splitlines() if line.startswith("raygex ")]


def test_the_guide_commands_run_as_written(shared_data, tmp_path):
    files = {"HiSeqV2.gz": shared_data / "tcga" / "HiSeqV2_6cohorts.gz",
             "brca_pam50.tsv.gz": shared_data / "expression" / "brca_pam50.tsv.gz",
             "pbmc68k_reduced.h5ad": shared_data / "expression" / "pbmc68k_reduced.h5ad",
             "clinicalMatrix": shared_data / "tcga" / "6cohorts_clinicalMatrix",
             "genemania.adjlist.gz": shared_data / "graphs" / "genemania.adjlist.gz"}
    for name, source in files.items():
        (tmp_path / name).symlink_to(source)
    env = {**os.environ, "WANDB_MODE": "offline",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    printed = {}
    commands = guide_commands()
    assert [c.split()[1] for c in commands] == ["data", "graph", "graph", "config", "search", "status"]
    for command in commands:
        done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        printed[command.split()[1] + " " + command.split()[2]] = done.stdout
    guide = (REPO / "docs" / "your-data.md").read_text()
    assert "20119 of 20530 mapped to approved symbols" in printed["data import"] and \
        "20119 of 20530 mapped to approved symbols" in guide
    assert "253323" in printed["graph coverage"] and "253,323" in guide
    status = printed["status results/tcga"]
    assert "== sample_type:" in status and "genemania vs genemania:random:" in status
    assert "genemania vs empty:" in status
    assert (tmp_path / "results" / "tcga" / "models" / "sample_type.pt").exists()
    for command in guide_commands(1):  # other formats: a samples x genes table, an AnnData file
        done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        shown = done.stdout.splitlines()[1].strip()  # the samples/genes line the guide quotes
        assert shown in guide, (command, shown)
