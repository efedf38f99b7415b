"""A cluster whose nodes share nothing but the object store (tests/cluster/isolated.py): the isolation itself, then
a search through the CLI with data, graphs and experiment on S3, every trial and read task on a worker node."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.isolated import IsolatedCluster, missing_tools
from tests.search.conftest import SWEEP_ONLY, write_config, write_demo
from tests.search.test_resume import SPACE, TWO_TASKS

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the tests that leave it whole (each uses a bucket of its own)."""
    with IsolatedCluster(tmp_path_factory.mktemp("cluster"), workers=2, cpus=2) as running:
        yield running


@pytest.fixture
def cluster_to_break(tmp_path):
    """A cluster of its own, for a test that kills one of its nodes."""
    with IsolatedCluster(tmp_path / "cluster", workers=2, cpus=2) as running:
        yield running


def python_json(cluster: IsolatedCluster, script: str, cwd=None, timeout: float = 300):
    """Run a script in the cluster's network; its last stdout line, as JSON."""
    done = cluster.python(textwrap.dedent(script), cwd=cwd, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def upload(cluster: IsolatedCluster, bucket: str, files: dict) -> None:
    """Local files to the cluster's S3 server: {key: path}."""
    python_json(cluster, f"""
        import boto3, json
        client = boto3.client("s3", endpoint_url={cluster.s3_endpoint!r}, region_name="us-east-1")
        client.create_bucket(Bucket={bucket!r})
        for key, path in {json.dumps({k: str(v) for k, v in files.items()})}.items():
            client.upload_file(path, {bucket!r}, key)
        print(json.dumps(True))
        """)




def study_on_s3(cluster: IsolatedCluster, tmp_path, bucket: str, **changes):
    """The tiny demo's dataset and true graph uploaded to ``bucket``, and a one-task config reading them from the
    store (``data.read_in_driver_mb: 0``: the rows are read by Ray tasks on the workers); the driver's folder
    ``tmp_path/driver`` made."""
    (tmp_path / "demo").mkdir()
    demo = write_demo(tmp_path / "demo")
    upload(cluster, bucket, {"data/expression.parquet": demo / "expression.parquet",
                             "data/graph_true.parquet": demo / "graph_true.parquet"})
    (tmp_path / "driver").mkdir()
    return write_config(tmp_path / "tiny.yaml", demo,
                        data={"expression": f"s3://{bucket}/data/expression.parquet", "read_in_driver_mb": 0},
                        tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}],
                        graphs={"true": f"s3://{bucket}/data/graph_true.parquet"}, **{"controls": ["empty"], **changes})


STORE_STATE = """
    import json, boto3
    client = boto3.client("s3", endpoint_url={endpoint!r}, region_name="us-east-1")
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket={bucket!r}, Prefix="exp/")
            for o in page.get("Contents", [])]
    rows = []
    for key in keys:
        if key.endswith("/result.json"):
            body = client.get_object(Bucket={bucket!r}, Key=key)["Body"].read().decode()
            for line in body.splitlines():
                if line.strip():
                    report = json.loads(line)
                    for row in report.get("earlier_epochs", []) + [report]:
                        rows.append({{"trial": key.split("/")[-2], "epoch": row.get("epoch"),
                                     "node": report.get("node_id"),
                                     "restored": bool(row.get("restored_from_checkpoint")),
                                     "converged": bool(row.get("converged"))}})
    print(json.dumps({{"checkpoints": sum("/checkpoint_" in k for k in keys), "rows": rows}}))
"""


def search_until(cluster: IsolatedCluster, tmp_path, config, bucket: str, condition, timeout: float = 300):
    """Start `raygex search CONFIG --address ... --storage s3://BUCKET/exp` from ``tmp_path/driver`` and watch the
    store (:data:`STORE_STATE`) until ``condition(state)``; the search must still be running then. Returns the
    driver's process and the state script."""
    driver = cluster.popen([sys.executable, "-m", "raygex", "search", str(config), "--address", cluster.address,
                            "--storage", f"s3://{bucket}/exp"], cwd=tmp_path / "driver", log=tmp_path / "driver.log")
    state_script = textwrap.dedent(STORE_STATE.format(endpoint=cluster.s3_endpoint, bucket=bucket))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        if condition(python_json(cluster, state_script)):
            break
        time.sleep(1)
    assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
    return driver, state_script


