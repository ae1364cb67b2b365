"""The train step's malloc setting (conll_ner/training/memory.py): with it,
buffers of changing sizes freed between small survivors go back to the
system instead of staying in the process."""

import platform
import subprocess
import sys

import pytest

# buffers of 1-7 MB freed at every step with a small survivor allocated
# between them, as activations and optimizer state are in training
PATTERN = """
import sys
import numpy
from conll_ner.training.memory import return_large_buffers_to_the_system
if sys.argv[1] == "fixed":
    assert return_large_buffers_to_the_system()
rng = numpy.random.default_rng(0)
kept = []
for step in range(200):
    buffers = [numpy.ones(int(rng.integers(1, 8)) * 125_000) for _ in range(20)]
    kept.append(numpy.ones(1000))
    del buffers
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")))
"""


def resident_kb(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PATTERN, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not glibc: malloc keeps its own policy")
def test_freed_buffers_of_changing_sizes_leave_the_process():
    assert resident_kb("fixed") < resident_kb("dynamic") - 30_000  # tens of MB kept without it


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not glibc: malloc keeps its own policy")
def test_a_threshold_the_user_set_is_left_in_place(monkeypatch):
    """MALLOC_MMAP_THRESHOLD_ is the user's choice: the train step keeps it."""
    from conll_ner.training.memory import GLIBC_MMAP_THRESHOLD_VARIABLE, return_large_buffers_to_the_system

    monkeypatch.setenv(GLIBC_MMAP_THRESHOLD_VARIABLE, str(32 << 20))
    assert not return_large_buffers_to_the_system()
