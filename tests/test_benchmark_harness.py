import json
import subprocess
import sys

import spacy

from conftest import PROJECT_DIR
from fixtures import ENGLISH_TRAIN

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
import run_benchmark  # noqa: E402


def test_infer_spacy_measures_one_variant_in_its_own_process(tmp_path):
    model = tmp_path / "model"
    nlp = spacy.blank("en")
    nlp.add_pipe("ner").add_label("PER")
    nlp.initialize()
    nlp.to_disk(model)
    data = tmp_path / "dev.conll"
    data.write_text(ENGLISH_TRAIN)
    for variant in ("raw_text", "pretokenized"):
        output = tmp_path / f"{variant}.json"
        result = subprocess.run(
            [sys.executable, str(PROJECT_DIR / "benchmarks" / "run_benchmark.py"), "infer-spacy", "--model", str(model),
             "--data", str(data), "--variant", variant, "--batch-size", "2", "--threads", "1", "--output-json", str(output)],
            capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stderr
        measured = json.loads(output.read_text())
        assert measured["n_words"] == 14 and measured["batch_size"] == 2 and measured["torch_threads"] == 1
        assert measured["words_per_second"] > 0 and 0 < measured["peak_rss_mb"] < 4096


def test_report_states_ratios_and_targets():
    system = {
        "dev": {"precision": 0.5, "recall": 0.25, "f1": 1 / 3},
        "train": {"train_seconds": 10.0, "train_words_per_second": 100.0},
        "inference": {"raw_text": {"batch_size": 8, "words_per_second": 1000.0, "peak_rss_mb": 500.0}},
    }
    results = {
        "command": "run_benchmark.py run --mode quick", "date": "2026-01-01", "mode": "quick", "settings": {},
        "machine": {"cpu": "cpu", "cores": 2, "platform": "linux"}, "versions": {"spacy": "3.8"},
        "data": {"train_words": 10, "dev_words": 5},
        "spacy_trf": {**system, "dev_fp32": {"precision": 0.5, "recall": 0.5, "f1": 0.5},
                      "inference_fp32": {"raw_text": {"batch_size": 8, "words_per_second": 600.0, "peak_rss_mb": 400.0}}},
        "hf_trainer": system, "spacy_cnn": system,
        "ratios": {"dev F1, spaCy transformer / Trainer": 1.0}, "targets": {"CNN dev F1 >= 88": False},
    }
    report = run_benchmark.report_markdown(results)
    assert "| spaCy transformer+ner (ours) | 50.00 | 25.00 | 33.33 | 10 | 100 |" in report
    assert "| HF Trainer recipe | raw_text | 8 | 1000 | 500 |" in report
    assert "| spaCy transformer+ner (ours), fp32 inference | 50.00 | 50.00 | 50.00 | | |" in report
    assert "| spaCy transformer+ner (ours), fp32 | raw_text | 8 | 600 | 400 |" in report
    assert "- dev F1, spaCy transformer / Trainer: 1.00" in report and "- CNN dev F1 >= 88: missed" in report
