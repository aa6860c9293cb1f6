"""Keep the memory of freed big arrays in the process while a dataset is simulated.

glibc's malloc serves every array above its mmap threshold (32 MiB at most) with a fresh
``mmap`` and hands it back to the kernel on ``free``; the next array of that size is faulted in
and zeroed page by page again. One 4096^2 micrograph makes some thirty such temporaries of
64-141 MiB (the padded wave, its spectrum, intensity, filtered images), and their page faults
measured 0.8-1.5 s of system time per micrograph, more than all the FFTs. Inside
:func:`reuse_freed_memory` big blocks come from the heap and stay there when freed, so the
next micrograph (and the next step of this one) reuses them; on leaving, the settings go back
and the heap is trimmed, so the process does not keep the memory.

It also turns off numpy's ``madvise(MADV_HUGEPAGE)`` on new arrays for the while: with the
heap reused there are few page faults left to save, and a fresh transparent huge page measured
3.5 ms per 2 MiB to fault in on the benchmark machine (a virtual machine), 1.0-1.8 s of
system time per 4096^2 micrograph against 0.5 s with ordinary pages.

Elsewhere than on glibc (macOS, Windows, musl) the malloc settings are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

__all__ = ["reuse_freed_memory"]

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# glibc's defaults, restored on leaving (arena_max: its limit when unset, 8 per core)
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_DEFAULT_ARENA_MAX = 8 * (os.cpu_count() or 1)


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl's mallopt is a no-op anyway
        return libc
    except (OSError, AttributeError):
        return None


def _set_numpy_hugepages(enabled: bool) -> bool | None:
    """numpy's (private) switch for madvise(MADV_HUGEPAGE); the previous value, or None."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    return None if switch is None else bool(switch(enabled))


@contextlib.contextmanager
def reuse_freed_memory():
    """Inside, freed big blocks stay in the heap for the next allocation (glibc only)."""
    hugepages = _set_numpy_hugepages(False)
    try:
        with _glibc_heap():
            yield
    finally:
        if hugepages is not None:
            _set_numpy_hugepages(hugepages)


@contextlib.contextmanager
def _glibc_heap():
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)
    # New threads share the main heap: the simulator's helper threads allocate full-size
    # arrays too, and a heap of their own (64 MiB at most) would mmap them afresh.
    libc.mallopt(_M_ARENA_MAX, 1)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        libc.mallopt(_M_ARENA_MAX, _DEFAULT_ARENA_MAX)
        libc.malloc_trim(0)
