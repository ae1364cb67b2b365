"""benchmarks/int8_weight_range.py on a tiny pipeline: fp32 and both weight
ranges scored, each through what it says it predicts in."""

import json
import shutil
import subprocess
import sys

import int8_weight_range
import pytest
import spacy
from corpora import N_SENTS
from fixtures import ENGLISH_TRAIN
from processes import BENCH_DIR
from tiny_models import build_tiny_transformer_pipeline

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin


def weight_range_command(tmp_path):
    """The script's command on a tiny pipeline and a dev DocBin of its
    training sentences, and the number of sentences in it."""
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    pipeline = build_tiny_transformer_pipeline(tmp_path / "tiny")
    (tmp_path / "dev.conll").write_text(ENGLISH_TRAIN)
    sentences = read_conll_file(tmp_path / "dev.conll").sentences
    doc_bin, _ = conll_to_docbin(sentences, spacy.blank("en").vocab, n_sents=N_SENTS)
    doc_bin.to_disk(tmp_path / "dev.spacy")
    command = [sys.executable, str(BENCH_DIR / "int8_weight_range.py"), str(pipeline), str(tmp_path / "dev.spacy")]
    return command, len(sentences)


def test_the_weight_ranges_are_scored_side_by_side(tmp_path):
    command, dev_sentences = weight_range_command(tmp_path)
    output = tmp_path / "weight_range.json"
    result = subprocess.run([*command, "--output-json", str(output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = json.loads(output.read_text())
    runs = recorded["results"]
    assert list(runs) == ["fp32", "int8, weights in [-64, 64]", "int8, weights in [-127, 127]"]
    assert runs["fp32"]["runtime"]["precision"] == "fp32"
    assert all(runs[name]["runtime"]["precision"] == "int8" for name in list(runs)[1:])
    assert all(0 <= run["f1"] <= 1 for run in runs.values())
    assert recorded["command"].startswith("python ") and "int8_weight_range.py" in recorded["command"]
    assert "x86_flags" in recorded["machine"]
    report = int8_weight_range.report_markdown([("tiny", recorded)])
    f1 = [f"{100 * run['f1']:.2f}" for run in runs.values()]
    sentences = runs["fp32"]["sentences"]
    assert sentences == dev_sentences and recorded["settings"] == {"dev_docs": 0}
    assert f"| tiny | all, {sentences:,} | {' | '.join(f1)} |" in report and recorded["command"] in report
    # what a run's figures do not show, added to its results by whoever ran it
    assert "- A shared machine." in int8_weight_range.report_markdown(
        [("tiny", {**recorded, "remarks": ["A shared machine."]})]
    )


@pytest.mark.skipif(
    shutil.which("qemu-x86_64") is None, reason="needs qemu-x86_64 (Debian's qemu-user; .ci/run installs it)"
)
def test_the_graphs_are_scored_under_an_emulated_avx2_cpu(tmp_path):
    command, dev_sentences = weight_range_command(tmp_path)
    output = tmp_path / "weight_range.json"
    options = ["--output-json", str(output), "--emulate-cpu", "EPYC-Rome", "--dev-docs", "1"]
    result = subprocess.run([*command, *options], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = json.loads(output.read_text())
    emulation = recorded["emulated"]
    # the process under emulation saw an AVX2 CPU, whatever this one is
    assert emulation["cpu_seen"]["torch_cpu_capability"] == "AVX2"
    assert emulation["cpu_seen"]["int8_dot_products"].startswith("no VNNI or AMX")
    assert emulation["qemu"].startswith("qemu-x86_64 version")
    sentences = recorded["results"]["fp32"]["sentences"]
    assert recorded["settings"] == {"dev_docs": 1} and 0 < sentences < dev_sentences
    assert list(emulation["results"]) == ["int8, weights in [-64, 64]", "int8, weights in [-127, 127]"]
    for run in emulation["results"].values():
        assert run["runtime"]["precision"] == "int8" and 0 <= run["f1"] <= 1
        assert 0 <= run["sentences_differing"] <= sentences
    report = int8_weight_range.report_markdown([("tiny", recorded)])
    assert f"| tiny | first 1 Docs, {sentences:,} |" in report
    assert "| tiny | `EPYC-Rome` (torch AVX2; no VNNI or AMX" in report and emulation["qemu"] in report
