"""The transformer config's memory release (conll_ner/training/memory.py):
with it, buffers of changing sizes freed between small survivors go back to
the system instead of staying in the process."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest
from spacy.util import load_config, registry

from conll_ner.training.memory import create_release_freed_memory

PROJECT_DIR = Path(__file__).resolve().parents[1]

# buffers of 1-7 MB freed at every step with a small survivor allocated
# between them, as activations and optimizer state are in training; the
# callback runs before each step, as spaCy calls it before each update
PATTERN = """
import sys
from pathlib import Path
import numpy
from conll_ner.training.memory import create_release_freed_memory
every = int(sys.argv[1])
release = create_release_freed_memory(every) if every else (lambda nlp, args: None)
rng = numpy.random.default_rng(0)
kept = []
for step in range(200):
    release(None, {"step": step, "epoch": 0})
    buffers = [numpy.ones(int(rng.integers(1, 8)) * 125_000) for _ in range(20)]
    kept.append(numpy.ones(1000))
    del buffers
release(None, {"step": 200, "epoch": 0})
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")))
"""


def resident_kb(every: int) -> int:
    done = subprocess.run([sys.executable, "-c", PATTERN, str(every)], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not glibc: malloc keeps its own policy")
def test_freed_buffers_of_changing_sizes_leave_the_process():
    assert resident_kb(10) < resident_kb(0) - 30_000  # tens of MB kept without it


def test_the_transformer_config_releases_memory_before_updates():
    """configs/transformer.cfg names the callback, and it resolves from there."""
    config = load_config(PROJECT_DIR / "configs" / "transformer.cfg")
    before_update = config["training"]["before_update"]
    assert before_update["@callbacks"] == "conll_ner.release_freed_memory.v1"
    resolved = registry.resolve({"callback": before_update})["callback"]
    assert resolved.__name__ == "release_freed_memory"


def test_a_release_interval_below_one_update_is_refused():
    with pytest.raises(ValueError, match="every_updates = 0"):
        create_release_freed_memory(0)
