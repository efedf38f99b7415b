"""A Ray cluster on this machine whose nodes share nothing but an object store, as a cloud cluster's do.

- **Network**: the cluster lives in a network namespace of its own whose only interface is the loopback, so every
  node, driver and the S3 server (moto, the only shared storage) meet on 127.0.0.1 and nothing else is reachable
  (Ray then takes 127.0.0.1 as every node's address). :meth:`IsolatedCluster.run` runs a command in it.
- **Nodes**: each is ``ray start ... --block`` in a PID namespace of its own (``unshare --pid --fork --mount-proc
  --kill-child``: killing it kills the node's raylet, object store and workers, and nothing else), on its own
  ports. The head offers no CPUs (``CPU: 0``, as ``cluster/cluster.yaml`` does), so every trial and data task runs
  on a worker.
- **Files**: each worker node has a private ``/tmp`` (a tmpfs in its own mount namespace) and starts in a working
  directory inside it: Ray's session folder and spill files, and what a task writes in its working directory,
  stay on that node; the driver's folders (a test's ``tmp_path`` is under ``/tmp``) are not there. The Python
  installation is the machine's, as a cluster image's would be. The driver runs beside the head and attaches
  through the head's session sockets.
- **Credentials**: worker nodes start without any storage setting; the store's endpoint and credentials reach
  their tasks only through the job (raygex passes the driver's to the job's runtime environment).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ray._private.authentication.authentication_token_generator import generate_new_authentication_token

RAY = str(Path(sys.executable).with_name("ray"))
STORAGE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION",
               "AWS_ENDPOINT_URL", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def missing_tools() -> str | None:
    """Why this machine cannot host the cluster (None when it can)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "needs Linux with util-linux's unshare and nsenter"
    if shutil.which("ip") is None:
        return "needs iproute2's ip (to bring up the loopback of the cluster's network)"
    if os.geteuid() != 0:
        return "needs root (network, PID and mount namespaces)"
    probe = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c",
                            "mount -t tmpfs tmpfs /tmp && touch /tmp/probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make namespaces (unshare: {probe.stderr.strip()[:200]})"
    return None


