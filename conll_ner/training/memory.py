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
"""

import ctypes
import ctypes.util
import sys

# mallopt's parameter number for the mmap threshold (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
# buffers from this size up are mapped on their own and returned when freed
LARGE_BUFFER_BYTES = 1 << 20


def return_large_buffers_to_the_system(threshold: int = LARGE_BUFFER_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes for this process;
    False where the C library is not glibc (macOS, Windows, musl), which
    then keeps its own policy."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
