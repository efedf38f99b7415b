"""A Ray cluster on this machine whose nodes share nothing but the network, as a cloud cluster's do.

Each node is ``ray start ... --block`` in a PID namespace of its own (``unshare --pid --fork --mount-proc
--kill-child``: killing the namespace kills the node, raylet, object store and workers alike, and nothing else).
The head offers no CPUs (``CPU: 0``, as ``cluster/cluster.yaml`` does), so every trial and data task runs on a
worker. Each worker node also gets a private ``/tmp`` (a tmpfs mounted in its own mount namespace) and starts in a
working directory inside it: Ray's session folder and spill files, and whatever a task writes in its working
directory, stay on that node; the driver's folders (the test's ``tmp_path`` lies under ``/tmp``) are not there. The
Python installation is the machine's, as a cluster image's would be. Nodes join over 127.0.0.1, each on its own
ports; the driver runs beside the head and attaches through the head's session sockets.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_tools() -> str | None:
    """Why this machine cannot host the cluster (None when it can)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return "needs Linux with util-linux's unshare"
    if os.geteuid() != 0:
        return "needs root (a private tmpfs per node, in its own mount namespace)"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--mount", "sh", "-c",
                            "mount -t tmpfs tmpfs /tmp && touch /tmp/probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a private /tmp (unshare --mount + tmpfs: {probe.stderr.strip()[:200]})"
    return None


class IsolatedCluster:
    """A head (``CPU: 0``) and ``workers`` worker nodes of ``cpus`` CPUs each; see the module's docstring."""

    def __init__(self, workspace: Path, *, workers: int = 2, cpus: int = 2, env: dict | None = None,
                 store_mb: int = 300):
        self.workspace = Path(workspace)
        self.port, self.dashboard_port = free_port(), free_port()
        self.n_workers, self.cpus, self.store_mb = workers, cpus, store_mb
        self.env = {**(env or os.environ), "RAY_USAGE_STATS_ENABLED": "0"}
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _start(self, name: str, command: str, private_tmp: bool) -> None:
        log = self.workspace / f"{name}.log"
        self.logs[name] = log
        prefix = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
        if private_tmp:
            # a node of its own: /tmp is a fresh tmpfs seen by this node only, its working directory inside it
            command = f"mount -t tmpfs -o size=4g tmpfs /tmp && mkdir -p /tmp/node && cd /tmp/node && {command}"
        self.nodes[name] = subprocess.Popen([*prefix, "sh", "-c", f"exec {command}" if not private_tmp else command],
                                            env=self.env, stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 120) -> "IsolatedCluster":
        self.workspace.mkdir(parents=True, exist_ok=True)
        common = (f"--node-ip-address 127.0.0.1 --object-store-memory {self.store_mb * 2**20} --block "
                  f"--disable-usage-stats")
        self._start("head", f"{RAY} start --head --port {self.port} --num-cpus 0 --num-gpus 0 "
                            f"--temp-dir {self.workspace / 'ray'} --include-dashboard true "
                            f"--dashboard-host 127.0.0.1 --dashboard-port {self.dashboard_port} {common}",
                    private_tmp=False)
        self.wait_for(1, timeout)
        for i in range(self.n_workers):
            resources = json.dumps({f"worker_{i}": 1})
            self._start(f"worker_{i}", f"{RAY} start --address {self.address} --num-cpus {self.cpus} "
                                       f"--num-gpus 0 --resources '{resources}' {common}", private_tmp=True)
        self.wait_for(1 + self.n_workers, timeout)
        return self

    def alive_nodes(self) -> list[dict]:
        """The cluster's live nodes, as Ray's state API lists them (asked from a short-lived process)."""
        script = ("import json, ray; ray.init(address=%r, logging_level='ERROR'); "
                  "print(json.dumps([{'id': n['NodeID'], 'resources': n['Resources']} "
                  "for n in ray.nodes() if n['Alive']]))" % self.address)
        done = subprocess.run([sys.executable, "-c", script], env=self.env, capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            return []
        return json.loads(done.stdout.strip().splitlines()[-1])

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name, p in self.nodes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"node {dead[0]} exited: {self.logs[dead[0]].read_text(errors='replace')[-2000:]}")
            if len(self.alive_nodes()) >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the cluster did not reach {count} nodes: "
                           + " | ".join(p.read_text(errors="replace")[-500:] for p in self.logs.values()))

    def kill(self, name: str) -> None:
        """SIGKILL a node: its namespace's pid 1 dies, and the kernel kills its raylet, store and workers."""
        process = self.nodes.get(name)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # unshare and the namespace (--kill-child)
            process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.nodes):
            self.kill(name)
        self.nodes.clear()

    def __enter__(self) -> "IsolatedCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
