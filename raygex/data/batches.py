"""A large study's sets as a trial sees them: Ray Datasets streamed batch by batch onto the trial's device.

Kept apart from :mod:`raygex.data.streamed_study` (which makes them) so that the training loop can read them without
importing the driver-side machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class StreamData:
    """A large study's sets as materialised Ray Datasets (columns ``pos``, ``y``, ``x`` raw float32), with the
    training statistics that standardise each batch (in the trial, on its device) and the labels in split order.

    Duck-types the parts of :class:`~raygex.data.trial_data.TrialData` that trials, evaluation and swap read."""

    train: object
    valid: object
    test: object
    y_train: np.ndarray
    y_valid: np.ndarray
    y_test: np.ndarray
    genes: list[str]
    classes: list[str]
    mean: np.ndarray
    std: np.ndarray
    graph: object | None = None
    test_ids: list[str] | None = None
    folds: list | None = None
    shuffle_buffer: int = 1024
    batch_rows: int = 256
    streaming: bool = field(default=True, init=False)

    def standardised(self) -> "StreamData":
        return self  # standardised batch by batch, by the trial

    def fold_views(self) -> list["StreamData"]:
        return [self]

    def dataset(self, split: str):
        return {"train": self.train, "valid": self.valid, "test": self.test}[split]



def stream_batches(data: StreamData, split: str, batch_size: int, device: torch.device, seed: int | None = None):
    """Batches (``pos``, ``y``, raw ``x``) of a streamed set as tensors on ``device``: pinned host memory first on
    CUDA, the next batches prefetched while one trains. ``seed`` shuffles (block order and a local shuffle buffer
    of ``data.shuffle_buffer`` rows, both from the seed: a trial that passes the same seed per epoch, e.g. after a
    resume, sees the same order)."""
    ds = data.dataset(split)
    kwargs = {}
    if seed is not None:
        ds = ds.randomize_block_order(seed=seed)
        kwargs = {"local_shuffle_buffer_size": max(1, int(data.shuffle_buffer)), "local_shuffle_seed": seed}
    return ds.iter_torch_batches(batch_size=batch_size, prefetch_batches=2, device=str(device),
                                 pin_memory=device.type == "cuda",
                                 dtypes={"x": torch.float32, "y": torch.int64, "pos": torch.int64}, **kwargs)


@torch.no_grad()
def stream_proba(model, data: StreamData, split: str, standardise, device: torch.device) -> np.ndarray:
    """Class probabilities of a streamed set's rows, in the split's order (each batch standardised on the device)."""
    model.eval()
    n = len({"train": data.y_train, "valid": data.y_valid, "test": data.y_test}[split])
    out = None
    for batch in stream_batches(data, split, 1024, device):
        p = torch.softmax(model(standardise(batch["x"])), dim=1).cpu().numpy()
        out = np.empty((n, p.shape[1]), dtype=p.dtype) if out is None else out
        out[batch["pos"].cpu().numpy()] = p
    return out if out is not None else np.empty((0, 0), dtype=np.float32)
