"""The experiment lock on an object store (a lease object; see raygex.files.lock.LeaseLock), against the moto server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from raygex.errors import ConfigError
from raygex.files.lock import LOCK_FILE, LeaseLock
from raygex.files.storage import open_remote


@pytest.fixture
def remote(bucket):
    return open_remote(f"s3://{bucket}/results/exp")


def test_a_second_owner_is_refused_and_takes_the_lease_once_it_is_released(remote):
    with LeaseLock(remote, settle=0.1) as first:
        assert first.stale is None
        with pytest.raises(ConfigError, match="in use by pid .* on this host"):
            with LeaseLock(remote, settle=0.1):
                pass
        assert json.loads(remote.read_bytes(LOCK_FILE))["token"] == first._token, "the refused one wrote nothing"
    assert remote.read_bytes(LOCK_FILE) is None, "released: the lease object is deleted"
    with LeaseLock(remote, settle=0.1) as second:
        assert second.stale is None


def test_of_two_owners_racing_exactly_one_holds_the_lease(remote):
    """Both read "free", both write, both read back after the settle delay: the store kept one write."""
    barrier, outcome = threading.Barrier(2), []

    def contender():
        lock = LeaseLock(remote, settle=1.0)
        barrier.wait()
        try:
            with lock:
                outcome.append("held")
                time.sleep(1.5)  # holds past the other's read-back
        except ConfigError:
            outcome.append("refused")

    threads = [threading.Thread(target=contender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcome) == ["held", "refused"]


def test_an_expired_lease_of_another_host_is_taken_over(remote):
    remote.write_bytes(LOCK_FILE, json.dumps({"token": "old", "host": "elsewhere", "pid": 4242,
                                              "started": "earlier", "expires": time.time() - 1}).encode())
    with LeaseLock(remote, settle=0.1) as lock:
        assert lock.stale["host"] == "elsewhere"


def test_a_live_lease_of_another_host_is_respected_until_it_expires(remote):
    remote.write_bytes(LOCK_FILE, json.dumps({"token": "other", "host": "elsewhere", "pid": 4242,
                                              "started": "earlier", "expires": time.time() + 1.5}).encode())
    with pytest.raises(ConfigError, match="in use by pid 4242 on host elsewhere"):
        with LeaseLock(remote, settle=0.1):
            pass
    time.sleep(1.6)
    with LeaseLock(remote, settle=0.1) as lock:
        assert lock.stale["token"] == "other"


def test_a_killed_driver_on_this_host_is_taken_over_at_once(remote):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    remote.write_bytes(LOCK_FILE, json.dumps({"token": "dead", "host": socket.gethostname(), "pid": dead.pid,
                                              "started": "earlier", "expires": time.time() + 600}).encode())
    with LeaseLock(remote, settle=0.1) as lock:
        assert lock.stale["pid"] == dead.pid


def test_the_holder_renews_its_lease(remote):
    with LeaseLock(remote, lease=0.9, settle=0.1):
        first = json.loads(remote.read_bytes(LOCK_FILE))["expires"]
        time.sleep(1.2)  # past the first lease: renewed every 0.3 s
        assert json.loads(remote.read_bytes(LOCK_FILE))["expires"] > first
        with pytest.raises(ConfigError, match="in use"):
            with LeaseLock(remote, settle=0.1):
                pass