def epochs_per_trial(rows: list[dict]) -> tuple[dict, int]:
    """Each trial's reported epochs (from :data:`STORE_STATE`'s rows, epochs re-sent from a checkpoint included),
    and how many epochs were trained again (counted on the trained epochs' own reports only)."""
    epochs: dict = {}
    trained: dict = {}
    for row in rows:
        epochs.setdefault(row["trial"], []).append(row["epoch"])
        if not row["restored"]:
            trained.setdefault(row["trial"], []).append(row["epoch"])
    return epochs, sum(len(e) - len(set(e)) for e in trained.values())


def running_on(rows: list[dict], node: str, max_epochs: int) -> set:
    """Trials (from :data:`STORE_STATE`'s rows) whose latest epoch ran on ``node`` and that had more to run: not
    at ``max_epochs``, not a convex fit at its optimum (done in one epoch)."""
    last: dict = {}
    for row in rows:
        if row["trial"] not in last or row["epoch"] >= last[row["trial"]]["epoch"]:
            last[row["trial"]] = row
    return {trial for trial, row in last.items()
            if row["node"] == node and not row["converged"] and row["epoch"] < max_epochs}


def board_summary(cluster: IsolatedCluster, experiment: str, cwd, study: str = "subtype") -> dict:
    """A study's leaderboard read from the URI: trials, finished ones, configurations all distinct."""
    return python_json(cluster, f"""
        import json
        from raygex.experiment.layout import ExperimentLayout
        board = ExperimentLayout.open({experiment!r}).read_leaderboard({study!r})
        configs = board.filter(like="config/").astype(str).apply(tuple, axis=1)
        print(json.dumps({{"trials": len(board), "finished": int((board["status"] == "TERMINATED").sum()),
                          "unique": bool(configs.is_unique)}}))
        """, cwd=cwd)


def why_not_finished(cluster: IsolatedCluster, experiment: str, cwd, study: str = "subtype") -> str:
    """For a failed assertion: the unfinished trials' errors and the experiment log's lines on failures (the
    working copy is gone by then; both are read from the URI)."""
    return python_json(cluster, f"""
        import json
        from pyarrow import fs
        from raygex.experiment.layout import ExperimentLayout
        board = ExperimentLayout.open({experiment!r}).read_leaderboard({study!r})
        bad = board[board["status"] != "TERMINATED"]
        rows = bad[["trial_id", "status", "error", "config/model", "epoch", "node_id"]].astype(str).to_dict("records")
        try:
            store, path = fs.FileSystem.from_uri({experiment!r} + "/logs/driver.log")
            with store.open_input_stream(path) as stream:
                log = stream.read().decode(errors="replace").splitlines()
        except OSError as error:
            log = [f"no log: {{error}}"]
        lines = [line[:400] for line in log if any(w in line.lower() for w in ("error", "fail", "dead", "restor"))]
        print(json.dumps({{"unfinished": rows, "log": lines[-40:]}}))
        """, cwd=cwd)


