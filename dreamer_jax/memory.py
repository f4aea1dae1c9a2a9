"""Resident memory of the process: measure it, and keep glibc from holding on to freed memory.

Two glibc behaviours inflate the RSS of a training process (docs/speed.md, docs/reliability.md):
freed 1-32 MiB arrays (episodes, batches) stay in the heap once glibc has raised its mmap
threshold, and the many small blocks that compiling an XLA program allocates and frees stay
resident in a fragmented heap (~0.6 GiB after compiling the paper-size update). Elsewhere than
glibc the helpers do nothing and say so.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


def memory_gib() -> dict[str, float]:
    """Resident memory of this process now and at its peak (GiB): VmRSS and VmHWM of
    /proc/self/status (ru_maxrss would include the peak of a parent that started it); {} where
    there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            kib = {line.split(":")[0]: int(line.split()[1]) for line in f
                   if line.startswith(("VmRSS:", "VmHWM:"))}
    except OSError:
        return {}
    return {"rss_gib": kib["VmRSS"] / 2**20, "peak_rss_gib": kib["VmHWM"] / 2**20}


@functools.cache
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_heap_growth(threshold: int = 1 << 20) -> bool:
    """Make glibc serve every allocation >= `threshold` bytes with its own mmap, returned to the
    OS when freed. By default glibc raises that threshold after large frees (up to 32 MiB), so
    freed episode and batch arrays of 1-32 MiB stay in the heap and RSS creeps above what the
    replay holds (measured: 1.14x the frame bytes, 1.00x with this; experiments/rss_replay.py).
    Returns False where the C library is not glibc."""
    libc = _libc()
    return bool(libc and libc.mallopt(-3, int(threshold)))  # M_MMAP_THRESHOLD


def release_free_heap() -> bool:
    """Give the free pages inside the heap back to the OS (glibc `malloc_trim(0)`). After
    compiling the paper-size update this drops RSS by ~0.6 GiB that the compiler had freed but
    glibc kept. Returns False where the C library is not glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
