"""`raygex bench soak`: many short trials, the driver SIGKILLed several times, resumed each time.

Counts what an interruption may cost: trials lost (finished before a kill, missing or changed after), trials
run twice (the same configuration twice in the final leaderboard), and the wall-time overhead against the same
sweep run without interruptions (``baseline=True``). Not part of CI: it takes minutes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml


def _finished(task_dir: Path, max_epochs: int) -> dict[str, float]:
    done = {}
    for result_file in task_dir.glob("*/result.json"):
        rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if rows and (rows[-1].get("done") or rows[-1].get("epoch") == max_epochs):
            done[rows[-1]["trial_id"]] = rows[-1].get("best_valid_auc")
    return done


def _kill(process: subprocess.Popen) -> None:
    import psutil

    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    for child in children:  # the local Ray this driver started
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=60)


def _setup(workdir: Path, trials: int, concurrent: int, max_epochs: int, name: str) -> Path:
    from raygex.data.canonical import write_dataset
    from raygex.data.demo import make_demo_cohort

    data = workdir / "expression.parquet"
    if not data.exists():
        dataset, _, _ = make_demo_cohort(0, n_samples=200, n_genes=120)
        write_dataset(dataset, data)
    config = {"name": name, "data": {"expression": str(data)}, "storage": str(workdir / "results"),
              "tasks": [{"name": "subtype", "kind": "classify", "label": "subtype"}],
              "split": {"train": 0.5, "valid": 0.25, "test": 0.25, "seeds": [0], "folds": None},
              "train": {"max_epochs": max_epochs, "patience": max_epochs, "batch_size": 32},
              "search": {"num_samples": trials, "max_concurrent": concurrent, "scheduler": {"kind": "fifo"},
                         "checkpoint_every": 1, "checkpoint_min_s": 0,  # a checkpoint every epoch: the races
                         "space": {"model": ["mlp", "lr"], "hidden": {"int": [4, 256]},
                                   "lr": {"loguniform": [1.0e-4, 3.0e-2]},
                                   "weight_decay": {"loguniform": [1.0e-8, 1.0e-3]}}},
              "resources": {"cpu": 2 / concurrent, "gpu": 0}, "wandb": {"mode": "disabled"}}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_soak(workdir: Path, trials: int = 200, concurrent: int = 4, kills: int = 3, max_epochs: int = 3,
             seed: int = 0, baseline: bool = False, log=print) -> dict:

    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "disabled"}
    name = f"soak-{int(time.time())}"
    config = _setup(workdir, trials, concurrent, max_epochs, name)
    experiment, task_dir = workdir / "results" / name, workdir / "results" / name / "subtype"
    started, kept, killed_at = time.perf_counter(), {}, []
    for attempt in range(kills):
        command = ["search", str(config)] if attempt == 0 else ["resume", str(experiment)]
        process = subprocess.Popen([sys.executable, "-m", "raygex", *command], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        before = len(_finished(task_dir, max_epochs))
        wait_for = rng.randint(1, max(2, trials // (kills + 1)))  # kill after this many more trials finish
        while process.poll() is None and len(_finished(task_dir, max_epochs)) < before + wait_for:
            time.sleep(0.2)
        if process.poll() is not None:
            log(f"kill {attempt + 1}: the sweep finished before it")
            break
        time.sleep(rng.uniform(0, 2))  # anywhere in the next trial, not only just after one finished
        _kill(process)
        kept.update(_finished(task_dir, max_epochs))
        killed_at.append(len(kept))
        log(f"kill {attempt + 1}: {len(kept)} trials finished so far")
    final = subprocess.run([sys.executable, "-m", "raygex", "resume", str(experiment)], env=env,
                           capture_output=True, text=True)
    interrupted_s = time.perf_counter() - started
    if final.returncode != 0:
        raise RuntimeError(f"the final resume failed: {final.stderr[-1000:]}")
    from raygex.experiment.layout import ExperimentLayout

    board = ExperimentLayout.open(experiment).read_leaderboard("subtype")
    ids = dict(zip(board["trial_id"], board["best_valid_auc"]))
    lost = sum(1 for trial, value in kept.items() if trial not in ids or abs(ids[trial] - value) > 1e-9)
    duplicated = int(board.filter(like="config/").astype(str).apply(tuple, axis=1).duplicated().sum())
    result = {"trials": trials, "concurrent": concurrent, "kills": len(killed_at),
              "finished_at_each_kill": killed_at, "final_trials": len(board),
              "final_terminated": int((board["status"] == "TERMINATED").sum()),
              "lost": lost, "duplicated": duplicated, "interrupted_wall_s": round(interrupted_s, 1)}
    if baseline:
        clean = _setup(workdir, trials, concurrent, max_epochs, name + "-baseline")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "raygex", "search", str(clean)], env=env, capture_output=True,
                       check=True)
        result["uninterrupted_wall_s"] = round(time.perf_counter() - started, 1)
        result["overhead"] = round(interrupted_s / result["uninterrupted_wall_s"] - 1, 3)
    return result
