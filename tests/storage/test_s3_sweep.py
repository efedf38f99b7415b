"""A sweep on S3 (a moto server on 127.0.0.1) from the CLI: search to ``--storage s3://…``, SIGKILL the driver
mid-sweep, `raygex resume s3://…` from another working directory, then status, export, report and predict from
the URI. Nothing is lost or run twice, and no local folder named ``s3:`` appears anywhere."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from raygex.search.tune_compat.tune_files import epoch_rows
from tests.search.conftest import write_config, write_demo
from tests.search.test_resume import SPACE, kill_tree
from tests.storage.conftest import list_keys

pytestmark = pytest.mark.slow
MAX_EPOCHS = 5
NUM_SAMPLES = 6


def read_object(endpoint: str, bucket: str, key: str) -> bytes:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def finished_on_store(endpoint: str, bucket: str, prefix: str) -> dict[str, dict]:
    """trial id → last result, for the trials whose result.json on the store says they are done."""
    done = {}
    for key in list_keys(endpoint, bucket, prefix):
        if not key.endswith("/result.json"):
            continue
        lines = [json.loads(line) for line in read_object(endpoint, bucket, key).decode().splitlines() if line]
        if lines and (lines[-1].get("done") or lines[-1].get("epoch") == MAX_EPOCHS):
            done[lines[-1]["trial_id"]] = lines[-1]
    return done


def upload(endpoint: str, bucket: str, local, key: str) -> None:
    """A file, or a folder of them (a dataset of Parquet parts), to ``key``."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
    for path in files:
        suffix = path.relative_to(local).as_posix() if local.is_dir() else ""
        client.upload_file(str(path), bucket, f"{key}/{suffix}" if suffix else key)


