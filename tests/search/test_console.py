"""What `raygex search` prints: progress and results, nothing of Ray's, Tune's or torch's chatter (that goes to
``<experiment>/logs/driver.log``), unless ``-v``. Run in child processes whose output is a pipe (line mode), with
W&B offline and a GCN winner, so the driver builds sparse tensors (torch warns) and logs trials to W&B."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.search.conftest import write_config

pytestmark = pytest.mark.slow

ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
       "WANDB_MODE": "offline"}
CHATTER = ("Configuration for experiment", "TensorBoard", "View detailed results", "streaming_executor",
           "Token authentication", "performance bottleneck", "Warning", "Sparse", "INFO", "WARNING")


def search(config, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raygex", "search", str(config), *extra], env=ENV,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def config(tiny_demo, tmp_path_factory):
    return write_config(tmp_path_factory.mktemp("console") / "tiny.yaml", tiny_demo, controls=[],
                        tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                        train={"max_epochs": 2, "patience": 2, "batch_size": 32},
                        search={"num_samples": 3, "max_concurrent": 2, "scheduler": {"kind": "asha",
                                                                                      "grace_period": 1},
                                "space": {"model": ["gcn"], "graph": ["true"], "depth": 1, "channels": 4,
                                          "embedding": 1, "lr": {"choice": [1e-3, 3e-3, 1e-2]}}},
                        wandb={"project": "raygex-test", "mode": "offline"})


def test_the_console_shows_progress_and_results_and_the_chatter_goes_to_the_log(config):
    done = search(config)
    assert done.returncode == 0, done.stderr
    console = done.stdout + done.stderr
    found = [word for word in CHATTER if word in console]
    assert not found, f"chatter on the console ({found}):\n{console}"
    progress = [line for line in done.stdout.splitlines() if line.startswith("  [subtype ")]
    assert len(progress) == 3 and all("ETA" in line and "| best " in line for line in progress)
    assert "leaderboard" in done.stdout and "logs/driver.log" in done.stdout
    log = (config.parent / "results" / "tiny" / "logs" / "driver.log").read_text()
    # The driver reads no expression and builds no graph tensor any more (Ray tasks do: their output is not the
    # console's either); Ray's own message from the driver is what shows the routing.
    assert "Token authentication is enabled" in log, "Ray's messages are in the log"


def test_verbose_shows_the_chatter_on_the_console(config):
    done = search(config, "--name", "loud", "-v")
    assert done.returncode == 0, done.stderr
    assert "Token authentication is enabled" in done.stdout + done.stderr


def test_python_warnings_and_ray_data_messages_raised_in_the_driver_go_to_the_log(tmp_path, capsys):
    """What the driver itself may still emit (a torch UserWarning, a Ray Data line): the log, not the console
    (``-v`` showing Ray's messages is the test above)."""
    import logging
    import warnings

    from raygex.runtime.console import chatter_to

    log = tmp_path / "logs" / "driver.log"
    with chatter_to(log, verbose=False):
        warnings.warn("Sparse CSR tensor support is in beta", UserWarning)
        logging.getLogger("ray.data").warning("streaming_executor: a Ray Data line")
    console = capsys.readouterr()
    assert "Sparse" not in console.out + console.err and "streaming_executor" not in console.out + console.err
    text = log.read_text()
    assert "Sparse CSR tensor support" in text and "UserWarning" in text and "streaming_executor" in text
