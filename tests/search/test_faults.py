"""Faults a long sweep must survive: Ctrl-C, a trial that raises, storage that cannot be written, a writer killed
mid-file, and a second driver on the same experiment."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pandas as pd
import psutil
import pytest

from raygex.files.names import LOCK_FILE
from tests.search.conftest import write_config
from tests.search.test_resume import ENV, NUM_SAMPLES, finished_trials, kill_tree, sweep_config

pytestmark = pytest.mark.slow


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_resume_finishes(tiny_demo, tmp_path):
    config = sweep_config(tiny_demo, tmp_path)
    experiment = tmp_path / "results" / "tiny"
    driver = subprocess.Popen([sys.executable, "-m", "raygex", "search", str(config)], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and driver.poll() is None:
            children = psutil.Process(driver.pid).children(recursive=True) or children
            if finished_trials(experiment / "subtype"):
                break
            time.sleep(0.2)
        assert driver.poll() is None, "the sweep ended before it could be interrupted"
        driver.send_signal(signal.SIGINT)  # what Ctrl-C sends to the driver
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            kill_tree(driver, children)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
    assert driver.returncode == 130, err[-2000:]
    assert "raygex: interrupted:" in err and f"raygex resume {experiment}" in err
    assert not (experiment / LOCK_FILE).exists(), "the lock is released on a clean stop"
    before = finished_trials(experiment / "subtype")

    resumed = subprocess.run([sys.executable, "-m", "raygex", "resume", str(experiment)], env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
    print(f"\n[ctrl-c] trials finished before: {len(before)}; after resume: {len(board)}/{NUM_SAMPLES}")
    assert len(board) == NUM_SAMPLES and (board["status"] == "TERMINATED").all()
    assert set(before) <= set(board["trial_id"])


def test_a_trial_that_raises_is_marked_errored_with_its_reason_and_the_sweep_goes_on(tiny_demo, tmp_path,
                                                                                      run_cli):
    import ray

    # lr 1e20 makes the loss NaN at the first step: the trial raises, the others are unaffected.
    config = write_config(tmp_path / "nan.yaml", tiny_demo,
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          train={"max_epochs": 2, "patience": 2, "batch_size": 32},
                          search={"num_samples": 4, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {"model": ["mlp"], "hidden": {"choice": [16, 32]},
                                            "lr": {"choice": [1.0e-3, 1.0e+20]}}})  # 4 distinct configurations
    code, out, err = run_cli("search", config)
    ray.shutdown()
    assert code == 0, err
    board = pd.read_parquet(tmp_path / "results" / "tiny" / "subtype" / "leaderboard.parquet")
    errored = board[board["status"] == "ERROR"]
    print(f"\n[trial error] {len(errored)} of {len(board)} trials errored: {errored['error'].tolist()}")
    assert len(board) == 4
    assert len(errored) >= 1 and errored["error"].str.contains("loss became nan").all()
    assert (board.loc[board["status"] == "TERMINATED", "config/lr"].astype(float) < 1).all()
    assert board.loc[board["winner"], "status"].tolist() == ["TERMINATED"], "an errored trial never wins"


def test_unwritable_storage_fails_before_any_trial(tiny_demo, tmp_path, run_cli):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the storage folder should be")
    config = write_config(tmp_path / "tiny.yaml", tiny_demo, storage=str(blocker / "results"))
    code, _, err = run_cli("search", config)
    assert code == 2
    assert err.startswith("raygex: error: ") and "storage is not writable" in err and str(blocker) in err


def test_a_writer_killed_mid_file_leaves_no_file_at_the_final_path(tmp_path):
    final = tmp_path / "leaderboard.parquet"
    writer = textwrap.dedent(f"""
        import sys, time
        from raygex.files.fileio import atomic_path
        with atomic_path({str(final)!r}) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"x" * 1_000_000)
                handle.flush()
                print("writing", flush=True)
                time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not final.exists()
    leftovers = list(tmp_path.glob(".leaderboard.parquet.*.tmp"))
    assert leftovers, "the partial file stays under a temporary name only"


def test_a_second_driver_on_a_live_experiment_refuses_and_a_stale_lock_is_taken_over(tiny_demo, tmp_path,
                                                                                     run_cli):
    import ray

    config = write_config(tmp_path / "tiny.yaml", tiny_demo,
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          train={"max_epochs": 1, "patience": 1, "batch_size": 32},
                          search={"num_samples": 2, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": {"model": ["lr"], "lr": 1.0e-3}})
    experiment = tmp_path / "results" / "tiny"
    experiment.mkdir(parents=True)
    lock = experiment / LOCK_FILE
    # A live owner: another driver process on this host, holding the lock.
    holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom raygex.files.lock import ExperimentLock\n"
                               "with ExperimentLock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()",
                               str(experiment)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_cli("search", config, "--resume")
    finally:
        holder.communicate("", timeout=30)
    assert code == 2 and f"in use by pid {holder.pid} on this host" in err
    # A stale owner: a pid that no longer exists.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "started": "earlier"}))
    code, out, err = run_cli("search", config, "--resume")
    ray.shutdown()
    assert code == 0, err
    assert f"took over the lock of a driver that is gone (pid {dead.pid})" in out
    assert not lock.exists()
    # The experiment now exists: a plain `search` refuses to start it again.
    code, _, err = run_cli("search", config)
    assert code == 2 and "already exists" in err and "raygex resume" in err
