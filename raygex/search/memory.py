"""How much memory a trial holds that no other process shares: the measure of a zero-copy data path."""

from __future__ import annotations

from pathlib import Path

_ROLLUP = Path("/proc/self/smaps_rollup")


def private_memory_mb() -> float:
    """Anonymous (heap) memory of this process in MiB: what a trial's own copy of the data would add to.

    Pages of Ray's shared-memory object store are file-backed, so reading the shared arrays zero-copy leaves this
    number unchanged even though they show up in RSS (and in USS while only one process maps them). Falls back
    to psutil's USS where ``/proc/self/smaps_rollup`` does not exist (macOS, Windows).
    """
    try:
        for line in _ROLLUP.read_text().splitlines():
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_full_info().uss / 2**20

