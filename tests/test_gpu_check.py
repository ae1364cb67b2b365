"""`spacy project run check-gpu` on the CPU: the report, its exit code, and
the no-GPU path. The checks themselves need a GPU (see README)."""

import io
import os
import subprocess
import sys

from conftest import PROJECT_DIR
from project_utils import copy_project

from conll_ner.training.gpu_check import (
    FAILED,
    OK,
    SKIPPED,
    CheckResult,
    NoGPU,
    describe_error,
    format_result,
    report,
    run_checks,
)


def passing() -> str:
    return "fine"


def broken() -> str:
    raise ImportError("libnvrtc.so.13: cannot open shared object file:\n  No such file or directory")


def no_gpu() -> str:
    raise NoGPU("torch sees 0 GPU(s)")


def test_a_check_that_raises_is_reported_as_failed_and_the_next_checks_still_run():
    results = list(run_checks([("first", passing), ("cupy", broken), ("last", passing)]))
    assert results == [
        CheckResult("first", OK, "fine"),
        CheckResult(
            "cupy", FAILED, "ImportError: libnvrtc.so.13: cannot open shared object file: No such file or directory"
        ),
        CheckResult("last", OK, "fine"),
    ]


def test_without_a_gpu_the_later_checks_are_skipped_not_run():
    ran = []

    def cupy() -> str:
        ran.append("cupy")
        return "fine"

    results = list(run_checks([("torch", no_gpu), ("cupy", cupy), ("gemm", broken)]))
    assert [(result.status, result.detail) for result in results] == [
        (FAILED, "torch sees 0 GPU(s)"),
        (SKIPPED, "no GPU (see 'torch')"),
        (SKIPPED, "no GPU (see 'torch')"),
    ]
    assert ran == []


def test_a_result_is_one_line_with_its_status_first():
    assert format_result(CheckResult("cupy", OK, "kernel ran")) == "ok      cupy: kernel ran"
    assert format_result(CheckResult("cupy", FAILED, "no NVRTC")) == "failed  cupy: no NVRTC"
    assert format_result(CheckResult("cupy", SKIPPED, "no GPU")) == "skipped cupy: no GPU"


def test_long_errors_are_cut_to_one_readable_line():
    detail = describe_error(RuntimeError("line\n" * 400))
    assert "\n" not in detail and len(detail) == 500 and detail.startswith("RuntimeError: line line")
    assert describe_error(KeyError()) == "KeyError"


def test_report_prints_a_line_per_check_and_exits_0_only_if_all_passed():
    out = io.StringIO()
    assert report([("a", passing), ("b", passing)], out) == 0
    assert out.getvalue() == "ok      a: fine\nok      b: fine\n"
    out = io.StringIO()
    assert report([("a", passing), ("b", broken)], out) == 1
    assert out.getvalue().splitlines()[1].startswith("failed  b: ImportError: libnvrtc.so.13")
    assert report([("a", no_gpu), ("b", passing)], io.StringIO()) == 1


def test_check_gpu_command_without_a_gpu_says_so_and_fails(tmp_path):
    """The real checks, with every GPU hidden from CUDA, through project.yml."""
    project = copy_project(tmp_path / "project")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "check-gpu"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if line.startswith((OK, FAILED, SKIPPED))]
    assert len(lines) == 4, result.stdout + result.stderr
    assert lines[0].startswith("failed  torch sees the GPU: torch ")
    assert "CUDA_VISIBLE_DEVICES=''" in lines[0]
    assert lines[1:] == [
        "skipped cupy compiles and runs a kernel: no GPU (see 'torch sees the GPU')",
        "skipped cuBLAS matrix product (thinc CupyOps): no GPU (see 'torch sees the GPU')",
        "skipped transformer+ner training step and prediction: no GPU (see 'torch sees the GPU')",
    ]


def test_the_pipeline_checks_training_learns_at_its_constant_rate_on_the_cpu(tmp_path):
    """check-gpu's training step, apart from the GPU: the config's schedule would warm up from 0 and
    leave the loss where it was, so the check trains at a constant rate and asks for a falling loss."""
    from conll_ner.training.gpu_check import CHECK_LEARN_RATE, CHECK_UPDATES, TRAIN, loss_fell, train_tiny_pipeline
    from conll_ner.training.tiny_bert import build_tiny_bert

    encoder = build_tiny_bert(tmp_path / "bert", [" ".join(text for text, _ in TRAIN)] * 3)
    config = PROJECT_DIR / "configs" / "transformer.cfg"
    nlp, losses, docs = train_tiny_pipeline(config, encoder, updates=CHECK_UPDATES, mixed_precision=False)
    assert len(losses) == CHECK_UPDATES and loss_fell(losses), losses
    assert nlp.config["training"]["optimizer"]["learn_rate"] == CHECK_LEARN_RATE
    assert [doc.text for doc in docs] == [text for text, _ in TRAIN]
