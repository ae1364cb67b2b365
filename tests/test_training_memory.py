"""The train step's malloc setting (conll_ner/training/memory.py): with it,
buffers of changing sizes freed between small survivors go back to the
system instead of staying in the process."""

import platform
import subprocess
import sys

import pytest
import spacy
from conftest import PROJECT_DIR
from fixtures import ENGLISH_TRAIN
from wasabi import Printer

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin, save_conversion
from conll_ner.runs import training_path

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


def test_the_train_step_sets_it_before_training(monkeypatch, tmp_path):
    from conll_ner.training import train

    source = tmp_path / "eng.train"
    source.write_text(ENGLISH_TRAIN, encoding="utf-8")
    doc_bin, stats = conll_to_docbin(read_conll_file(source).sentences, spacy.blank("en").vocab, n_sents=1)
    for split in ("train", "dev"):
        save_conversion(doc_bin, stats, training_path(tmp_path / "corpus", "en", split))
    calls = []
    monkeypatch.setattr(train, "return_large_buffers_to_the_system", lambda: calls.append("mallopt") or True)
    monkeypatch.setattr(train, "spacy_train", lambda *args, **kwargs: calls.append("spacy train"))
    train.train_pipeline(
        PROJECT_DIR / "configs" / "cnn.cfg", tmp_path / "out", Printer(), lang="en", corpus_dir=tmp_path / "corpus"
    )
    assert calls == ["mallopt", "spacy train"]
