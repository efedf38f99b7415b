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
from pathlib import Path

from raygex.errors import ConfigError

LOCK_FILE = ".raygex.lock"


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