def test_a_worker_lost_mid_sweep_the_sweep_finishes_on_the_node_left(cluster_to_break, tmp_path):
    """SIGKILL a worker node (its raylet, object store and workers) while trials run on it: the sweep finishes on
    the other node, each interrupted trial resumes from its last checkpoint on the store, nothing is lost and no
    configuration runs twice. (First in
    the module: its cluster is gone before the shared one starts.)"""
    cluster = cluster_to_break
    bucket = "raygex-kill"
    config = study_on_s3(cluster, tmp_path, bucket, train={"max_epochs": 30, "patience": 30, "batch_size": 16},
                         **SWEEP_ONLY,
                         search={"num_samples": 6, "max_concurrent": 4, "scheduler": {"kind": "fifo"},
                                 # restarts: a trial restarted before Ray has marked the node dead may fail
                                 # again there (a CI run once ended with one trial errored after 3 restarts, its
                                 # cause not captured; why_not_finished now says it). What is tested is that each
                                 # try resumes from the last checkpoint, not how many Ray needs
                                 "checkpoint_every": 2, "checkpoint_min_s": 0, "max_failures": 8, "space": SPACE})
    lost = next(n["id"] for n in cluster.alive_nodes() if "worker_1" in n["resources"])
    driver, state_script = search_until(
        cluster, tmp_path, config, bucket,
        lambda state: state["checkpoints"] and running_on(state["rows"], lost, 30))
    before = python_json(cluster, state_script)["rows"]
    cluster.kill("worker_1")
    try:
        driver.wait(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
    log = (tmp_path / "driver.log").read_text(errors="replace")
    assert driver.returncode == 0, log[-3000:]

    after = python_json(cluster, state_script)["rows"]
    # trials that ran to their end on the lost node before the kill (a convex fit at its optimum in one epoch, a
    # network at its last epoch) have nothing to resume
    on_lost = running_on(before, lost, 30)
    resumed = {row["trial"] for row in after if row["trial"] in on_lost and row["node"] != lost}
    epochs, rerun = epochs_per_trial(after)
    out = board_summary(cluster, f"s3://{bucket}/exp/tiny", cwd=tmp_path / "driver")
    # where the study's arrays were made (the Ray task that read its rows from the store), and whether Ray ran it
    # again after the loss (lineage reconstruction) or kept a copy that another node already held
    made = python_json(cluster, f"""
        import json, ray
        from ray.util.state import list_tasks
        ray.init(address={cluster.address!r}, logging_level="ERROR")
        print(json.dumps([{{"node": t.node_id, "attempt": t.attempt_number, "state": t.state}}
                          for t in list_tasks(filters=[("name", "=", "_prepare_small")], detail=True)]))
        """)
    print(f"\n[worker lost] trials on the lost node: {len(on_lost)}, resumed on the other: {len(resumed)}, "
          f"epochs run again: {rerun}, trials {out['finished']}/{out['trials']}, configurations twice: "
          f"{0 if out['unique'] else 'some'}; the study's arrays made on the "
          f"{'lost' if any(t['node'] == lost for t in made) else 'other'} node, task attempts "
          f"{sorted(t['attempt'] for t in made)}")
    if out != {"trials": 6, "finished": 6, "unique": True}:
        pytest.fail(f"{out}: {why_not_finished(cluster, f's3://{bucket}/exp/tiny', cwd=tmp_path / 'driver')}")
    assert on_lost and resumed == on_lost & set(epochs), (on_lost, resumed)
    for trial, seen in epochs.items():  # every trial's history whole: epochs 1..last, none missing
        assert sorted(set(seen)) == list(range(1, max(seen) + 1)), (trial, sorted(seen))


def test_the_nodes_share_no_files_and_the_head_runs_no_task(cluster, tmp_path):
    """A file the driver writes in its folder is not there for a task on a worker; what a task writes in its
    working directory or /tmp stays on its node; tasks never land on the head (CPU: 0)."""
    (tmp_path / "driver").mkdir()
    out = python_json(cluster, f"""
        import json, os, ray
        from pathlib import Path
        Path("written-by-the-driver.txt").write_text("here")
        ray.init(address={cluster.address!r}, logging_level="ERROR")
        head = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) == 0]

        @ray.remote(num_cpus=1)
        def look(driver_file):
            Path("written-by-a-task.txt").write_text("there")
            Path("/tmp/written-by-a-task.txt").write_text("there")
            return {{"node": ray.get_runtime_context().get_node_id(), "sees_driver_file": Path(driver_file).exists(),
                     "storage_env": sorted(k for k in os.environ if k.startswith("AWS_"))}}

        seen = ray.get([look.options(resources={{f"worker_{{i}}": 0.1}}).remote(
            str(Path("written-by-the-driver.txt").resolve())) for i in range(2)])
        print(json.dumps({{"head": head, "tasks": seen,
                          "task_file_here": Path("/tmp/written-by-a-task.txt").exists()}}))
        """, cwd=tmp_path / "driver")
    assert len(out["head"]) == 1
    nodes = {t["node"] for t in out["tasks"]}
    assert len(nodes) == 2 and nodes.isdisjoint(out["head"])
    assert not any(t["sees_driver_file"] for t in out["tasks"]), out
    assert not out["task_file_here"] and not (tmp_path / "driver" / "written-by-a-task.txt").exists()
    assert not any({"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"} & set(t["storage_env"]) for t in out["tasks"]), \
        "the nodes themselves hold no storage setting (only a job's environment brings one)"


def test_two_studies_on_s3_the_driver_killed_and_resumed_from_another_folder(cluster, tmp_path):
    """`raygex search --address` on the cluster with ``data.read_in_driver_mb: 0`` and two studies side by side,
    one above ``data.in_memory_budget_mb`` (its batches stream to the trials from Ray Datasets) and one under it
    (its arrays shared through the object store): the dataset read from the store by the workers' read tasks (the
    endpoint and credentials reach them only through the job), the graph and the experiment on the store.
    SIGKILL the driver while trials run: `raygex resume s3://...` started from another working directory (the
    first driver's folder is not there for it) finishes the experiment from what is on the store, no configuration
    twice, every trial's history whole, every trial on a worker, both winners exported; then `status`, `export`,
    `report` and `predict` work from the URI, from a third folder, and write nothing there."""
    bucket = "raygex-cluster"
    config = study_on_s3(cluster, tmp_path, bucket, train={"max_epochs": 8, "patience": 8, "batch_size": 16},
                         search={"num_samples": 4, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                 "checkpoint_every": 2, "checkpoint_min_s": 0, "space": SPACE},
                         **SWEEP_ONLY)
    # subtype: 160 samples x 150 genes = 96 kB of float32 (streamed); sgi: 40 BFS genes = 26 kB (in memory)
    raw = yaml.safe_load(config.read_text())
    raw["tasks"] = TWO_TASKS
    raw["data"]["in_memory_budget_mb"] = 0.05
    config.write_text(yaml.safe_dump(raw))
    experiment = f"s3://{bucket}/exp/tiny"
    driver, state_script = search_until(
        cluster, tmp_path, config, bucket,
        lambda state: state["checkpoints"] and len({row["trial"] for row in state["rows"]}) >= 3)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=60)
    before = python_json(cluster, state_script)["rows"]

    for name in ("elsewhere", "third"):
        (tmp_path / name).mkdir()
    resumed = cluster.run([sys.executable, "-m", "raygex", "resume", experiment, "--address", cluster.address],
                          cwd=tmp_path / "elsewhere", timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:] + resumed.stdout[-2000:]
    after = python_json(cluster, state_script)["rows"]
    epochs, rerun = epochs_per_trial(after)
    boards = {study: board_summary(cluster, experiment, cwd=tmp_path / "third", study=study)
              for study in ("subtype", "sgi")}
    print(f"\n[driver killed] trials seen before the kill: {len({r['trial'] for r in before})}, epochs run again "
          f"after resume: {rerun}, " + ", ".join(f"{s} {b['finished']}/{b['trials']} trials" for s, b in boards.items())
          + f", configurations twice: {0 if all(b['unique'] for b in boards.values()) else 'some'}")
    assert boards == {study: {"trials": 4, "finished": 4, "unique": True} for study in ("subtype", "sgi")}
    for trial, seen in epochs.items():
        assert sorted(set(seen)) == list(range(1, max(seen) + 1)), (trial, sorted(seen))

    third = tmp_path / "third"
    out = python_json(cluster, f"""
        import json, ray
        import pandas as pd
        from raygex.experiment.layout import ExperimentLayout
        ray.init(address={cluster.address!r}, logging_level="ERROR")
        head = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) == 0]
        layout = ExperimentLayout.open({experiment!r})
        files = layout.mirror.remote.files()
        studies = {{}}
        for study in ("subtype", "sgi"):
            board = layout.read_leaderboard(study)
            rows = pd.concat([pd.DataFrame(layout.trial_history(study, row)) for _, row in board.iterrows()])
            studies[study] = {{"nodes": sorted(set(rows["node_id"].dropna())),
                               "shares_memory": sorted(set(rows["shares_memory"].dropna().astype(bool))),
                               "model": f"models/{{study}}.pt" in files}}
        print(json.dumps({{"head": head, "studies": studies}}))
        """, cwd=third)
    print(f"[two studies on S3] {json.dumps(out['studies'])}")
    for study, figures in out["studies"].items():
        assert figures["model"], (study, figures)
        assert figures["nodes"] and set(figures["nodes"]).isdisjoint(out["head"]), (study, figures, out["head"])
    assert out["studies"]["subtype"]["shares_memory"] == [False]  # streamed batches
    assert out["studies"]["sgi"]["shares_memory"] == [True]  # zero-copy arrays from the object store

    status = cluster.run([sys.executable, "-m", "raygex", "status", experiment, "--json"], cwd=third)
    assert status.returncode == 0, status.stderr[-2000:]
    exported = cluster.run([sys.executable, "-m", "raygex", "export", experiment], cwd=third)
    assert exported.returncode == 0, exported.stderr[-2000:]
    report = cluster.run([sys.executable, "-m", "raygex", "report", experiment], cwd=third)
    assert report.returncode == 0 and "report.html" in report.stdout, report.stderr[-2000:] + report.stdout
    predicted = cluster.run([sys.executable, "-m", "raygex", "predict", f"{experiment}/models/subtype.pt",
                             f"s3://{bucket}/data/expression.parquet", "-o", f"s3://{bucket}/predictions.csv"],
                            cwd=third)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    rows = python_json(cluster, f"""
        import io, json, boto3
        import pandas as pd
        client = boto3.client("s3", endpoint_url={cluster.s3_endpoint!r}, region_name="us-east-1")
        body = client.get_object(Bucket={bucket!r}, Key="predictions.csv")["Body"].read()
        print(json.dumps(len(pd.read_csv(io.BytesIO(body)))))
        """)
    assert rows == 160
    assert sorted(p.name for p in third.iterdir()) == [], "nothing is written in the folder the commands ran from"


