"""retain_freed_memory: a freed tensor's pages are reused by the next allocation, not faulted in
afresh."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# In a fresh interpreter (mallopt settings are process-wide): allocate tensors of 40 and 48 MiB
# together (above the largest threshold glibc adapts to by itself, 32 MiB), free them, and count
# the page faults of ten such rounds once the heap has grown to hold them (eight rounds).
_ROUNDS = """
import resource, sys, torch
from spd.allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()

def allocate_and_free():
    tensors = [torch.ones(mib << 18) for mib in (40, 48)]
    del tensors

for _ in range(8):
    allocate_and_free()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    allocate_and_free()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, check=True
    )
    return int(result.stdout)


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_freed_tensors_are_reused_without_page_faults() -> None:
    touched_pages = 10 * (40 + 48) * 256  # ten rounds of 88 MiB in 4 KiB pages
    assert page_faults("retain") < touched_pages // 100
