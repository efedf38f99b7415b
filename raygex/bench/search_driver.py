"""A search in a fresh driver process, measuring its own memory: the driver of `raygex bench scale`.

The question the benchmark asks is whether the driver holds the data. A driver's RSS also grows by the code it
loads: the first search in a process imports Ray Data's readers, the Optuna storage's SQLAlchemy, SciPy for the
report's intervals, ... (about 165 MB, the same for any dataset). So the measurement is taken twice over:

* ``code_mb``: the RSS the driver gains by importing every module a search loads, before the search starts (the
  module list comes from a search of a tiny dataset on the same cluster: :func:`modules_a_search_loads`);
* ``growth``: the peak RSS during the search (``VmHWM``, reset just before it starts via ``/proc/self/clear_refs``)
  minus the RSS then: what the search itself holds, data and state.

Their sum is what a driver started for one search grows by. The driver lists the modules it imported during the
search anyway (``modules_during_search``), so a list that missed some shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_DRIVER = r"""
import json, sys, time
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))
import ray, torch, pandas, pyarrow  # noqa: F401
from raygex.config import load_config
from raygex.experiment.layout import ExperimentLayout
from raygex.pipeline import run_search
from raygex.runtime.ray_session import connect, storage_env
import importlib, os
config = load_config(sys.argv[1])
if os.environ.get("RAYGEX_COUNT_READS"):  # read tasks anywhere count their bytes: the job's environment says so
    ray.init(address=sys.argv[2], log_to_driver=False, runtime_env={"env_vars": {
        **storage_env(), "RAYGEX_COUNT_READS": os.environ["RAYGEX_COUNT_READS"]}})
connect(sys.argv[2])
code_before = status("VmRSS:")
if sys.argv[4]:  # the code a search loads, loaded before it starts: code is not the search's growth
    for name in open(sys.argv[4]).read().split():
        try:
            importlib.import_module(name)
        except BaseException:  # a module that only imports inside its package's own set-up
            pass
loaded = set(sys.modules)
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    reset = True
except OSError:
    reset = False
before = status("VmRSS:")
# where the RSS grows: sampled every 0.1 s, each rise put on the raygex function the main thread was then in
import threading
main_thread, rises, halt = threading.main_thread().ident, {}, threading.Event()
def where():
    frame = sys._current_frames().get(main_thread)
    while frame is not None and "/raygex/" not in frame.f_code.co_filename:
        frame = frame.f_back
    return (frame.f_code.co_filename.split("/raygex/")[-1] + ":" + frame.f_code.co_name) if frame else "(outside raygex)"
def sample_rss():
    last = status("VmRSS:")
    while not halt.wait(0.1):
        now = status("VmRSS:")
        if now > last:
            place = where()
            rises[place] = rises.get(place, 0) + now - last
        last = max(last, now)
threading.Thread(target=sample_rss, daemon=True).start()
if float(sys.argv[3]) > 0:  # a known allocation during the search (the test's check)
    import numpy
    ballast = numpy.ones(int(float(sys.argv[3]) * 2**20) // 8)
    del ballast
started = time.time()
experiment = run_search(config)
seconds = time.time() - started
peak = status("VmHWM:")
halt.set()
layout = ExperimentLayout.open(experiment)
trials = []
for study in [s.name for s in config.studies()]:
    board = layout.read_leaderboard(study)
    for _, row in board.iterrows():
        h = layout.trial_history(study, row)
        trials.append({"study": study, "start": float(h["wall_start"].min()), "end": float(h["wall_time"].max()),
                       "status": str(row["status"]), "shares_memory": bool(row.get("shares_memory", False))})
print("RAYGEX-SCALE " + json.dumps({
    "code_kib": before - code_before, "rss_before_kib": before, "peak_kib": peak, "peak_reset": reset,
    "seconds": seconds, "trials": trials, "experiment": str(experiment),
    "modules": sorted(sys.modules), "rises_kib": rises, "modules_during_search": sorted(set(sys.modules) - loaded)}))
"""


def run_driver(config: Path, address: str, sampler, *, modules: list[str] | None = None, ballast_mb: float = 0,
               timeout_s: float = 1800, env: dict | None = None) -> dict:
    """The search of ``config`` in a fresh driver process on the cluster at ``address`` (``sampler``, a thread
    with ``start``/``stop``, samples the nodes meanwhile), ``modules`` imported before it: what the driver
    measured of itself (code, RSS, trials, modules)."""
    env = {**os.environ, "RAY_ADDRESS": address, "WANDB_MODE": "disabled", **(env or {})}
    module_file = ""
    if modules:
        module_file = str(Path(config).with_suffix(".modules.txt"))
        Path(module_file).write_text("\n".join(modules))
    sampler.start()
    try:
        proc = subprocess.run([sys.executable, "-c", _DRIVER, str(config), address, str(ballast_mb), module_file],
                              env=env, capture_output=True, text=True, timeout=timeout_s)
    finally:
        sampler.stop()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RAYGEX-SCALE ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the search's driver failed (exit {proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RAYGEX-SCALE "):])


def code_figures(out: dict) -> dict:
    """The code loaded before the search, what the search imported all the same (top-level packages), and where
    the RSS rose during the search (the raygex functions the main thread was in, largest first: a sampled
    attribution, where the driver's own threads' allocations land on whatever the main thread was doing)."""
    during = out.get("modules_during_search", [])
    rises = sorted(out.get("rises_kib", {}).items(), key=lambda kv: -kv[1])
    return {"driver_code_mb": round(out.get("code_kib", 0) / 1024, 1),
            "driver_rises_mb": {place: round(kib / 1024, 1) for place, kib in rises[:8]},
            "modules_during_search": len(during),
            "packages_during_search": sorted({name.split(".")[0] for name in during})}
