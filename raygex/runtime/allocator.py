"""Keep freed memory in the process while a trial runs; hand it back when the trial is over.

glibc serves every allocation above ~128 KiB–32 MiB with a fresh ``mmap`` and unmaps it on free, so each training
batch's activations and gradients fault their pages in again; on small VMs those page faults cost as much as the
arithmetic (measured in `raygex bench gcn --tune-malloc` and `raygex bench search`). Trials allocate the same
shapes every step, so keeping the memory is safe and bounded by the trial's peak. But Tune reuses a worker
process for trial after trial: without a hand-back each worker would keep the peak of every trial it ever ran.
So the memory a finished trial freed goes back to the kernel before the next trial starts
(:func:`release_freed_memory`).

That hand-back only reaches memory in glibc's main heap: ``malloc_trim`` releases the top of the main heap, never
the top of a thread's own arena. Tune runs each trial in a new thread of the reused worker, and glibc gives new
threads arenas of their own (up to 8 per core), so each trial could leave up to its peak behind in an arena
nothing trims (measured on the demo, one worker: 243 → 455 MB private after 9 trials, in 64-MB arena heaps).
Ray's workers therefore start with one arena (:data:`WORKER_ENV`, the job's environment): every thread allocates
from the main heap, and the next trial starts where the first did (243 → 264 MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_applied = False

# The environment raygex gives Ray's worker processes (read by glibc when a process starts).
WORKER_ENV = {"MALLOC_ARENA_MAX": "1"}


def worker_env() -> dict[str, str]:
    """:data:`WORKER_ENV`, with any value the driver's own environment sets for the same variable."""
    return {name: os.environ.get(name) or value for name, value in WORKER_ENV.items()}


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> bool:
    """Collect garbage, then give every free page of the malloc heap back to the kernel (``malloc_trim(0)``):
    what the previous trial freed leaves this process's RSS. False where the C library is not glibc."""
    gc.collect()
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to stop trimming and mmapping (once per process); False where it is not glibc."""
    global _applied
    if _applied:
        return True
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in
             ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 2**28)))
    _applied = ok
    return ok
