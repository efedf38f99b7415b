"""A real SSH "machine" on this host for `ray up` tests: Debian's sshd on a high loopback port, in a PID namespace.

The sshd runs under ``unshare --pid --fork --mount-proc --kill-child``: everything started through it (the Ray head
that `ray up` starts, its job drivers and workers) lives in that namespace, so the cluster's own ``ray stop`` (which
`ray up` and `ray down` run, and which kills every Ray process it can see) cannot touch a Ray running elsewhere on
this machine, and ending the namespace ends whatever the cluster left behind. Its sessions get their own ``HOME``
and Ray temp dir (``RAY_TMPDIR``) inside a throw-away workspace, so nothing lands in root's home or /tmp/ray.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from getpass import getuser
from pathlib import Path

SSHD = "/usr/sbin/sshd"
RELAY = Path(__file__).with_name("tcp_relay.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_tools() -> str | None:
    """Why this machine cannot host the SSH cluster (None when it can); installs Debian's packages when missing."""
    if os.geteuid() != 0:
        return "needs root (an sshd for root on 127.0.0.1, in its own PID namespace)"
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return "needs Linux with util-linux's unshare"
    if not (os.path.exists(SSHD) and shutil.which("rsync") and shutil.which("ssh")):
        if shutil.which("apt-get"):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in (["apt-get", "update", "-qq"],
                            ["apt-get", "install", "-y", "-qq", "openssh-server", "openssh-client", "rsync"]):
                try:
                    subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
                except (OSError, subprocess.TimeoutExpired):
                    break
        if not (os.path.exists(SSHD) and shutil.which("rsync") and shutil.which("ssh")):
            return "needs Debian's openssh-server and rsync (apt-get install openssh-server rsync failed)"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a PID namespace (unshare --pid --fork --mount-proc: {probe.stderr.strip()})"
    return None


class SSHMachine:
    """sshd for root on 127.0.0.1:<port>, key-only, with a key made for this run, in a fresh PID namespace."""

    def __init__(self, workspace: Path, env: dict[str, str]):
        self.workspace = workspace
        self.home = workspace / "home"
        self.port = free_port()
        self.key = workspace / "ssh" / "client_key"
        self.process: subprocess.Popen | None = None
        self._log_file = None
        self.log = workspace / "ssh" / "sshd.log"
        self.env = env

    def start(self) -> None:
        ssh_dir = self.key.parent
        ssh_dir.mkdir(parents=True, mode=0o700)
        self.home.mkdir(parents=True, exist_ok=True)
        for name in ("client_key", "host_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "raygex-ray-up-test",
                            "-f", str(ssh_dir / name)], check=True)
        shutil.copy(ssh_dir / "client_key.pub", ssh_dir / "authorized_keys")
        set_env = " ".join(f'"{k}={v}"' for k, v in self.env.items())
        config = ssh_dir / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {ssh_dir / 'host_key'}",
            f"AuthorizedKeysFile {ssh_dir / 'authorized_keys'}",
            "PidFile none",
            "AllowUsers root",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "MaxSessions 50",
            "MaxStartups 50",
            f"SetEnv HOME={self.home} {set_env}",
            "",
        ]))
        self._log_file = open(self.log, "ab")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        subprocess.run([SSHD, "-t", "-f", str(config)], check=True, capture_output=True, text=True)
        self.process = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
             SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"sshd did not start: {self.log.read_text(errors='replace')[-2000:]}")

    @property
    def proxy_command(self) -> str:
        return f"{sys.executable} {RELAY} %h {self.port}"

    def ssh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
             "-o", f"UserKnownHostsFile={os.devnull}", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
             "-o", f"ProxyCommand={self.proxy_command}", "root@127.0.0.1", command],
            capture_output=True, text=True, timeout=timeout)

    def namespace_pids(self) -> list[int]:
        """Host pids of every process in the machine's PID namespace (sshd and all it started)."""
        if self.process is None or self.process.poll() is not None:
            return []
        try:
            own = os.readlink(f"/proc/{self.process.pid}/ns/pid")
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        if not children:
            return []
        target = os.readlink(f"/proc/{children[0]}/ns/pid")
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "pid") == target != own:
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def stop(self) -> list[int]:
        """End the namespace (sshd is its pid 1: the kernel kills everything left in it); returns what was left."""
        left = self.namespace_pids()
        if self.process is not None and self.process.poll() is None:
            # unshare ignores SIGTERM while it waits; SIGKILL it and --kill-child SIGKILLs sshd, the namespace's
            # pid 1, whereupon the kernel kills every process left in the namespace.
            self.process.kill()
            self.process.wait(timeout=20)
        if self._log_file is not None:
            self._log_file.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(pid) for pid in left):
            time.sleep(0.2)
        for pid in left:  # by pid, only those that were in the namespace
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        return left


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def ssh_control_dir(cluster_name: str) -> Path:
    """The ControlMaster socket folder Ray's SSH command runner uses for a cluster (removed after the test)."""
    user = hashlib.sha256(getuser().encode()).hexdigest()[:10]
    cluster = hashlib.sha256(cluster_name.encode()).hexdigest()[:10]
    return Path("/tmp") / f"ray_ssh_{user}" / cluster  # fixed in Ray's SSHCommandRunner
