"""The GPU run's figures (benchmarks/gpu_run.py): derived from the raw files the run left, never typed in;
and the run script (benchmarks/gpu_run.sh) names the steps the parser reads and leaves few enough files for
the device tool to return them all."""

import json
import re
import subprocess
from pathlib import Path

import gpu_run
from processes import BENCH_DIR, PROJECT_DIR

SCRIPT = BENCH_DIR / "gpu_run.sh"


def stored_results() -> dict:
    return json.loads(gpu_run.RESULTS_PATH.read_text())


def test_stored_results_are_what_the_committed_raw_files_give():
    stored = stored_results()
    assert gpu_run.collect(PROJECT_DIR / stored["raw_files"], stored["remarks"]) == stored


def test_training_rates_run_from_step_0_to_the_last_evaluation(tmp_path: Path):
    log = tmp_path / "train_log.jsonl"
    records = [(0, 500, 10), (100, 20500, 30), (200, 40500, 50)]
    log.write_text(
        "".join(
            json.dumps({"step": s, "words": w, "seconds": t, "scores": {"ents_f": 12.345}}) + "\n"
            for s, w, t in records
        )
    )
    figures = gpu_run.training_figures(log)
    assert figures["updates"] == 200 and figures["evaluations"] == 3 and figures["step0_seconds"] == 10
    assert figures["updates_per_second"] == 5.0 and figures["words_per_second"] == 1000
    assert figures["last_dev_f1"] == 12.35


def test_gpu_usage_is_the_peak_and_mean_within_each_steps_window(tmp_path: Path):
    (tmp_path / "steps.jsonl").write_text(
        json.dumps({"step": "train_base", "start": 100.0, "end": 102.0, "rc": 0})
        + "\n"
        + json.dumps({"step": "evaluate", "start": 103.0, "end": 104.0, "rc": 0})
        + "\n"
    )
    # a sample outside every step, and one nvidia-smi line that came back empty
    (tmp_path / "gpu.csv").write_text(
        "99.5,90000,100\n100.0,1000,10\n101.0,5000,90\n102.0,3000,50\n102.5,\n103.5,2000,20\n"
    )
    usage = gpu_run.gpu_usage_by_step(tmp_path)
    assert usage == {
        "train_base": {"peak_memory_mib": 5000, "mean_utilization_percent": 50},
        "evaluate": {"peak_memory_mib": 2000, "mean_utilization_percent": 20},
    }
    (tmp_path / "gpu.csv").unlink()
    assert gpu_run.gpu_usage_by_step(tmp_path) == {}


def test_a_step_is_ok_failed_cut_or_never_started():
    commands = {"data": "c", "convert": "c", "train_base": "c", "package": "c"}
    exits = {"data": 0, "convert": 124, "train_base": 1}
    assert gpu_run.step_status("data", commands, exits) == "ok"
    assert gpu_run.step_status("convert", commands, exits) == "stopped by its time limit"
    assert gpu_run.step_status("train_base", commands, exits) == "failed (exit 1)"
    assert gpu_run.step_status("package", commands, exits) == "ended by the run's time limit"
    assert gpu_run.step_status("install", commands, exits) == "not run"


def test_the_report_names_the_gpu_every_check_and_step_and_each_runs_rates():
    stored = stored_results()
    report = gpu_run.report_markdown(stored)
    assert stored["machine"]["gpu"] in report and stored["machine"]["driver"] in report
    for check in stored["checks"]:
        assert f"| {check['check']} | {check['status']} |" in report
    for step in stored["steps"]:
        assert re.search(rf"^\| {step['step']} \|.*\| {re.escape(step['status'])} \|$", report, re.M)
    for run in stored["training"].values():
        assert f"| {run['updates_per_second']} | {run['words_per_second']:,} |" in report
    assert gpu_run.report_markdown(stored) in (PROJECT_DIR / "BENCHMARKS.md").read_text()


def test_the_script_runs_the_steps_the_parser_reads_and_leaves_at_most_8_files():
    text = SCRIPT.read_text()
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert re.findall(r"^step (\w+) \d+ ", text, re.M) == gpu_run.MACHINE_STEPS + gpu_run.STEPS
    # what it writes into $OUT, plus the kit's gpu-run.log
    outputs = set(re.findall(r'"\$out/([\w.]+)"', text)) | {"gpu-run.log"}
    assert {
        "steps.jsonl",
        "gpu.csv",
        "metrics_base.json",
        "train_log_multilingual.jsonl",
        "train_log_base.jsonl",
    } <= outputs
    assert [f"train_log_{key}.jsonl" for key, _, _ in gpu_run.TRAINING_RUNS] == re.findall(
        r'"\$out/(train_log_\w+\.jsonl)"', text
    )
    assert len(outputs) <= 8


