"""Keeping freed memory in the process between training steps.

Every step allocates and frees the same tensors as the step before (a batch's (batch, C) masks,
inner activations and their gradients, attributions of batch x d_out x C). glibc's malloc returns
freed memory at the top of its heap to the OS once it exceeds a trim threshold, and gives blocks
above its mmap threshold fresh mmap'd pages (it raises that threshold by itself as large blocks are
freed, but never above 32 MiB), so a step paid a page fault, and the kernel's zeroing, for much of
what it touched: thousands of faults a step. With both thresholds raised, freed blocks are reused
in place.

The allocator only decides where tensors live (torch aligns every CPU tensor to 64 bytes either
way), so results keep their bits. The price is that the process keeps its peak memory until it
exits, which a training process reaches every step anyway.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
# Allocations up to the mmap threshold come from the heap, not from fresh mmap'd pages: the first
# of these that glibc accepts is set (before 2.35 it refuses more than 32 MiB).
MMAP_THRESHOLDS_BYTES = (1 << 30, 32 << 20)
# Free memory at the top of the heap is returned to the OS only above this size.
TRIM_THRESHOLD_BYTES = (1 << 31) - 1


def _user_sets_malloc() -> bool:
    """Whether the environment sets glibc malloc's options, which are then left as they are."""
    return any(
        name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    ) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


@functools.cache
def retain_freed_memory() -> int:
    """Raise glibc's mmap and trim thresholds for this process. Returns the mmap threshold set,
    in bytes, or 0 where nothing changed: not Linux with glibc, or the user's environment sets
    malloc's thresholds itself. Calling it again changes nothing."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return 0
    if _user_sets_malloc():
        return 0
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for threshold in MMAP_THRESHOLDS_BYTES:
        # only once the mmap threshold is set: setting either stops glibc raising it by itself
        if mallopt(_M_MMAP_THRESHOLD, threshold) == 1:
            mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
            return threshold
    return 0
