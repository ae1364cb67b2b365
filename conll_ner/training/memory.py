"""Keep a training process's memory near what its updates use.

A transformer update on the CPU allocates and frees gigabytes of activation
buffers, of a different size at every update (batches of documents differ
in length). glibc's malloc serves buffers above its mmap threshold with
mmap and returns them to the system when freed, but it raises that threshold
to the size of each such buffer freed (up to 32 MB), so after the first
updates the activations come from its heap, where freed space between live
blocks is kept by the process. The documented Spanish run with
multilingual-e5-small grew that way to several times the memory an update
uses (docs/decisions.md). A fixed threshold (mallopt M_MMAP_THRESHOLD, which
also stops the raising) sends every large buffer back to the system when it
is freed. PyTorch's CPU performance guide suggests swapping in jemalloc or
tcmalloc (LD_PRELOAD) instead, which a pip install cannot do for a user.
A threshold the user chose with glibc's own variable (MALLOC_MMAP_THRESHOLD_)
is left in place: mapping every buffer costs speed (docs/decisions.md), and
the user may prefer speed to memory, or a different balance.
"""

import ctypes
import ctypes.util
import os
import sys

# mallopt's parameter number for the mmap threshold (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
# buffers from this size up are mapped on their own and returned when freed
LARGE_BUFFER_BYTES = 1 << 20
# glibc's environment variable for the same setting, read when a process starts
GLIBC_MMAP_THRESHOLD_VARIABLE = "MALLOC_MMAP_THRESHOLD_"


def return_large_buffers_to_the_system(threshold: int = LARGE_BUFFER_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes for this process;
    False where the C library is not glibc (macOS, Windows, musl), which
    then keeps its own policy, and where the user set the threshold with
    MALLOC_MMAP_THRESHOLD_, which glibc has already applied."""
    if not sys.platform.startswith("linux") or GLIBC_MMAP_THRESHOLD_VARIABLE in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
