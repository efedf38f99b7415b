"""Deterministic, stratified train/validation/test splits.

Sizes are counts (the seed paper trains on 50 samples) or fractions of the task's samples; the test set is
whatever remains when ``test`` is not given. The same labels and seed always give the same indices.

The test set is drawn first, from its own random stream (``test_seed``), so it is the same for every split seed:
split seeds resample training and validation from the rest, and no sample that trained, early-stopped or selected
a model under any seed is ever scored as test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


TEST_STREAM = 0x7E57  # mixed into the test set's random stream, so that it never coincides with a split seed's


def stratified_split(labels: np.ndarray, *, train: int | float, valid: int | float = 0,
                     test: int | float | None = None, seed: int = 0, test_seed: int = 0) -> Split:
    """Split rows stratified by ``labels`` into train/valid/test of the requested sizes; the test rows depend on
    ``test_seed`` (and the sizes) only, the training and validation rows on ``seed``."""
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
    test_rows, rest = _stratified_take(rows, labels, n_test, np.random.default_rng([TEST_STREAM, int(test_seed)]))
    rng = np.random.default_rng(int(seed))
    train_rows, rest = _stratified_take(rest, labels, n_train, rng)
    valid_rows, _ = _stratified_take(rest, labels, n_valid, rng)
    return Split(np.sort(train_rows), np.sort(valid_rows), np.sort(test_rows), int(seed))


def _stratified_take(rows: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator):
    """Pick ``size`` of ``rows`` with class proportions kept (largest-remainder quotas); return (taken, left)."""
    if size >= len(rows):
        return rows, rows[:0]
    classes, counts = np.unique(labels[rows], return_counts=True)
    exact = size * counts / counts.sum()
    quota = np.floor(exact).astype(int)
    # Hand the remaining places to the largest fractional parts; every class present gets one first if possible.
    if size >= len(classes):
        quota = np.maximum(quota, 1)
    while quota.sum() > size:
        quota[np.argmax(quota - exact)] -= 1
    order = np.lexsort((np.arange(len(classes)), -(exact - quota)))
    for k in order:
        if quota.sum() >= size:
            break
        if quota[k] < counts[k]:
            quota[k] += 1
    taken = []
    for cls, q in zip(classes, quota):
        members = rows[labels[rows] == cls]
        taken.append(members[rng.permutation(len(members))[:q]])
    taken = np.concatenate(taken) if taken else rows[:0]
    left = np.setdiff1d(rows, taken, assume_unique=True)
    return taken, left


FOLD_STREAM = 0xF01D  # mixed into the folds' random stream, apart from the split seed's own draws


def stratified_folds(labels: np.ndarray, k: int, seed: int = 0, *, strict: bool = True
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified cross-validation folds over the rows of ``labels`` (a study's labelled, non-test rows):
    a list of (training rows, validation rows), each sorted; every row is in exactly one validation fold.

    Each class's rows are shuffled (from ``seed``) and dealt round-robin, the deal starting where the previous
    class's ended, so fold sizes differ by at most one and every fold holds each class in proportion. The same
    labels, ``k`` and seed always give the same folds. ``strict``: refuse a class with fewer rows than folds
    (an explicit ``split.folds``); otherwise (``auto``) such a class is in fewer validation folds than ``k``, and
    each fold scores the classes it holds (a metric a fold cannot define is left out of the mean over folds).
    """
    labels = np.asarray(labels)
    if k < 2:
        raise ConfigError(f"split.folds must be at least 2, but got {k}")
    classes, counts = np.unique(labels, return_counts=True)
    if strict and len(classes) and counts.min() < k:
        rarest = classes[np.argmin(counts)]
        raise ConfigError(f"split.folds is {k}, but class {str(rarest)!r} has only {counts.min()} labelled (non-test) "
                          f"samples: every fold needs one of each class; use at most {counts.min()} folds")
    rng = np.random.default_rng([FOLD_STREAM, int(seed)])
    fold_of = np.empty(len(labels), dtype=np.int64)
    start = 0
    for cls in classes:
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(len(members))]
        fold_of[members] = (start + np.arange(len(members))) % k
        start = (start + len(members)) % k
    rows = np.arange(len(labels))
    return [(rows[fold_of != f], rows[fold_of == f]) for f in range(k)]
