"""W&B through `raygex search`: a run per trial and a summary run per task (offline), nothing when disabled, and
one warning (never a failed sweep) when W&B cannot start.

Offline runs are read back from their ``.wandb`` transaction logs (wandb 0.31 ships no Python reader: the format
is a LevelDB-style log of ``wandb_internal_pb2.Record`` protobufs, read by ``read_records`` below).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
from pathlib import Path

import pandas as pd
import pytest

from tests.search.conftest import SWEEP_ONLY, write_config

FAKE_KEY = "raygex_fake_api_key_" + "0123456789" * 3  # a well-formed key wandb would send, recognisable in files
SEARCH = {"num_samples": 3, "max_concurrent": 2, "scheduler": {"kind": "asha", "grace_period": 1},
          "space": {"model": ["gcn", "mlp", "lr"], "graph": ["true"], "depth": {"int": [1, 2]},
                    "channels": {"choice": [4, 8]}, "embedding": {"choice": [1, 4]}, "hidden": {"choice": [16, 32]},
                    "dropout": {"float": [0.0, 0.3]}, "lr": {"loguniform": ["1e-3", "1e-2"]}}}
TASKS = ("subtype", "sgi")
W_AND_B_LINE = re.compile(r"W&B|wandb", re.IGNORECASE)


def read_records(path: Path):
    """Every Record of a ``.wandb`` file: a 7-byte header (``:W&B``, 0xBEE1, version), then 32 KiB blocks of
    chunks, each with a 7-byte header (checksum, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, magic, _ = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1, f"{path} is not a W&B transaction log"
    block, position, chunks = 32768, 7, []
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0 and length == 0:
            break
        chunks.append(data[position + 7:position + 7 + length])
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            chunks = []
            yield record


def read_run(run_dir: Path) -> dict:
    """An offline run's identity, config, history rows, summary and artifacts, from its transaction log."""
    (log,) = run_dir.glob("run-*.wandb")
    run, history, summary, artifacts = None, [], {}, []
    for record in read_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "history":
            row: dict = {}
            for item in record.history.item:  # a logged dict (a table, an image) comes as nested keys
                keys = [item.key] if item.key else list(item.nested_key)
                node = row
                for key in keys[:-1]:
                    node = node.setdefault(key, {})
                node[keys[-1]] = json.loads(item.value_json)
            history.append(row)
        elif kind == "summary":
            summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.summary.update})
        elif kind == "artifact":
            artifacts.append(record.artifact)
    assert run is not None, f"{log} has no run record"
    return {"id": run.run_id, "name": run.display_name, "group": run.run_group, "job_type": run.job_type,
            "tags": list(run.tags), "project": run.project, "dir": run_dir, "history": history,
            "summary": summary, "artifacts": artifacts,
            "config": {item.key: json.loads(item.value_json) for item in run.config.update}}


def w_and_b_lines(out: str, err: str) -> list[str]:
    return [line for line in (out + err).splitlines() if W_AND_B_LINE.search(line)]


def sweep(run_cli, config: Path) -> tuple[int, str, str]:
    import ray

    try:
        return run_cli("search", config)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def offline_sweep(tiny_demo, tmp_path_factory):
    """An offline sweep configured in the config (WANDB_MODE unset), with a fake API key in the environment."""
    import ray

    from raygex.cli import main

    folder = tmp_path_factory.mktemp("sweep")
    config = write_config(folder / "tiny.yaml", tiny_demo, search=SEARCH,
                          wandb={"project": "raygex-test", "mode": "offline"})
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        patch.delenv("WANDB_MODE", raising=False)
        patch.setenv("WANDB_API_KEY", FAKE_KEY)
        try:
            with pytest.raises(SystemExit) as exit_info:
                main(["search", str(config)])
            ray_logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
        finally:
            ray.shutdown()
    assert exit_info.value.code == 0, err.getvalue()
    exp_dir = folder / "results" / "tiny"
    runs = [read_run(path) for path in sorted((exp_dir / "wandb").glob("offline-run-*"))]
    return {"exp_dir": exp_dir, "runs": runs, "out": out.getvalue(), "err": err.getvalue(), "ray_logs": ray_logs}


