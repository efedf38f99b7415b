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


def gpu_memory_share(assigned: dict | None = None) -> float | None:
    """The share of a GPU's memory this Ray worker may use: its fraction of a GPU when it holds less than one
    (``resources.gpu: 0.5`` puts two trials on a device), else None (a whole GPU, or none)."""
    if assigned is None:
        import ray

        assigned = ray.get_runtime_context().get_assigned_resources()
    share = float(assigned.get("GPU", 0) or 0)
    return share if 0 < share < 1 else None


def limit_gpu_memory(assigned: dict | None = None) -> float | None:
    """Cap this process's CUDA caching allocator at its GPU share, so trials sharing a device cannot starve each
    other (one that outgrows its share fails alone with an out-of-memory error); returns the share set."""
    share = gpu_memory_share(assigned)
    if share is not None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(share)
    return share
