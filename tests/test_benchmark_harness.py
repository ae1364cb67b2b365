import json
import subprocess
import sys

import spacy
from conftest import PROJECT_DIR
from fixtures import ENGLISH_TRAIN

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
import run_benchmark  # noqa: E402


def test_measure_ours_times_any_pipeline_one_input_per_process(tmp_path):
    """The full mode's CNN goes through the same measuring command as the
    inference mode's variants: one input per process, at a given batch."""
    model = tmp_path / "model"
    nlp = spacy.blank("en")
    nlp.add_pipe("ner").add_label("PER")
    nlp.initialize()
    nlp.to_disk(model)
    data = tmp_path / "dev.conll"
    data.write_text(ENGLISH_TRAIN)
    for kind in ("raw_text", "pretokenized"):
        output = tmp_path / f"{kind}.json"
        args = ["measure-ours", "--model", str(model), "--sentences", str(data), "--input", kind]
        args += ["--batch-size", "2", "--threads", "1", "--output-json", str(output)]
        result = subprocess.run(
            [sys.executable, str(PROJECT_DIR / "benchmarks" / "cpu_inference.py"), *args],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        measured = json.loads(output.read_text())
        assert measured["n_words"] == {kind: 14} and list(measured["words_per_second"]) == [kind]
        assert measured["batch_size"] == 2 and measured["torch_threads"] == 1
        assert "dev" not in measured and measured["encoder_input"] == {}


def test_report_states_ratios_and_targets():
    system = {
        "dev": {"precision": 0.5, "recall": 0.25, "f1": 1 / 3},
        "train": {"train_seconds": 10.0, "train_words_per_second": 100.0},
        "inference": {"raw_text": {"batch_size": 8, "words_per_second": 1000.0, "peak_rss_mb": 500.0}},
    }
    results = {
        "command": "run_benchmark.py run --mode quick",
        "date": "2026-01-01",
        "mode": "quick",
        "settings": {"trf_epochs": 1, "cnn_epochs": 0},
        "machine": {"cpu": "cpu", "cores": 2, "platform": "linux"},
        "versions": {"spacy": "3.8"},
        "data": {"train_words": 10, "dev_words": 5},
        "spacy_trf": {
            **system,
            "dev_fp32": {"precision": 0.5, "recall": 0.5, "f1": 0.5},
            "inference_fp32": {"raw_text": {"batch_size": 8, "words_per_second": 600.0, "peak_rss_mb": 400.0}},
        },
        "hf_trainer": system,
        "spacy_cnn": system,
        "ratios": {"dev F1, spaCy transformer / Trainer": 1.0},
        "targets": {"CNN dev F1 >= 88": False},
    }
    report = run_benchmark.report_markdown(results)
    assert "| spaCy transformer+ner (ours) | 50.00 | 25.00 | 33.33 | 10 | 100 |" in report
    assert "| HF Trainer recipe | raw_text | 8 | 1000 | 500 |" in report
    assert "| spaCy transformer+ner (ours), fp32 inference | 50.00 | 50.00 | 50.00 | | |" in report
    assert "| spaCy transformer+ner (ours), fp32 | raw_text | 8 | 600 | 400 |" in report
    assert "- dev F1, spaCy transformer / Trainer: 1.00" in report and "- CNN dev F1 >= 88: missed" in report
    assert (
        "scaled only by the documented `epochs` and `max_steps` vars (transformer: 1 epochs, CNN: the config's epochs)"
        in report
    )
    legacy = run_benchmark.report_markdown({**results, "settings": {"trf_overrides": {"training.batcher.size": 300}}})
    assert (
        'predates the epoch budgets: the spaCy pipelines trained with these config overrides, transformer {"training.batcher.size": 300}'
        in legacy
    )


def long_results():
    def system(f1, seconds, epochs, steps, curve):
        return {
            "dev": {"precision": f1, "recall": f1, "f1": f1},
            "train": {"train_seconds": seconds, "epochs": epochs, "steps": steps, "curve": curve},
        }

    return {
        "command": "run_benchmark.py run --mode long_quick",
        "date": "2026-01-01",
        "mode": "long_quick",
        "settings": {"trf_epochs": 2, "hf_epochs": 2},
        "machine": {"cpu": "cpu", "cores": 2, "platform": "linux"},
        "spacy_trf": {
            **system(
                0.9,
                100.0,
                2,
                40,
                [
                    {"epoch": 0.0, "step": 0, "f1": 0.0},
                    {"epoch": 1.0, "step": 20, "f1": 0.8},
                    {"epoch": 2.0, "step": 40, "f1": 0.9},
                ],
            ),
            "dev_last": {"precision": 0.89, "recall": 0.89, "f1": 0.89},
        },
        "hf_trainer": system(
            0.85, 120.0, 2.0, 38, [{"epoch": 1.0, "step": 19, "f1": 0.7}, {"epoch": 2.0, "step": 38, "f1": 0.85}]
        ),
        "hf_trainer_bf16": system(
            0.84, 90.0, 2.0, 38, [{"epoch": 1.0, "step": 19, "f1": 0.69}, {"epoch": 2.0, "step": 38, "f1": 0.84}]
        ),
        "ratios": {"dev F1, spaCy transformer / Trainer": 0.9 / 0.85},
        "targets": {"spaCy transformer dev F1 >= 91.0": False},
    }


def test_long_report_shows_both_recipes_and_their_learning_curves(tmp_path):
    results = {**long_results(), "remarks": ["tests shared the cores"]}
    report = run_benchmark.report_long_markdown(results, "curves.png")
    assert "Remarks on this run:\n\n- tests shared the cores\n" in report
    assert "| spaCy transformer+ner (ours) | 90.00 | 90.00 | 90.00 | 2 | 40 | 100 |" in report
    assert "| HF Trainer recipe (fp32) | 85.00 | 85.00 | 85.00 | 2 | 38 | 120 |" in report
    assert "| HF Trainer recipe, bf16 autocast | 84.00 | 84.00 | 84.00 | 2 | 38 | 90 |" in report
    assert "| spaCy transformer+ner (ours), model-last | 89.00 |" in report
    assert "![Dev F1 by epoch](curves.png)" in report
    # the curves by epoch, without spaCy's evaluation before the first update
    assert "- spaCy: 1.00: 80.00, 2.00: 90.00" in report and "- Trainer: 1.00: 70.00, 2.00: 85.00" in report
    assert "- Trainer bf16: 1.00: 69.00, 2.00: 84.00" in report
    assert (
        "- dev F1, spaCy transformer / Trainer: 1.06" in report
        and "- spaCy transformer dev F1 >= 91.0: missed" in report
    )
    run_benchmark.plot_learning_curves(results, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmarks_md_keeps_the_other_modes_results(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    run_benchmark.write_benchmarks_md(path, None, long_results(), "curves.png")
    text = path.read_text()
    assert text.startswith("# Benchmarks") and "## Default recipe at full length" in text


def distill_results():
    def system(f1, seconds, speed=None):
        return {
            "dev": {"precision": f1, "recall": f1, "f1": f1},
            "train": {"train_seconds": seconds},
            **({"words_per_second": speed} if speed else {}),
        }

    return {
        "command": "run_benchmark.py run --mode distill_quick",
        "date": "2026-01-01",
        "mode": "distill_quick",
        "settings": {"split_seed": 0},
        "machine": {"cpu": "cpu", "cores": 2, "platform": "linux"},
        "split": {"labelled": {"documents": 10, "words": 3000}, "unlabelled": {"documents": 30, "words": 9000}},
        "silver": {"docs": 90, "entities_total": 1200},
        "annotate_seconds": 12.0,
        "teacher": system(0.88, 300.0, 2000.0),
        "student_gold": system(0.80, 60.0),
        "student_distilled": system(0.85, 200.0, 12000.0),
        "student_ceiling": system(0.88, 200.0),
        "ratios": {"gap closed, (b - a) / (c - a)": 0.625, "CPU words/s, student / teacher": 6.0},
        "targets": {"(b) dev F1 >= (a) + 1.5": True},
    }


def test_distill_report_shows_teacher_and_three_students():
    report = run_benchmark.report_distill_markdown(distill_results())
    assert "L = 10 documents (3,000 words), U = the other 30 (9,000 words)" in report
    assert "| Teacher: all-MiniLM-L6-v2 transformer+ner | L gold | 88.00 | 88.00 | 88.00 | 300 | 2,000 |" in report
    assert "| (a) CNN student | L gold | 80.00 | 80.00 | 80.00 | 60 |  |" in report
    assert (
        "| (b) CNN student, distilled | L gold + U silver (the teacher's entities) | 85.00 | 85.00 | 85.00 | 200 | 12,000 |"
        in report
    )
    assert "| (c) CNN student, ceiling | L gold + U gold | 88.00 |" in report
    assert "- gap closed, (b - a) / (c - a): 0.62" in report and "- (b) dev F1 >= (a) + 1.5: met" in report


def test_results_json_keeps_the_full_and_distill_results_apart(tmp_path):
    full = {"spacy_trf": {"x": 1}, "mode": "full"}
    distill = distill_results()
    stored = run_benchmark.merged_results("distill", distill, full)
    assert stored["spacy_trf"] == {"x": 1} and stored["distill"] == distill
    rerun = run_benchmark.merged_results("full", {"spacy_trf": {"x": 2}, "mode": "full"}, stored)
    assert rerun["spacy_trf"] == {"x": 2} and rerun["distill"] == distill
    assert run_benchmark.merged_results("long", {"a": 1}, stored) == {"a": 1}
    path = tmp_path / "BENCHMARKS.md"
    run_benchmark.write_benchmarks_md(path, {"distill": distill}, None, "curves.png")
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\n## Distillation (`distill` mode)")


def test_annotate_report_shows_both_engines_and_peak_memory():
    def run(pipeline, engine, words, seconds):
        return {
            "pipeline": pipeline,
            "engine": engine,
            "workers": 2,
            "documents_done": 100,
            "words": words,
            "seconds": seconds,
            "words_per_second": words / seconds,
            "first_output_seconds": seconds / 4,
        }

    results = {
        "command": "run_benchmark.py run --mode annotate_quick",
        "date": "2026-01-01",
        "mode": "annotate_quick",
        "settings": {"shards": 2},
        "machine": {"cpu": "cpu", "cores": 2, "platform": "linux"},
        "corpora": {
            "cnn": {"copies": 3, "source": "eng.train", "documents": 900},
            "transformer": {"copies": 1, "source": "eng.train", "documents": 200},
            "long": {"chars": 972000},
        },
        "speed": [run("cnn", "local", 60000, 10.0), run("cnn", "ray", 60000, 11.0)],
        "memory": [
            {"pipeline": "cnn", "max_chars": 10000, "seconds": 9.5, "peak_rss_mb": 812.4},
            {"pipeline": "transformer", "max_chars": 10000, "seconds": 40.0, "peak_rss_mb": 1500.0},
        ],
        "ratios": {"words/s cnn, ray / local": 10 / 11},
        "targets": {"CNN through Ray within 15% of the local engine's words/s": True},
    }
    report = run_benchmark.report_annotate_markdown(results)
    assert "| CNN+ner | local | 2 | 100 | 60,000 | 10.0 | 6,000 | 2.5 |" in report
    assert "| CNN+ner | ray | 2 | 100 | 60,000 | 11.0 | 5,455 | 2.8 |" in report
    assert "One text of 972,000 characters:" in report
    assert "| all-MiniLM-L6-v2 transformer+ner | 10,000 | 40.0 | 1,500 |" in report
    assert "- words/s cnn, ray / local: 0.91" in report
    stored = run_benchmark.merged_results("annotate", results, {"distill": {"x": 1}})
    assert stored == {"distill": {"x": 1}, "annotate": results}
    assert run_benchmark.merged_results("full", {"spacy_trf": 1}, stored) == {
        "spacy_trf": 1,
        "distill": {"x": 1},
        "annotate": results,
    }
