"""Canonical datasets read through Ray Data match what pyarrow reads, including multi-part datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raygex.data.canonical import ExpressionDataset, write_dataset


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_data_reads_parts_in_parallel_and_round_trips(tmp_path, ray_local):
    from raygex.data.ray_io import collect, read_expression

    rng = np.random.default_rng(1)
    dataset = ExpressionDataset([f"S{i:04d}" for i in range(600)], rng.normal(size=(600, 40)),
                                [f"G{i}" for i in range(40)], pd.DataFrame({"label": rng.choice(["a", "b"], 600)}))
    path = write_dataset(dataset, tmp_path / "d.parquet", part_bytes=20_000, row_group_bytes=5_000)
    assert len(list(path.glob("part-*.parquet"))) == 5
    ray_dataset = read_expression(path)
    assert ray_dataset.count() == 600
    back = collect(path)
    order = np.argsort(back.sample_ids)
    np.testing.assert_array_equal(back.expression[order], dataset.expression)
    assert back.obs["label"].to_numpy()[order].tolist() == dataset.obs["label"].tolist()
    assert back.genes == dataset.genes
