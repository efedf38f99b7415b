"""One driver per experiment: an exclusive ``flock`` on ``<experiment>/.raygex.lock``, holding its owner's host
and pid.

Two drivers writing one experiment would interleave Tune states and corrupt both sweeps, so a second
`raygex search`/`resume` on a live experiment refuses. The kernel holds the lock for the owner and releases it
when the owner's process ends, however it ends, so there is no stale-lock guess and no race: of two drivers
starting together exactly one gets the lock, and a lock file caught mid-write is never mistaken for a dead
owner's. A file left by a killed driver is taken over and reported (its pid is named). On a shared filesystem
(NFS) ``flock`` is forwarded to the server's byte-range locks.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from raygex.errors import ConfigError
from raygex.files.names import LOCK_FILE


class ExperimentLock:
    """``with ExperimentLock(exp_dir): ...`` — held for the whole sweep; ``stale`` is the owner record of a driver
    that was gone (killed) when this one took the lock, else None."""

    def __init__(self, exp_dir: str | os.PathLike):
        self.path = Path(exp_dir) / LOCK_FILE
        self.stale: dict | None = None
        self._fd: int | None = None

    def __enter__(self) -> "ExperimentLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse()
            # The holder before us may have unlinked the file between our open and our lock: then we hold a lock
            # on a file nobody else will open. Only a lock on the file at the path counts.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            left = os.read(fd, 65536)
            if left.strip():
                self.stale = _parse(left) or {"pid": None}
            mine = {"host": socket.gethostname(), "pid": os.getpid(),
                    "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(mine).encode(), 0)
            os.fsync(fd)
            self._fd = fd
            return self
        raise ConfigError("could not take the experiment lock (it kept changing hands)", path=self.path)

    def _refuse(self) -> None:
        owner = self.owner()
        here = socket.gethostname()
        where = "this host" if owner.get("host") in (None, here) else f"host {owner.get('host')}"
        raise ConfigError(f"experiment is in use by pid {owner.get('pid', 'unknown')} on {where} (since "
                          f"{owner.get('started', 'unknown')}); wait for it to finish or use another --name",
                          path=self.path.parent) from None

    def owner(self) -> dict:
        """The lock file's owner record ({} while it is being written or when unreadable)."""
        try:
            return _parse(self.path.read_bytes()) or {}
        except OSError:
            return {}

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: nobody can take it between unlink and unlock
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _parse(blob: bytes) -> dict | None:
    try:
        value = json.loads(blob.decode() or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


LEASE_SECONDS = float(os.environ.get("RAYGEX_LEASE_SECONDS", "60"))
LEASE_SETTLE_SECONDS = float(os.environ.get("RAYGEX_LEASE_SETTLE_SECONDS", "2"))


class LeaseLock:
    """The experiment lock on an object store, where nothing like ``flock`` exists and pyarrow cannot create an
    object only-if-absent: a *lease* object ``<experiment>/.raygex.lock`` holding the owner's unique token, host,
    pid and an expiry, renewed by a background thread every third of the lease.

    Taking it: read the lease; a live one (not expired, and not a dead pid on this host) refuses. Otherwise write
    ours, wait ``settle`` seconds, read it back: the store keeps the last write, so of drivers racing for it only
    the one whose token is read back holds it, and the others refuse.

    The guarantee, honestly: exclusive provided (1) the store is strongly consistent (S3 is, since 2020), (2) a
    racing driver's read-then-write takes less than ``settle`` (``RAYGEX_LEASE_SETTLE_SECONDS``, 2 s), and
    (3) hosts' clocks agree to well within the lease (``RAYGEX_LEASE_SECONDS``, 60 s). A driver killed on another
    host blocks the experiment until its lease expires; one killed on this host is taken over at once (its pid is
    gone). A holder that cannot renew for a whole lease (paused, cut off) may lose it to another driver; it notices
    at its next renewal and says so on stderr, but cannot undo what both wrote.
    """

    def __init__(self, remote, *, lease: float | None = None, settle: float | None = None):
        self.remote = remote
        self.path = remote.key(LOCK_FILE)
        self.lease = LEASE_SECONDS if lease is None else lease
        self.settle = LEASE_SETTLE_SECONDS if settle is None else settle
        self.stale: dict | None = None
        self.lost: dict | None = None
        self._token: str | None = None
        self._stop = None
        self._thread = None

    def owner(self) -> dict:
        return _parse(self.remote.read_bytes(LOCK_FILE) or b"") or {}

    def _record(self) -> dict:
        return {"token": self._token, "host": socket.gethostname(), "pid": os.getpid(),
                "started": self._started, "expires": time.time() + self.lease}

    def __enter__(self) -> "LeaseLock":
        current = self.owner()
        if current and not _lease_dead(current):
            self._refuse(current)
        self.stale = current or None
        self._token = uuid.uuid4().hex
        self._started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.remote.write_bytes(LOCK_FILE, json.dumps(self._record()).encode())
        time.sleep(self.settle)
        back = self.owner()
        if back.get("token") != self._token:
            self._token = None
            self._refuse(back)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="raygex-lease", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                back = self.owner()
                if back.get("token") != self._token:
                    self.lost = back
                    print(f"raygex: lost the experiment lease {self.remote.uri} to pid {back.get('pid')} on "
                          f"{back.get('host')}; another driver may be writing this experiment", file=sys.stderr)
                    return
                self.remote.write_bytes(LOCK_FILE, json.dumps(self._record()).encode())
            except Exception as err:  # a failed renewal is retried at the next one (the lease outlives two)
                print(f"raygex: could not renew the experiment lease: {err}", file=sys.stderr)

    def _refuse(self, owner: dict) -> None:
        here = socket.gethostname()
        where = "this host" if owner.get("host") in (None, here) else f"host {owner.get('host')}"
        raise ConfigError(f"experiment is in use by pid {owner.get('pid', 'unknown')} on {where} (since "
                          f"{owner.get('started', 'unknown')}); wait for it to finish or use another --name",
                          path=self.remote.uri) from None

    def __exit__(self, *exc) -> None:
        if self._token is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            if self.owner().get("token") == self._token:
                self.remote.delete(LOCK_FILE)
        finally:
            self._token = None


def _lease_dead(owner: dict) -> bool:
    """Whether a lease's owner is gone: its lease expired, or it was a process of this host that has ended."""
    try:
        if float(owner.get("expires", 0)) < time.time():
            return True
    except (TypeError, ValueError):
        return True
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        if owner["pid"] == os.getpid():
            return False
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False
