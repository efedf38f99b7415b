"""Keep freed memory in the process instead of handing it back to the kernel after every tensor.

glibc serves every allocation above ~128 KiB–32 MiB with a fresh ``mmap`` and unmaps it on free, so each training
batch's activations and gradients fault their pages in again; on small VMs those page faults cost as much as the
arithmetic (measured in `raygex bench gcn --tune-malloc` and `raygex bench search`). Trials allocate the same
shapes every step, so keeping the memory is safe and bounded by the trial's peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_applied = False


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to stop trimming and mmapping (once per process); False where it is not glibc."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in
             ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 2**28)))
    _applied = ok
    return ok
