"""One driver per experiment (raygex.files.lock): two drivers starting together, a lock file caught mid-write, and the
file a killed driver left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from raygex.errors import ConfigError
from raygex.files.lock import ExperimentLock
from raygex.files.names import LOCK_FILE

CONTENDER = textwrap.dedent("""
    import os, sys, time
    from raygex.errors import ConfigError
    from raygex.files.lock import ExperimentLock
    folder, go, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while not os.path.exists(go):
        time.sleep(0.0005)
    try:
        with ExperimentLock(folder):
            print("won", flush=True)
            time.sleep(hold)
    except ConfigError as err:
        print("refused", err, flush=True)
""")


def start(folder, go, hold: float = 1.5) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CONTENDER, str(folder), str(go), str(hold)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("round_", range(5))
def test_two_drivers_starting_together_exactly_one_wins(tmp_path, round_):
    go = tmp_path / "go"
    contenders = [start(tmp_path / "exp", go) for _ in range(2)]
    time.sleep(1.0)  # both interpreters up and polling for the start signal
    go.touch()
    outcomes = [process.communicate(timeout=60)[0].split()[0] for process in contenders]
    assert sorted(outcomes) == ["refused", "won"], outcomes
    assert not (tmp_path / "exp" / LOCK_FILE).exists(), "the winner removes the lock on exit"


def test_a_lock_file_caught_mid_write_is_held_not_stale(tmp_path):
    """The owner has the lock but its record is not written yet (empty file): a second driver must refuse."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import os, sys, time
        from raygex.files.lock import ExperimentLock
        with ExperimentLock(sys.argv[1]) as lock:
            os.truncate(lock.path, 0)   # as if caught between creating the file and writing the owner
            print("held", flush=True)
            sys.stdin.read()
    """), str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert (tmp_path / LOCK_FILE).read_bytes() == b""
        with pytest.raises(ConfigError, match="experiment is in use by pid unknown"):
            with ExperimentLock(tmp_path):
                pass
    finally:
        holder.communicate("", timeout=30)
    with ExperimentLock(tmp_path) as lock:  # once the owner is gone the lock is free again
        assert lock.stale is None


def test_a_killed_drivers_lock_file_is_taken_over_and_named(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": "h", "pid": dead.pid, "started": "earlier"}))
    with ExperimentLock(tmp_path) as lock:
        assert lock.stale["pid"] == dead.pid
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_FILE).exists()
