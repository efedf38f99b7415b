"""The streaming data path (issue 18): the driver never holds the expression matrix; large studies stream.

* structural: a run's data stages (a study's trial payload, the split seeds of evaluation, the export's rows)
  in a driver where every function that turns the expression column into an array raises, and where pyarrow
  reads are recorded: it must only ever read projected columns (ids and labels) itself. This fails if the
  driver-side ``collect()`` (or any whole read) comes back;
* the two paths through the user interface (``raygex search`` with a config): the same search with the default
  in-memory budget and with a tiny one (every study streams) gives models of similar quality, and every stage
  (export, evaluation over seeds, swap) runs on the streamed sets;
* the per-gene training statistics of the Ray Data aggregation equal NumPy's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.search.conftest import tiny_demo, write_config  # noqa: F401  (tiny_demo: a fixture)


def _config(folder, demo, name, budget_mb, *, read_in_driver_mb=0.0, **changes):
    """(read_in_driver_mb 0 by default: these tests are of the Ray Data path, which the tiny demo would skip)"""
    return write_config(
        folder / f"{name}.yaml", demo, name=name,
        data={"expression": str(demo / "expression.parquet"), "in_memory_budget_mb": budget_mb,
              "read_in_driver_mb": read_in_driver_mb},
        controls=["empty"], train={"max_epochs": 6, "patience": 6, "batch_size": 32}, wandb={"mode": "disabled"},
        search={"num_samples": 2, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                "space": {"model": ["gcn", "mlp"], "graph": ["true"], "hidden": 16, "channels": 4, "embedding": 2,
                          "depth": 1, "lr": 1e-2}}, **changes)


def test_the_driver_reads_only_ids_and_labels(tiny_demo, tmp_path, monkeypatch):
    import ray

    from raygex.config import load_config
    from raygex.data import canonical, ray_io
    from raygex.data.batches import StreamData
    from raygex.analysis.retrain import split_per_seed
    from raygex.experiment.layout import ExperimentLayout
    from raygex.pipeline.context import SweepContext
    from raygex import prepare

    def refuse(*_args, **_kwargs):
        raise AssertionError("the driver turned the expression column into an array")

    read = []
    real_read_table = pq.read_table

    dataset_file = tiny_demo / "expression.parquet"

    def read_table(source, *args, columns=None, **kwargs):
        if str(source) == str(dataset_file):  # (graph files are read whole)
            read.append(columns)
            assert columns is not None and canonical.names.EXPRESSION not in columns, columns
        return real_read_table(source, *args, columns=columns, **kwargs)

    for module, name in ((canonical, "expression_to_numpy"), (canonical, "read_dataset"),
                         (canonical, "batch_to_arrays"), (ray_io, "collect"), (prepare, "load_dataset")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(pq, "read_table", read_table)
    try:
        for budget, small in ((1024.0, True), (0.001, False)):
            config = load_config(_config(tmp_path, tiny_demo, f"b{budget}", budget))
            layout = ExperimentLayout.for_config(config)
            layout.create()
            ctx = SweepContext(layout)
            for study in ("subtype", "sgi"):  # a label and a single-gene target (one gene read in Ray tasks)
                payload = ctx.payload(study)
                if small:
                    assert isinstance(payload.data, ray.ObjectRef)
                    data = ray.get(payload.data)
                    assert data.x_train.shape[0] == len(data.y_train) and not data.x_train.flags.writeable
                else:
                    assert isinstance(payload.data, StreamData)
                    assert payload.data.train.count() == len(payload.data.y_train)
                splits = split_per_seed(config, study, ctx.dataset, ctx.graphs)
                assert sorted(splits) == config.split.seeds
            if small:  # export's rows (a small study's sets, never the matrix) are read by Ray tasks too
                data = ctx.dataset.trial_data("subtype", 0, "true")
                assert data.graph is not None and len(data.x_test) == len(data.test_ids)
        assert read, "the labels are read with pyarrow, by column projection"
    finally:
        ray.shutdown()


def test_small_path_arrays_equal_the_in_memory_split(tiny_demo, tmp_path):
    """The rows Ray tasks select, and those a driver holding the matrix cuts (``data.read_in_driver_mb``), are
    exactly those trial_data cuts from the whole matrix (classify and single-gene, target masked), and the
    aggregation's statistics are NumPy's."""
    import ray

    from raygex.config import load_config
    from raygex.data.streamed_study import moments
    from raygex.data.study_rows import matrix_arrays, selected_rows, trial_arrays
    from raygex.data.study_source import StudySource
    from raygex.data.prepare import load_dataset, load_graphs, trial_data

    config = load_config(_config(tmp_path, tiny_demo, "same", 1024.0))
    held = load_config(_config(tmp_path, tiny_demo, "held", 1024.0, read_in_driver_mb=256.0))
    graphs = load_graphs(config)
    dataset = load_dataset(config)
    source, holder = StudySource(config, graphs), StudySource(held, graphs)
    assert not source.holds_matrix and holder.holds_matrix  # the tiny demo is far below 256 MiB
    try:
        for study in ("subtype", "sgi"):
            expected = trial_data(config, study, dataset, graphs, seed=1, graph=None)
            plan = source.plan(study, 1)
            assert holder.plan(study, 1).ids["train"].tolist() == plan.ids["train"].tolist()
            for got in (trial_arrays(plan), matrix_arrays(holder.plan(study, 1), holder.matrix)):
                for split in ("train", "valid", "test"):
                    np.testing.assert_array_equal(getattr(got, f"x_{split}"), getattr(expected, f"x_{split}"))
                    np.testing.assert_array_equal(getattr(got, f"y_{split}"), getattr(expected, f"y_{split}"))
                assert got.genes == expected.genes and got.test_ids == expected.test_ids
            train = selected_rows(plan).filter(lambda row: row["split"] == 0)
            mean, std = moments(train)
            want_mean, want_std = expected.standardisation()
            np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(std, want_std, rtol=1e-5, atol=1e-6)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def both_paths(tiny_demo, tmp_path_factory):
    import ray

    from raygex.cli import main

    folder = tmp_path_factory.mktemp("paths")
    out = {}
    # "memory": the default sizes (this tiny dataset is read into the driver); "stream": every study streams
    for name, budget, read_mb in (("memory", 1024.0, 256.0), ("stream", 0.001, 0.0)):
        with pytest.raises(SystemExit) as exit_info:
            main(["search", str(_config(folder, tiny_demo, name, budget, read_in_driver_mb=read_mb))])
        ray.shutdown()
        assert exit_info.value.code == 0
        out[name] = folder / "results" / name
    return out


def test_streamed_and_in_memory_searches_give_models_of_similar_quality(both_paths):
    for study in ("subtype", "sgi"):
        boards = {name: pd.read_parquet(path / study / "leaderboard.parquet") for name, path in both_paths.items()}
        for name, board in boards.items():
            assert len(board) == 2 and (board["status"] == "TERMINATED").all(), name
        assert boards["memory"]["shares_memory"].all(), "small studies keep the zero-copy arrays"
        assert not boards["stream"]["shares_memory"].any(), "a tiny budget streams every study"
        memory, stream = (boards[n]["best_valid_auc"].max() for n in ("memory", "stream"))
        assert stream > 0.7 and abs(memory - stream) < 0.1, (study, memory, stream)
        for path in both_paths.values():  # every later stage ran on its sets
            assert (path / "models" / f"{study}.pt").exists()
            seeds = pd.read_parquet(path / study / "seeds.parquet")
            assert set(seeds["seed"]) == {0, 1} and seeds["test_auc"].notna().all()
            assert pd.read_parquet(path / study / "swap.parquet")["test_auc"].notna().all()


def test_the_dataset_hash_is_recorded_once_when_written(tmp_path, monkeypatch):
    from raygex.data.canonical import ExpressionDataset, read_content_hash, write_dataset
    from raygex.export import winner

    def dataset(value: float):
        x = np.full((5, 3), value, np.float32)
        return ExpressionDataset([f"s{i}" for i in range(5)], x, ["A", "B", "C"], pd.DataFrame({"k": list("ababa")}))

    one = write_dataset(dataset(1.0), tmp_path / "one.parquet")
    again = write_dataset(dataset(1.0), tmp_path / "again.parquet", part_bytes=24, row_group_bytes=12)  # 5 parts
    other = write_dataset(dataset(2.0), tmp_path / "other.parquet")
    assert again.is_dir() and len(list(again.glob("*.parquet"))) > 1
    assert read_content_hash(one) == read_content_hash(again) != read_content_hash(other)
    monkeypatch.setattr(winner, "sha256_file", lambda *_: (_ for _ in ()).throw(AssertionError("re-hashed")))
    assert winner.dataset_hash(one) == read_content_hash(one)  # read from the footer, the file is not hashed
    old = tmp_path / "old.parquet"  # a dataset written before the hash was recorded: hashed as before
    table = pq.read_table(one)
    pq.write_table(table.replace_schema_metadata(table.schema.metadata), old)
    monkeypatch.undo()
    assert read_content_hash(old) is None and len(winner.dataset_hash(old)) == 64
