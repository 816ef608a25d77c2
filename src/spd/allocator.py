"""Keeping freed memory in the process between training steps.

Every step allocates and frees the same large tensors (a batch's (batch, C) masks, inner
activations and their gradients, a few MiB each). glibc's malloc hands allocations above its mmap
threshold (128 KiB, raised as large blocks are freed) to fresh mmap'd pages and returns freed heap
memory above its trim threshold to the OS, so the next step pays a page fault (and the kernel's
zeroing) for every 4 KiB it touches again, thousands a step. With both thresholds raised, freed
blocks are reused in place.

The allocator only decides where tensors live (torch aligns every CPU tensor to 64 bytes either
way), so results keep their bits. The price is that the process keeps its peak memory until it
exits, which a training process reaches every step anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
# Allocations up to this size come from the heap, not from fresh mmap'd pages.
MMAP_THRESHOLD_BYTES = 1 << 30
# Free memory at the top of the heap is returned to the OS only above this size.
TRIM_THRESHOLD_BYTES = (1 << 31) - 1


@functools.cache
def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (Linux with glibc only; elsewhere
    nothing changes). Returns whether both settings took effect; calling it again changes
    nothing."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mmap_set = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    trim_set = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    return mmap_set and trim_set
