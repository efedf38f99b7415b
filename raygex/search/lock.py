"""One driver per experiment: a lock file with the owner's host and pid, and stale-lock detection.

Two drivers writing one experiment would interleave Tune states and corrupt both sweeps, so a second
`raygex search`/`resume` on a live experiment refuses. A lock whose pid is gone on this host is stale (the driver
was killed) and is taken over; a lock from another host cannot be checked and is reported with how to clear it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

from raygex.errors import ConfigError

LOCK_FILE = ".raygex.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class ExperimentLock:
    """``with ExperimentLock(exp_dir): ...`` — held for the whole sweep; ``stale`` says whether one was taken over."""

    def __init__(self, exp_dir: Path):
        self.path = Path(exp_dir) / LOCK_FILE
        self.stale: dict | None = None

    def __enter__(self) -> "ExperimentLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = {"host": socket.gethostname(), "pid": os.getpid(),
                "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                pid = owner.get("pid")
                unreadable = not isinstance(pid, int) or pid <= 0
                if unreadable or (owner.get("host") == mine["host"] and not _alive(pid)):
                    self.stale = owner
                    self.path.unlink(missing_ok=True)
                    continue
                where = "this host" if owner.get("host") == mine["host"] else f"host {owner.get('host')}"
                raise ConfigError(f"experiment is in use by pid {owner.get('pid')} on {where} (since "
                                  f"{owner.get('started')}); wait for it, use another --name, or delete "
                                  f"{self.path} if that process is gone", path=self.path.parent) from None
            with os.fdopen(fd, "w") as handle:
                json.dump(mine, handle)
            return self
        raise ConfigError("could not take the experiment lock", path=self.path)

    def _owner(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return {}

    def __exit__(self, *exc) -> None:
        if self._owner().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
