"""A trial's share of a GPU: the memory cap for trials that share a device (``resources.gpu`` < 1)."""

from __future__ import annotations


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
