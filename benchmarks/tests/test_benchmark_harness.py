import json
import os
import subprocess
import sys

import registry
import run_benchmark
import spacy
from fixtures import ENGLISH_TRAIN
from modes import long
from processes import BENCH_DIR, RESULTS_DIR
from report import write_benchmarks_md


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
            [sys.executable, str(BENCH_DIR / "cpu_inference.py"), *args],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        measured = json.loads(output.read_text())
        assert measured["n_words"] == {kind: 14} and list(measured["words_per_second"]) == [kind]
        assert measured["batch_size"] == 2 and measured["torch_threads"] == 1
        assert "dev" not in measured and measured["encoder_input"] == {}


def test_results_json_keeps_the_full_and_keyed_modes_results_apart(tmp_path):
    distill = json.loads((RESULTS_DIR / "results.json").read_text())["distill"]
    full = {"spacy_trf": {"x": 1}, "mode": "full"}
    stored = run_benchmark.merged_results("distill", distill, full)
    assert stored["spacy_trf"] == {"x": 1} and stored["distill"] == distill
    rerun = run_benchmark.merged_results("full", {"spacy_trf": {"x": 2}, "mode": "full"}, stored)
    assert rerun["spacy_trf"] == {"x": 2} and rerun["distill"] == distill
    assert run_benchmark.merged_results("long", {"a": 1}, stored) == {"a": 1}
    # a mode that runs another's module under other settings keeps a key of its own, through a full rerun
    capped = run_benchmark.merged_results("update_cost_avx2_kernels", {"b": 1}, {**rerun, "update_cost": {"b": 2}})
    assert capped["update_cost"] == {"b": 2} and capped["update_cost_avx2_kernels"] == {"b": 1}
    assert run_benchmark.merged_results("full", {"spacy_trf": {}}, capped)["update_cost_avx2_kernels"] == {"b": 1}
    path = tmp_path / "BENCHMARKS.md"
    write_benchmarks_md(path, {"distill": distill}, None, "curves.png")
    assert path.read_text().startswith("# Benchmarks\n\n## Distillation (`distill` mode)")


def test_a_run_on_an_avx2_only_cpu_is_kept_beside_the_newer_kinds_run(tmp_path):
    """The inference and update_cost modes run on whatever CPU they are given;
    their figures depend on its int8 and bfloat16 kernels, so a run on an
    AVX2-only CPU keeps a key of its own instead of replacing the other
    kind's, and BENCHMARKS.md shows both, titled by kind."""
    newer = {"int8_dot_products": True, "native_bfloat16": True}
    avx2 = {"int8_dot_products": False, "native_bfloat16": False}
    capped = {"int8_dot_products": True, "native_bfloat16": False}  # a newer CPU under kernel caps
    assert registry.results_key("inference", newer) == "inference"
    assert registry.results_key("inference", avx2) == "inference_avx2"
    assert registry.results_key("update_cost", avx2) == "update_cost_avx2"
    assert registry.results_key("inference", capped) == "inference"
    # a mode capped at AVX2 is an approximation of its own, and serving's figures are not by kind
    assert registry.results_key("update_cost_avx2_kernels", avx2) == "update_cost_avx2_kernels"
    assert registry.results_key("serving", avx2) == "serving"
    stored = json.loads((RESULTS_DIR / "results.json").read_text())
    newer_run = stored["inference"]
    avx2_run = {**newer_run, "machine": {**newer_run["machine"], **avx2}}
    both = run_benchmark.merged_results("inference_avx2", avx2_run, {"inference": newer_run})
    assert both == {"inference": newer_run, "inference_avx2": avx2_run}
    assert run_benchmark.merged_results("full", {"spacy_trf": {}}, both)["inference_avx2"] == avx2_run
    path = tmp_path / "BENCHMARKS.md"
    write_benchmarks_md(path, both, None, "curves.png")
    titles = [line for line in path.read_text().splitlines() if line.startswith("## CPU inference")]
    assert titles == [
        "## CPU inference against the Hugging Face pipeline (`inference` mode)",
        "## CPU inference against the Hugging Face pipeline (`inference` mode, AVX2-only CPU)",
    ]


def test_long_mode_skips_the_bf16_trainer_where_the_cpu_would_emulate_it(monkeypatch, tmp_path):
    """Without native bfloat16 spaCy trains in fp32 and torch would emulate the Trainer's bf16 run for
    hours: the mode records why it did not run it, instead of running it."""
    trained = []

    def fake_trainer(*args, bf16, **kwargs):
        trained.append(bf16)
        return {
            "precision": 0.9,
            "recall": 0.9,
            "f1": 0.9,
            "epochs_done": 4,
            "steps": 10,
            "train_seconds": 100.0,
            "curve": [],
        }

    train = {"model": str(tmp_path / "model-last"), "train_seconds": 90.0, "epochs": 4, "steps": 10, "curve": []}
    monkeypatch.setattr(long, "prepare_corpus", lambda *a: {"dev": tmp_path / "dev.spacy"})
    monkeypatch.setattr(long, "train_spacy", lambda *a: dict(train))
    monkeypatch.setattr(long, "dev_scores", lambda *a: {"precision": 0.92, "recall": 0.92, "f1": 0.92})
    monkeypatch.setattr(long.hf_baseline, "default_model_dir", lambda: "minilm")
    monkeypatch.setattr(long.hf_baseline, "train_and_evaluate", fake_trainer)
    settings = json.loads((BENCH_DIR / "modes.json").read_text())["long"]
    for native, runs in ((False, [False]), (True, [False, True])):
        trained.clear()
        monkeypatch.setattr(long, "cpu_computes_bfloat16", lambda native=native: native)
        results = long.run(tmp_path, tmp_path, settings)
        assert trained == runs
        assert ("hf_trainer_bf16" in results) is native and ("skipped" in results) is not native
        assert any("bf16" in target for target in results["targets"]) is native
    monkeypatch.setattr(long, "cpu_computes_bfloat16", lambda: False)
    results = long.run(tmp_path, tmp_path, settings)
    results.update({"command": "c", "date": "d", "mode": "long", "settings": settings})
    results["machine"] = {"cpu": "cpu", "cores": 2, "platform": "p"}
    report = long.report_markdown(results, "curves.png")
    assert "| HF Trainer recipe, bf16 autocast | not run: this CPU has no native bfloat16" in report
    for target in long.BF16_TARGETS:  # reported as not measured, not dropped
        assert f"- {target}: not measured" in report


def test_a_mode_with_kernel_caps_runs_again_under_them_once(tmp_path):
    """The caps act when torch loads, which the harness has done by the time
    it reads the mode: it runs itself again with them set, and that run goes
    on (here to the missing data)."""
    caps = run_benchmark.SETTINGS["update_cost_avx2_kernels"]["kernel_caps"]
    environment = {key: value for key, value in os.environ.items() if key not in caps}
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "run_benchmark.py"), "run", "--mode", "update_cost_avx2_kernels"]
        + ["--data-dir", str(tmp_path), "--work-dir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1 and output.count("Running again with the mode's kernel caps") == 1, output[-2000:]
    assert "is missing: pass --data-dir" in output
