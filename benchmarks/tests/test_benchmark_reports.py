"""The benchmark reports are renderings of the committed results files: the
pages say what the runs measured, every target with the verdict the run
recorded, and nobody edits a figure by hand."""

import json
import shutil

import run_benchmark
from modes import long
from processes import PROJECT_DIR, RESULTS_DIR
from report import render_pages


def stored_results():
    """Every mode's latest results: the full mode's and the keyed modes' in
    results.json, the long mode's and the other results files' in files of their own."""
    full = json.loads((RESULTS_DIR / "results.json").read_text())
    found = [full, *(value for key, value in full.items() if key in run_benchmark.KEYED_MODES)]
    found += [json.loads(path.read_text()) for path in sorted(RESULTS_DIR.glob("results_*.json"))]
    return [results for results in found if "targets" in results]


def test_the_committed_pages_are_the_rendering_of_the_results(tmp_path):
    (tmp_path / "docs").mkdir()
    for page in ("docs/multilingual.md", "README.md"):
        shutil.copyfile(PROJECT_DIR / page, tmp_path / page)
    render_pages(tmp_path)
    for page in ("BENCHMARKS.md", "docs/multilingual.md", "README.md"):
        assert (tmp_path / page).read_text() == (PROJECT_DIR / page).read_text(), (
            f"{page} is not the rendering of benchmarks/results/results*.json: run `spacy project run render benchmarks`"
        )


def test_every_target_of_every_run_is_reported_with_its_verdict():
    page = (PROJECT_DIR / "BENCHMARKS.md").read_text()
    runs = stored_results()
    assert {results["mode"] for results in runs} >= {"full", "long", "distill", "annotate", "inference"}
    for results in runs:
        for target, met in results["targets"].items():
            assert f"- {target}: {'met' if met else 'missed'}" in page, (results["mode"], target)
        for name, value in results.get("ratios", {}).items():
            assert f"- {name}: {value:.2f}" in page, (results["mode"], name)


def test_the_long_modes_learning_curves_are_plotted(tmp_path):
    results = json.loads((RESULTS_DIR / "results_long.json").read_text())
    long.plot_learning_curves(results, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