def raygex(args: list[str], env: dict, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raygex", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_killed_sweep_on_s3_resumes_from_the_uri_without_losing_or_repeating_trials(tmp_path, s3_server, s3_env,
                                                                                     bucket):
    env = {**{k: v for k, v in s3_env.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0",
           "WANDB_MODE": "disabled", "RAYGEX_LEASE_SETTLE_SECONDS": "0.5"}
    (tmp_path / "demo").mkdir()
    demo = write_demo(tmp_path / "demo")
    upload(s3_server, bucket, demo / "expression.parquet", "data/expression.parquet")
    upload(s3_server, bucket, demo / "graph_true.parquet", "data/graph_true.parquet")
    config = write_config(tmp_path / "tiny.yaml", demo,  # the inputs too are read from the store
                          data={"expression": f"s3://{bucket}/data/expression.parquet"},
                          tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                          graphs={"true": f"s3://{bucket}/data/graph_true.parquet"}, controls=["empty"],
                          split={"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0, 1]},
                          train={"max_epochs": MAX_EPOCHS, "patience": MAX_EPOCHS, "batch_size": 32},
                          search={"num_samples": NUM_SAMPLES, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                  "space": SPACE})
    storage, experiment = f"s3://{bucket}/exp", f"s3://{bucket}/exp/tiny"
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()

    # 1. search to S3, SIGKILLed once two trials' finished results reached the store
    started = time.monotonic()
    log = tmp_path / "driver.log"
    driver = subprocess.Popen([sys.executable, "-m", "raygex", "search", str(config), "--storage", storage],
                              env=env, cwd=first, stdout=subprocess.DEVNULL, stderr=log.open("w"),
                              start_new_session=True)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and driver.poll() is None:
            children = psutil.Process(driver.pid).children(recursive=True) or children
            if len(finished_on_store(s3_server, bucket, "exp/tiny/subtype/")) >= 2:
                break
            time.sleep(0.5)
        assert driver.poll() is None, f"the sweep ended before it could be interrupted: {log.read_text()[-3000:]}"
        children = psutil.Process(driver.pid).children(recursive=True)
    finally:
        kill_tree(driver, children)
    killed_at = time.monotonic() - started
    before = finished_on_store(s3_server, bucket, "exp/tiny/subtype/")
    assert len(before) >= 2
    assert not list(first.glob("s3*")), "a local folder named after the URI was made"

    # 2. resume from the URI, in another working directory
    resumed = raygex(["resume", experiment], env, second)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_at = time.monotonic() - started

    board = pd.read_parquet(io.BytesIO(read_object(s3_server, bucket, "exp/tiny/subtype/leaderboard.parquet")))
    configs = board.filter(like="config/").astype(str).apply(tuple, axis=1)
    print(f"\n[s3] killed after {killed_at:.0f} s with {len(before)} trials finished on the store; resumed sweep "
          f"done after {resumed_at:.0f} s: {int((board['status'] == 'TERMINATED').sum())}/{NUM_SAMPLES} trials, "
          f"configurations run twice: {int(configs.duplicated().sum())}")
    assert len(board) == NUM_SAMPLES and board["trial_id"].is_unique, board[["trial_id", "status"]]
    assert (board["status"] == "TERMINATED").all()
    assert configs.is_unique, "a hyperparameter configuration was run twice"
    for trial_id, result in before.items():
        row = board[board["trial_id"] == trial_id]
        assert len(row) == 1, f"finished trial {trial_id} lost"
        assert row["best_valid_auc"].iloc[0] == pytest.approx(result["best_valid_auc"])
    keys = list_keys(s3_server, bucket, "exp/tiny/")
    folders = {key.split("/")[3] for key in keys if key.endswith("/params.json")}
    for trial_id in board["trial_id"]:  # each trial has one folder on the store
        assert len([f for f in folders if f"_{str(trial_id).split('_')[0]}_" in f]) == 1, (trial_id, sorted(folders))
    # no other trial folder: one the killed driver uploaded before the experiment state that would have named it
    # (a phantom: never resumed, a partial history) is removed by the resume (raygex.search.tune_compat.saved_state)
    assert len(folders) == NUM_SAMPLES, sorted(folders)
    print(f"[s3] repairs of the killed driver's state: "
          f"{[line for line in resumed.stdout.splitlines() if line.startswith('note: task')]}")
    import pickle

    states = sorted(key for key in keys if key.startswith("exp/tiny/subtype/searcher-state-"))
    study = pickle.loads(read_object(s3_server, bucket, states[-1]))["_ot_study"]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == NUM_SAMPLES, "the Optuna study holds every trial once"
    for key in keys:  # every trial's history is whole on the store (a resumed trial re-reports its last epoch)
        if key.endswith("/result.json"):
            lines = read_object(s3_server, bucket, key).decode().splitlines()
            rows = [row for line in lines if line for row in epoch_rows(json.loads(line))]
            last = 1 if any(row.get("converged") for row in rows) else MAX_EPOCHS  # a convex fit ends at epoch 1
            assert sorted({row["epoch"] for row in rows}) == list(range(1, last + 1))
    for name in ("config.yaml", "raygex.json", "stages.jsonl", "report.html", "models/subtype.pt",
                 "subtype/seeds.parquet", "subtype/verdicts.parquet", "report/subtype/summary.json"):
        assert f"exp/tiny/{name}" in keys, name
    assert "exp/tiny/.raygex.lock" not in keys, "the lease is released at the end"
    assert not any("raygex-write-test" in key for key in keys)

    # 3. status, export, report and predict, all from the URI
    status = raygex(["status", experiment, "--json"], env, second)
    assert status.returncode == 0, status.stderr[-2000:]
    summary = json.loads(status.stdout.strip().splitlines()[-1])
    assert summary["experiment"] == experiment
    assert summary["tasks"]["subtype"]["counts"]["finished"] == NUM_SAMPLES

    exported = raygex(["export", experiment, "--json"], env, second)
    assert exported.returncode == 0, exported.stderr[-2000:]
    winner = board[board["winner"]].iloc[0]["trial_id"]
    exported = json.loads(exported.stdout.strip().splitlines()[-1])
    assert exported["trial_id"] == winner and exported["model"] == f"{experiment}/models/subtype.pt"
    # -o on the store: the models are uploaded there, nothing local is named after the URI
    elsewhere = raygex(["export", experiment, "-o", f"s3://{bucket}/handover", "--json"], env, second)
    assert elsewhere.returncode == 0, elsewhere.stderr[-2000:]
    elsewhere = json.loads(elsewhere.stdout.strip().splitlines()[-1])
    assert elsewhere["model"] == f"s3://{bucket}/handover/subtype.pt"
    assert read_object(s3_server, bucket, "handover/subtype.pt")[:2] == b"PK"  # a TorchScript zip archive

    report = raygex(["report", experiment], env, second)
    assert report.returncode == 0, report.stderr[-2000:]
    assert f"{experiment}/report.html" in report.stdout

    predicted = raygex(["predict", f"{experiment}/models/subtype.pt", f"s3://{bucket}/data/expression.parquet",
                        "-o", f"s3://{bucket}/predictions/subtype.csv"], env, second)  # input read from the store
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    table = pd.read_csv(io.BytesIO(read_object(s3_server, bucket, "predictions/subtype.csv")))
    assert len(table) == 160 and table["predicted"].notna().all()
    local = raygex(["predict", f"{experiment}/models/subtype.pt", str(demo / "expression.parquet"),
                    "-o", "local.csv"], env, second)
    assert local.returncode == 0, local.stderr[-2000:]
    assert pd.read_csv(second / "local.csv").equals(table)
    assert not list(second.glob("s3*")), "a local folder named after the URI was made"