def test_every_trial_has_an_offline_run_with_its_epochs(offline_sweep):
    exp_dir, runs = offline_sweep["exp_dir"], offline_sweep["runs"]
    assert w_and_b_lines(offline_sweep["out"], offline_sweep["err"]) == [], "an offline sweep says nothing about W&B"
    trial_runs = [run for run in runs if run["job_type"] == "trial"]
    for task in TASKS:
        board = pd.read_parquet(exp_dir / task / "leaderboard.parquet")
        by_id = {run["id"]: run for run in trial_runs if run["group"] == f"tiny/{task}"}
        assert set(by_id) == set(board["trial_id"]), f"task {task}: one W&B run per trial"
        for _, row in board.iterrows():
            run = by_id[row["trial_id"]]
            assert run["project"] == "raygex-test" and run["name"] == f"{task}-{row['trial_id']}"
            assert set(run["tags"]) == {"tiny", task}
            assert run["config"]["model"] == row["config/model"] and run["config"]["task"] == task
            epochs = [step["epoch"] for step in run["history"] if "epoch" in step]
            assert epochs == list(range(1, int(row["epoch"]) + 1)), "one history row per epoch, in order"
            best = [step["best_valid_auc"] for step in run["history"] if "best_valid_auc" in step]
            assert best[-1] == pytest.approx(row["best_valid_auc"])
            assert all("valid_auc" in step and "train_loss" in step for step in run["history"] if "epoch" in step)


def test_each_task_has_a_summary_run_with_leaderboard_figures_and_model(offline_sweep):
    exp_dir, runs = offline_sweep["exp_dir"], offline_sweep["runs"]
    for task in TASKS:
        (summary,) = [run for run in runs if run["job_type"] == "summary" and run["group"] == f"tiny/{task}"]
        assert summary["name"] == f"{task}-summary"
        (logged,) = summary["history"]
        table = logged["leaderboard"]
        assert table["_type"] == "table-file"
        content = json.loads((summary["dir"] / "files" / table["path"]).read_text())
        trial_ids = [row[content["columns"].index("trial_id")] for row in content["data"]]
        board = pd.read_parquet(exp_dir / task / "leaderboard.parquet")
        assert trial_ids == list(board["trial_id"]), "the leaderboard, in rank order"
        figures = {key for key, value in logged.items() if key.startswith("figures/")}
        assert figures, "the task's figures are logged"
        assert all(logged[key]["_type"] == "image-file" for key in figures)
        won = board[board["winner"]].iloc[0]
        assert summary["summary"]["winner/trial_id"] == won["trial_id"]
        assert summary["summary"]["n_trials"] == len(board)
        artifacts = [artifact for artifact in summary["artifacts"] if artifact.type == "model"]
        assert [(a.type, a.name) for a in artifacts] == [("model", f"tiny-{task}-model")]
        metadata = json.loads(artifacts[0].metadata)
        assert metadata["trial_id"] == won["trial_id"] and metadata["n_genes"] > 0
        # the study's graph verdicts ride along: as a table, and one summary key per graph and control
        from raygex.experiment.layout import ExperimentLayout

        verdicts = ExperimentLayout.open(exp_dir).read_verdicts(task)
        assert len(verdicts) and logged["verdicts"]["_type"] == "table-file"
        assert {k: v for k, v in summary["summary"].items() if k.startswith("verdict/")} == {
            f"verdict/{g}/{c}": w for g, c, w in zip(verdicts["graph"], verdicts["control"], verdicts["verdict"])}