def test_a_search_submitted_as_a_ray_job_runs_on_the_head_and_its_output_reaches_the_job_logs(cluster, tmp_path):
    """`ray job submit --working-dir ... -- raygex search ... --address auto` to the head's dashboard (token
    auth on): the job's driver runs on the head, reads everything from the store, and its progress lines reach
    `ray job logs`."""
    bucket = "raygex-job"
    config = study_on_s3(cluster, tmp_path, bucket, train={"max_epochs": 3, "patience": 3, "batch_size": 32},
                         search={"num_samples": 4, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                 "space": SPACE}, **SWEEP_ONLY)
    job = tmp_path / "job"
    job.mkdir()
    (job / "tiny.yaml").write_text(config.read_text())
    storage = {k: cluster.env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                           "AWS_REGION", "AWS_ENDPOINT_URL")}
    ray = str(Path(sys.executable).with_name("ray"))
    submitted = cluster.run([ray, "job", "submit", "--address", cluster.dashboard, "--submission-id", "search-1",
                             "--working-dir", str(job), "--runtime-env-json", json.dumps({"env_vars": storage}),
                             "--", sys.executable, "-m", "raygex", "search", "tiny.yaml", "--address", "auto",
                             "--storage", f"s3://{bucket}/exp"], cwd=tmp_path / "driver", timeout=900)
    assert submitted.returncode == 0, submitted.stderr[-3000:] + submitted.stdout[-3000:]
    logs = cluster.run([ray, "job", "logs", "--address", cluster.dashboard, "search-1"], cwd=tmp_path / "driver")
    assert logs.returncode == 0, logs.stderr[-2000:]
    assert "[subtype 4/4]" in logs.stdout and "winner" in logs.stdout, logs.stdout[-3000:]
    status = cluster.run([sys.executable, "-m", "raygex", "status", f"s3://{bucket}/exp/tiny", "--json"],
                         cwd=tmp_path / "driver")
    assert status.returncode == 0, status.stderr[-2000:]


