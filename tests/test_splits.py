"""Splits are stratified, disjoint, of the requested sizes, and deterministic from the seed."""

from __future__ import annotations

import numpy as np
import pytest

from raygex.errors import ConfigError
from raygex.data.splits import stratified_split

LABELS = np.array([0] * 60 + [1] * 30 + [2] * 10)


def test_counts_are_exact_disjoint_and_stratified():
    split = stratified_split(LABELS, train=50, valid=20, test=30, seed=0)
    assert split.sizes() == {"train": 50, "valid": 20, "test": 30}
    rows = np.concatenate([split.train, split.valid, split.test])
    assert len(np.unique(rows)) == 100
    assert np.bincount(LABELS[split.train]).tolist() == [30, 15, 5]


def test_fractions_and_remainder():
    split = stratified_split(LABELS, train=0.6, valid=0.2, seed=1)
    assert split.sizes() == {"train": 60, "valid": 20, "test": 20}


def test_same_seed_same_split_other_seed_other_split():
    a = stratified_split(LABELS, train=50, valid=20, seed=3)
    b = stratified_split(LABELS, train=50, valid=20, seed=3)
    c = stratified_split(LABELS, train=50, valid=20, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip((a.train, a.valid, a.test), (b.train, b.valid, b.test)))
    assert not np.array_equal(a.train, c.train)


@pytest.mark.parametrize("kwargs,message", [
    (dict(train=90, valid=20), "need 110 samples, but the task has 100"),
    (dict(train=2, valid=10), "at least one sample per class"),
    (dict(train=-1), "must be >= 0"),
    (dict(train=1.5), "fraction in (0, 1)"),
    (dict(train="half"), "count or a fraction"),
])
def test_bad_sizes_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        stratified_split(LABELS, seed=0, **kwargs)


def test_fractions_that_round_past_the_total_still_split():
    # 692 samples, 9 classes of very different sizes (the PBMC shape): 0.6/0.2/0.2 rounds to 415+138+138 = 691.
    sizes = [240, 129, 95, 68, 54, 43, 31, 19, 13]
    labels = np.repeat(np.arange(9), sizes)
    split = stratified_split(labels, train=0.6, valid=0.2, test=0.2, seed=0)
    assert split.sizes() == {"train": 415, "valid": 138, "test": 138}
    for part in (split.train, split.valid, split.test):
        assert set(labels[part]) == set(range(9)), "every class in every part"
    assert abs(np.bincount(labels[split.train])[0] - 0.6 * 240) <= 1
