"""A real `ray up` of cluster/local.yaml against this machine, a search submitted to it, its models back, `ray down`.

The "machine" is Debian's sshd on a high port of 127.0.0.1 with a key made for the run (tests/cluster/harness.py),
in its own PID namespace so that the cluster's `ray stop` cannot reach a Ray running elsewhere on this host. The
cluster file is cluster/local.yaml with the head pointed at 127.0.0.1 and these few test-only changes:

- SSH goes through ``auth.ssh_proxy_command`` (Ray's auth block has no port setting) to the sshd's port;
- the setup commands that pip-install raygex are dropped: ``~/raygex-venv`` is this interpreter's environment
  (the head runs on this machine), and the setup command that puts it on PATH runs unchanged;
- the head's ports are free ones (not 6379/8265, which another Ray here may hold), with 2 CPUs;
- the token copied to the head is one made for the run, not ~/.ray/auth_token.

Then, as cluster/README.md tells a user: `ray dashboard` (the SSH tunnel to the localhost-only dashboard),
`ray job submit` with RAY_AUTH_MODE=token, `ray job status`, `ray exec ... raygex status`, `ray rsync-down` of the
models, `ray up --restart-only` (a head restart) and `raygex resume` as a second job, and `ray down`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.cluster import harness
from tests.cluster.conftest import write_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.prefix) / "bin"


def cluster_file(machine: harness.SSHMachine, token: Path, ports: dict[str, int], name: str) -> dict:
    """cluster/local.yaml, pointed at the SSH machine on 127.0.0.1 (see the module docstring for what changes)."""
    config = yaml.safe_load((REPO / "cluster" / "local.yaml").read_text())
    config["cluster_name"] = name
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(machine.key),
                      "ssh_proxy_command": machine.proxy_command}
    assert "~/.ray/auth_token" in config["file_mounts"] and "~/raygex" in config["file_mounts"]
    config["file_mounts"]["~/.ray/auth_token"] = str(token)
    config["setup_commands"] = [c for c in config["setup_commands"] if "pip install" not in c]
    extra = (f" --num-cpus=2 --ray-client-server-port={ports['client']}"
             f" --dashboard-agent-listen-port={ports['agent']} --metrics-export-port={ports['metrics']}")
    head = []
    for command in config["head_start_ray_commands"]:
        if "ray start" in command:
            assert "--port=6379" in command and "--dashboard-port=8265" in command
            command = (command.replace("--port=6379", f"--port={ports['gcs']}")
                       .replace("--dashboard-port=8265", f"--dashboard-port={ports['dashboard']}") + extra)
        head.append(command)
    config["head_start_ray_commands"] = head
    return config


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a TCP socket listens on at ``port`` on this host (from /proc/net/tcp; sends nothing)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _, state = line.split()[1:4]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


class Launcher:
    """Runs Ray's CLI here, as a user would (launcher state in the workspace, not in /tmp/ray)."""

    def __init__(self, workspace: Path, cluster_yaml: Path, token: Path, log: list[str]):
        self.cluster_yaml = cluster_yaml
        self.log = log
        env = {k: v for k, v in os.environ.items()
               if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN")}
        (workspace / "launcher").mkdir()
        # Ray's launcher keeps the local cluster's state under RAY_TMPDIR and its config cache under TMPDIR.
        env.update(RAY_TMPDIR=str(workspace / "launcher"), TMPDIR=str(workspace / "launcher"),
                   RAY_USAGE_STATS_ENABLED="0", WANDB_MODE="offline",
                   PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                   # Ray 2.60 clients talk to a token-protected cluster only with these (cluster/README.md).
                   RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        self.env = env

    def __call__(self, *args: str, timeout: float = 300, check: bool = True,
                 quiet: bool = False) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = subprocess.run([str(BIN / "ray"), *args], cwd=REPO, env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        if not quiet:
            self.log.append(f"$ ray {' '.join(args)}  -> {result.returncode} in {time.monotonic() - started:.1f}s")
        if check and result.returncode != 0:
            raise AssertionError(f"ray {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def run_job(self, address: str, entrypoint: str, timeout: float = 480) -> str:
        job_id = f"raygex-{uuid.uuid4().hex[:8]}"
        self("job", "submit", "--address", address, "--submission-id", job_id, "--no-wait", "--",
             *shlex.split(entrypoint))
        started = deadline = time.monotonic()
        deadline += timeout
        status, polls = "", 0
        while time.monotonic() < deadline:  # watching it, as a user would
            status = self("job", "status", "--address", address, job_id, timeout=60, quiet=True).stdout.lower()
            polls += 1
            if any(f"job '{job_id}' {word}" in status for word in ("succeeded", "failed", "stopped")):
                break
            time.sleep(3)
        self.log.append(f"$ ray job status ... {job_id}  ({polls} polls) -> finished after "
                        f"{time.monotonic() - started:.0f}s")
        logs = self("job", "logs", "--address", address, job_id, timeout=60, check=False).stdout
        assert f"job '{job_id}' succeeded" in status, f"job {job_id} did not succeed:\n{status[-2000:]}\n{logs[-6000:]}"
        return logs


@pytest.fixture
def workspace():
    # Short and outside pytest's folders: Ray's socket paths live under it and must stay under 108 characters.
    folder = Path(tempfile.mkdtemp(prefix="rgx-", dir="/tmp"))
    folder.chmod(0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_ray_up_local_cluster_runs_a_search_and_ray_down_leaves_nothing(workspace, tiny_demo):
    reason = harness.missing_tools()
    if reason:
        pytest.skip(f"ray up test: {reason}")
    if not (BIN / "ray").exists():
        pytest.skip(f"ray up test: no ray CLI in {BIN}")
    from ray._private.authentication.authentication_token_generator import generate_new_authentication_token

    steps: list[str] = []
    started = time.monotonic()
    name = f"raygex-test-{uuid.uuid4().hex[:8]}"
    machine = harness.SSHMachine(workspace, {"RAY_TMPDIR": str(workspace / "node"), "WANDB_MODE": "offline",
                                             "RAY_USAGE_STATS_ENABLED": "0"})
    (workspace / "node").mkdir()
    token = workspace / "auth_token"
    token.write_text(generate_new_authentication_token())
    token.chmod(0o600)
    ports = {key: harness.free_port() for key in ("gcs", "dashboard", "client", "agent", "metrics", "tunnel")}
    cluster_yaml = workspace / "cluster.yaml"
    cluster_yaml.write_text(yaml.safe_dump(cluster_file(machine, token, ports, name), sort_keys=False))
    ray = Launcher(workspace, cluster_yaml, token, steps)

    (workspace / "experiment").mkdir()
    data = workspace / "demo"
    shutil.copytree(tiny_demo, data)
    experiment_config = write_config(
        workspace / "experiment" / "tiny.yaml", data, tasks=[{"name": "subtype", "kind": "classify",
                                                              "label": "subtype"}],
        train={"max_epochs": 2, "patience": 2, "batch_size": 32}, resources={"cpu": 1, "gpu": 0},
        search={"num_samples": 2, "max_concurrent": 2, "scheduler": {"kind": "fifo"},
                "space": {"model": ["mlp", "lr"], "lr": {"loguniform": ["1e-3", "1e-2"]}}})
    storage = workspace / "shared" / "results"
    experiment = storage / "tiny"

    tunnel = None
    up = False
    left: list[str] = []
    try:
        machine.start()
        home = machine.home
        os.symlink(sys.prefix, home / "raygex-venv")  # the environment local.yaml's setup commands put on PATH

        up = True  # from here on `ray down` runs, whatever happens
        ray("up", "-y", "--no-config-cache", "--disable-usage-stats", "--log-style", "record", "--log-color",
            "false", str(cluster_yaml), timeout=300)
        assert (home / "raygex" / "cluster" / "requirements.txt").exists(), "the repository was copied to the head"
        assert not (home / "raygex" / ".git").exists(), "rsync_exclude keeps .git off the nodes"
        assert (home / ".ray" / "auth_token").read_text() == token.read_text(), "the token went to the head"
        assert listening_addresses(ports["dashboard"]) == {"127.0.0.1"}, "the dashboard listens on localhost only"

        # The user's side: the dashboard through an SSH tunnel, then the jobs API with the token.
        tunnel = subprocess.Popen(
            [str(BIN / "ray"), "dashboard", "--no-config-cache", "--port", str(ports["tunnel"]),
             "--remote-port", str(ports["dashboard"]), str(cluster_yaml)],
            cwd=REPO, env=ray.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        address = f"http://127.0.0.1:{ports['tunnel']}"
        deadline = time.monotonic() + 60
        unauthenticated = None
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            try:
                direct.open(f"{address}/api/jobs/", timeout=5)
                unauthenticated = 200
            except urllib.error.HTTPError as err:
                unauthenticated = err.code
            except OSError:
                time.sleep(0.5)
                continue
            break
        assert unauthenticated == 401, f"the jobs API must refuse a request without the token ({unauthenticated})"

        logs = ray.run_job(address, f"raygex search {experiment_config} --address auto --storage {storage}")
        assert "exported to" in logs, logs[-3000:]
        status = ray("exec", "--no-config-cache", str(cluster_yaml), f"raygex status {experiment} --json").stdout
        summary = json.loads(next(line for line in status.splitlines()[::-1] if line.startswith("{")))
        assert summary["tasks"]["subtype"]["counts"], summary

        board = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
        assert len(board) == 2 and (board["status"] == "TERMINATED").all()
        fetched = workspace / "fetched"
        ray("rsync-down", str(cluster_yaml), f"{experiment}/models/", f"{fetched}/")
        assert (fetched / "subtype.pt").stat().st_size > 0, "the model came back"

        # A head restart (Ray restarted on the head), then `raygex resume`: finished trials are kept, none rerun.
        rows = {f: len(f.read_text().splitlines()) for f in (experiment / "subtype").glob("*/result.json")}
        assert len(rows) == 2
        ray("up", "-y", "--restart-only", "--no-config-cache", "--disable-usage-stats", "--log-style", "record",
            "--log-color", "false", str(cluster_yaml), timeout=300)
        logs = ray.run_job(address, f"raygex resume {experiment} --address auto")
        resumed = pd.read_parquet(experiment / "subtype" / "leaderboard.parquet")
        assert sorted(resumed["trial_id"]) == sorted(board["trial_id"]), logs[-3000:]
        assert {f: len(f.read_text().splitlines()) for f in rows} == rows, "no finished trial ran again"
    finally:
        if tunnel is not None:  # `ray dashboard` and its ssh, by their process group
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(tunnel.pid, sig)
                    tunnel.wait(timeout=30)
                    break
                except ProcessLookupError:
                    tunnel.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if up:
            try:
                ray("down", "-y", "--log-style", "record", "--log-color", "false", str(cluster_yaml), timeout=180,
                    check=False)
            except subprocess.TimeoutExpired:
                steps.append("ray down timed out: the namespace's end stops what it left")
        left = [_cmdline(pid) for pid in machine.namespace_pids()]  # what `ray down` left on the "machine"
        machine.stop()
        control = harness.ssh_control_dir(name)
        shutil.rmtree(control, ignore_errors=True)
        try:
            control.parent.rmdir()  # only when no other cluster's sockets are there
        except OSError:
            pass
        for cache in Path(tempfile.gettempdir()).glob("ray-config-*"):  # in case TMPDIR was not honoured
            if f'"{name}"' in cache.read_text(errors="replace"):
                cache.unlink()
    steps.append(f"total {time.monotonic() - started:.0f}s")
    print("\n[ray up] " + "\n[ray up] ".join(steps))
    markers = ("raylet", "gcs_server", "ray::", "dashboard", "ray/_private")
    ray_left = [c for c in left if any(m in c for m in markers)]
    assert not ray_left, f"Ray processes outlived `ray down`: {ray_left}"
    # Nothing of the test cluster runs on: SSH masters close once their sshd is gone.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        strays = [pid for pid in os.listdir("/proc") if pid.isdigit() and str(workspace) in _cmdline(pid)]
        if not strays:
            break
        time.sleep(0.5)
    assert not strays, f"processes of the test cluster still running: {[_cmdline(p) for p in strays]}"


def _cmdline(pid) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
