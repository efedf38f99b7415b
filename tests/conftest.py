"""Shared test helpers: running the CLI as a user would, and locating ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# W&B costs a logging actor per trial: off unless a test turns it on (tests/search/test_wandb.py does).
os.environ["WANDB_MODE"] = "disabled"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_ray_left_behind():
    """Each test starts without a RAY_ADDRESS left by an earlier one.

    ``ray.init(address=...)`` (simulated clusters) exports RAY_ADDRESS; a later sweep would then try to join a
    cluster that no longer exists. (Connections themselves are closed by the tests that open them.)
    """
    address = os.environ.get("RAY_ADDRESS")
    yield
    if address is None:
        os.environ.pop("RAY_ADDRESS", None)
    else:
        os.environ["RAY_ADDRESS"] = address


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


@pytest.fixture
def raygex_messages():
    """The messages raygex logs (its ``raygex`` logger's records, info and up) while the test runs."""
    import logging

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger, handler = logging.getLogger("raygex"), Collect(logging.INFO)
    saved = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
