"""The working copy of an experiment on an object store (raygex.files.storage), against the moto server."""

from __future__ import annotations

import os
import time

import pytest

from raygex.errors import ConfigError
from raygex.files.storage import Mirror, is_uri, join, open_remote, split
from tests.storage.conftest import list_keys


def test_uris_keep_their_query_parameters_when_joined_and_split():
    uri = "s3://bucket/results?endpoint_override=http://127.0.0.1:9000"
    assert join(uri, "tiny") == "s3://bucket/results/tiny?endpoint_override=http://127.0.0.1:9000"
    assert split(join(uri, "tiny")) == (uri, "tiny")
    assert not is_uri("results/tiny") and not is_uri("file:///data/results") and is_uri("gs://b/x")


def test_paths_and_file_uris_stay_local_folders(tmp_path):
    from raygex.experiment.layout import ExperimentLayout

    assert ExperimentLayout(f"file://{tmp_path}/exp").root == tmp_path / "exp"
    assert ExperimentLayout(tmp_path / "exp").mirror is None


def test_instance_role_credentials_are_an_opt_in(s3_env, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    with pytest.raises(ConfigError, match="no S3 credentials"):
        open_remote("s3://bucket/x")
    monkeypatch.setenv("RAYGEX_S3_INSTANCE_CREDENTIALS", "1")
    assert open_remote("s3://bucket/x").path == "bucket/x"


def test_a_pull_skips_checkpoints_and_the_lock_and_a_push_uploads_changes_oldest_first(s3_server, bucket):
    remote = open_remote(f"s3://{bucket}/results/exp")
    for key in ("config.yaml", "study/trial/params.json", "study/trial/checkpoint_000001/trial_state.pt",
                ".raygex.lock"):
        remote.write_bytes(key, b"x")
    copy = Mirror(remote)
    assert copy.pull() == 2
    assert sorted(p.relative_to(copy.root).as_posix() for p in copy.root.rglob("*") if p.is_file()) == [
        "config.yaml", "study/trial/params.json"]
    assert copy.push() == 0, "nothing changed since the pull"
    copy.pull("study/trial", checkpoints=True)
    assert (copy.root / "study/trial/checkpoint_000001/trial_state.pt").read_bytes() == b"x"

    (copy.root / "study" / "leaderboard.parquet").write_bytes(b"board")  # the "done" marker, written last...
    (copy.root / "study" / "optuna.db").write_bytes(b"db")
    now = time.time_ns()
    os.utime(copy.root / "study" / "optuna.db", ns=(now - 10**9, now - 10**9))  # ...after the files before it
    (copy.root / "study" / ".leaderboard.parquet.x.tmp").mkdir()
    (copy.root / "study" / ".leaderboard.parquet.x.tmp" / "half").write_bytes(b"half")
    uploaded = []
    real = remote.upload
    object.__setattr__(copy, "remote", type("Spy", (), {"upload": lambda self, local, rel: (uploaded.append(rel),
                                                                                          real(local, rel))})())
    assert copy.push() == 2
    assert uploaded == ["study/optuna.db", "study/leaderboard.parquet"], "oldest first; temporaries never"
    assert f"results/exp/study/leaderboard.parquet" in list_keys(s3_server, bucket, "results/exp/")


def test_an_input_uri_is_fetched_once_as_a_file_or_a_folder_of_parts(bucket):
    from raygex.files.remote_files import local_input

    remote = open_remote(f"s3://{bucket}/data")
    remote.write_bytes("one.parquet", b"file")
    remote.write_bytes("parts.parquet/part-0.parquet", b"a")
    remote.write_bytes("parts.parquet/part-1.parquet", b"b")
    assert local_input(f"s3://{bucket}/data/one.parquet", "data.expression").read_bytes() == b"file"
    folder = local_input(f"s3://{bucket}/data/parts.parquet", "data.expression")
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet", "part-1.parquet"]
    with pytest.raises(ConfigError, match="data.expression: .*no such object or folder"):
        local_input(f"s3://{bucket}/data/none.parquet", "data.expression")


def test_a_checkpoint_the_saved_state_still_names_is_put_back_on_the_store(bucket):
    """As tests/search/test_resume.py's local case: Tune deleted checkpoint N on the store before its synced state
    named N+1; the newest one left is copied to the name the state expects before Tune restores."""
    import json

    from ray.train import Checkpoint
    from ray.tune.utils.serialization import TuneFunctionEncoder

    from raygex.search.tune_compat.checkpoint_repair import repair_missing_checkpoints

    study = open_remote(f"s3://{bucket}/results/tiny/subtype")
    trial = "train_fn_51f3cb5d_3_channels=4,depth=2,lr=0.0034,model=gcn_2026-12-01_12-29-06"
    study.write_bytes(f"{trial}/checkpoint_000001/trial_state.pt", b"epoch 6")
    metadata = json.dumps({"checkpoint_manager": Checkpoint(f"{study.path}/{trial}/checkpoint_000000",
                                                            filesystem=study.fs)},
                          cls=TuneFunctionEncoder)
    state = {"trial_data": [[json.dumps({"trial_id": "51f3cb5d", "status": "RUNNING"}), metadata]]}
    study.write_bytes("experiment_state-2026-12-01_12-29-17.json", json.dumps(state).encode())
    assert repair_missing_checkpoints(study) == [f"{trial}/checkpoint_000000"]
    assert study.read_bytes(f"{trial}/checkpoint_000000/trial_state.pt") == b"epoch 6"
    assert repair_missing_checkpoints(study) == []
