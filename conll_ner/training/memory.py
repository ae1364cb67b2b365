"""Keep a training process's memory near what its updates use.

A transformer update on the CPU allocates and frees gigabytes of activation
buffers, of a different size at every update (batches of documents differ
in length). glibc's malloc serves buffers above its mmap threshold with
mmap and returns them to the system when freed, but it raises that threshold
to the size of each such buffer freed (up to 32 MB), so after the first
updates the activations come from its heap, where freed space between live
blocks is kept by the process. The documented Spanish run with
multilingual-e5-small grew that way to several times the memory an update
uses (docs/decisions.md).

Two remedies were measured (docs/decisions.md). A fixed mmap threshold
(mallopt) maps every large buffer on its own, so the kernel hands out and
zeroes fresh pages for each of them at every update, which slowed the
updates. Handing the heap's free pages back every few updates
(glibc's malloc_trim, which releases whole free pages anywhere in every
arena) bounds the growth at what those few updates add and lets the updates
between reuse their pages. This module does the latter, as a spaCy
`before_update` callback named in the config. PyTorch's CPU performance
guide suggests swapping in jemalloc or tcmalloc (LD_PRELOAD) instead, which
a pip install cannot do for a user.
"""

import ctypes
import ctypes.util
import sys
from typing import Any, Callable, Dict, Optional

from spacy.language import Language
from spacy.util import registry


def glibc_malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's malloc_trim, or None where the C library is not glibc (macOS,
    Windows, musl), whose allocators keep their own policy."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


@registry.callbacks("conll_ner.release_freed_memory.v1")
def create_release_freed_memory(every_updates: int = 10) -> Callable[[Language, Dict[str, Any]], None]:
    """Before every `every_updates`-th update, hand the allocator's free pages
    back to the system. Fewer updates between releases keep the process
    smaller; each release makes the next update fault its pages in again."""
    if every_updates < 1:
        raise ValueError(f"every_updates = {every_updates} must be at least 1")
    malloc_trim = glibc_malloc_trim()

    def release_freed_memory(nlp: Language, args: Dict[str, Any]) -> None:
        if malloc_trim is not None and args["step"] % every_updates == 0:
            malloc_trim(0)

    return release_freed_memory