def test_encoders_get_the_given_dimensions_and_more_embedding_rows_than_pieces(tmp_path: Path):
    from transformers import AutoTokenizer, BertModel

    from conll_ner.training.tiny_bert import build_tiny_bert

    texts = ["Jordi Pujol llegó a Barcelona .", "EU rejects German call to boycott British lamb ."] * 20
    dimensions = dict(vocab_size=500, hidden_size=24, num_hidden_layers=3, num_attention_heads=2, intermediate_size=30)
    path = build_tiny_bert(tmp_path / "bert", texts, vocab_size=120, dimensions=dimensions)
    model = BertModel.from_pretrained(path)
    assert model.config.hidden_size == 24 and model.config.num_hidden_layers == 3
    assert model.get_input_embeddings().num_embeddings == 500
    assert len(AutoTokenizer.from_pretrained(path)) < 500


def test_a_run_is_read_from_the_kits_log_its_steps_their_outputs_and_the_update_timing(tmp_path: Path):
    raw = tmp_path / "2027-01-02-h100"
    raw.mkdir()
    (raw / "gpu-run.log").write_text(
        "NVIDIA H100, 580.1, 81559 MiB\n"
        "torch 2.11.0+cu130 cuda 13.0 True\n"
        "== check-gpu\n"
        "\x1b[1mok      torch sees the GPU: NVIDIA H100\x1b[0m\n"
        "failed  cupy compiles and runs a kernel: no NVRTC\n"
        "check-gpu exit 1 in 30s\n"
        "== lscpu: lscpu\nCPU(s): 16\nModel name: Xeon\nFlags: avx2 amx_int8 amx_bf16\n== lscpu exit 0\n"
        "== kit_versions: cat .devkit/versions.txt\nspacy==3.8.18 thinc==8.3.14 wasabi==1.1.3\n== kit_versions exit 0\n"
        "== encoders: python3 -\nmbert_size 177853440 parameters 4.7 s\ne5_small_size 117653760 parameters 2.0 s\n"
        "== encoders exit 0\n"
        "== train_multilingual: python3 -m spacy project run train . --vars.lang es\n"
        "\x1b[38;5;4mℹ Training plan: 264,715 words in 833 docs, ~336 words per update\n"
        "(1,786 updates per epoch); 4 epochs = 7,144 updates\x1b[0m\n== train_multilingual exit 0\n"
        "== profile_updates: python3 -\nok  a line of a step's output, not a check\nbatch size 300: 10 updates, 4775 words: 0.125 s per update without the profiler, 3820 words/s\n"
        "batch size 1200: 10 updates, 19100 words: 0.250 s per update without the profiler, 7640 words/s\n"
        "== profile_updates exit 0\n"
        "== package: python3 -m spacy project run package .\n"
    )
    (raw / "train_log_multilingual.jsonl").write_text(
        "".join(
            json.dumps({"step": n, "words": 300 * n, "seconds": 10 + n / 2, "scores": {"ents_f": 1.0}}) + "\n"
            for n in (0, 100)
        )
    )
    (raw / "metrics_base.json").write_text(json.dumps({"dev-es": {"runtime": {"device": "gpu", "precision": "fp16"}}}))
    results = gpu_run.collect(raw, [])
    assert results["date"] == "2027-01-02" and results["machine"]["gpu"] == "NVIDIA H100"
    assert results["machine"]["int8_dot_products"] and results["machine"]["native_bfloat16"]
    assert results["versions"] == {"torch": "2.11.0+cu130", "cuda": "13.0", "spacy": "3.8.18", "thinc": "8.3.14"}
    assert [c["status"] for c in results["checks"]] == ["ok", "failed"]
    status = {step["step"]: step["status"] for step in results["steps"]}
    assert status["encoders"] == "ok" and status["package"] == "ended by the run's time limit"
    assert status["train_base"] == "not run" and list(results["training"]) == ["multilingual"]
    multilingual = results["training"]["multilingual"]
    assert multilingual["parameters"] == 117653760 and multilingual["updates_per_second"] == 2.0
    # 1,786 planned updates per epoch at 2 updates/s
    assert multilingual["updates_per_epoch"] == 1786 and multilingual["minutes_per_epoch"] == 14.9
    assert [line.split(":")[0] for line in results["update_timing"]] == ["batch size 300", "batch size 1200"]
    report = gpu_run.report_markdown(results)
    assert all(f"- {line}" in report for line in results["update_timing"])
    assert "| e5_small_size | 117,653,760 | 100 | 2 | 10.0 | 2.0 | 600 | 14.9 | 1.0 |" in report
    assert "Evaluation: dev-es on gpu in fp16." in report
    # a run whose evaluate step did not write its metrics
    (raw / "metrics_base.json").unlink()
    assert "Evaluation:" not in gpu_run.report_markdown(gpu_run.collect(raw, []))