class IsolatedCluster:
    """A head (``CPU: 0``) and ``workers`` worker nodes of ``cpus`` CPUs each, and an S3 server; see the module."""

    S3_PORT, GCS_PORT, DASHBOARD_PORT = 9000, 6379, 8265  # inside the cluster's own network: nothing else there

    def __init__(self, workspace: Path, *, workers: int = 2, cpus: int = 2, store_mb: int = 300):
        self.workspace = Path(workspace)
        self.n_workers, self.cpus, self.store_mb = workers, cpus, store_mb
        base = {k: v for k, v in os.environ.items()
                if k not in STORAGE_ENV and k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
        # token authentication, as the cluster files run it, with a token of the cluster's own (given as a value:
        # a worker node's /tmp, where a test's files are, is its own)
        self.node_env = {**base, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
                         "RAY_AUTH_TOKEN": generate_new_authentication_token()}  # and no storage setting
        self.env = {**self.node_env, **FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.s3_endpoint,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull,
                    "WANDB_MODE": "disabled"}
        self.nodes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.network: subprocess.Popen | None = None
        self.s3: subprocess.Popen | None = None
        # the head's session folder: short, as a Unix socket's path must be (107 bytes at most)
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="rgx-"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.GCS_PORT}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.DASHBOARD_PORT}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.S3_PORT}"

    @property
    def enter(self) -> list[str]:
        """Into the cluster's network (to start a node or the S3 server)."""
        assert self.network is not None, "start the cluster first"
        return ["nsenter", f"--net=/proc/{self.network.pid}/ns/net"]

    @property
    def enter_head(self) -> list[str]:
        """Into the head's network, PID and mount namespaces: where a driver runs (its raylet watches the driver's
        pid, so the two must see the same pids)."""
        head = self.nodes["head"].pid
        deadline = time.monotonic() + 20
        while True:  # the namespace's pid 1: unshare's child, once it has forked
            children = Path(f"/proc/{head}/task/{head}/children").read_text().split()
            if children or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return ["nsenter", "--target", children[0], "--net", "--pid", "--mount"]

    # -- running things inside --------------------------------------------------------------------------------------
    def run(self, args: list[str], *, cwd=None, timeout: float = 600, env: dict | None = None):
        """A command beside the head (a driver, a CLI call), as the user's shell on the head would run it."""
        where = self.enter_head if "head" in self.nodes else self.enter
        if cwd is not None:  # nsenter would start it in / otherwise
            where = [*where, f"--wd={Path(cwd).resolve()}"]
        return subprocess.run([*where, *args], env=env or self.env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)

    def popen(self, args: list[str], *, cwd, log: Path) -> subprocess.Popen:
        """:meth:`run` in the background (a driver to be watched or killed); its output goes to ``log``."""
        where = [*self.enter_head, f"--wd={Path(cwd).resolve()}"]
        return subprocess.Popen([*where, *args], env=self.env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def python(self, script: str, *, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.run([sys.executable, "-c", script], cwd=cwd, timeout=timeout)

    def _spawn(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = self.workspace / f"{name}.log"
        self.logs[name] = log
        process = subprocess.Popen([*self.enter, *args], env=env, stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes[name] = process
        return process

    def start_node(self, name: str, command: str, *, private_tmp: bool, env: dict | None = None) -> None:
        if private_tmp:  # a node of its own: /tmp a fresh tmpfs only it sees, its working directory inside it
            command = f"mount -t tmpfs -o size=4g tmpfs /tmp && mkdir -p /tmp/node && cd /tmp/node && exec {command}"
        else:
            command = f"exec {command}"
        self._spawn(name, ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", command],
                    {**self.node_env, **(env or {})})

    def start(self, timeout: float = 180) -> "IsolatedCluster":
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.network = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)
        self.s3 = self._spawn("s3", [sys.executable, "-c", "from moto.server import main; "
                                     f"main(['-H', '127.0.0.1', '-p', '{self.S3_PORT}'])"], self.node_env)
        common = (f"--node-ip-address 127.0.0.1 --object-store-memory {self.store_mb * 2**20} --block "
                  f"--disable-usage-stats --num-gpus 0")
        self.start_node("head", f"{RAY} start --head --port {self.GCS_PORT} --num-cpus 0 --temp-dir {self.ray_tmp} "
                                f"--include-dashboard true --dashboard-host 127.0.0.1 "
                                f"--dashboard-port {self.DASHBOARD_PORT} {common}", private_tmp=False)
        self.wait_for(1, timeout)
        for i in range(self.n_workers):
            self.start_worker(i)
        self.wait_for(1 + self.n_workers, timeout)
        return self

    def start_worker(self, i: int, env: dict | None = None) -> None:
        """Worker node ``i`` (resource ``worker_i``); ``env``: variables of its own (a node set up differently)."""
        resources = json.dumps({f"worker_{i}": 1})
        self.start_node(f"worker_{i}", f"{RAY} start --address {self.address} --num-cpus {self.cpus} "
                                       f"--resources '{resources}' --node-ip-address 127.0.0.1 "
                                       f"--object-store-memory {self.store_mb * 2**20} --block "
                                       f"--disable-usage-stats --num-gpus 0", private_tmp=True, env=env)

    def alive_nodes(self) -> list[dict]:
        """The cluster's live nodes (id, resources), asked from a short-lived driver."""
        script = ("import json, ray; ray.init(address=%r, logging_level='ERROR'); "
                  "print(json.dumps([{'id': n['NodeID'], 'resources': n['Resources']} "
                  "for n in ray.nodes() if n['Alive']]))" % self.address)
        try:
            done = self.python(script, timeout=60)
        except subprocess.TimeoutExpired:
            return []
        if done.returncode != 0:
            return []
        return json.loads(done.stdout.strip().splitlines()[-1])

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name, p in self.nodes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited: {self.logs[dead[0]].read_text(errors='replace')[-2000:]}")
            if len(self.alive_nodes()) >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the cluster did not reach {count} nodes: "
                           + " | ".join(p.read_text(errors="replace")[-500:] for p in self.logs.values()))

    # -- ending -----------------------------------------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL a node (or the S3 server): the namespace's pid 1 dies, and the kernel kills the rest of it."""
        process = self.nodes.get(name)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.nodes):
            self.kill(name)
        self.nodes.clear()
        if self.network is not None and self.network.poll() is None:
            os.killpg(self.network.pid, signal.SIGKILL)
            self.network.wait(timeout=30)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)

    def __enter__(self) -> "IsolatedCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
