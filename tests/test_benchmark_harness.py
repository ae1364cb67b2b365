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


def test_results_json_keeps_the_full_and_keyed_modes_results_apart(tmp_path):
    distill = json.loads((PROJECT_DIR / "benchmarks" / "results.json").read_text())["distill"]
    full = {"spacy_trf": {"x": 1}, "mode": "full"}
    stored = run_benchmark.merged_results("distill", distill, full)
    assert stored["spacy_trf"] == {"x": 1} and stored["distill"] == distill
    rerun = run_benchmark.merged_results("full", {"spacy_trf": {"x": 2}, "mode": "full"}, stored)
    assert rerun["spacy_trf"] == {"x": 2} and rerun["distill"] == distill
    assert run_benchmark.merged_results("long", {"a": 1}, stored) == {"a": 1}
    path = tmp_path / "BENCHMARKS.md"
    run_benchmark.write_benchmarks_md(path, {"distill": distill}, None, "curves.png")
    assert path.read_text().startswith("# Benchmarks\n\n## Distillation (`distill` mode)")