def test_a_node_that_cannot_reach_the_store_is_one_line_before_any_trial(cluster, tmp_path):
    """A third worker node whose image points the S3 client elsewhere (its own ``AWS_ENDPOINT_URL_S3``, which
    wins over the job's ``AWS_ENDPOINT_URL``): the driver reaches the store, that node does not. The search
    stops with one line naming the dataset, the node and what failed, exit 2, before any trial starts. (Last in
    the module: it leaves the shared cluster with a node that cannot read.)"""
    bucket = "raygex-unreachable"
    config = study_on_s3(cluster, tmp_path, bucket, train={"max_epochs": 2, "patience": 2, "batch_size": 32},
                         search={"num_samples": 4, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                                 "space": SPACE})
    cluster.start_worker(2, env={"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"})
    cluster.wait_for(4, 120)
    done = cluster.run([sys.executable, "-m", "raygex", "search", str(config), "--address", cluster.address,
                        "--storage", f"s3://{bucket}/exp"], cwd=tmp_path / "driver", timeout=600)
    # (Ray's C++ core warns once that this network has no route out: the cluster's, not raygex's, line)
    lines = [line for line in done.stderr.strip().splitlines() if "network_util.cc" not in line]
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"s3://{bucket}/data/expression.parquet" in lines[0] and "cannot be read from the node" in lines[0]
    assert "endpoint cannot be reached" in lines[0], lines[0]
    trials = python_json(cluster, f"""
        import json, boto3
        client = boto3.client("s3", endpoint_url={cluster.s3_endpoint!r}, region_name="us-east-1")
        keys = [o["Key"] for o in client.list_objects_v2(Bucket={bucket!r}).get("Contents", [])]
        print(json.dumps([k for k in keys if "/subtype/" in k and "result.json" in k]))
        """)
    assert trials == []