def test_api_key_is_written_nowhere(offline_sweep):
    """Not in the experiment folder (W&B runs, Tune state, checkpoints, models, report), nor the output, nor
    Ray's session logs (Ray's own callback would log it there, sending it to its logger as a runtime_env)."""
    assert offline_sweep["runs"] and FAKE_KEY not in offline_sweep["out"] + offline_sweep["err"]
    files = [path for folder in (offline_sweep["exp_dir"], offline_sweep["ray_logs"]) for path in folder.rglob("*")
             if path.is_file() and not path.is_symlink()]
    assert any(path.is_relative_to(offline_sweep["ray_logs"]) for path in files), "Ray's logs were read"
    for path in files:
        assert FAKE_KEY.encode() not in path.read_bytes(), f"the API key leaked into {path}"


def test_disabled_writes_no_runs(tiny_demo, tmp_path_factory, run_cli):
    folder = tmp_path_factory.mktemp("sweep")
    # The environment wins over the config's mode (tests/conftest.py sets WANDB_MODE=disabled).
    config = write_config(folder / "tiny.yaml", tiny_demo, search=SEARCH, **SWEEP_ONLY,
                          wandb={"project": "raygex-test", "mode": "offline"})
    code, out, err = sweep(run_cli, config)
    assert code == 0, err
    exp_dir = folder / "results" / "tiny"
    assert (exp_dir / "sgi" / "leaderboard.parquet").is_file()
    assert not list(exp_dir.rglob("wandb")), "no W&B files when disabled"
    assert len(w_and_b_lines(out, err)) <= 1, out + err


def test_unreachable_server_warns_once_and_the_sweep_completes(tiny_demo, tmp_path_factory, run_cli, monkeypatch):
    folder = tmp_path_factory.mktemp("sweep")
    config = write_config(folder / "tiny.yaml", tiny_demo, search=SEARCH, **SWEEP_ONLY,
                          wandb={"project": "raygex-test", "mode": "online"})
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    code, out, err = sweep(run_cli, config)
    assert code == 0, err
    exp_dir = folder / "results" / "tiny"
    for task in TASKS:
        assert len(pd.read_parquet(exp_dir / task / "leaderboard.parquet")) == 3
        assert (exp_dir / "models" / f"{task}.pt").is_file()
    lines = w_and_b_lines(out, err)
    assert len(lines) == 1 and lines[0].startswith("raygex: warning: W&B logging is off: "), lines
    assert FAKE_KEY not in out + err
    assert not list((exp_dir / "wandb").glob("*run-*")), "no run was started"


# --- failure points without a sweep ---------------------------------------------------------------------------


@pytest.fixture
def config(tiny_demo, tmp_path, monkeypatch):
    from raygex.config import load_config

    monkeypatch.setenv("WANDB_MODE", "offline")
    return load_config(write_config(tmp_path / "tiny.yaml", tiny_demo, search=SEARCH,
                                    wandb={"project": "raygex-test", "mode": "offline"}))


def test_mode_comes_from_the_environment_first(config, monkeypatch):
    from raygex.runtime.wandb_guard import wandb_mode

    assert wandb_mode(config) == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(config) == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_mode(config.model_copy(update={"wandb": config.wandb.model_copy(update={"mode": "online"})})) == \
        "online"


def test_wandb_not_importable_warns_once(config, tmp_path, monkeypatch, capsys):
    import sys

    from raygex.report.wandb_summary import log_task_summary
    from raygex.search.wandb_trials import trial_callbacks

    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    exp_dir = tmp_path / "exp"
    assert trial_callbacks(config, exp_dir, "subtype") == []
    log_task_summary(config, exp_dir, "subtype", pd.DataFrame({"trial_id": ["a"]}), None, {})
    assert trial_callbacks(config, exp_dir, "sgi") == []
    err = capsys.readouterr().err
    assert err.count("W&B logging is off") == 1 and "wandb cannot be imported" in err, err


