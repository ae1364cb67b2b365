"""The pages rendered from the results files in benchmarks/results/:
BENCHMARKS.md (the latest results of every mode, the recipe probes and the
GPU run, in this order), the runs section of docs/multilingual.md and
the README's results table (readme_table.py). Nobody edits a figure of
them by hand: `spacy project run render benchmarks` renders them again."""

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import gpu_run
import int8_weight_range
import readme_table
import recipe_probes
import registry
import train_memory
from modes import (
    annotate,
    distill,
    distill_scale,
    encoder_graphs,
    full,
    inference,
    long,
    serving,
    serving_http,
    update_cost,
)
from processes import PROJECT_DIR, RESULTS_DIR

from conll_ner.files import write_atomically


def write_benchmarks_md(
    path: Path,
    full_results: Optional[Dict[str, Any]],
    long_results: Optional[Dict[str, Any]],
    curve_png: str,
    gpu: Optional[Dict[str, Any]] = None,
    probes: Optional[Dict[str, Any]] = None,
    weight_ranges: Sequence[Tuple[str, Dict[str, Any]]] = (),
    memory: Optional[Dict[str, Any]] = None,
) -> None:
    """BENCHMARKS.md holds the latest result of each mode that has been run:
    full and the keyed modes from results.json (the keyed ones under their
    own keys), long from results_long.json, the GPU run from
    results_gpu.json, the recipe probes from results_recipe_probes.json,
    the int8 weight ranges from int8_weight_range_*.json, the train step's
    memory policies from results_train_memory.json."""
    stored = full_results or {}
    parts = []
    if "spacy_trf" in stored:
        parts.append(full.report_markdown(stored))
    if long_results:
        parts.append(long.report_markdown(long_results, curve_png))
    if "distill" in stored:
        parts.append(distill.report_markdown(stored["distill"]))
    if "distill_scale" in stored:
        parts.append(distill_scale.report_markdown(stored["distill_scale"], stored.get("distill")))
    for mode in (annotate, inference, encoder_graphs, serving, serving_http, update_cost):
        # the module's own mode, then its other modes (update_cost_avx2_kernels)
        for key in registry.KEYED_MODES:
            if key in stored and registry.module(key) is mode:
                parts.append(mode.report_markdown(stored[key]))
    if probes:
        parts.append(recipe_probes.report_markdown(probes))
    if weight_ranges:
        parts.append(int8_weight_range.report_markdown(weight_ranges))
    if memory:
        parts.append(train_memory.report_markdown(memory))
    if gpu:
        parts.append(gpu_run.report_markdown(gpu))
    if parts and not parts[0].startswith("# Benchmarks"):
        parts[0] = "# Benchmarks\n\n" + parts[0]
    write_atomically(path, "\n".join(parts).encode("utf8"))


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    return json.loads(path.read_text()) if path.is_file() else None


def results_png(name: str) -> str:
    """A plot of benchmarks/results/ as the pages at the project's top name it."""
    return f"{RESULTS_DIR.relative_to(PROJECT_DIR)}/{name}"


def render_pages(root: Path = PROJECT_DIR) -> None:
    """BENCHMARKS.md, the rendered sections of docs/multilingual.md and
    docs/recipes.md and the README's results table from the results files,
    in the project at `root` (another root: the test that the committed
    pages are their rendering)."""
    write_benchmarks_md(
        root / "BENCHMARKS.md",
        read_json(RESULTS_DIR / "results.json"),
        read_json(RESULTS_DIR / long.RESULTS_FILE),
        results_png(long.curve_name("long")),
        read_json(RESULTS_DIR / "results_gpu.json"),
        read_json(RESULTS_DIR / "results_recipe_probes.json"),
        [
            (path.stem[len(int8_weight_range.RESULTS_PREFIX) :], read_json(path))
            for path in sorted(RESULTS_DIR.glob(f"{int8_weight_range.RESULTS_PREFIX}*.json"))
        ],
        read_json(RESULTS_DIR / train_memory.RESULTS_FILE),
    )
    probes = read_json(RESULTS_DIR / "results_recipe_probes.json")
    if probes:
        recipe_probes.render_docs(root / "docs", probes)
    if (root / "README.md").is_file():
        readme_table.update_readme(root / "README.md")
