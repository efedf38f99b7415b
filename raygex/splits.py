"""Deterministic, stratified train/validation/test splits.

Sizes are counts (the seed paper trains on 50 samples) or fractions of the task's samples; the test set is
whatever remains when ``test`` is not given. The same labels and seed always give the same indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from raygex.errors import ConfigError


@dataclass(frozen=True)
class Split:
    """Row indices into a task's samples, each sorted."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    seed: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def resolve_size(size: int | float | None, n: int, what: str) -> int | None:
    """A size as a count: ints are counts, floats in (0, 1) fractions of ``n``."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise ConfigError(f"split.{what} must be a count or a fraction, but got {size!r}")
    if isinstance(size, (float, np.floating)):
        if 0 < size < 1:
            return max(1, int(round(size * n)))
        if not float(size).is_integer():
            raise ConfigError(f"split.{what} must be a count or a fraction in (0, 1), but got {size}")
    count = int(size)
    if count < 0:
        raise ConfigError(f"split.{what} must be >= 0, but got {count}")
    return count


def stratified_split(labels: np.ndarray, *, train: int | float, valid: int | float = 0,
                     test: int | float | None = None, seed: int = 0) -> Split:
    """Split rows stratified by ``labels`` into train/valid/test of the requested sizes."""
    labels = np.asarray(labels)
    n = len(labels)
    n_train, n_valid = resolve_size(train, n, "train"), resolve_size(valid, n, "valid") or 0
    n_test = resolve_size(test, n, "test")
    if n_test is None:
        n_test = max(0, n - n_train - n_valid)
    if n_train < 1:
        raise ConfigError(f"split.train must be at least 1 sample, but got {n_train}")
    if n_train + n_valid + n_test > n:
        raise ConfigError(f"split sizes train={n_train} valid={n_valid} test={n_test} need "
                          f"{n_train + n_valid + n_test} samples, but the task has {n}")
    classes = np.unique(labels)
    for name, size in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        if 0 < size < len(classes):
            raise ConfigError(f"split.{name} must hold at least one sample per class ({len(classes)} classes), "
                              f"but got {size}")
    rows = np.arange(n)
    rng_seed = int(seed)
    rest_size = n - n_train
    train_rows, rest = (rows, rows[:0]) if rest_size == 0 else train_test_split(
        rows, train_size=n_train, stratify=labels, random_state=rng_seed)
    valid_rows = rest[:0]
    if n_valid:
        if n_valid == len(rest):
            valid_rows, rest = rest, rest[:0]
        else:
            valid_rows, rest = train_test_split(rest, train_size=n_valid, stratify=labels[rest],
                                                random_state=rng_seed + 1)
    test_rows = rest
    if n_test < len(rest):
        test_rows, _ = train_test_split(rest, train_size=n_test, stratify=labels[rest], random_state=rng_seed + 2)
    return Split(np.sort(train_rows), np.sort(valid_rows), np.sort(test_rows), rng_seed)
