"""``gs://`` against a GCS emulator on 127.0.0.1 (gcp-storage-emulator, in the test extra; pointed at with Google's
``STORAGE_EMULATOR_HOST``): the folder interface, and a whole search with its experiment on the emulated store.

Reading a Parquet dataset from ``gs://`` is not tested: the emulator never answers the ranged downloads pyarrow's
Parquet reader makes for a footer (the request hangs until pyarrow's retry limit), so only whole-object reads and
writes, which Tune's storage and the folder interface use, are exercised here."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

import pytest


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def gcs_server():
    """``host:port`` of an in-memory GCS emulator started for this module."""
    server_module = pytest.importorskip("gcp_storage_emulator.server", reason="gcp-storage-emulator is in the test extra")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_module.create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs_bucket(gcs_server, monkeypatch):
    """A fresh bucket on the emulator, this process (and its children) pointed at it; its name."""
    from pyarrow import fs as pafs

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://{gcs_server}")
    name = f"raygex-{uuid.uuid4().hex[:12]}"
    pafs.GcsFileSystem(anonymous=True, endpoint_override=gcs_server, scheme="http",
                       project_id="raygex-test").create_dir(name)
    return name


def test_the_folder_interface_works_on_gcs(gcs_bucket):
    from raygex.files.storage import open_remote

    folder = open_remote(f"gs://{gcs_bucket}/exp")
    assert folder.fs.type_name == "gcs"
    folder.probe()
    folder.write_bytes("study/a.json", b"one")
    folder.copy("study/a.json", "study/checkpoint_000001/b.json")
    assert folder.read_bytes("study/checkpoint_000001/b.json") == b"one"
    assert folder.files() == ["study/a.json", "study/checkpoint_000001/b.json"]
    assert folder.subfolders("study") == ["checkpoint_000001"]
    folder.remove_tree("study/checkpoint_000001")
    assert folder.files() == ["study/a.json"] and folder.read_bytes("missing") is None


@pytest.mark.slow
def test_a_search_with_its_experiment_on_gcs(gcs_bucket, tmp_path):
    """`raygex search --storage gs://…`: Tune's state, trials and checkpoints on the emulator, then status from the
    URI. (The inputs stay local: the emulator never answers the ranged downloads Parquet readers make.)"""
    import os

    from raygex.files.storage import open_remote
    from tests.search.conftest import SWEEP_ONLY, write_config, write_demo
    from tests.search.test_resume import SPACE

    (tmp_path / "demo").mkdir()
    demo = write_demo(tmp_path / "demo")
    config = write_config(tmp_path / "tiny.yaml", demo,
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          graphs={"true": str(demo / "graph_true.parquet")}, **SWEEP_ONLY,
                          train={"max_epochs": 3, "patience": 3, "batch_size": 32},
                          search={"num_samples": 4, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": SPACE})
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
           "WANDB_MODE": "disabled"}
    experiment = f"gs://{gcs_bucket}/exp/tiny"
    done = subprocess.run([sys.executable, "-m", "raygex", "search", str(config), "--storage",
                           f"gs://{gcs_bucket}/exp"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    files = open_remote(experiment).files()
    assert "models/subtype.pt" in files and "subtype/leaderboard.parquet" in files
    status = subprocess.run([sys.executable, "-m", "raygex", "status", experiment], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and "subtype" in status.stdout, status.stderr[-2000:]
