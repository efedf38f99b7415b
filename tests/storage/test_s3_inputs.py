"""An expression dataset given as an ``s3://`` URI is read where it is (a moto server on 127.0.0.1): the driver
reads footers, ids and labels through pyarrow's S3 file system, Ray Data's read tasks read the parts themselves,
and no process copies the matrix to a local disk. Exported models record the URI and the dataset's hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from raygex.data import canonical
from raygex.data.demo import make_demo_cohort
from raygex.export.winner import dataset_hash
from tests.search.conftest import SWEEP_ONLY, write_config, write_demo
from tests.search.test_resume import SPACE
from tests.storage.test_s3_sweep import upload


@pytest.fixture
def parts_on_s3(tmp_path, s3_server, bucket):
    """A dataset of three Parquet parts, local and uploaded: (local folder, its URI)."""
    dataset, _, _ = make_demo_cohort(0, n_samples=150, n_genes=100)
    local = tmp_path / "parts"
    canonical.write_dataset(dataset, local, part_bytes=50 * 100 * 4, row_group_bytes=50 * 100 * 4)
    assert len(list(local.glob("*.parquet"))) == 3
    upload(s3_server, bucket, local, "data/parts")
    return local, f"s3://{bucket}/data/parts"


def test_the_readers_read_a_dataset_of_parts_on_the_store(parts_on_s3):
    local, uri = parts_on_s3
    assert canonical.read_genes(uri) == canonical.read_genes(local)
    assert canonical.read_labels(uri).equals(canonical.read_labels(local))
    assert canonical.matrix_bytes(uri) == canonical.matrix_bytes(local) == 150 * 100 * 4
    there, here = canonical.read_dataset(uri), canonical.read_dataset(local)
    assert np.array_equal(there.expression, here.expression) and list(there.sample_ids) == list(here.sample_ids)
    parts = canonical.parquet_parts(uri)
    assert parts.filesystem.type_name == "s3" and len(parts.files) == 3 and not parts.single
    assert dataset_hash(uri) == dataset_hash(local) == canonical.read_content_hash(local)


def test_the_hash_of_a_dataset_without_a_recorded_hash_is_the_same_from_the_store(tmp_path, s3_server, bucket):
    """A Parquet file whose footer lacks the content hash: its bytes are hashed, streamed from the store."""
    dataset, _, _ = make_demo_cohort(1, n_samples=100, n_genes=100)
    written = tmp_path / "with_hash.parquet"
    canonical.write_dataset(dataset, written)
    table = pq.read_table(written)
    metadata = {k: v for k, v in table.schema.metadata.items() if k != b"raygex.content_sha256"}
    plain = tmp_path / "plain.parquet"
    pq.write_table(table.replace_schema_metadata(metadata), plain)
    upload(s3_server, bucket, plain, "data/plain.parquet")
    assert canonical.read_content_hash(plain) is None
    assert dataset_hash(f"s3://{bucket}/data/plain.parquet") == dataset_hash(plain)


def test_a_missing_dataset_on_the_store_is_one_line(s3_env, bucket):
    from raygex.errors import InputFormatError

    assert not canonical.dataset_exists(f"s3://{bucket}/nothing/here")
    with pytest.raises(InputFormatError, match="no such object"):
        canonical.read_schema(f"s3://{bucket}/nothing/here")


@pytest.mark.slow
def test_a_sweep_reads_its_inputs_from_the_store_without_a_local_copy(tmp_path, s3_server, s3_env, bucket):
    """``data.read_in_driver_mb: 0``: ids and labels in the driver, the rows in Ray tasks, both from the store;
    the driver's private cache (RAYGEX_CACHE) holds the graph it reads, never the dataset."""
    cache = tmp_path / "cache"
    env = {**{k: v for k, v in s3_env.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
           "WANDB_MODE": "disabled", "RAYGEX_CACHE": str(cache)}
    (tmp_path / "demo").mkdir()
    demo = write_demo(tmp_path / "demo")
    upload(s3_server, bucket, demo / "expression.parquet", "data/expression.parquet")
    upload(s3_server, bucket, demo / "graph_true.parquet", "data/graph_true.parquet")
    uri = f"s3://{bucket}/data/expression.parquet"
    config = write_config(tmp_path / "tiny.yaml", demo, data={"expression": uri, "read_in_driver_mb": 0},
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          graphs={"true": f"s3://{bucket}/data/graph_true.parquet"}, **SWEEP_ONLY,
                          train={"max_epochs": 3, "patience": 3, "batch_size": 32},
                          search={"num_samples": 4, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": SPACE})
    driver = subprocess.Popen([sys.executable, "-m", "raygex", "search", str(config)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[str, int] = {}  # every file the driver's cache held while it ran (it is emptied at exit)
    deadline = time.monotonic() + 600
    while driver.poll() is None and time.monotonic() < deadline:
        for path in cache.rglob("*") if cache.exists() else []:
            try:
                if path.is_file():
                    seen[path.name] = max(seen.get(path.name, 0), path.stat().st_size)
            except OSError:
                continue
        time.sleep(0.05)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err[-3000:]
    assert "graph_true.parquet" in seen, seen  # the graph is read by the driver: copied once
    size = os.path.getsize(demo / "expression.parquet")
    assert "expression.parquet" not in seen and max(seen.values()) < size, seen

    import raygex

    meta = raygex.load_model(tmp_path / "results" / "tiny" / "models" / "subtype.pt").metadata
    recorded = json.dumps(meta)
    assert uri in recorded and canonical.read_content_hash(demo / "expression.parquet") in recorded
    assert str(cache) not in recorded and "raygex-input-" not in recorded
