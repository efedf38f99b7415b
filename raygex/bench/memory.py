"""`raygex bench memory CONFIG`: a whole `raygex search` run's memory, per kind of process, sampled as it runs.

The search runs as a child process (its own Ray, started by itself); every ``interval`` seconds each process of
its tree is read from ``/proc``: its proportional set size (``Pss`` in ``smaps_rollup``: pages shared between
processes, such as torch's libraries mapped by every worker, are split among them, so the kinds add up to the
memory the run uses) and its kind, from the title Ray gives its processes:

* ``driver``: the ``raygex search`` process;
* ``trial actors``: Tune's trial actors (``ray::ImplicitFunc``), the sweep's trials;
* ``retraining tasks``: the later stages' trainings (``ray::train``, the evaluation over split seeds and the swap);
* ``idle workers``: Ray workers between tasks (``ray::IDLE``);
* ``ray system``: the raylet, GCS, dashboard and their agents;
* ``W&B service``: W&B's local service process (offline runs too);
* ``other``: anything else in the tree.

Reported: each kind's peak (the largest sum over its processes in one sample) and the run's peak (the largest sum
over all processes in one sample; at most the sum of the kinds' peaks, which need not coincide), with the
machine's used memory (``MemTotal - MemAvailable``) at the start and at its peak for comparison. Linux only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

KINDS = ("driver", "trial actors", "retraining tasks", "idle workers", "ray system", "W&B service", "other")
RAY_SYSTEM = ("raylet", "gcs_server", "dashboard", "log_monitor", "monitor.py", "agent", "runtime_env", "plasma")


def kind_of(pid: int, root: int, cmdline: str) -> str:
    if pid == root:
        return "driver"
    if cmdline.startswith("ray::ImplicitFunc") or cmdline.startswith("ray::_Inner"):
        return "trial actors"
    if cmdline.startswith("ray::train"):
        return "retraining tasks"
    if cmdline.startswith("ray::IDLE"):
        return "idle workers"
    if any(name in cmdline.lower() for name in RAY_SYSTEM):
        return "ray system"
    if "wandb" in cmdline:
        return "W&B service"
    return "other"


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    return children


def tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children, out, stack = _children(), [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def pss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cmdline_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def used_mb() -> float:
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, value = line.split(":", 1)
            values[name] = int(value.split()[0])
    return (values["MemTotal"] - values["MemAvailable"]) / 1024


def sample(root: int, others: set | None = None) -> dict[str, float]:
    """One sample: PSS (MB) summed per kind over ``root``'s process tree (the titles of ``other`` processes added
    to ``others``)."""
    sums = dict.fromkeys(KINDS, 0.0)
    for pid in tree(root):
        pss = pss_mb(pid)
        if pss is not None:
            cmdline = cmdline_of(pid)
            kind = kind_of(pid, root, cmdline)
            sums[kind] += pss
            if kind == "other" and others is not None:
                others.add(cmdline[:60])
    return sums


class Sampler(threading.Thread):
    """Samples ``root``'s tree every ``interval`` seconds until stopped; keeps the peaks."""

    def __init__(self, root: int, interval: float):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peaks = dict.fromkeys(KINDS, 0.0)
        self.total_peak, self.samples, self.others = 0.0, 0, set()
        self.used_start, self.used_peak = used_mb(), 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            sums = sample(self.root, self.others)
            for kind, value in sums.items():
                self.peaks[kind] = max(self.peaks[kind], value)
            self.total_peak = max(self.total_peak, sum(sums.values()))
            self.used_peak = max(self.used_peak, used_mb())
            self.samples += 1
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def run_memory_benchmark(config: Path, storage: Path | None, overrides: list[str], *, interval: float = 0.5,
                         log=print) -> dict:
    """Run ``raygex search CONFIG`` and sample its memory (see the module's docstring)."""
    command = [sys.executable, "-m", "raygex", "search", str(config)]
    if storage is not None:
        command += ["--storage", str(storage)]
    for item in overrides:
        command += ["--set", item]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    sampler = Sampler(child.pid, interval)
    sampler.start()
    output = child.stdout.read() if child.stdout is not None else ""
    code = child.wait()
    sampler.stop()
    wall = time.perf_counter() - started
    if code != 0:
        log(output[-3000:])
    return {"command": "raygex " + " ".join(command[3:]), "exit_code": code, "other_titles": sorted(sampler.others), "wall_s": round(wall, 1),
            "samples": sampler.samples, "interval_s": interval,
            "peak_mb_by_kind": {k: round(v, 1) for k, v in sampler.peaks.items()},
            "peak_mb": round(sampler.total_peak, 1),
            "machine_used_mb": {"start": round(sampler.used_start, 1), "peak": round(sampler.used_peak, 1)}}


def format_memory(result: dict) -> list[str]:
    lines = [f"{result['command']}: exit {result['exit_code']}, {result['wall_s']:.0f} s, "
             f"{result['samples']} samples every {result['interval_s']} s",
             f"  {'process kind':18} {'peak PSS MB':>12}"]
    lines += [f"  {kind:18} {value:12.0f}" for kind, value in result["peak_mb_by_kind"].items()]
    if result["other_titles"]:
        lines.append(f"  ('other': {'; '.join(result['other_titles'][:6])})")
    used = result["machine_used_mb"]
    lines.append(f"  {'whole run (peak)':18} {result['peak_mb']:12.0f}   (machine used memory: {used['start']:.0f} MB "
                 f"at the start, {used['peak']:.0f} MB at its peak)")
    return lines
