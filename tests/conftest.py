"""Shared test helpers: running the CLI as a user would, and locating ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# W&B costs a logging actor per trial: off unless a test turns it on (tests/search/test_wandb.py does).
os.environ["WANDB_MODE"] = "disabled"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real data in ../shared/data; tests using it skip when it is absent (a user's clone has none)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def run_cli(capsys):
    """Run ``raygex ARGS...`` in-process; returns (exit code, stdout, stderr)."""
    from raygex.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    return run