def test_failing_summary_run_warns_once_and_never_raises(config, tmp_path, monkeypatch, capsys):
    import wandb

    from raygex.report.wandb_summary import log_task_summary

    def refuse(*args, **kwargs):
        raise wandb.errors.CommError("the service went away")

    monkeypatch.setattr(wandb, "init", refuse)
    board = pd.DataFrame({"trial_id": ["a", "b"], "best_valid_auc": [0.9, 0.8]})
    for task in TASKS:
        log_task_summary(config, tmp_path / "exp", task, board, None, {})
    err = capsys.readouterr().err
    assert err.count("W&B logging is off") == 1 and "CommError: the service went away" in err, err


class FakeTrial:
    """What the trial logger reads of a Tune trial."""

    def __init__(self, trial_id: str):
        self.trial_id, self.config = trial_id, {"model": "mlp", "lr": 0.01}


def test_trial_logger_hooks_return_at_once_and_the_runs_are_written_in_the_background(tmp_path):
    """The hooks Tune calls in its result loop only queue the event (no W&B call on the caller's thread); the
    writer thread opens one run per trial, several at once, and writes every row."""
    import threading

    import wandb

    from raygex.search.wandb_trials import TrialLogger

    callback = TrialLogger(tmp_path, "subtype", {"task": "subtype"}, project="raygex-test", group="tiny/subtype",
                           mode="offline", dir=str(tmp_path), job_type="trial", settings={"silent": True})
    trials = [FakeTrial(f"t{i:04d}") for i in range(2)]
    caller, calls = threading.get_ident(), []
    real_init = wandb.init

    def watched_init(*args, **kwargs):
        calls.append((threading.get_ident(), kwargs.get("id")))
        return real_init(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wandb, "init", watched_init)
        for trial in trials:
            callback.on_trial_start(0, trials, trial)
        for epoch in (1, 2, 3):
            for trial in trials:
                callback.on_trial_result(epoch, trials, trial, {"epoch": epoch, "valid_auc": 0.5 + epoch / 10,
                                                                "config": {"lr": 0.01}, "device": "cpu"})
        callback.on_trial_complete(3, trials, trials[0])
        callback.on_trial_error(3, trials, trials[1])
        callback.on_experiment_end(trials)
    ours = [thread for thread, run_id in calls if run_id in ("t0000", "t0001")]
    assert len(ours) == 2 and caller not in ours, f"wandb.init calls (thread, id): {calls}; caller {caller}"
    runs = {run["id"]: run for run in map(read_run, sorted((tmp_path / "wandb").glob("offline-run-*")))}
    assert set(runs) == {"t0000", "t0001"}
    for run in runs.values():
        assert [row["epoch"] for row in run["history"]] == [1, 2, 3]
        assert all("device" not in row and "config" not in row for row in run["history"])
        assert run["config"]["model"] == "mlp" and run["config"]["task"] == "subtype"


def test_a_failing_trial_logger_warns_once_and_stops_logging(tmp_path, capsys):
    """A wandb.init that fails in the writer (a project name W&B refuses, which the driver-side check would have
    caught): every hook returns, one warning, no further runs."""
    from raygex.search.wandb_trials import TrialLogger

    callback = TrialLogger(tmp_path, "subtype", {"task": "subtype"}, project="no/slashes", group="tiny/subtype",
                           mode="offline", dir=str(tmp_path), job_type="trial", settings={"silent": True})
    trials = [FakeTrial(f"t{i:04d}") for i in range(3)]
    for trial in trials[:2]:
        callback.on_trial_start(0, trials, trial)
    for epoch in (1, 2):
        for trial in trials[:2]:
            callback.on_trial_result(epoch, trials, trial, {"epoch": epoch, "valid_auc": 0.5})
    for trial in trials[:2]:
        callback.on_trial_complete(2, trials, trial)
    callback.on_experiment_end(trials[:2])
    callback.on_trial_start(0, trials, trials[2])  # W&B is off for this experiment now: nothing queued
    callback.on_trial_result(1, trials, trials[2], {"epoch": 1})
    assert callback.writer.runs == {} and callback.writer.written == []
    assert not list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "W&B logging is off" in line]
    assert len(lines) == 1 and "project" in lines[0].lower(), err
