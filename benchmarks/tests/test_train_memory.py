"""benchmarks/train_memory.py on a tiny XLM-R: every variant runs the train
step as a user starts it, and the report renders what was recorded."""

import json
import subprocess
import sys

import spacy
import train_memory
from fixtures import ENGLISH_TRAIN
from processes import BENCH_DIR
from tiny_models import build_tiny_xlmr, fixture_texts

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin


def test_each_variant_trains_and_is_reported(tmp_path):
    encoder = build_tiny_xlmr(tmp_path / "tiny-xlmr", fixture_texts())
    (tmp_path / "eng.train").write_text(ENGLISH_TRAIN)
    doc_bin, _ = conll_to_docbin(read_conll_file(tmp_path / "eng.train").sentences, spacy.blank("en").vocab, n_sents=1)
    doc_bin.to_disk(tmp_path / "train.spacy")
    output = tmp_path / "memory.json"
    command = [sys.executable, str(BENCH_DIR / "train_memory.py"), str(tmp_path / "train.spacy")]
    options = ["--transformer", str(encoder), "--lang", "en", "--updates", "3", "--rounds", "1"]
    result = subprocess.run([*command, *options, "--output-json", str(output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    recorded = json.loads(output.read_text())
    assert list(recorded["runs"]) == list(train_memory.VARIANTS)
    for runs in recorded["runs"].values():
        (run,) = runs
        assert run["updates"] == 3 and run["seconds_per_update"] >= 0 and run["peak_rss_mb"] > 100
    assert recorded["settings"]["release"]["@callbacks"] == "conll_ner.release_freed_memory.v1"
    report = train_memory.report_markdown(recorded)
    for variant in train_memory.VARIANTS:
        assert f"| {variant} | " in report
    assert recorded["command"] in report and "x86_flags" in recorded["machine"]


def test_a_failed_run_says_which_command_failed(tmp_path):
    (tmp_path / "eng.train").write_text(ENGLISH_TRAIN)
    doc_bin, _ = conll_to_docbin(read_conll_file(tmp_path / "eng.train").sentences, spacy.blank("en").vocab, n_sents=1)
    doc_bin.to_disk(tmp_path / "train.spacy")
    corpus = train_memory.benchmark_corpus(tmp_path / "train.spacy", 2, "en", tmp_path / "corpus")
    missing = str(tmp_path / "no-such-encoder")
    try:
        train_memory.run_train_step(corpus, "en", missing, 2, train_memory.DEFAULT, tmp_path / "out")
    except RuntimeError as err:
        assert "scripts/train.py" in str(err) and missing in str(err)
    else:
        raise AssertionError("a run with a missing encoder did not fail")


def test_a_default_that_logged_no_whole_second_gives_no_ratio():
    """Tiny runs can log 0 seconds (whole seconds in the training log)."""
    run = {"seconds_per_update": 0.0, "updates": 3, "peak_rss_mb": 500.0, "process_seconds": 9.0}
    results = {
        "command": "python benchmarks/train_memory.py x",
        "date": "2026-12-03",
        "machine": {"cpu": "x", "cores": 2, "platform": "p"},
        "settings": {"lang": "en", "transformer": "t", "updates": 3, "rounds": 1, "release": {}},
        "runs": {variant: [run] for variant in train_memory.VARIANTS},
    }
    report = train_memory.report_markdown(results)
    assert f"| {train_memory.DEFAULT} | 0.000 | - | 500 |" in report
