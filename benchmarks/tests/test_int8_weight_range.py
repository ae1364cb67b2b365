"""benchmarks/int8_weight_range.py on a tiny pipeline: fp32 and both weight
ranges scored, each through what it says it predicts in."""

import json
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


def test_the_weight_ranges_are_scored_side_by_side(tmp_path):
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    pipeline = build_tiny_transformer_pipeline(tmp_path / "tiny")
    (tmp_path / "dev.conll").write_text(ENGLISH_TRAIN)
    doc_bin, _ = conll_to_docbin(
        read_conll_file(tmp_path / "dev.conll").sentences, spacy.blank("en").vocab, n_sents=N_SENTS
    )
    doc_bin.to_disk(tmp_path / "dev.spacy")
    output = tmp_path / "weight_range.json"
    command = [sys.executable, str(BENCH_DIR / "int8_weight_range.py"), str(pipeline), str(tmp_path / "dev.spacy")]
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
    assert f"| tiny | {' | '.join(f1)} |" in report and recorded["command"] in report
