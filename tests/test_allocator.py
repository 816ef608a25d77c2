"""retain_freed_memory: large tensors live in malloc's heap, and a freed one stays there for the
next allocation instead of going back to the OS."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# In a fresh interpreter (malloc's settings are process-wide): call retain_freed_memory, allocate
# one tensor of 3/4 of the mmap threshold it set (48 MiB where it set none, above any threshold
# glibc sets by itself), free it, and read malloc's statistics after each.
_ALLOCATE_AND_FREE = """
import ctypes, torch
from spd.allocator import retain_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
mallinfo2.restype = MallInfo2
threshold = retain_freed_memory()
size = min(threshold, 64 << 20) * 3 // 4 or 48 << 20
tensor = torch.ones(size // 4)
mmapped = mallinfo2().hblkhd
del tensor
print(threshold, size, mmapped, mallinfo2().fordblks)
"""


def allocate_and_free(env: dict[str, str] | None = None) -> tuple[int, int, int, int]:
    """(mmap threshold set, tensor bytes, bytes mmap'd while it lived, free heap bytes after)."""
    run = subprocess.run(
        [sys.executable, "-c", _ALLOCATE_AND_FREE],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    threshold, size, mmapped, free = map(int, run.stdout.split())
    return threshold, size, mmapped, free


needs_mallinfo2 = pytest.mark.skipif(
    not (GLIBC and hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")), reason="glibc 2.33 or later"
)


@needs_mallinfo2
def test_a_large_tensor_lives_in_the_heap_and_stays_there_when_freed() -> None:
    threshold, size, mmapped, free = allocate_and_free()
    assert threshold >= 32 << 20  # no lower than glibc goes by itself
    assert mmapped < size  # not fresh mmap'd pages
    assert free >= size  # kept for the next allocation, not returned to the OS


@needs_mallinfo2
def test_the_users_own_malloc_settings_are_left_alone() -> None:
    env = os.environ | {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}
    threshold, size, mmapped, _ = allocate_and_free(env)
    assert threshold == 0 and mmapped >= size
