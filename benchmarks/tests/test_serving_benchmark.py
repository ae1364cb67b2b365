"""The serving mode: annotate's workers told apart and measured on a tiny
int8 pipeline with empty caches (benchmarks/process_tree.py samples them)."""

import pytest
from modes import serving
from tiny_models import build_tiny_transformer_pipeline, fixture_texts


def test_workers_are_told_apart_from_the_driver_and_idle_ray_processes():
    assert serving.is_worker(["python -c from multiprocessing.spawn import spawn_main; spawn_main(...)"])
    assert serving.is_worker(["ray::IDLE", "ray::MapWorker(MapBatches(Annotator))"])
    assert not serving.is_worker(["ray::IDLE"])
    assert not serving.is_worker(["python scripts/annotate.py model in out --engine local"])


@pytest.fixture(scope="module")
def int8_pipeline(tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    from conll_ner.packaging.int8 import write_int8_pipeline

    root = tmp_path_factory.mktemp("served")
    write_int8_pipeline(build_tiny_transformer_pipeline(root / "tiny"), root / "int8")
    return root / "int8"


def test_annotate_with_two_workers_is_measured_per_worker(int8_pipeline, tmp_path):
    inputs = tmp_path / "input"
    inputs.mkdir()
    for number in range(4):
        (inputs / f"{number}.txt").write_text("".join(text.replace("\n", " ") + "\n" for text in fixture_texts()))
    run = serving.annotate_peak_rss(int8_pipeline, inputs, tmp_path, "local", 2)
    assert len(run["worker_peak_rss_mb"]) == 2
    # each worker loaded the pipeline on top of the runtime's imports
    assert all(peak > run["runtime_base_mb"] * 0.8 for peak in run["worker_peak_rss_mb"])
    assert run["tree_peak_rss_mb"] >= sum(run["worker_peak_rss_mb"]) * 0.8
    assert serving.exported_graphs(run["cache_files"]) == []
    assert sorted(p.name for p in (tmp_path / "annotate-local-2").glob("[0-9].jsonl")) == [
        f"{n}.jsonl" for n in range(4)
    ]
    served = {
        "pipeline_mb": serving.folder_mb(int8_pipeline),
        "worker_margin_mb": serving.WORKER_MARGIN_MB,
        "installed_first_prediction": {"export_tools_imported": [], "cache_files": []},
        "annotate": [run],
    }
    assert all(serving.serving_targets(served).values())
    # a graph left in the caches, or a worker over its allowance, fails the targets
    exported = {**served, "annotate": [{**run, "cache_files": ["conll_ner/encoder.onnx"]}]}
    assert not all(serving.serving_targets(exported).values())
    heavy = {**served, "annotate": [{**run, "worker_peak_rss_mb": [10 * serving.worker_allowance_mb(served, run)] * 2}]}
    assert not all(serving.serving_targets(heavy).values())
