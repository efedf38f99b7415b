"""The measures behind the zero-copy claim: private memory, shared-array detection, the allocator setting."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from raygex.search.memory import private_memory_mb
from raygex.search.trainable import shares_memory
from raygex.data.trial_data import TrialData


def _data(x):
    y = np.zeros(len(x), dtype=int)
    return TrialData(x, y, x, y, x, y, ["a", "b"], ["0", "1"])


def _mapping_then_copy(path) -> tuple[float, float]:
    before = private_memory_mb()
    mapped = np.load(path, mmap_mode="r")
    float(mapped.sum())  # reads every page of a file-backed mapping
    after_mapping = private_memory_mb()
    copy = np.array(mapped)
    copy += 1
    return after_mapping - before, private_memory_mb() - after_mapping


def test_private_memory_grows_with_a_copy_and_not_with_a_shared_mapping(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones((2048, 8192), dtype=np.float32))  # 64 MiB
    # A fresh process: this one's allocator may already hold freed memory that a copy would reuse.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        mapping_growth, copy_growth = child.submit(_mapping_then_copy, path).result()
    assert mapping_growth < 16
    assert copy_growth > 48


def test_shares_memory_tells_object_store_views_from_own_arrays():
    ray = pytest.importorskip("ray")
    from raygex.runtime.ray_session import connect

    connect(None, num_cpus=1)
    try:
        shared = ray.get(ray.put(_data(np.ones((4, 2), dtype=np.float32))))
        assert shares_memory(shared)
    finally:
        ray.shutdown()
    assert not shares_memory(_data(np.ones((4, 2), dtype=np.float32)))


def test_keep_freed_memory_is_idempotent():
    from raygex.runtime.allocator import keep_freed_memory

    first = keep_freed_memory()
    assert keep_freed_memory() == first


def _keep_then_release() -> tuple[float, float, float]:
    import torch

    from raygex.runtime.allocator import keep_freed_memory, release_freed_memory

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    keep_freed_memory()
    start = rss_mb()
    blocks = [torch.ones(2**20) for _ in range(300)]  # a trial's 300 MiB in 4 MiB tensors (no mmap: the heap)
    del blocks
    kept = rss_mb()
    release_freed_memory()
    return start, kept, rss_mb()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_trials_freed_memory_is_kept_while_it_runs_and_released_before_the_next():
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        start, kept, released = child.submit(_keep_then_release).result()
    assert kept - start > 250, "while a trial runs, what it frees stays in the process (no page faults again)"
    assert released - start < 50, "before the next trial starts, it goes back to the kernel"


_THREAD_TRIALS = r"""
import json, threading
from raygex.runtime.allocator import keep_freed_memory, release_freed_memory
from raygex.search.memory import private_memory_mb

def trial():  # a trial as Tune runs it: in a new thread, its batches allocated and freed
    blocks = [bytearray(1 << 20) for _ in range(60)]  # one 64-MB arena heap's worth
    del blocks

keep_freed_memory()
start = private_memory_mb()
after = []
for _ in range(3):
    thread = threading.Thread(target=trial)
    thread.start()
    thread.join()
    release_freed_memory()
    after.append(private_memory_mb() - start)
print(json.dumps(after))
"""


def _thread_trials(env: dict) -> list[float]:
    import json
    import os
    import subprocess

    child_env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run([sys.executable, "-c", _THREAD_TRIALS], env=child_env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_with_the_workers_environment_a_trial_in_its_own_thread_hands_its_memory_back():
    from raygex.runtime.allocator import WORKER_ENV

    assert max(_thread_trials(WORKER_ENV)) < 10, "one arena: the trial's 60 MB left with it"
    # the reason for the setting: in a thread's own arena the trial's memory stays after the trim
    assert max(_thread_trials({})) > 40


def test_rays_workers_get_the_allocator_setting(monkeypatch):
    import os

    import ray

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)  # a value of the driver's own would win

    from raygex.runtime.allocator import WORKER_ENV
    from raygex.runtime.ray_session import connect

    if ray.is_initialized():
        ray.shutdown()
    connect(None, num_cpus=1)
    try:
        seen = ray.get(ray.remote(lambda: {k: os.environ.get(k) for k in WORKER_ENV}).remote())
    finally:
        ray.shutdown()
    assert seen == WORKER_ENV
